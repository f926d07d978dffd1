"""`make bench`: the e2e's bring-up beside the seed project's CI steps, replayed on the same kit.

flux2-multi-tenancy's e2e workflow brings a cluster up with `kind create cluster`, `flux
install`, `flux create source git` and `flux create kustomization` for clusters/<env>, then a
chain of `kubectl wait`s: kyverno, kyverno-policies, tenants, the tenant's Kustomization,
podinfo. The bench replays those steps for each cluster, one cluster after the other as that
workflow runs, with the kit's kind, flux and kubectl, the kit's node image and registry mirror,
and this repo's fleet served by the local Git server (the waits get ten minutes where the seed
gives one: the bench measures, it does not judge). Then it brings the same fleet up the way the
e2e does (fleet_up: every cluster at once, bootstrapped, waited on in dependsOn order at the
pushed revisions, the NetworkPolicy enforcer started) and prints both, per cluster, with their
ratio. A benchmark, not a test: nothing asserts a time.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from harness.access import networks, registry
from harness.core import commands
from harness.core.config import E2EConfig
from harness.core.progress import format_duration, say, step
from harness.core.runs import Run
from harness.core.teardown import best_effort
from harness.e2e.clusters import KitCluster
from harness.e2e.fleet import fleet_up
from harness.e2e.gitserver import serve
from harness.e2e.handles import Timings
from harness.e2e.repos import FLEET_REPO, publish_repos
from harness.kit.build import Kit

WAIT = "10m"
# The seed's `kubectl wait` chain, in its order: (namespace, object).
SEED_WAITS = (
    ("flux-system", "kustomization/kyverno"),
    ("flux-system", "kustomization/kyverno-policies"),
    ("flux-system", "kustomization/tenants"),
    ("apps", "kustomization/dev-team"),
    ("apps", "helmrelease/podinfo"),
)


@dataclass(frozen=True)
class Result:
    seed: Timings  # the replay, every step of every cluster
    seed_per_cluster: dict[str, float]
    harness: Timings  # fleet_up's own step table
    harness_wall: float  # fleet_up, from the start to every cluster Ready
    clusters: int

    @property
    def seed_mean(self) -> float:
        return sum(self.seed_per_cluster.values()) / len(self.seed_per_cluster)

    @property
    def ratio(self) -> float:
        return (self.harness_wall / self.clusters) / self.seed_mean

    def report(self) -> str:
        lines = ["seed CI steps replayed (one cluster after the other):", self.seed.table(), ""]
        lines += [f"  {format_duration(s):>8}  seed replay, {env}" for env, s in self.seed_per_cluster.items()]
        lines += ["", "the e2e's bring-up (fleet_up, every cluster at once):", self.harness.table(), "",
                  f"  {format_duration(self.harness_wall):>8}  e2e bring-up of {self.clusters} clusters",
                  "",
                  (f"per cluster: e2e {format_duration(self.harness_wall / self.clusters)}, "
                   f"seed replay {format_duration(self.seed_mean)}; ratio {self.ratio:.2f}")]
        return "\n".join(lines)


def _replay_one(kit: Kit, reg: registry.Registry, server_url: str, env: str, run: Run, workdir: Path,
                timings: Timings) -> float:
    started = time.monotonic()
    cluster = KitCluster(run.name(env), workdir / env, kit.binary("kind"), kit.binary("kubectl"), kit.node_image,
                         run.network)
    try:
        with timings.measure(f"{env}: kind create cluster"):
            cluster.create_with_mirror(reg)
        kubeconfig = ["--kubeconfig", str(cluster.kubeconfig_path)]
        flux, kubectl = kit.binary("flux"), kit.binary("kubectl")
        steps = [
            ("flux install", [flux, "install", *kubeconfig]),
            ("flux create source git flux-system",
             [flux, "create", "source", "git", "flux-system", *kubeconfig, f"--url={server_url}", "--branch=main"]),
            (f"flux create kustomization flux-system --path=./clusters/{env}",
             [flux, "create", "kustomization", "flux-system", *kubeconfig, "--source=flux-system",
              f"--path=./clusters/{env}"]),
            *((f"kubectl -n {ns} wait {obj}",
               [kubectl, *kubeconfig, "-n", ns, "wait", obj, "--for=condition=ready", f"--timeout={WAIT}"])
              for ns, obj in SEED_WAITS),
        ]
        for name, argv in steps:
            with timings.measure(f"{env}: {name}"), step(f"{env}: {name}"):
                # `kubectl wait` fails at once on an object that does not exist yet; the seed's
                # chain only ever waits on objects the previous step's wait implies.
                commands.run(argv, timeout_s=900.0, log=workdir / env / "seed.log")
        return time.monotonic() - started  # up to podinfo Ready, as fleet_up's time is
    finally:
        best_effort(f"delete cluster {cluster.name}", cluster.delete)


def run_bench(config: E2EConfig, kit: Kit, workdir: Path) -> Result:
    seed, per_cluster = Timings(), dict[str, float]()
    run = Run.new()
    with ExitStack() as stack:
        reg = registry.start_on(stack, kit.registry_image, kit.registry_storage, run)
        server = stack.enter_context(serve(networks.gateway(run), workdir / "seed" / "git-server", kit.chart_repos))
        publish_repos(server, kit.versions)
        for env in config.environments:
            per_cluster[env] = _replay_one(kit, reg, server.repo_url(FLEET_REPO), env, run, workdir / "seed", seed)
            say(f"seed replay of {env}: {format_duration(per_cluster[env])}")
    started = time.monotonic()
    with fleet_up(config, kit, workdir / "e2e", Run.new()) as fleet:
        wall = time.monotonic() - started
        timings = fleet.timings
    return Result(seed, per_cluster, timings, wall, len(config.environments))
