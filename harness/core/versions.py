"""Reads versions.yaml, the single file that pins every version the project uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.core import yamlio
from harness.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]  # harness/core/versions.py -> the checkout
VERSIONS_FILE = REPO_ROOT / "versions.yaml"
# The set `make upgrade` starts from (same format; see its header for how it was chosen).
PREVIOUS_VERSIONS_FILE = REPO_ROOT / "versions.previous.yaml"


@dataclass(frozen=True)
class FluxVersions:
    cli: str
    source_controller: str
    kustomize_controller: str
    helm_controller: str
    notification_controller: str

    def controllers(self) -> dict[str, str]:
        """Controller name (as in the Flux manifests) to its pinned version."""
        return {
            "source-controller": self.source_controller,
            "kustomize-controller": self.kustomize_controller,
            "helm-controller": self.helm_controller,
            "notification-controller": self.notification_controller,
        }


@dataclass(frozen=True)
class NodeVersions:
    """What runs inside the kind node image."""

    containerd: str
    crictl: str
    etcd: str
    coredns: str
    pause: str
    debian: str


@dataclass(frozen=True)
class Versions:
    kubernetes: str
    kind: str
    node: NodeVersions
    kube_router: str
    kustomize: str
    flux: FluxVersions
    kyverno: str
    kyverno_chart: str
    podinfo: str
    podinfo_module: str
    actionlint: str
    renovate: str
    node_runtime: str
    # module@version -> h1: hash, for modules the Go checksum database does not know.
    checksums: tuple[tuple[str, str], ...] = ()
    source: Path = VERSIONS_FILE  # the file this set was read from

    @property
    def name(self) -> str:
        """How reports name this set: its file, relative to the checkout when inside it."""
        try:
            return self.source.resolve().relative_to(REPO_ROOT).as_posix()
        except ValueError:
            return str(self.source)

    def checksum(self, module: str, version: str) -> str:
        """The pinned hash of module@version, or "" when the checksum database vouches for it."""
        return dict(self.checksums).get(f"{module}@{version}", "")

    @property
    def kubernetes_staging(self) -> str:
        """The k8s.io/* staging module version matching the Kubernetes release (v1.34.4 -> v0.34.4)."""
        return "v0." + self.kubernetes.removeprefix("v").split(".", 1)[1]

    @property
    def kubernetes_minor(self) -> str:
        """The Kubernetes minor line, as Pod Security Admission's version labels name it (v1.34)."""
        return "v" + ".".join(self.kubernetes.removeprefix("v").split(".")[:2])


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data or data[key] in (None, ""):
        raise ConfigError(f"{where}: missing key {key!r}; add it to {VERSIONS_FILE.name}")
    return data[key]


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = _require(data, key, where)
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: {key!r} must be a quoted string, got {value!r}; "
            f"quote it in {VERSIONS_FILE.name}"
        )
    return value


def _checksums(data: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    sums = data.get("checksums") or {}
    if not isinstance(sums, dict) or not all(
            isinstance(k, str) and "@" in k and isinstance(v, str) and v.startswith("h1:")
            for k, v in sums.items()):
        raise ConfigError(f"{where}: 'checksums' must map module@version to an h1: hash, "
                          "as `go mod download -json module@version` prints in Sum")
    return tuple(sorted(sums.items()))


def load_versions(path: Path = VERSIONS_FILE) -> Versions:
    """Parse and validate a version-set file (versions.yaml, or another set of the same format)."""
    if not path.is_file():
        raise ConfigError(f"version set {path} does not exist; name a file in the format of "
                          f"{VERSIONS_FILE.name}, e.g. {PREVIOUS_VERSIONS_FILE.name}")
    try:
        data = yamlio.load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read pinned versions from {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    where = path.name
    flux = _require(data, "flux", where)
    kyverno = _require(data, "kyverno", where)
    podinfo = _require(data, "podinfo", where)
    node = _require(data, "node", where)
    ci = _require(data, "ci", where)
    return Versions(
        kubernetes=_text(data, "kubernetes", where),
        kind=_text(data, "kind", where),
        node=NodeVersions(**{
            key: _text(node, key, f"{where}: node")
            for key in ("containerd", "crictl", "etcd", "coredns", "pause", "debian")
        }),
        kube_router=_text(data, "kube-router", where),
        kustomize=_text(data, "kustomize", where),
        flux=FluxVersions(
            cli=_text(flux, "cli", f"{where}: flux"),
            source_controller=_text(flux, "source-controller", f"{where}: flux"),
            kustomize_controller=_text(flux, "kustomize-controller", f"{where}: flux"),
            helm_controller=_text(flux, "helm-controller", f"{where}: flux"),
            notification_controller=_text(flux, "notification-controller", f"{where}: flux"),
        ),
        kyverno=_text(kyverno, "app", f"{where}: kyverno"),
        kyverno_chart=_text(kyverno, "chart", f"{where}: kyverno"),
        podinfo=_text(podinfo, "app", f"{where}: podinfo"),
        podinfo_module=_text(podinfo, "module", f"{where}: podinfo"),
        actionlint=_text(ci, "actionlint", f"{where}: ci"),
        renovate=_text(ci, "renovate", f"{where}: ci"),
        node_runtime=_text(ci, "node", f"{where}: ci"),
        checksums=_checksums(data, where),
        source=path,
    )
