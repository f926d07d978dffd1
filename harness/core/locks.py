"""Host-wide locks between runs: a second run waits, saying for what, instead of colliding.

A lock is an flock on a file in the kit cache; the kernel drops it when its holder dies, so a
killed run never leaves a stale lock. The file says who holds it, for the waiting run's message.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.core.progress import say
from harness.core.waits import wait_for


@contextmanager
def hold(folder: Path, name: str, what: str, why: str, timeout_s: float) -> Iterator[None]:
    """Hold lock `name` (a file in folder) while doing `what`; if another run holds it, wait
    up to timeout_s, saying who holds it and why runs take turns."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try(fd):
            holder = _holder(path)
            say(f"waiting for {holder} to finish before {what}: {why} (lock: {path})")

            def probe() -> tuple[bool, None, str]:
                return _try(fd), None, f"still held by {_holder(path)}"

            wait_for(f"the lock on {name} ({_holder(path)})", probe, timeout_s=timeout_s, interval_s=2.0)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "what": what, "since": time.time()}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another run"
    since = time.strftime("%H:%M:%S", time.localtime(info.get("since", 0)))
    return f"{info.get('what', 'another run')} (pid {info.get('pid')}, since {since})"
