"""What the e2e tests act on: the fleet of a run, each environment's cluster, step timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.access import registry
from harness.access.kube import Kube
from harness.core.config import E2EConfig
from harness.core.progress import format_duration
from harness.core.topology import Tenant, Topology
from harness.e2e import engines, publish
from harness.e2e.clusters import Cluster
from harness.e2e.gitserver import GitServer
from harness.kit.build import Kit


@dataclass
class Timings:
    """Wall time of each step, for the report and the closing summary."""

    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((name, time.monotonic() - started))

    def table(self) -> str:
        return "\n".join(f"  {format_duration(s):>8}  {name}" for name, s in self.steps)


@dataclass
class ClusterHandle:
    """One environment's cluster with Flux bootstrapped."""

    env: str
    cluster: Cluster
    kube: Kube
    workdir: Path

    @property
    def kubeconfig(self) -> Path:
        return Path(self.cluster.kubeconfig_path)

    @property
    def node(self) -> str:
        """The container of the cluster's one node, as kind names it (a test that acts on the
        node itself checks that it is a container of this host)."""
        return f"{self.cluster.name}-control-plane"


@dataclass
class Fleet:
    """Everything the e2e tests act on."""

    config: E2EConfig
    kit: Kit
    server: GitServer
    rewrites: list[publish.RewriteHit]
    clusters: dict[str, ClusterHandle]
    timings: Timings
    topology: Topology
    fleet_commit: str = ""
    tenant_commits: dict[str, str] = field(default_factory=dict)  # by tenant name
    registry: registry.Registry | None = None
    server_pid: int | None = None  # the Git server's own process (kept environments only)
    # By environment, the commits its `flux bootstrap` reported (none: it found the published
    # fleet up to date); only for environments this run bootstrapped.
    bootstrap_commits: dict[str, list[str]] = field(default_factory=dict)

    @property
    def engine(self) -> engines.PolicyEngine:
        """What enforces the tenant policies of the fleet this run serves."""
        return engines.engine_of(self.topology.root)

    @property
    def tenants(self) -> tuple[Tenant, ...]:
        """The tenants whose repositories this fleet serves (what the tests act as)."""
        return self.topology.served

    def diagnostics_dir(self, name: str) -> Path:
        return self.config.artifacts / name
