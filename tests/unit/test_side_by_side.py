"""Side by side (make test's fresh and native installs): both commands run at once, each line is
shown named as it comes and kept in the command's log, the first failure's status is the result,
a command that cannot start is refused before any starts, and a termination reaches every
command."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core.sidebyside import SideBySideError, run_side_by_side


def _script(folder: Path, name: str, body: str) -> str:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_both_run_at_once_each_line_named_and_logged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Each waits for the other's mark: run one after the other, neither would ever finish.
    slow = _script(tmp_path, "a", f"touch {tmp_path}/a.up; echo one; "
                                  f"i=0; while [ ! -f {tmp_path}/b.up ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
                                  f"[ -f {tmp_path}/b.up ] && echo two\n")
    other = _script(tmp_path, "b", f"touch {tmp_path}/b.up; "
                                   f"i=0; while [ ! -f {tmp_path}/a.up ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
                                   f"[ -f {tmp_path}/a.up ] && echo three; exit 3\n")
    outcomes = run_side_by_side({"fresh": slow, "native-run": other}, tmp_path / "logs")
    out = capsys.readouterr().out
    assert [o.returncode for o in outcomes] == [0, 3]
    assert "fresh      | one\n" in out and "fresh      | two\n" in out and "native-run | three\n" in out, out
    assert (tmp_path / "logs" / "fresh.log").read_text() == "one\ntwo\n"
    assert (tmp_path / "logs" / "native-run.log").read_text() == "three\n"
    assert "failed (exit status 3)" in outcomes[1].describe() and "native-run.log" in outcomes[1].describe()


def test_a_command_that_cannot_start_is_refused_before_any_starts(tmp_path: Path) -> None:
    starts = _script(tmp_path, "starts", f"touch {tmp_path}/started\n")
    with pytest.raises(SideBySideError, match="native: no-such-program-here"):
        run_side_by_side({"fresh": starts, "native": "no-such-program-here --flag"}, tmp_path / "logs")
    assert not (tmp_path / "started").exists()


def test_a_termination_reaches_every_command(tmp_path: Path) -> None:
    """The runner gets SIGTERM (CI cancelling the job): each command gets it, cleans up (here:
    writes its mark) and the runner ends after them."""
    waiting = {name: _script(tmp_path, name, f"trap 'echo cleaned > {tmp_path}/{name}.done; exit 143' TERM\n"
                                             f"echo $$ > {tmp_path}/{name}.up; while true; do sleep 0.1; done\n")
               for name in ("fresh", "native")}
    runner = subprocess.Popen([sys.executable, "-m", "harness", "side-by-side", "--logs", str(tmp_path / "logs"),
                               *(f"{name}={path}" for name, path in waiting.items())],
                              cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        deadline = time.monotonic() + 20
        while not all((tmp_path / f"{name}.up").exists() for name in waiting) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(runner.pid, signal.SIGTERM)
        out, _ = runner.communicate(timeout=20)
        assert runner.returncode == 143, out
        for name in waiting:
            assert (tmp_path / f"{name}.done").read_text() == "cleaned\n", name
    finally:  # whatever failed, nothing of this test keeps running
        runner.kill()
        for name in waiting:
            up = tmp_path / f"{name}.up"
            if up.exists() and up.read_text().strip():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(up.read_text()), signal.SIGKILL)


def test_fail_fast_stops_the_others_at_the_first_failure(tmp_path: Path) -> None:
    """With fail_fast (make test), the first failure has the other commands terminated, each
    cleaning up as on a signal and named as stopped by it; without it the others run on (the
    first test: `fresh` prints its second line after `native-run` failed)."""
    waiting = {name: _script(tmp_path, name, f"trap 'echo cleaned > {tmp_path}/{name}.done; exit 143' TERM\n"
                                             f"touch {tmp_path}/{name}.up; i=0; while [ $i -lt 300 ]; do sleep 0.1; "
                                             f"i=$((i+1)); done; echo ran-out > {tmp_path}/{name}.done\n")
               for name in ("fresh", "native")}
    failing = _script(tmp_path, "unit", f"while [ ! -f {tmp_path}/fresh.up ] || [ ! -f {tmp_path}/native.up ]; "
                                        f"do sleep 0.1; done; exit 2\n")
    started = time.monotonic()
    outcomes = run_side_by_side({"unit": failing, **waiting}, tmp_path / "logs", fail_fast=True)
    assert time.monotonic() - started < 20, "the others ran on after the failure"
    assert [(o.name, o.returncode, o.stopped_by) for o in outcomes] == [
        ("unit", 2, None), ("fresh", 143, "unit"), ("native", 143, "unit")]
    for name in waiting:
        assert (tmp_path / f"{name}.done").read_text() == "cleaned\n", name
    assert "stopped because unit failed" in outcomes[1].describe()


def test_a_reader_that_goes_away_leaves_every_command_running_to_its_end(tmp_path: Path) -> None:
    """`make test | head`: the runner's output closes after its first line; the commands still
    run to their end, their whole output in their logs."""
    commands = {name: _script(tmp_path, name, f"echo first; sleep 0.5; echo second; touch {tmp_path}/{name}.end\n")
                for name in ("fresh", "native")}
    runner = subprocess.Popen([sys.executable, "-m", "harness", "side-by-side", "--logs", str(tmp_path / "logs"),
                               *(f"{name}={path}" for name, path in commands.items())],
                              cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert runner.stdout is not None
        runner.stdout.readline()
        runner.stdout.close()
        runner.wait(timeout=20)
    finally:
        runner.kill()
    for name in commands:
        assert (tmp_path / f"{name}.end").exists(), f"{name} did not run to its end"
        assert (tmp_path / "logs" / f"{name}.log").read_text() == "first\nsecond\n", name
