"""Commands run side by side (make test's first step: the cluster-free tests and the fresh and
native installs, one cluster each): every line of their output is shown as it comes, with the
command's name in front, and kept whole in a log file of its own; the end names each
command's result, time and log.

An interrupt or termination signal is passed on to every command, once, which tears its
clusters down as it would alone; the runner returns once all have ended. With `fail_fast`, the
first command that fails has the others terminated the same way, as `make` stops at its first
failing step: the answer is red as soon as one part is.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from harness.core.errors import HarnessError
from harness.core.progress import format_duration

JOIN_POLL_S = 0.5


class SideBySideError(HarnessError):
    """A command that cannot be started."""


@dataclass(frozen=True)
class Outcome:
    name: str
    returncode: int
    seconds: float
    log: Path
    # The command whose failure had this one terminated (fail_fast), if any.
    stopped_by: str | None = None

    def describe(self) -> str:
        verdict = "passed" if self.returncode == 0 else f"failed (exit status {self.returncode})"
        if self.stopped_by is not None:
            verdict = f"stopped because {self.stopped_by} failed (exit status {self.returncode})"
        return f"{self.name}: {verdict} in {format_duration(self.seconds)} (log: {self.log})"


def run_side_by_side(commands: Mapping[str, str], logs: Path, fail_fast: bool = False) -> list[Outcome]:
    """Run each shell-free command line at once; return their outcomes in the given order."""
    argvs = {name: shlex.split(line) for name, line in commands.items()}
    missing = [f"{name}: {argv[0] if argv else '(empty)'}" for name, argv in argvs.items()
               if not argv or shutil.which(argv[0]) is None]
    if missing:  # checked before anything starts, so nothing is left running half-way
        raise SideBySideError(f"no such program for {', '.join(missing)}")
    logs.mkdir(parents=True, exist_ok=True)
    printing = threading.Lock()
    started = time.monotonic()
    # Each in a session of its own: a signal sent to the terminal's or the job's process group
    # reaches the commands once, from here, and not a second time during their teardown.
    procs = {name: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                    start_new_session=True)
             for name, argv in argvs.items()}
    width = max(len(name) for name in commands)
    ended: dict[str, float] = {}
    first_failure: list[str] = []
    stopped: dict[str, str] = {}
    deciding = threading.Lock()

    def stop_others(failed: str) -> None:
        with deciding:
            if first_failure:
                return
            first_failure.append(failed)
            for name, proc in procs.items():
                if name != failed and proc.poll() is None:
                    stopped[name] = failed
                    proc.send_signal(signal.SIGTERM)

    shown = [True]

    def pump(name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with (logs / f"{name}.log").open("w") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                with printing:
                    # A reader that went away (`| head`, a closed terminal) ends the showing, not
                    # the command: its output still goes to its log and it runs to its end.
                    if shown[0]:
                        try:
                            print(f"{name:<{width}} | {line}", end="", flush=True)
                        except OSError:
                            shown[0] = False
        proc.wait()
        ended[name] = time.monotonic() - started
        if fail_fast and proc.returncode != 0 and name not in stopped:
            stop_others(name)

    def pass_on(signum: int, frame: FrameType | None) -> None:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        pumps = [threading.Thread(target=pump, args=item, daemon=True) for item in procs.items()]
        for thread in pumps:
            thread.start()
        for thread in pumps:
            while thread.is_alive():  # a timed join lets a signal's handler run meanwhile
                thread.join(JOIN_POLL_S)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return [Outcome(name, proc.returncode, ended[name], logs / f"{name}.log", stopped.get(name))
            for name, proc in procs.items()]
