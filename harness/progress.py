"""Progress lines for long steps: what is running and for how long."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

HEARTBEAT_S = 30.0


def say(message: str) -> None:
    """Print one progress line, flushed at once so CI logs show it live."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


@contextmanager
def step(what: str, heartbeat_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Announce a step, repeat a still-running line every heartbeat_s, report its duration."""
    started = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        # Event.wait doubles as the interval timer and the stop signal.
        while not done.wait(heartbeat_s):
            say(f"  ... still {what} ({format_duration(time.monotonic() - started)})")

    say(f"{what} ...")
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        say(f"FAILED {what} after {format_duration(time.monotonic() - started)}")
        raise
    finally:
        done.set()
        thread.join()
    say(f"done {what} in {format_duration(time.monotonic() - started)}")
