"""`make up` / `make down`: the whole e2e environment left running to work in, and its record.

`make up` brings a run's environment up (registry, Git server in its own process, clusters,
Flux bootstrapped, tenant reconciled) and writes a record to the kit cache; `make e2e UP=1`
attaches to it; `make down` removes it. One environment per checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.access import networks, registry
from harness.core import locks, topology
from harness.core.config import E2EConfig
from harness.core.errors import HarnessError
from harness.core.progress import say
from harness.core.runs import Run, is_alive, process_start
from harness.core.versions import REPO_ROOT
from harness.e2e.fleet import attach, fleet_up
from harness.e2e.gitserver import USERNAME, GitServer
from harness.e2e.handles import Fleet
from harness.e2e.repos import FLEET_REPO, WORKING_TREE, RepoSource
from harness.e2e.sweep import Found, remove
from harness.kit.build import Kit
from harness.kit.cache import cache_root

# Bringing up two clusters takes minutes; a waiting run gives another run's e2e this long.
E2E_LOCK_TIMEOUT_S = 3 * 3600.0
# Clusters this host runs at once, one lock slot each: one e2e's two clusters, or two runs of
# one cluster each (make test's fresh and native installs). Four clusters on two cores push
# every run past its deadlines.
CLUSTER_SLOTS = 2
E2E_LOCK_WHY = (f"this host runs {CLUSTER_SLOTS} clusters at a time (an e2e of two clusters, or two of one "
                "each); more on the same cores would push every run past its deadlines")


def e2e_slots(count: int, what: str) -> AbstractContextManager[None]:
    """Hold a cluster slot for each of `count` clusters while doing `what`."""
    return locks.hold_slots(cache_root() / "locks", "e2e", count, CLUSTER_SLOTS, what, E2E_LOCK_WHY,
                            timeout_s=E2E_LOCK_TIMEOUT_S)


class UpEnvironmentError(HarnessError):
    """No environment to attach to or remove, or one already up."""


@dataclass(frozen=True)
class UpRecord:
    """What `make up` left running, and how to reach it."""

    run: str
    checkout: str
    workdir: str
    network: str
    registry_container: str
    registry_endpoint: str
    server_url: str
    server_token: str
    server_pid: int
    server_pid_start: str
    kubeconfigs: dict[str, str]

    @property
    def live(self) -> bool:
        return is_alive(self.server_pid, self.server_pid_start)

    def server(self) -> GitServer:
        root = Path(self.workdir) / "git-server"
        return GitServer(self.server_url, USERNAME, self.server_token, root / "git", root / "charts")

    def how_to_reach(self) -> str:
        lines = [f"environment {self.run} is up (make down removes it; make e2e UP=1 tests it):"]
        for env, kubeconfig in self.kubeconfigs.items():
            lines.append(f"  {env}: kubectl --kubeconfig {kubeconfig} get kustomizations -A")
        server = self.server()
        auth = server.url.replace("http://", f"http://{USERNAME}:{self.server_token}@")
        lines += [
            f"  fleet repo:  git clone {auth}/git/{FLEET_REPO}.git   (push allowed with these credentials)",
            *(f"  {t.name} repo: git clone {auth}/git/{t.repo}.git" for t in topology.read(REPO_ROOT).served),
            f"  charts:      {server.url}/charts/",
            f"  registry:    {self.registry_endpoint} (container {self.registry_container})",
            f"  network:     {self.network}",
            f"  Git server log: {self.workdir}/git-server/server.log",
        ]
        return "\n".join(lines)


def up_root() -> Path:
    """Where `make up` keeps each environment's folder."""
    return cache_root() / "up"


def records_dir() -> Path:
    return cache_root() / "environments"


def _record_path(run: str) -> Path:
    return records_dir() / f"{run}.json"


