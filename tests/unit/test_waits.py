"""The wait primitive's polling: a state expected any moment is seen at once (first_s) and within
a tenth of a second for the first seconds, a long wait polls at its interval, and a wait that
never holds still ends at its deadline with what it last saw."""

from __future__ import annotations

import itertools
import statistics
import time

import pytest

from harness.core import waits
from harness.core.waits import SOON_S, WaitTimeoutError, wait_for


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


def test_a_quick_wait_sees_a_state_a_second_away_within_a_poll_of_a_tenth_of_a_second() -> None:
    started = time.monotonic()
    assert wait_for("a state 1.3 s away", _after(1.3), timeout_s=10.0, interval_s=2.0, first_s=SOON_S) == "done"
    # Seen at the first poll after 1.3 s, a tenth of a second later (and room for a poll late on
    # a loaded machine); polls every half second saw it at 1.75 s, doubling to the interval at 3.75 s.
    assert 1.3 <= time.monotonic() - started < 1.65


def test_a_quick_wait_polls_at_its_interval_once_its_first_seconds_are_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waits, "QUICK_WINDOW_S", 0.5)
    calls: list[float] = []

    def never() -> tuple[bool, None, str]:
        calls.append(time.monotonic())
        return False, None, "not yet"

    with pytest.raises(WaitTimeoutError):
        wait_for("never", never, timeout_s=3.0, interval_s=1.0, first_s=SOON_S)
    gaps = [(a - calls[0], b - a) for a, b in itertools.pairwise(calls)]
    quick = [gap for at, gap in gaps if at + gap < waits.QUICK_WINDOW_S]
    steady = [gap for at, gap in gaps if at >= waits.QUICK_WINDOW_S]
    # The median, as a loaded machine can make one sleep overrun (half-second polls: 0.375 s).
    assert len(quick) >= 3 and statistics.median(quick) == pytest.approx(SOON_S, abs=0.05), gaps
    assert steady and all(gap >= 0.9 for gap in steady), gaps
