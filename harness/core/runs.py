"""Run identity: every Docker object, cluster and folder a run creates carries its run id.

Names: clusters `fleet-<run>-<role>`, the registry container `fleet-<run>-registry`, the
Docker network `fleet-<run>`. Docker objects are also labelled with the run id and the owning
process (pid and its start time), so `make sweep` can tell a live run (left alone) from a
killed one (removed), and never touches an object without the project's label.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

LABEL_RUN = "dev.fleet-e2e.run"
LABEL_PID = "dev.fleet-e2e.pid"
LABEL_PID_START = "dev.fleet-e2e.pid-start"
NAME = re.compile(r"^fleet-([0-9a-f]{6})(?:-(.+))?$")


def process_start(pid: int) -> str:
    """The kernel's start time of pid (field 22 of /proc/PID/stat), "" if it is gone.

    With the pid it identifies a process uniquely: a reused pid has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


@dataclass(frozen=True)
class Run:
    """One run of the harness and the process that owns what it creates."""

    id: str
    pid: int
    pid_start: str

    @classmethod
    def new(cls, owner_pid: int | None = None) -> Run:
        pid = owner_pid or os.getpid()
        return cls(secrets.token_hex(3), pid, process_start(pid))

    def name(self, role: str = "") -> str:
        return f"fleet-{self.id}-{role}" if role else f"fleet-{self.id}"

    @property
    def network(self) -> str:
        return self.name()

    def labels(self) -> dict[str, str]:
        return {LABEL_RUN: self.id, LABEL_PID: str(self.pid), LABEL_PID_START: self.pid_start}

    def label_args(self) -> list[str]:
        return [arg for key, value in self.labels().items() for arg in ("--label", f"{key}={value}")]


def is_alive(pid: int, pid_start: str) -> bool:
    """Whether the process that owns a run still runs (same pid, same start time)."""
    return bool(pid_start) and process_start(pid) == pid_start


def run_id_of(name: str) -> str | None:
    """The run id in a project name (`fleet-<run>-...`), or None for any other name."""
    match = NAME.match(name)
    return match.group(1) if match else None
