"""Brings the fleet up on kind clusters: publish, create, bootstrap, and wait in dependsOn order.

Steps run phase by phase across clusters (create all, bootstrap all, then wait on each), so the
long waits of one cluster overlap with the other's progress.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import diagnostics, flux, networks, publish, yamlio
from harness.clusters import ExistingCluster, KitCluster
from harness.config import E2EConfig, Environment
from harness.errors import HarnessError
from harness.flux import Ref
from harness.gitserver import GitServer, serve, serve_detached
from harness.kit import registry
from harness.kit.build import Kit
from harness.kube import Kube
from harness.progress import format_duration, say
from harness.runs import Run
from harness.teardown import best_effort
from harness.versions import REPO_ROOT
from harness.waits import wait_for

FLEET_REPO = "platform/fleet"
TENANT_REPO = "dev-team/apps"
TENANT_REPO_DIR = "tenant-repo-example"
TENANT_ACCOUNT = "system:serviceaccount:apps:dev-team"
POLICIES_DIR = "infrastructure/kyverno-policies"


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

    env: Environment
    cluster: KitCluster | ExistingCluster
    kube: Kube
    workdir: Path

    @property
    def kubeconfig(self) -> Path:
        return Path(self.cluster.kubeconfig_path)


@dataclass
class Fleet:
    """Everything the e2e tests act on."""

    config: E2EConfig
    kit: Kit
    server: GitServer
    rewrites: list[publish.RewriteHit]
    clusters: dict[Environment, ClusterHandle]
    timings: Timings
    fleet_commit: str = ""
    tenant_commit: str = ""
    run: Run | None = None
    registry: registry.Registry | None = None
    server_pid: int | None = None  # the Git server's own process (kept environments only)

    def diagnostics_dir(self, name: str) -> Path:
        return self.config.artifacts / name


def rewrites_for(server: GitServer) -> list[publish.Rewrite]:
    """Where the repos point outside, and the local stand-ins."""
    return [
        publish.Rewrite("https://git.example.com/", f"{server.url}/git/"),
        publish.Rewrite("https://stefanprodan.github.io/podinfo", server.charts_url("podinfo")),
        publish.Rewrite("https://kyverno.github.io/kyverno/", server.charts_url("kyverno") + "/"),
    ]


def publish_repos(server: GitServer) -> tuple[str, str, list[publish.RewriteHit]]:
    rewrites = rewrites_for(server)
    tenant_commit, tenant_hits = publish.publish(
        server, TENANT_REPO, {"": REPO_ROOT / TENANT_REPO_DIR}, rewrites, "dev-team apps (from tenant-repo-example)")
    fleet_commit, fleet_hits = publish.publish(
        server, FLEET_REPO, {d: REPO_ROOT / d for d in publish.FLEET_DIRS}, rewrites, "fleet (working tree)")
    hits = [*fleet_hits, *tenant_hits]
    for hit in hits:
        say(f"rewrite: {hit}")
    return fleet_commit, tenant_commit, hits


def applied_policy_names() -> list[str]:
    """The ValidatingPolicies the fleet applies (those listed in the policies kustomization)."""
    folder = REPO_ROOT / POLICIES_DIR
    names = []
    for resource in yamlio.load((folder / "kustomization.yaml").read_text())["resources"]:
        if (folder / resource).is_file():
            names += [d["metadata"]["name"] for d in yamlio.load_all((folder / resource).read_text())
                      if d and d.get("kind") == "ValidatingPolicy"]
    return names


def wait_policies_active(kube: Kube, timeout_s: float) -> None:
    """Kyverno has compiled every policy and registered its webhook."""
    expected = applied_policy_names()

    def probe() -> tuple[bool, None, str]:
        states = {}
        for name in expected:
            policy = kube.get("policies.kyverno.io/v1", "ValidatingPolicy", name) or {}
            states[name] = ((policy.get("status") or {}).get("conditionStatus") or {}).get("ready")
        return bool(states) and all(states.values()), None, f"ready: {states}"

    wait_for("Kyverno policies to be ready", probe, timeout_s=timeout_s)


def tenant_ready_everywhere(fleet: Fleet, commit: str) -> None:
    """On every cluster, the tenant's Kustomization applied `commit` and podinfo is released."""
    for handle in fleet.clusters.values():
        flux.request_reconcile(handle.kube, Ref("GitRepository", "apps", "dev-team"))
        flux.wait_ready(handle.kube, Ref("Kustomization", "apps", "dev-team"), commit, fleet.config.timeout(240))
        flux.wait_ready(handle.kube, Ref("HelmRelease", "apps", "podinfo"), None, fleet.config.timeout(240))


