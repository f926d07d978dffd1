"""What the offline checks run and read, as paths: produced by the kit, consumed by the
manifest checks (a value both sides share, so neither imports the other)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tools:
    """The kit binaries the checks run."""

    kustomize: Path
    flux: Path
    kyverno: Path


@dataclass(frozen=True)
class SchemaSources:
    """Where the pinned API definitions come from (all inside the Go module cache or kit)."""

    swagger: Path  # k8s.io/kubernetes: api/openapi-spec/swagger.json
    api_module: Path  # k8s.io/api at the matching staging version
    crd_files: tuple[Path, ...]  # Flux install bundle and Kyverno's CRDs
