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
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from harness.core.progress import say
from harness.core.waits import wait_for


def hold(folder: Path, name: str, what: str, why: str, timeout_s: float) -> AbstractContextManager[None]:
    """Hold lock `name` while doing `what` (a lock of one slot); if another run holds it, wait
    up to timeout_s, saying who holds it and why runs take turns."""
    return hold_slots(folder, name, 1, 1, what, why, timeout_s)


@contextmanager
def hold_slots(folder: Path, name: str, count: int, capacity: int, what: str, why: str,
               timeout_s: float) -> Iterator[None]:
    """Hold `count` of the `capacity` slots of lock `name` while doing `what` (one slot a
    cluster: runs that together need no more than the host affords run at once). A run that
    needs every slot takes them in order, waiting for each; a run that needs fewer takes free
    ones only when it gets them all, holding none while it waits. So no two runs ever each hold
    a part of what the other waits for."""
    count = max(1, min(count, capacity))
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}-{i}.lock" for i in range(capacity)]
    fds = [os.open(path, os.O_RDWR | os.O_CREAT, 0o644) for path in paths]
    held: list[int] = []

    def holders() -> str:
        # A slot's file is emptied when it is let go, so only held slots name someone.
        busy = [path for i, path in enumerate(paths) if i not in held and path.stat().st_size]
        return ", ".join(sorted({_holder(path) for path in busy})) or "another run"

    def take_in_order() -> tuple[bool, None, str]:
        while len(held) < capacity and _try(fds[len(held)]):
            held.append(len(held))
        return len(held) == capacity, None, f"still held by {holders()}"

    def take_free() -> tuple[bool, None, str]:
        for i, fd in enumerate(fds):
            if len(held) < count and _try(fd):
                held.append(i)
        if len(held) < count:
            for i in held:
                fcntl.flock(fds[i], fcntl.LOCK_UN)
            held.clear()
            return False, None, f"still held by {holders()}"
        return True, None, ""

    take = take_in_order if count == capacity else take_free
    try:
        if not take()[0]:
            say(f"waiting for {holders()} to finish before {what}: {why} (locks: {folder}/{name}-*.lock)")
            wait_for(f"{count} of the {capacity} {name} slots", take, timeout_s=timeout_s, interval_s=2.0)
        for i in held:
            os.ftruncate(fds[i], 0)
            os.pwrite(fds[i], json.dumps({"pid": os.getpid(), "what": what, "since": time.time()}).encode(), 0)
        yield
    finally:
        for i in held:
            os.ftruncate(fds[i], 0)
        for fd in fds:
            os.close(fd)  # releases the flocks


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
