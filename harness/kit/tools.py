"""The kit's command-line tools and the offline inputs of `make validate`."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from harness.core.toolpaths import SchemaSources, Tools
from harness.core.versions import Versions
from harness.kit import cache, flux, gomod, npm, recipes


def log_dir() -> Path:
    return cache.cache_root() / "logs"


@dataclass(frozen=True)
class ValidationKit:
    tools: Tools
    sources: SchemaSources
    artifacts: tuple[cache.Artifact, ...]


def validation_kit(v: Versions, source: str = "build", controllers: bool = True) -> ValidationKit:
    """kustomize, flux and the Kyverno CLI, plus the API definitions, built or cached.

    The Kyverno CLI is built with Kyverno's controllers when the kit builds their images
    (source "build" and `controllers`: shared packages compile once), alone otherwise.
    """
    logs = log_dir()
    kustomize = gomod.build(recipes.kustomize(v), logs)
    bundle = flux.manifests(v, kustomize.path / "bin" / "kustomize")
    flux_cli = flux.cli(v, bundle, logs)
    kyverno = gomod.build(recipes.kyverno(v, cli_only=source != "build" or not controllers), logs)
    kubernetes = gomod.download("k8s.io/kubernetes", v.kubernetes)
    api = gomod.download("k8s.io/api", v.kubernetes_staging)
    kyverno_src = gomod.download("github.com/kyverno/kyverno", v.kyverno)
    crds = (*sorted(bundle.path.glob("*.yaml")), *sorted((kyverno_src.dir / "config" / "crds").rglob("*.yaml")))
    return ValidationKit(
        tools=Tools(
            kustomize=kustomize.path / "bin" / "kustomize",
            flux=flux_cli.path / "bin" / "flux",
            kyverno=kyverno.path / "bin" / "kubectl-kyverno",
        ),
        sources=SchemaSources(
            swagger=kubernetes.dir / "api" / "openapi-spec" / "swagger.json",
            api_module=api.dir,
            crd_files=crds,
        ),
        artifacts=(kustomize, bundle, flux_cli, kyverno),
    )


@dataclass(frozen=True)
class CIConfigTools:
    """The checkers of the forkers' CI configuration."""

    actionlint: Path
    renovate_validator: tuple[str, ...]  # argv: the pinned Node.js runtime, then the validator


def ci_config_tools(v: Versions) -> CIConfigTools:
    """actionlint from its Go module; Renovate's config validator and the Node.js runtime it
    declares from the npm registry (the host's node may be older than Renovate supports)."""
    logs = log_dir()
    actionlint = gomod.build(recipes.actionlint(v), logs)
    arch = {"x86_64": "x64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    node = npm.package(f"node-linux-{arch}", v.node_runtime, logs)
    renovate = npm.package("renovate", v.renovate, logs)
    return CIConfigTools(
        actionlint=actionlint.path / "bin" / "actionlint",
        renovate_validator=(str(node.path / "node_modules" / f"node-linux-{arch}" / "bin" / "node"),
                            str(renovate.path / "node_modules" / "renovate" / "dist" / "config-validator.js")),
    )
