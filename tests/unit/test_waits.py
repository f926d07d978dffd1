"""The wait primitive's polling: a state expected any moment is seen at once (first_s), and a
wait that never holds still ends at its deadline with what it last saw."""

from __future__ import annotations

import time

import pytest

from harness.core.waits import WaitTimeoutError, wait_for


def _after(seconds: float) -> object:
    started = time.monotonic()
    return lambda: (time.monotonic() - started >= seconds, "done", "not yet")


@pytest.mark.parametrize(("first_s", "at_least", "below"), [(0.1, 0.3, 1.0), (None, 2.0, 3.0)])
def test_polling_starts_fast_only_when_asked(first_s: float | None, at_least: float, below: float) -> None:
    started = time.monotonic()
    assert wait_for("a state 0.3 s away", _after(0.3), timeout_s=10.0, interval_s=2.0, first_s=first_s) == "done"
    assert at_least <= time.monotonic() - started < below


def test_a_fast_start_still_ends_at_the_deadline() -> None:
    with pytest.raises(WaitTimeoutError, match=r"never: not done after \ds \(limit 2s\); last observed: not yet"):
        wait_for("never", lambda: (False, None, "not yet"), timeout_s=2.0, interval_s=0.5, first_s=0.05)
