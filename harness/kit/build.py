"""`make kit`: builds every kit artifact in dependency order and prints a summary table."""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.access import registry
from harness.core import commands, locks
from harness.core.errors import KitError
from harness.core.parallel import run_together
from harness.core.progress import format_duration, say, step
from harness.core.runs import Run
from harness.core.versions import Versions
from harness.kit import cache, charts, gomod, images, node, recipes, registry_image, upstream
from harness.kit.oci import BuiltImage, build_image
from harness.kit.tools import log_dir, validation_kit

# A cold kit takes 30 to 60 minutes on two cores: a waiting run gives the first one that long.
KIT_LOCK_TIMEOUT_S = 2 * 3600.0

Source = Literal["build", "upstream"]


@dataclass(frozen=True)
class Kit:
    """Everything the e2e consumes from the kit."""

    go: list[cache.Artifact]
    images: list[BuiltImage]
    upstream_tags: tuple[str, ...]  # every image the registry serves
    node_image: str
    chart_repos: dict[str, Path]  # repository name -> folder with index.yaml and charts
    versions: Versions
    source: Source = "build"
    registry_image: str = ""  # the image every run's registry container runs
    registry_storage: Path = Path()  # what it serves: filled once by the kit

    @property
    def node_kubernetes(self) -> str:
        """The Kubernetes version the node image runs (upstream's is kind's pin for it)."""
        if self.source == "upstream":
            return self.node_image.split("@")[0].rpartition(":")[2]
        return self.versions.kubernetes

    def binary(self, name: str) -> str:
        for artifact in self.go:
            candidate = artifact.path / "bin" / name
            if candidate.is_file():
                return str(candidate)
        raise KeyError(name)


def go_recipes(v: Versions, source: Source) -> list[gomod.GoBuild]:
    """The Go builds beyond the validation tools: for "upstream" only the CLIs the harness runs
    (kind, kubectl); for "build" also everything the images and the node image are made of."""
    if source == "upstream":
        return [recipes.kind(v), recipes.kubernetes(v, ("kubectl",))]
    return [
        recipes.kind(v), recipes.kubernetes(v),
        *(recipes.flux_controller(n, ver) for n, ver in v.flux.controllers().items()),
        recipes.containerd(v.node.containerd), recipes.crictl(v.node.crictl),
        recipes.etcd(v.node.etcd), recipes.coredns(v.node.coredns), recipes.kube_router(v), recipes.podinfo(v),
    ]


def go_artifacts(v: Versions, source: Source, parts: tuple[str, ...]) -> dict[str, cache.Artifact]:
    """Every Go build the kit needs for `source` and the engine `parts`, most needed first, by name."""
    logs = log_dir()
    built = list(validation_kit(v, source, controllers=images.KYVERNO_PART in parts).artifacts)
    built += [gomod.build(recipe, logs) for recipe in go_recipes(v, source)]
    return {a.name: a for a in built}


def build_kit(v: Versions, source: Source, parts: tuple[str, ...]) -> Kit:
    """Everything `make kit` produces for a fleet whose policy engine needs `parts`
    (images.ENGINE_PARTS; the engine seam's kit_parts); the registry is filled, then stopped.

    With source "upstream" the images and charts are pulled and downloaded instead of built
    (for machines with internet); tools and the node image are built either way. Runs on one
    host take turns: the second waits for the first's build, then finds it cached.
    """
    unknown = sorted(set(parts) - set(images.ENGINE_PARTS))
    if unknown:
        raise KitError(f"the kit builds no {', '.join(unknown)} for a policy engine; it knows "
                       f"{', '.join(images.ENGINE_PARTS)}")
    with locks.hold(cache.cache_root() / "locks", "kit", f"building the kit ({source})",
                    "runs on this host share one kit cache; the first builds, the others reuse it",
                    timeout_s=KIT_LOCK_TIMEOUT_S):
        return _build_kit(v, source, parts)


