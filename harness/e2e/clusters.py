"""kind clusters for the e2e: created from the kit's node image with the registry mirror.

Built on pytest-kind's KindCluster (its naming, kubeconfig handling and pykube client), with
creation and deletion going through the harness' command wrapper so they have deadlines, logs
and clear errors, and with the kit's kind and kubectl instead of downloaded ones.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pykube
from pytest_kind import KindCluster

from harness.access import networks, registry
from harness.core import commands
from harness.core.errors import CommandError, HarnessError
from harness.core.progress import step

KIND_LABEL = "io.x-k8s.kind.cluster"
CREATE_TIMEOUT_S = 600.0


class ClusterError(HarnessError):
    """A kind cluster could not be created or deleted."""


def kind_config(mirrors: Path) -> str:
    """kind config: containerd reads mirror settings from certs.d, mounted from the host."""
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


class KitCluster(KindCluster):  # type: ignore[misc]
    """A kind cluster made from the kit; `workdir` holds its kubeconfig, config and logs."""

    def __init__(self, name: str, workdir: Path, kind: str, kubectl: str, image: str, network: str) -> None:
        # Not calling KindCluster.__init__: it would create .pytest-kind/ in the working directory
        # and point at downloaded binaries. These are the attributes its methods use.
        self.name = name
        self.image = image
        self.path = workdir
        self.path.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path = workdir / "kubeconfig"
        self.kind_path = Path(kind)
        self.kubectl_path = Path(kubectl)
        self.platform = platform.system().lower()
        self.network = network

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
        self.api = pykube.HTTPClient(pykube.KubeConfig.from_file(self.kubeconfig_path))

    def create_with_mirror(self, reg: registry.Registry) -> None:
        mirrors = registry.mirror_config(reg, self.path / "certs.d")
        config = self.path / "kind.yaml"
        config.write_text(kind_config(mirrors))
        self.create(config)

    def delete(self) -> None:
        """Delete the cluster; verify its node containers are gone."""
        commands.run([str(self.kind_path), "delete", "cluster", "--name", self.name,
                      "--kubeconfig", str(self.kubeconfig_path)], timeout_s=300.0)
        remaining = node_containers(self.name)
        if remaining:
            raise ClusterError(f"{self.name}: node containers remain after delete: {remaining}")


def node_containers(cluster: str) -> list[str]:
    return commands.run(["docker", "ps", "-a", "--filter", f"label={KIND_LABEL}={cluster}",
                         "--format", "{{.Names}}"], timeout_s=30.0).stdout.split()


class ExistingCluster:
    """A cluster the harness did not create: used through its kubeconfig, never deleted."""

    def __init__(self, name: str, kubeconfig: Path) -> None:
        self.name = name
        self.kubeconfig_path = kubeconfig

    def delete(self) -> None:
        """Nothing to delete: the cluster belongs to the user."""
