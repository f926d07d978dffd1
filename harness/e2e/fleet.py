"""Brings the fleet up on kind clusters: publish, create, bootstrap, and wait in dependsOn order.

Each cluster is brought up in a thread of its own (create, enforcer, bootstrap, waits), all at
once: most of a bring-up is waiting on controllers, which two clusters do side by side on two
cores. The bootstraps run at once too, which takes the fleet published with what they write
(`flux bootstrap` waits until its GitRepository and Kustomization report exactly the commit it
last saw; another cluster's push meanwhile would leave it waiting out its timeout): each finds
its manifests up to date and pushes nothing. The first one runs alone until it has found that;
should it push instead, the others take turns, and the fleet records the commits it made
(`test_reconciliation` fails on them). A cluster's own waits start once every bootstrap is past
its last push (they wait for the fleet's final HEAD).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from harness.access import networks, registry
from harness.access.kube import Kube
from harness.core import topology
from harness.core.config import E2EConfig
from harness.core.errors import HarnessError
from harness.core.parallel import run_together
from harness.core.progress import say
from harness.core.runs import Run
from harness.core.teardown import best_effort
from harness.core.versions import REPO_ROOT
from harness.core.waits import wait_for
from harness.e2e import diagnostics, enforcer, flux, publish
from harness.e2e.clusters import Cluster, ExistingCluster, KitCluster
from harness.e2e.converge import wait_fleet
from harness.e2e.gitserver import GitServer, serve, serve_detached
from harness.e2e.handles import ClusterHandle, Fleet, Timings
from harness.e2e.repos import FLEET_REPO, WORKING_TREE, RepoSource, publish_repos
from harness.kit.build import Kit


@contextmanager
def fleet_up(config: E2EConfig, kit: Kit, workdir: Path, run: Run, keep: bool = False,
             source: RepoSource = WORKING_TREE) -> Iterator[Fleet]:
    """The whole e2e environment of one run, torn down on exit.

    With `keep` (`make up`) everything stays when the block ends normally: the Git server then
    runs in a process of its own. After a failure it is torn down either way.
    """
    timings = Timings()
    with ExitStack() as stack:
        with timings.measure("registry start"):
            reg = registry.start_on(stack, kit.registry_image, kit.registry_storage, run)
        address = networks.gateway(run)
        daemon = None
        if keep:
            server, daemon = serve_detached(address, workdir / "git-server", kit.chart_repos)
            stack.callback(best_effort, "stop the Git server", daemon.stop)
        else:
            server = stack.enter_context(serve(address, workdir / "git-server", kit.chart_repos))
        with timings.measure("publish fleet and tenant repos"):
            written = flux.bootstrap_files(kit.binary("flux"), server.repo_url(FLEET_REPO),
                                           [_cluster_path(env) for env in config.environments])
            fleet_commit, tenant_commits, hits = publish_repos(server, kit.versions, source, written)
        fleet = Fleet(config, kit, server, hits, {}, timings, topology.read(source.root), fleet_commit, tenant_commits,
                      registry=reg, server_pid=daemon.pid if daemon else None)
        made: list[KitCluster] = []
        stack.callback(delete_clusters, made)
        for env in config.environments:
            cluster = provide(config, kit, run, env, workdir / env)
            if isinstance(cluster, KitCluster):
                made.append(cluster)
            fleet.clusters[env] = ClusterHandle(env, cluster, Kube(Path(cluster.kubeconfig_path)), workdir / env)
        turns = BootstrapTurns(list(fleet.clusters))
        try:
            run_together({env: functools.partial(_bring_up, fleet, handle, reg, turns)
                          for env, handle in fleet.clusters.items()})
            fleet.bootstrap_commits.update(turns.commits)
        except Exception:
            # Collected before the clusters are deleted by the exit stack (not on Ctrl-C:
            # an interrupted run should end quickly).
            collect_diagnostics(fleet, "setup")
            raise
        say("fleet ready; step times:\n" + timings.table())
        yield fleet
        if keep:
            stack.pop_all()


def delete_clusters(clusters: list[KitCluster]) -> None:
    """The run's kind clusters deleted at once, each in a thread of its own (a deletion mostly
    waits on Docker stopping the node); a failure is said and the others still go."""
    run_together({cluster.name: functools.partial(best_effort, f"delete cluster {cluster.name}", cluster.delete)
                  for cluster in clusters})


def _cluster_path(env: str) -> str:
    """The fleet folder a cluster's bootstrap syncs."""
    return f"clusters/{env}"


class BootstrapTurns:
    """Every bootstrap at once once the first has pushed nothing; one at a time otherwise. And
    the moment every one has pushed its last commit."""

    def __init__(self, envs: list[str]) -> None:
        self.first = envs[0]
        self.turn = threading.Lock()
        self.pushed = {env: threading.Event() for env in envs}
        self.commits: dict[str, list[str]] = {}  # by env: the commits its bootstrap reported

    def record(self, env: str, commits: list[str]) -> None:
        """`flux.bootstrap`'s `pushed` callback of `env`'s bootstrap."""
        self.commits[env] = list(commits)
        self.pushed[env].set()

    def release(self, env: str) -> None:
        """`env` pushes nothing more (its bring-up ended before or after its bootstrap): no other
        cluster waits on it any longer."""
        self.pushed[env].set()

    @contextmanager
    def turn_of(self, env: str, timeout_s: float) -> Iterator[None]:
        """The first cluster's bootstrap runs at once, holding the turn; each other one once the
        first is past its last push: then right away if the first pushed nothing, else in turn."""
        if env != self.first:
            if not self.pushed[self.first].wait(timeout_s):
                raise HarnessError(f"{env}: the bootstrap of {self.first} did not get past its pushes within "
                                   f"{timeout_s:.0f} s")
            if not self.commits.get(self.first):
                yield
                return
        with self.turn:
            yield

    def wait_all_pushed(self, timeout_s: float) -> None:
        def probe() -> tuple[bool, None, str]:
            pending = [env for env, event in self.pushed.items() if not event.is_set()]
            return not pending, None, f"still to push: {', '.join(pending)}"

        wait_for("every cluster's bootstrap to push its last commit", probe, timeout_s, interval_s=0.5)