def wait_fleet(fleet: Fleet, handle: ClusterHandle) -> None:
    """Every layer Ready at the revision pushed, in dependsOn order."""
    cfg, kube = fleet.config, handle.kube
    diag = str(fleet.diagnostics_dir("setup") / handle.env)
    head = publish.head(fleet.server, FLEET_REPO)
    with fleet.timings.measure(f"{handle.env}: flux-system, kyverno, policies, tenants Ready at fleet HEAD"):
        source = Ref("GitRepository", "flux-system", "flux-system")
        flux.request_reconcile(kube, source)
        flux.wait_ready(kube, source, head, cfg.timeout(120), diag)
        for name in ("flux-system", "kyverno", "kyverno-policies", "tenants"):
            ref = Ref("Kustomization", "flux-system", name)
            if kube.get(flux.API["Kustomization"], "Kustomization", name, "flux-system") is not None:
                flux.request_reconcile(kube, ref)
            flux.wait_ready(kube, ref, head, cfg.timeout(600), diag)
        flux.wait_ready(kube, Ref("HelmRelease", "flux-system", "kyverno"), None, cfg.timeout(60), diag)
    with fleet.timings.measure(f"{handle.env}: Kyverno policies active"):
        wait_policies_active(kube, cfg.timeout(180))
    with fleet.timings.measure(f"{handle.env}: tenant dev-team Ready at its commit, podinfo released"):
        flux.wait_ready(kube, Ref("GitRepository", "apps", "dev-team"), fleet.tenant_commit, cfg.timeout(180), diag)
        flux.wait_ready(kube, Ref("Kustomization", "apps", "dev-team"), fleet.tenant_commit, cfg.timeout(300), diag)
        flux.wait_ready(kube, Ref("HelmRelease", "apps", "podinfo"), None, cfg.timeout(300), diag)


@contextmanager
def fleet_up(config: E2EConfig, kit: Kit, workdir: Path, run: Run, keep: bool = False) -> Iterator[Fleet]:
    """The whole e2e environment of one run, torn down on exit.

    With `keep` (`make up`) everything stays when the block ends normally: the Git server then
    runs in a process of its own. After a failure it is torn down either way.
    """
    timings = Timings()
    with ExitStack() as stack:
        networks.ensure(run)
        stack.callback(best_effort, f"remove network {run.network}", networks.remove, run)
        with timings.measure("registry start"):
            reg = registry.start(kit.versions, run)
        stack.callback(best_effort, f"remove registry {reg.container}", registry.stop, reg)
        address = networks.gateway(run)
        daemon = None
        if keep:
            server, daemon = serve_detached(address, workdir / "git-server", kit.chart_repos)
            stack.callback(best_effort, "stop the Git server", daemon.stop)
        else:
            server = stack.enter_context(serve(address, workdir / "git-server", kit.chart_repos))
        with timings.measure("publish fleet and tenant repos"):
            fleet_commit, tenant_commit, hits = publish_repos(server)
        fleet = Fleet(config, kit, server, hits, {}, timings, fleet_commit, tenant_commit, run, reg,
                      daemon.pid if daemon else None)
        for env in config.environments:
            existing = config.existing_kubeconfig(env)
            cluster: KitCluster | ExistingCluster
            if existing is not None:
                cluster = ExistingCluster(f"existing-{env}", existing)
                (workdir / env).mkdir(parents=True, exist_ok=True)
                say(f"{env}: using the existing cluster of {existing}")
            else:
                cluster = KitCluster(run.name(env), workdir / env, kit.binary("kind"),
                                     kit.binary("kubectl"), kit.node_image, run.network)
                stack.callback(best_effort, f"delete cluster {cluster.name}", cluster.delete)
                with timings.measure(f"{env}: create kind cluster"):
                    cluster.create_with_mirror(reg)
            fleet.clusters[env] = ClusterHandle(env, cluster, Kube(Path(cluster.kubeconfig_path)), workdir / env)
        try:
            for env, handle in fleet.clusters.items():
                with timings.measure(f"{env}: flux bootstrap git --path=clusters/{env}"):
                    flux.bootstrap(kit.binary("flux"), handle.kubeconfig, server, FLEET_REPO,
                                   f"clusters/{env}", handle.workdir / "bootstrap.log")
            for handle in fleet.clusters.values():
                wait_fleet(fleet, handle)
        except Exception:
            # Collected before the clusters are deleted by the exit stack (not on Ctrl-C:
            # an interrupted run should end quickly).
            collect_diagnostics(fleet, "setup")
            raise
        say("fleet ready; step times:\n" + timings.table())
        yield fleet
        if keep:
            stack.pop_all()


def attach(config: E2EConfig, kit: Kit, server: GitServer, clusters: dict[Environment, Path],
           workdir: Path, run: Run) -> Fleet:
    """A Fleet over an environment that is already up (`make up`): nothing is created."""
    fleet = Fleet(config, kit, server, [], {}, Timings(), publish.head(server, FLEET_REPO),
                  publish.head(server, TENANT_REPO), run)
    for env in config.environments:
        if env not in clusters:
            raise HarnessError(f"the environment from `make up` has no {env} cluster "
                               f"(it has {', '.join(clusters)}); choose with --e2e-environments")
        cluster = ExistingCluster(run.name(env), clusters[env])
        fleet.clusters[env] = ClusterHandle(env, cluster, Kube(clusters[env]), workdir / env)
    for handle in fleet.clusters.values():
        wait_fleet(fleet, handle)
    return fleet


def collect_diagnostics(fleet: Fleet, name: str) -> Path:
    """Diagnostics of every cluster into artifacts/<name>/<env>; returns the folder."""
    target = fleet.diagnostics_dir(name)
    for env, handle in fleet.clusters.items():
        kind_cluster = handle.cluster.name if isinstance(handle.cluster, KitCluster) else None
        diagnostics.collect(fleet.kit.binary("kubectl"), handle.kubeconfig, target / env,
                            kind=fleet.kit.binary("kind"), cluster=kind_cluster)
    say(f"diagnostics written to {target}")
    return target
