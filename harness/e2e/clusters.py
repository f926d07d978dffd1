"""Cluster providers for the e2e, behind one Protocol: kind clusters made from the kit (created
on the run's network with the registry mirror, deleted after), and existing clusters reached
through a kubeconfig (used, never created or deleted). A third provider implements Cluster.

A kit cluster is pytest-kind's KindCluster with the kit's kind and kubectl: its creation goes
through the harness' command wrapper (deadline, log, the run's network, clear errors), its
deletion is pytest-kind's.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Protocol

import pykube
from pytest_kind import KindCluster

from harness.access import networks, registry
from harness.core import commands
from harness.core.errors import CommandError, HarnessError
from harness.core.progress import step

KIND_LABEL = "io.x-k8s.kind.cluster"
PYTEST_KIND_DIR = ".pytest-kind"  # where pytest-kind's KindCluster keeps a cluster's files
CREATE_TIMEOUT_S = 600.0


class ClusterError(HarnessError):
    """A kind cluster could not be created or deleted."""


def kind_config(mirrors: Path) -> str:
    """kind config: containerd reads mirror settings from certs.d, mounted from the host.

    The kubelet keeps kind's default of pulling one image at a time. Pulling side by side
    (serializeImagePulls off) was measured: a new node then unpacked the enforcer's and Flux's
    images at once, its kube-proxy started 22 s after its image was there, and the Flux
    controllers, up before the Service routes, reached another TLS server at the API's
    Service address and restarted in back-off (bootstraps 51 s and 59 s against 22 s to 38 s)."""
    return (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
        "containerdConfigPatches:\n"
        "  - |-\n"
        '    [plugins."io.containerd.grpc.v1.cri".registry]\n'
        '      config_path = "/etc/containerd/certs.d"\n'
        "nodes:\n"
        "  - role: control-plane\n"
        "    extraMounts:\n"
        f"      - hostPath: {mirrors}\n"
        "        containerPath: /etc/containerd/certs.d\n"
        "        readOnly: true\n"
    )


class Cluster(Protocol):
    """What the e2e needs of a cluster, whoever provides it."""

    name: str

    @property
    def kubeconfig_path(self) -> Path: ...

    def delete(self) -> None:
        """Remove what the provider created (nothing, for a cluster it did not create)."""

    def export_logs(self, target: Path) -> None:
        """Write the provider's own logs of the cluster (nodes, runtime) into target."""


class KitCluster:
    """A kind cluster made from the kit, driven through pytest-kind's KindCluster (`.kind`),
    which tests in pytest-kind's idiom use as `kind_cluster`: its `kubectl()`,
    `port_forward()`, `load_docker_image()` and pykube `api` work on it, with the kit's kind
    and kubectl (it downloads only what it is not given). `workdir` holds the kubeconfig,
    config and logs.

    Two parts of KindCluster are wrapped, for what this harness needs and it does not offer:
    its constructor makes `.pytest-kind/<name>` in the working directory (removed again: the
    cluster's files live in `workdir`), and its `create()` re-uses any cluster of the name,
    runs kind without a deadline or a log and has no hook for the run's Docker network, so
    creation goes through the harness' command runner (an existing cluster is refused, never
    taken over) and sets the pykube client `create()` would have set.
    """

    def __init__(self, name: str, workdir: Path, kind: str, kubectl: str, image: str, network: str) -> None:
        self.name = name
        self.image = image
        self.path = workdir
        self.path.mkdir(parents=True, exist_ok=True)
        self.network = network
        self.kind = _kind_cluster(name, workdir / "kubeconfig", Path(kind), Path(kubectl), image)

    @property
    def kind_path(self) -> Path:
        return Path(self.kind.kind_path)

    @property
    def kubeconfig_path(self) -> Path:
        return Path(self.kind.kubeconfig_path)

    def exists(self) -> bool:
        out = commands.run([str(self.kind_path), "get", "clusters"], timeout_s=60.0).stdout
        return self.name in out.split()

    def create(self, config_file: str | Path | None = None) -> None:
        """Create the cluster on the run's network; an existing one is never taken over."""
        if self.exists():
            raise ClusterError(f"kind cluster {self.name} already exists: this run did not create it "
                               "and will not use it (`make sweep` removes what killed runs left)")
        argv = [str(self.kind_path), "create", "cluster", "--name", self.name, "--image", self.image,
                "--kubeconfig", str(self.kubeconfig_path), "--wait", "180s"]
        if config_file:
            argv += ["--config", str(config_file)]
        log = self.path / "kind-create.log"
        with step(f"creating kind cluster {self.name} (log: {log})"):
            try:
                commands.run(argv, timeout_s=CREATE_TIMEOUT_S, log=log,
                             env={networks.KIND_NETWORK_ENV: self.network})
            except CommandError as exc:
                raise ClusterError(f"kind could not create {self.name} (log: {log})\n{exc}") from exc
        self.kind.api = pykube.HTTPClient(pykube.KubeConfig.from_file(self.kubeconfig_path))

    def create_with_mirror(self, reg: registry.Registry) -> None:
        mirrors = registry.mirror_config(reg, self.path / "certs.d")
        config = self.path / "kind.yaml"
        config.write_text(kind_config(mirrors))
        self.create(config)

    def delete(self) -> None:
        """Delete the cluster (pytest-kind's `kind delete cluster`); verify its node containers
        are gone."""
        try:
            self.kind.delete()
        except subprocess.CalledProcessError as exc:
            raise ClusterError(f"kind could not delete {self.name} (exit {exc.returncode})") from None
        remaining = node_containers(self.name)
        if remaining:
            raise ClusterError(f"{self.name}: node containers remain after delete: {remaining}")

    def export_logs(self, target: Path) -> None:
        commands.run([str(self.kind_path), "export", "logs", str(target), "--name", self.name], timeout_s=300.0)


def _kind_cluster(name: str, kubeconfig: Path, kind: Path, kubectl: Path, image: str) -> KindCluster:
    """pytest-kind's KindCluster with the kit's binaries, without the `.pytest-kind/<name>`
    folder its constructor leaves in the working directory."""
    made = Path(PYTEST_KIND_DIR) / name
    existed = made.exists()
    cluster = KindCluster(name, kubeconfig, image=image, kind_path=kind, kubectl_path=kubectl)
    if not existed:
        made.rmdir()
        with contextlib.suppress(OSError):  # another cluster's folder may still be there
            Path(PYTEST_KIND_DIR).rmdir()
    cluster.path = kubeconfig.parent
    return cluster


def node_containers(cluster: str) -> list[str]:
    return commands.run(["docker", "ps", "-a", "--filter", f"label={KIND_LABEL}={cluster}",
                         "--format", "{{.Names}}"], timeout_s=30.0).stdout.split()


class ExistingCluster:
    """A cluster the harness did not create: used through its kubeconfig, never deleted."""

    def __init__(self, name: str, kubeconfig: Path) -> None:
        self.name = name
        self._kubeconfig = kubeconfig

    @property
    def kubeconfig_path(self) -> Path:
        return self._kubeconfig

    def delete(self) -> None:
        """Nothing to delete: the cluster belongs to the user."""

    def export_logs(self, target: Path) -> None:
        """The harness knows no provider-level logs of a cluster it did not create."""
        target.mkdir(parents=True, exist_ok=True)
        (target / "README.txt").write_text(f"{self.name} was not created by the harness: no node logs\n")