def _build_kit(v: Versions, source: Source, parts: tuple[str, ...]) -> Kit:
    kyverno = images.KYVERNO_PART in parts
    by_name: dict[str, cache.Artifact] = {}
    if source == "build":
        # The Go builds keep both cores busy; debootstrap mostly waits on the network and the
        # disk: the Debian bases are made beside the compiles (a cold kit's ~3 minutes of them).
        run_together({"go": lambda: by_name.update(go_artifacts(v, source, parts)),
                      "debian": lambda: _debian_bases(v)})
    else:
        by_name = go_artifacts(v, source, parts)
    if source == "upstream":
        tags = tuple(images.workload_tags(v, parts))
        component_images = [upstream.pull(tag) for tag in tags]
        node_image = upstream.pull(node.upstream_node_image(v))
        chart_artifacts = (upstream.chart_repo("podinfo", v.podinfo),
                           *([upstream.chart_repo("kyverno", v.kyverno_chart)] if kyverno else []))
    else:
        go = images.GoArtifacts(
            kubernetes=by_name["kubernetes"], etcd=by_name["etcd"], coredns=by_name["coredns"],
            flux={n: by_name[n] for n in v.flux.controllers()}, kyverno=by_name["kyverno"] if kyverno else None,
            podinfo=by_name["podinfo"], kube_router=by_name["kube-router"],
        )
        kind_module = gomod.download("sigs.k8s.io/kind", v.kind)
        pause_tag = node.sandbox_image(kind_module.dir).rsplit(":", 1)[1]
        specs = images.all_images(v, go, pause_tag, parts)
        component_images = [build_image(spec) for spec in specs]
        node_inputs = node.NodeInputs(
            kubernetes=by_name["kubernetes"], containerd=by_name["containerd"], crictl=by_name["crictl"],
            image_tags=tuple(t for spec in images.kubernetes_images(v, go, pause_tag) for t in spec.tags),
        )
        node_image = node.build_node_image(v, node_inputs)
        tags = tuple(t for spec in specs for t in spec.tags)
        chart_artifacts = (charts.podinfo_repo(v), *([charts.kyverno_repo(v)] if kyverno else []))
    image = registry_image.registry_image(v)
    _fill_registry(image, tags)
    repos = {a.name: a.path for a in chart_artifacts}
    return Kit(list(by_name.values()), [*component_images, node_image], tags, node_image.tag, repos, v, source,
               image, registry_image.storage())


def _debian_bases(v: Versions) -> None:
    """Every Debian root filesystem the images and the node image are built on, into the cache."""
    images.debian_bases(v)
    node.node_base(v)


def _fill_registry(image: str, tags: tuple[str, ...]) -> None:
    """Push every image the clusters pull into the shared registry storage (once)."""
    run = Run.new()
    with ExitStack() as stack:
        reg = registry.start_on(stack, image, registry_image.storage(), run)
        with step(f"filling the registry with {len(tags)} images (those it has are skipped)"):
            pushed = registry.push(reg, list(tags))
        say(f"registry: pushed {len(pushed)} image(s), {len(tags) - len(pushed)} already there")


def fingerprint(kit: Kit) -> str:
    """What identifies this kit: each tool's cache entry, each image's ID (the node image's and
    the registry's too), each chart repository's index. A rebuild of any part changes it."""
    tags = sorted({*(i.tag for i in kit.images), kit.node_image, kit.registry_image} - {""})
    ids = commands.run(["docker", "image", "inspect", "--format", "{{.Id}}", *tags], timeout_s=60.0).stdout.split()
    h = hashlib.sha256(f"{kit.source}\0{kit.versions.name}\0".encode())
    for artifact in sorted(str(a.path) for a in kit.go):
        h.update(f"go {artifact}\0".encode())
    for tag, image_id in zip(tags, ids, strict=True):
        h.update(f"image {tag} {image_id}\0".encode())
    for name, folder in sorted(kit.chart_repos.items()):
        h.update(f"charts {name}\0".encode() + (folder / "index.yaml").read_bytes())
    return h.hexdigest()


def summary(kit: Kit) -> str:
    """The table `make kit` ends with."""
    rows = [("artifact", "version", "source", "size", "build time", "status")]
    for a in kit.go:
        rows.append((a.name, a.version, a.source, f"{a.size_bytes / 2**20:.1f} MiB",
                     format_duration(a.seconds), "built" if a.built else "cached"))
    for image in kit.images:
        name, _, tag = image.tag.rpartition(":")
        rows.append((name, tag, "image (kit binaries)", f"{image.size_bytes / 2**20:.1f} MiB",
                     format_duration(image.seconds), "built" if image.built else "cached"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows)