def all_records() -> list[UpRecord]:
    folder = records_dir()
    if not folder.is_dir():
        return []
    return [UpRecord(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def record_of_checkout(checkout: Path = REPO_ROOT) -> UpRecord | None:
    return next((r for r in all_records() if r.checkout == str(checkout)), None)


def live_runs() -> set[str]:
    """Run ids of environments whose Git server still runs (sweep leaves them alone)."""
    return {r.run for r in all_records() if r.live}


def up(config: E2EConfig, kit: Kit) -> UpRecord:
    """Bring the environment up and leave it running; the record says how to reach it."""
    existing = record_of_checkout()
    if existing is not None:
        state = "is up" if existing.live else "was left half-running (its Git server is gone)"
        raise UpEnvironmentError(f"environment {existing.run} of this checkout {state}: "
                                "run `make down` first")
    run = Run.new()
    workdir = up_root() / run.id
    with (e2e_slots(len(config.environments), f"make up (run {run.id})"),
          fleet_up(config, kit, workdir, run, keep=True) as fleet):
        record = _record(fleet, run, workdir)
    path = _record_path(run.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record), indent=2) + "\n")
    return record


def _record(fleet: Fleet, run: Run, workdir: Path) -> UpRecord:
    reg, pid = fleet.registry, fleet.server_pid
    if reg is None or pid is None:
        raise UpEnvironmentError("internal: the kept environment has no registry or Git server process")
    return UpRecord(
        run=run.id, checkout=str(REPO_ROOT), workdir=str(workdir), network=run.network,
        registry_container=reg.container, registry_endpoint=reg.host_endpoint,
        server_url=fleet.server.url, server_token=fleet.server.token,
        server_pid=pid, server_pid_start=process_start(pid),
        kubeconfigs={env: str(h.kubeconfig) for env, h in fleet.clusters.items()},
    )


def down(kind_binary: str) -> list[str]:
    """Remove this checkout's environment: clusters, Git server, registry, network, its folder
    (the Git server's repositories, kubeconfigs and logs), record.

    Every step is tried; the folder and the record go only when all succeeded, so `make down`
    can be rerun.
    """
    record = record_of_checkout()
    if record is None:
        raise UpEnvironmentError("no environment from `make up` in this checkout: nothing to remove")
    run = Run(record.run, 0, "")
    steps: list[tuple[str, Callable[[], object]]] = [
        *((f"kind cluster {run.name(env)}",
           lambda env=env: remove(Found("kind cluster", run.name(env), run.id), kind_binary))
          for env in record.kubeconfigs),
        (f"Git server (pid {record.server_pid})",
         lambda: os.kill(record.server_pid, signal.SIGTERM) if record.live else None),
        (f"container {record.registry_container}", lambda: registry.stop_container(record.registry_container)),
        (f"docker network {record.network}", lambda: networks.remove(run)),
    ]
    removed, failed = [], []
    for what, action in steps:
        try:
            action()
            removed.append(what)
        except HarnessError as exc:
            failed.append(f"{what}: {exc}")
    if failed:
        raise UpEnvironmentError(f"environment {record.run}: could not remove\n  " + "\n  ".join(failed)
                                 + "\n(fix the cause and run `make down` again)")
    workdir = Path(record.workdir)
    if workdir.parent == up_root():  # only the folder `make up` made for this run
        shutil.rmtree(workdir, ignore_errors=True)
    _record_path(record.run).unlink()
    say(f"environment {record.run} removed")
    return removed


@contextmanager
def e2e_fleet(config: E2EConfig, kit: Kit, workdir: Path, source: RepoSource = WORKING_TREE) -> Iterator[Fleet]:
    """The fleet an e2e session tests: a new run's (torn down after), or with `use_up` the
    environment `make up` left running (attached, nothing created or removed). A new run
    publishes the repos from `source`."""
    if config.use_up:
        record = record_of_checkout()
        if record is None or not record.live:
            raise UpEnvironmentError(
                "--e2e-up / FLEET_E2E_UP: " + ("no environment from `make up` in this checkout; run `make up`"
                                                if record is None else
                                                f"environment {record.run} is half-gone (its Git server "
                                                "stopped); run `make down` then `make up`"))
        run = Run(record.run, os.getpid(), process_start(os.getpid()))
        with e2e_slots(len(record.kubeconfigs), f"the e2e on environment {run.id}"):
            say(f"using environment {record.run} from `make up` (nothing is created or removed)")
            yield attach(config, kit, record.server(),
                         {env: Path(path) for env, path in record.kubeconfigs.items()},
                         Path(record.workdir), run)
        return
    run = Run.new()
    with (e2e_slots(len(config.environments), f"the e2e of run {run.id}"),
          fleet_up(config, kit, workdir / run.id, run, source=source) as fleet):
        yield fleet
