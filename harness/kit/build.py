"""`make kit`: builds every kit artifact in dependency order and prints a summary table."""

from __future__ import annotations

from collections.abc import Callable

from harness.kit import cache, gomod, recipes
from harness.kit.tools import log_dir, validation_kit
from harness.progress import format_duration
from harness.versions import Versions


def go_artifacts(v: Versions) -> list[cache.Artifact]:
    """Every Go build the kit needs, cheapest and most needed first."""
    logs = log_dir()
    built = list(validation_kit(v).artifacts)
    steps: list[Callable[[], cache.Artifact]] = [
        lambda: gomod.build(recipes.kind(v), logs),
        lambda: gomod.build(recipes.kubernetes(v), logs),
        *[
            (lambda name=name, version=version: gomod.build(recipes.flux_controller(name, version), logs))
            for name, version in v.flux.controllers().items()
        ],
        lambda: gomod.build(recipes.containerd(v.node.containerd), logs),
        lambda: gomod.build(recipes.crictl(v.node.crictl), logs),
        lambda: gomod.build(recipes.etcd(v.node.etcd), logs),
        lambda: gomod.build(recipes.coredns(v.node.coredns), logs),
        lambda: gomod.build(recipes.podinfo(v), logs),
    ]
    for produce in steps:
        built.append(produce())
    return built


def build_kit(v: Versions) -> list[cache.Artifact]:
    """Everything `make kit` produces."""
    return go_artifacts(v)


def summary(artifacts: list[cache.Artifact]) -> str:
    """The table `make kit` ends with."""
    rows = [("artifact", "version", "source", "size", "build time", "status")]
    for a in artifacts:
        rows.append((a.name, a.version, a.source, f"{a.size_bytes / 2**20:.1f} MiB",
                     format_duration(a.seconds), "built" if a.built else "cached"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows)
