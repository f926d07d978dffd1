"""Brings the fleet up on kind clusters: publish, create, bootstrap, and wait in dependsOn order.

Steps run phase by phase across clusters (create all, bootstrap all, then wait on each), so the
long waits of one cluster overlap with the other's progress.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from harness.access import networks, registry
from harness.access.kube import Kube
from harness.core.config import E2EConfig
from harness.core.errors import HarnessError
from harness.core.progress import say
from harness.core.repo import Environment
from harness.core.runs import Run
from harness.core.teardown import best_effort
from harness.e2e import diagnostics, enforcer, flux, publish
from harness.e2e.clusters import Cluster, ExistingCluster, KitCluster
from harness.e2e.converge import wait_fleet
from harness.e2e.gitserver import GitServer, serve, serve_detached
from harness.e2e.handles import ClusterHandle, Fleet, Timings
from harness.e2e.repos import FLEET_REPO, TENANT_REPO, WORKING_TREE, RepoSource, publish_repos
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
            fleet_commit, tenant_commit, hits = publish_repos(server, kit.versions, source)
        fleet = Fleet(config, kit, server, hits, {}, timings, fleet_commit, tenant_commit,
                      registry=reg, server_pid=daemon.pid if daemon else None)
        for env in config.environments:
            existing = config.existing_kubeconfig(env)
            cluster: Cluster
            if existing is not None:
                cluster = ExistingCluster(f"existing-{env}", existing)
                (workdir / env).mkdir(parents=True, exist_ok=True)
                say(f"{env}: using the existing cluster of {existing}")
            else:
                kind_cluster = KitCluster(run.name(env), workdir / env, kit.binary("kind"), kit.node_image,
                                          run.network)
                cluster = kind_cluster
                stack.callback(best_effort, f"delete cluster {cluster.name}", cluster.delete)
                with timings.measure(f"{env}: create kind cluster"):
                    kind_cluster.create_with_mirror(reg)
            fleet.clusters[env] = ClusterHandle(env, cluster, Kube(Path(cluster.kubeconfig_path)), workdir / env)
        try:
            # Each kind cluster's NetworkPolicy enforcer is created before Flux; it starts while
            # Flux bootstraps and runs before any tenant pod does (it filters pods that exist
            # when it starts as well as new ones).
            created = {env: h for env, h in fleet.clusters.items() if isinstance(h.cluster, KitCluster)}
            for handle in created.values():
                enforcer.start(handle.kube, kit.versions)
            for env, handle in fleet.clusters.items():
                with timings.measure(f"{env}: flux bootstrap git --path=clusters/{env}"):
                    flux.bootstrap(kit.binary("flux"), handle.kubeconfig, server, FLEET_REPO,
                                   f"clusters/{env}", handle.workdir / "bootstrap.log")
            for env, handle in created.items():
                with timings.measure(f"{env}: NetworkPolicy enforcer running"):
                    enforcer.wait_running(handle.kube, kit.versions, handle.cluster.name)
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
                  publish.head(server, TENANT_REPO))
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
        diagnostics.collect(fleet.kit.binary("kubectl"), handle.cluster, target / env)
    say(f"diagnostics written to {target}")
    return target
