"""Runs external commands: the only module that imports `sh`.

Every call has an explicit timeout, extends (never replaces) the environment, keeps the full
stderr, and raises CommandError carrying the command line (credentials masked), exit code and
the tail of stderr. sh's own exception is never chained to it: its text is the full command
line, and pytest prints chained exceptions to the terminal and the JUnit report.

sh runs the command and streams its output; two of its options cost a tenth of a second per
command, which the e2e pays on every `kubectl exec`, git and docker call: `_timeout` (its
timeout thread looks every 0.1 s whether the command ended, and sh joins it at the end) and an
output callback with stdin left open (sh then starts a stdin thread that it joins the same
way). So the deadline is a timer of this module's that kills the command as sh's timeout
would (SIGKILL), and a command without input gets an empty stdin (it reads EOF instead of
waiting on a pipe nothing writes to). tests/unit/test_commands.py holds the cost down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import sh

from harness.core.errors import CommandError


@dataclass(frozen=True)
class Completed:
    """Output of a command that exited 0."""

    stdout: str
    stderr: str


def which(name: str) -> str | None:
    """Path of an executable on PATH, or None."""
    return shutil.which(name)


def run(
    argv: list[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | bytes | None = None,
    log: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Completed:
    """Run argv to completion; raise CommandError unless it exits 0 within timeout_s.

    With `log`, stdout and stderr are also appended to that file as they arrive, so a long
    build can be followed (`tail -f`) and its full output survives a failure. `on_line` sees
    each line of either stream as it arrives (to act on a command's progress while it runs).
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    out: list[str] = []
    err: list[str] = []
    log_file: IO[str] | None = log.open("a") if log else None

    def sink(buffer: list[str]) -> Callable[[str], None]:
        def collect(line: str) -> None:
            buffer.append(line)
            if log_file is not None:
                log_file.write(line)
                log_file.flush()
            if on_line is not None:
                on_line(line)

        return collect

    timed_out = threading.Event()
    deadline: threading.Timer | None = None
    try:
        command = sh.Command(argv[0])
        running = command(
            *argv[1:],
            _env=full_env,
            _cwd=str(cwd) if cwd else None,
            _in="" if stdin is None else stdin,
            _out=sink(out),
            _err=sink(err),
            _encoding="utf-8",
            _decode_errors="replace",
            _bg=True,
            _bg_exc=False,
        )

        def expire() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                running.kill()

        deadline = threading.Timer(timeout_s, expire)
        deadline.daemon = True
        deadline.start()
        running.wait()
    except sh.CommandNotFound:
        raise CommandError(argv, None, "", f"command not found: {argv[0]} (is it installed?)") from None
    except sh.ErrorReturnCode as exc:
        if timed_out.is_set():
            raise CommandError(argv, None, "".join(err), f"timed out after {timeout_s:.0f}s") from None
        raise CommandError(
            argv, exc.exit_code, "".join(err) or "".join(out), "command failed", "".join(out)
        ) from None
    finally:
        if deadline is not None:
            deadline.cancel()
        if log_file is not None:
            log_file.close()
    return Completed(stdout="".join(out), stderr="".join(err))


def succeeds(argv: list[str], *, timeout_s: float, env: Mapping[str, str] | None = None) -> bool:
    """Whether argv exits 0 (for probes where failure is an answer, not an error)."""
    try:
        run(argv, timeout_s=timeout_s, env=env)
    except CommandError:
        return False
    return True


@dataclass
class Daemon:
    """A background process started by spawn()."""

    argv: list[str]
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within timeout_s; always reaped."""
        if not self.alive():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)


def spawn(argv: list[str], *, log: Path, env: Mapping[str, str] | None = None) -> Daemon:
    """Start a long-running process in its own session, output appended to `log`."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
    return Daemon(argv, process)


def run_binary(
    argv: list[str], *, timeout_s: float, env: Mapping[str, str] | None = None, stdin: bytes = b""
) -> bytes:
    """Run argv with binary input and output (e.g. a CGI program speaking the Git protocol)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        result = sh.Command(argv[0])(
            *argv[1:], _env=full_env, _timeout=timeout_s, _in=stdin, _return_cmd=True,
        )
    except sh.TimeoutException:
        raise CommandError(argv, None, "", f"timed out after {timeout_s:.0f}s") from None
    except sh.ErrorReturnCode as exc:
        raise CommandError(argv, exc.exit_code, exc.stderr.decode(errors="replace"), "command failed") from None
    return bytes(result.stdout)
