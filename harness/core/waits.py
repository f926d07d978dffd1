"""The one wait primitive: poll until a predicate holds or a wall-clock deadline passes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import tenacity

from harness.core.errors import Abandoned, HarnessError
from harness.core.progress import Step, step

T = TypeVar("T")


class WaitTimeoutError(HarnessError):
    """A condition did not hold within its deadline; the message says what was last observed."""


_abandon = threading.local()


@contextmanager
def abandoned_when(event: threading.Event) -> Iterator[None]:
    """Every wait of this thread inside the block gives up (raises Abandoned) once `event` is set,
    at its next poll: a failed step beside it need not wait for this one's deadline."""
    previous = getattr(_abandon, "event", None)
    _abandon.event = event
    try:
        yield
    finally:
        _abandon.event = previous


class _NotYet(Exception):
    def __init__(self, observed: str) -> None:
        super().__init__(observed)
        self.observed = observed


# A state expected any moment (a reconcile request being handled, most often Ready in 1 to 4 s)
# is polled from `first_s`, doubling up to QUICK_CAP_S, for QUICK_WINDOW_S; then every
# `interval_s`. The harness waits on hundreds of them in a run, most one after the other, and
# each is seen on average half a poll after it holds (about 0.25 s a wait at 0.5 s). A poll is
# one GET (about 3 ms, under 1 ms of the harness' CPU, measured against a kind cluster on this
# project's 2-core machine), so ten a second cost the cores nothing a run would notice.
QUICK_CAP_S = 0.1
QUICK_WINDOW_S = 10.0
SOON_S = 0.1  # the usual `first_s` of such a wait


def _quick_then(first_s: float, interval_s: float) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        if (state.seconds_since_start or 0.0) >= QUICK_WINDOW_S:
            return interval_s
        return min(first_s * 2.0 ** (state.attempt_number - 1), QUICK_CAP_S, interval_s)

    return wait


def wait_for(
    what: str,
    probe: Callable[[], tuple[bool, T, str]],
    timeout_s: float,
    interval_s: float = 2.0,
    hint: str = "",
    first_s: float | None = None,
) -> T:
    """Call probe() until it reports done; return its value.

    probe returns (done, value, observed): `observed` describes the current state and ends up
    in the timeout error. A probe may raise HarnessError to fail fast (a terminal state).
    """
    started = time.monotonic()
    running: Step | None = None

    def attempt() -> T:
        abandon: threading.Event | None = getattr(_abandon, "event", None)
        if abandon is not None and abandon.is_set():
            raise Abandoned(f"{what}: abandoned because a step running beside it failed")
        done, value, observed = probe()
        if not done:
            if running is not None:
                running.observe(observed)
            raise _NotYet(observed)
        return value

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_NotYet),
        stop=tenacity.stop_after_delay(timeout_s),
        wait=_quick_then(first_s, interval_s) if first_s else tenacity.wait_fixed(interval_s),
        reraise=True,
    )
    try:
        with step(f"waiting for {what}", quiet=True) as running:
            return retrying(attempt)
    except _NotYet as exc:
        elapsed = time.monotonic() - started
        raise WaitTimeoutError(
            f"{what}: not done after {elapsed:.0f}s (limit {timeout_s:.0f}s); last observed: "
            f"{exc.observed}" + (f" ({hint})" if hint else "")
        ) from None
