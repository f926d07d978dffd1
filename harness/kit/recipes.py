"""What the kit compiles from Go modules, at the versions pinned in versions.yaml."""

from __future__ import annotations

from harness.core.versions import Versions
from harness.kit.gomod import GoBuild

# Kubernetes' build stamps these; without them binaries say v0.0.0-master and kubeadm, Helm's
# kubeVersion checks and `flux check` misbehave.
_K8S_VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
_K8S_COMMANDS = (
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
)
# Staging modules Kubernetes requires at v0.0.0 and takes from its own tree.
_K8S_STAGING = (
    "api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go",
    "cloud-provider", "cluster-bootstrap", "code-generator", "component-base",
    "component-helpers", "controller-manager", "cri-api", "cri-client", "csi-translation-lib",
    "dynamic-resource-allocation", "endpointslice", "externaljwt", "kms", "kube-aggregator",
    "kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl", "kubelet",
    "metrics", "mount-utils", "pod-security-admission", "sample-apiserver", "sample-cli-plugin",
    "sample-controller",
)


def kubernetes(v: Versions, commands: tuple[str, ...] = _K8S_COMMANDS) -> GoBuild:
    """Kubernetes' commands, all seven (node image, control-plane images) or only kubectl."""
    major, minor = v.kubernetes.removeprefix("v").split(".")[:2]
    stamps = {
        "gitVersion": v.kubernetes,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "gitCommit": "0000000000000000000000000000000000000000",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    return GoBuild(
        name="kubernetes" if commands == _K8S_COMMANDS else "-".join(commands),
        module="k8s.io/kubernetes",
        version=v.kubernetes,
        packages=tuple(f"k8s.io/kubernetes/cmd/{c}" for c in commands),
        ldflags=("-s", "-w")
        + tuple(f"-X {pkg}.{k}={val}" for pkg in _K8S_VERSION_PACKAGES for k, val in stamps.items()),
        local_replace_versions=tuple(
            (f"k8s.io/{name}", v.kubernetes_staging) for name in _K8S_STAGING
        ),
        binaries=commands,
    )


def kind(v: Versions) -> GoBuild:
    return GoBuild(
        name="kind", module="sigs.k8s.io/kind", version=v.kind,
        packages=("sigs.k8s.io/kind",), ldflags=("-s", "-w"), binaries=("kind",),
    )


def kustomize(v: Versions) -> GoBuild:
    return GoBuild(
        name="kustomize",
        module="sigs.k8s.io/kustomize/kustomize/v5",
        version=v.kustomize,
        packages=("sigs.k8s.io/kustomize/kustomize/v5",),
        ldflags=("-s", "-w", f"-X sigs.k8s.io/kustomize/api/provenance.version={v.kustomize}"),
        binaries=("kustomize",),
    )


KYVERNO_COMMANDS = (
    "kyverno", "kyverno-init", "background-controller", "cleanup-controller", "reports-controller",
    "readiness-checker",
)


def kyverno(v: Versions, cli_only: bool = False) -> GoBuild:
    """Kyverno's controllers and its CLI in one build, so shared packages compile once; or only
    the CLI, where the controllers' images come from upstream."""
    commands = () if cli_only else KYVERNO_COMMANDS
    return GoBuild(
        name="kyverno-cli" if cli_only else "kyverno",
        module="github.com/kyverno/kyverno",
        version=v.kyverno,
        packages=tuple(f"github.com/kyverno/kyverno/cmd/{c}" for c in commands)
        + ("github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno",),
        ldflags=("-s", "-w", f"-X github.com/kyverno/kyverno/pkg/version.BuildVersion={v.kyverno}"),
        binaries=commands + ("kubectl-kyverno",),
    )


def flux_controller(name: str, version: str) -> GoBuild:
    return GoBuild(
        name=name,
        module=f"github.com/fluxcd/{name}",
        version=version,
        packages=(f"github.com/fluxcd/{name}",),
        ldflags=("-s", "-w"),
        binaries=(name,),
    )


def podinfo(v: Versions) -> GoBuild:
    module = "github.com/stefanprodan/podinfo"
    return GoBuild(
        name="podinfo",
        module=module,
        version=v.podinfo_module,
        packages=(f"{module}/cmd/podinfo", f"{module}/cmd/podcli"),
        ldflags=("-s", "-w", f"-X {module}/pkg/version.REVISION=pinned-{v.podinfo}"),
        binaries=("podinfo", "podcli"),
    )


def containerd(version: str) -> GoBuild:
    module = "github.com/containerd/containerd/v2"
    return GoBuild(
        name="containerd",
        module=module,
        version=version,
        packages=tuple(f"{module}/cmd/{c}" for c in ("containerd", "ctr", "containerd-shim-runc-v2")),
        tags=("no_btrfs", "no_devmapper", "no_zfs", "no_aufs"),
        ldflags=("-s", "-w", f"-X {module}/version.Version={version}"),
        binaries=("containerd", "ctr", "containerd-shim-runc-v2"),
    )


def etcd(version: str) -> GoBuild:
    return GoBuild(
        name="etcd", module="go.etcd.io/etcd/server/v3", version=version,
        packages=("go.etcd.io/etcd/server/v3",), ldflags=("-s", "-w"), binaries=("server",),
    )


def coredns(version: str) -> GoBuild:
    return GoBuild(
        name="coredns", module="github.com/coredns/coredns", version=version,
        packages=("github.com/coredns/coredns",), ldflags=("-s", "-w"), binaries=("coredns",),
    )


def crictl(version: str) -> GoBuild:
    return GoBuild(
        name="crictl", module="sigs.k8s.io/cri-tools", version=version,
        packages=("sigs.k8s.io/cri-tools/cmd/crictl",),
        ldflags=("-s", "-w", f"-X sigs.k8s.io/cri-tools/pkg/version.Version={version}"),
        binaries=("crictl",),
    )


def actionlint(v: Versions) -> GoBuild:
    module = "github.com/rhysd/actionlint"
    return GoBuild(
        name="actionlint", module=module, version=v.actionlint,
        packages=(f"{module}/cmd/actionlint",),
        ldflags=("-s", "-w", f"-X {module}.version={v.actionlint}"), binaries=("actionlint",),
    )


def kube_router(v: Versions) -> GoBuild:
    """The NetworkPolicy enforcer. Upstream's image also ships the gobgp CLI, a BGP debugging
    client: the kit runs kube-router's firewall only (no BGP), so it is left out."""
    module = "github.com/cloudnativelabs/kube-router/v2"
    return GoBuild(
        name="kube-router", module=module, version=v.kube_router,
        packages=(f"{module}/cmd/kube-router",),
        ldflags=("-s", "-w", f"-X {module}/pkg/version.Version={v.kube_router}",
                 f"-X {module}/pkg/version.BuildDate=1970-01-01T00:00:00Z"),
        binaries=("kube-router",),
    )
