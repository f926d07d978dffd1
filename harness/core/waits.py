"""The one wait primitive: poll until a predicate holds or a wall-clock deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from harness.core.errors import HarnessError
from harness.core.progress import step

T = TypeVar("T")


class WaitTimeoutError(HarnessError):
    """A condition did not hold within its deadline; the message says what was last observed."""


class _NotYet(Exception):
    def __init__(self, observed: str) -> None:
        super().__init__(observed)
        self.observed = observed


def wait_for(
    what: str,
    probe: Callable[[], tuple[bool, T, str]],
    timeout_s: float,
    interval_s: float = 2.0,
    hint: str = "",
) -> T:
    """Call probe() until it reports done; return its value.

    probe returns (done, value, observed): `observed` describes the current state and ends up
    in the timeout error. A probe may raise HarnessError to fail fast (a terminal state).
    """
    started = time.monotonic()

    def attempt() -> T:
        done, value, observed = probe()
        if not done:
            raise _NotYet(observed)
        return value

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_NotYet),
        stop=tenacity.stop_after_delay(timeout_s),
        wait=tenacity.wait_fixed(interval_s),
        reraise=True,
    )
    try:
        with step(f"waiting for {what}", quiet=True):
            return retrying(attempt)
    except _NotYet as exc:
        elapsed = time.monotonic() - started
        raise WaitTimeoutError(
            f"{what}: not done after {elapsed:.0f}s (limit {timeout_s:.0f}s); last observed: "
            f"{exc.observed}" + (f" ({hint})" if hint else "")
        ) from None