def _bring_up(fleet: Fleet, handle: ClusterHandle, reg: registry.Registry, turns: BootstrapTurns) -> None:
    """One cluster from nothing to the fleet Ready on it (its thread in fleet_up)."""
    kit, env, timings = fleet.kit, handle.env, fleet.timings
    timeout_s = fleet.config.timeout(flux.BOOTSTRAP_TIMEOUT_S * len(turns.pushed))
    try:
        if isinstance(handle.cluster, KitCluster):
            with timings.measure(f"{env}: create kind cluster"):
                handle.cluster.create_with_mirror(reg)
            # The NetworkPolicy enforcer is created before Flux; it starts while Flux bootstraps and
            # runs before any tenant pod does (it filters pods that exist when it starts as well as
            # new ones).
            enforcer.start(handle.kube, kit.versions)
        with turns.turn_of(env, timeout_s), timings.measure(f"{env}: flux bootstrap git --path={_cluster_path(env)}"):
            flux.bootstrap(kit.binary("flux"), handle.kubeconfig, fleet.server, FLEET_REPO, _cluster_path(env),
                           handle.workdir / "bootstrap.log", pushed=functools.partial(turns.record, env))
    finally:
        turns.release(env)
    if isinstance(handle.cluster, KitCluster):
        with timings.measure(f"{env}: NetworkPolicy enforcer running"):
            enforcer.wait_running(handle.kube, kit.versions, handle.cluster.name)
    turns.wait_all_pushed(timeout_s)
    wait_fleet(fleet, handle)


def provide(config: E2EConfig, kit: Kit, run: Run, env: str, workdir: Path) -> Cluster:
    """The provider of one environment's cluster, from the configuration: an existing cluster
    where --e2e-kubeconfigs names one for `env`, else a new kind cluster from the kit (created
    by the bring-up, deleted with the run). A further provider plugs in here."""
    existing = config.existing_kubeconfig(env)
    if existing is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        say(f"{env}: using the existing cluster of {existing}")
        return ExistingCluster(f"existing-{env}", existing)
    return _kind_cluster(kit, run, env, workdir)


def _kind_cluster(kit: Kit, run: Run, env: str, workdir: Path) -> KitCluster:
    """The run's kind cluster of `env`, from the kit (nothing is created yet)."""
    return KitCluster(run.name(env), workdir, kit.binary("kind"), kit.binary("kubectl"), kit.node_image, run.network)


def kept_cluster(kit: Kit, run: Run, env: str, kubeconfig: Path, workdir: Path) -> Cluster:
    """A cluster `make up` created and kept: the kind cluster it is (so its node logs are
    exported like any run's), or, when its kind cluster is no longer there under its name or
    kubeconfig, an existing cluster reached through the kubeconfig alone. Attaching deletes
    nothing either way (`make down` does)."""
    cluster = _kind_cluster(kit, run, env, workdir)
    if cluster.kubeconfig_path.resolve() == kubeconfig.resolve() and cluster.exists():
        return cluster
    say(f"{env}: kind cluster {cluster.name} of `make up` not found; using {kubeconfig} as an existing cluster")
    return ExistingCluster(run.name(env), kubeconfig)


def attach(config: E2EConfig, kit: Kit, server: GitServer, clusters: dict[str, Path],
           workdir: Path, run: Run) -> Fleet:
    """A Fleet over an environment that is already up (`make up`): nothing is created."""
    tree = topology.read(REPO_ROOT)
    fleet = Fleet(config, kit, server, [], {}, Timings(), tree, publish.head(server, FLEET_REPO),
                  {t.name: publish.head(server, t.repo) for t in tree.served_tenants()})
    for env in config.environments:
        if env not in clusters:
            raise HarnessError(f"the environment from `make up` has no {env} cluster "
                               f"(it has {', '.join(clusters)}); choose with --e2e-environments")
        fleet.clusters[env] = ClusterHandle(env, kept_cluster(kit, run, env, clusters[env], workdir / env),
                                            Kube(clusters[env]), workdir / env)
    run_together({env: functools.partial(wait_fleet, fleet, handle) for env, handle in fleet.clusters.items()})
    return fleet


def collect_diagnostics(fleet: Fleet, name: str, node_logs: bool = True) -> Path:
    """Diagnostics of every cluster into artifacts/<name>/<env>; returns the folder. Without
    `node_logs`, the nodes' logs are left to export_node_logs, once per session."""
    target = fleet.diagnostics_dir(name)
    for env, handle in fleet.clusters.items():
        diagnostics.collect(fleet.kit.binary("kubectl"), handle.cluster, target / env, node_logs)
    say(f"diagnostics written to {target}")
    return target


NODE_LOGS = "node-logs"


def export_node_logs(fleet: Fleet) -> Path:
    """Every cluster's node logs into artifacts/node-logs/<env>, once (they span the session,
    so one export after the last test explains every failure of it); returns the folder."""
    target = fleet.diagnostics_dir(NODE_LOGS)
    problems = []
    for env, handle in fleet.clusters.items():
        problems += diagnostics.export_node_logs(handle.cluster, target / env)
    say(f"node logs written to {target}" + ("; could not export: " + "; ".join(problems) if problems else ""))
    return target
