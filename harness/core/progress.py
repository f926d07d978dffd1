"""Progress lines for long steps: what is running, for how long, and where its log is.

Lines go to a sink, stderr by default; the pytest plugin installs one that writes past output
capture, so a person sees them live under pytest too. While any step runs, one ticker thread
repeats the innermost step of each thread with its elapsed time whenever nothing was said for
HEARTBEAT_S, so a long run is never silent for longer than that, also while steps of several
threads run at once (each cluster's bring-up, for example). A step may say what it last observed
(a wait: the state it is waiting out), and the repeat line carries it, so a person watching a
long wait sees why it lasts, not only that it does.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from harness.core.errors import Abandoned

HEARTBEAT_S = 20.0
# The most of a step's last observation a repeat line carries.
OBSERVED_LIMIT = 240

Sink = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Step:
    """A running step, as the repeat lines show it."""

    what: str
    started: float
    thread: int
    label: str
    observed: str = ""

    def observe(self, observed: str) -> None:
        """What the step last saw (shown, shortened, in its repeat lines)."""
        self.observed = " ".join(observed.split())

    def line(self, now: float) -> str:
        observed = self.observed if len(self.observed) <= OBSERVED_LIMIT else self.observed[:OBSERVED_LIMIT] + " [...]"
        return f"  ... still {self.what} ({format_duration(now - self.started)})" + (f": {observed}" if observed else "")


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sink: Sink = _stderr
        self.last_said = time.monotonic()
        self.steps: list[Step] = []  # outermost first
        self.ticker: threading.Thread | None = None
        self.wake = threading.Event()


_state = _State()


def current_sink() -> Sink:
    return _state.sink


def set_sink(sink: Sink | None) -> None:
    """Send progress lines to `sink` (None: back to stderr)."""
    with _state.lock:
        _state.sink = sink or _stderr


_thread = threading.local()


@contextmanager
def labelled(label: str) -> Iterator[None]:
    """Lines said by this thread inside the block name `label` (the cluster a thread of a
    parallel bring-up works on), so interleaved lines of several threads stay readable."""
    previous = getattr(_thread, "label", "")
    _thread.label = label
    try:
        yield
    finally:
        _thread.label = previous


def _label() -> str:
    return str(getattr(_thread, "label", ""))


def say(message: str, label: str | None = None) -> None:
    """Print one progress line, flushed at once so CI logs show it live."""
    label = _label() if label is None else label
    with _state.lock:
        _state.sink(f"[{time.strftime('%H:%M:%S')}] " + (f"{label}: " if label else "") + message)
        _state.last_said = time.monotonic()


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _tick() -> None:
    while True:
        _state.wake.wait(min(1.0, HEARTBEAT_S / 4))
        _state.wake.clear()
        with _state.lock:
            if not _state.steps:
                _state.ticker = None
                return
            now = time.monotonic()
            if now - _state.last_said >= HEARTBEAT_S:
                innermost = {running.thread: running for running in _state.steps}
                for running in innermost.values():
                    say(running.line(now), running.label)


@contextmanager
def step(what: str, quiet: bool = False) -> Iterator[Step]:
    """Announce a step, keep saying it is still running, report its duration or failure.

    A quiet step (a wait, usually short) says nothing unless it outlasts HEARTBEAT_S.
    """
    started = time.monotonic()
    entry = Step(what, started, threading.get_ident(), _label())
    if not quiet:
        say(f"{what} ...")
    with _state.lock:
        _state.steps.append(entry)
        if _state.ticker is None:
            _state.ticker = threading.Thread(target=_tick, name="progress", daemon=True)
            _state.ticker.start()
        else:  # a running ticker looks again now, at the current cadence, not after its last sleep
            _state.wake.set()
    try:
        yield entry
    except Abandoned:
        say(f"stopped {what} after {format_duration(time.monotonic() - started)}: a step beside it failed")
        raise
    except BaseException:
        say(f"FAILED {what} after {format_duration(time.monotonic() - started)}")
        raise
    finally:
        with _state.lock:
            _state.steps.remove(entry)
    elapsed = time.monotonic() - started
    if not quiet or elapsed >= HEARTBEAT_S:
        say(f"done {what} in {format_duration(elapsed)}")
