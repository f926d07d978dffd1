"""`make sweep`: remove what killed runs left behind, and nothing else.

How it knows what is the project's: Docker containers and networks carry the run label
(`dev.fleet-e2e.run`) with the owning process (pid and start time); kind clusters carry the run
id in their name (`fleet-<run>-<role>`) and sit on their run's labelled network. A run is live
while its owner process runs (for `make up`, its Git server process); a live run is left alone.
Objects without the label, and every other cluster, are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.core import commands
from harness.core.runs import LABEL_PID, LABEL_PID_START, LABEL_RUN, Run, is_alive, run_id_of

ObjectKind = Literal["kind cluster", "container", "docker network"]
ORDER: tuple[ObjectKind, ...] = ("kind cluster", "container", "docker network")


@dataclass(frozen=True)
class Found:
    """A project object on this host, and the run that made it."""

    kind: ObjectKind
    name: str
    run: str
    owner_alive: bool | None = None  # None: no owner recorded (clusters)

    def __str__(self) -> str:
        return f"{self.kind} {self.name} (run {self.run})"


def plan(found: list[Found], extra_live: frozenset[str] | set[str] = frozenset()) -> tuple[list[Found], list[Found]]:
    """Split the project's objects into (remove, keep): a run is live if any owner of it is."""
    live = {f.run for f in found if f.owner_alive} | set(extra_live)
    remove = [f for f in found if f.run not in live]
    keep = [f for f in found if f.run in live]
    remove.sort(key=lambda f: ORDER.index(f.kind))  # clusters first: they hold the network
    return remove, keep


def _labelled(kind: ObjectKind) -> list[Found]:
    fmt = "\t".join(("{{.Name}}" if kind == "docker network" else "{{.Names}}",
                     *(f'{{{{.Label "{key}"}}}}' for key in (LABEL_RUN, LABEL_PID, LABEL_PID_START))))
    listing = ["docker", "network", "ls"] if kind == "docker network" else ["docker", "ps", "-a"]
    out = commands.run([*listing, "--filter", f"label={LABEL_RUN}", "--format", fmt], timeout_s=60.0).stdout
    found = []
    for line in out.splitlines():
        name, run, pid, start = (line.split("\t") + ["", "", ""])[:4]
        alive = pid.isdigit() and is_alive(int(pid), start)
        found.append(Found(kind, name, run, alive))
    return found


def inventory_of_run(run: Run) -> list[Found]:
    """The labelled containers and networks of one run that still exist."""
    return [f for f in _labelled("container") + _labelled("docker network") if f.run == run.id]


def inventory(kind_binary: str) -> list[Found]:
    """Every object of the project on this host."""
    clusters = commands.run([kind_binary, "get", "clusters"], timeout_s=60.0).stdout.split()
    found = [Found("kind cluster", name, run) for name in clusters if (run := run_id_of(name))]
    return found + _labelled("container") + _labelled("docker network")


def remove(item: Found, kind_binary: str) -> None:
    if item.kind == "kind cluster":
        commands.run([kind_binary, "delete", "cluster", "--name", item.name], timeout_s=300.0)
    elif item.kind == "container":
        commands.run(["docker", "rm", "-f", item.name], timeout_s=60.0)
    else:
        commands.run(["docker", "network", "rm", item.name], timeout_s=60.0)


def sweep(kind_binary: str, live_environments: set[str]) -> tuple[list[Found], list[Found]]:
    """Remove the objects of runs that are gone; return (removed, kept because live)."""
    to_remove, keep = plan(inventory(kind_binary), live_environments)
    for item in to_remove:
        remove(item, kind_binary)
    return to_remove, keep
