"""Progress lines reach the terminal while pytest captures output, from fixtures and threads."""

from __future__ import annotations

import threading

import pytest

from harness.core import progress
from harness.core.waits import wait_for

pytest_plugins = ["pytester"]


def test_progress_is_live_under_output_capture(pytester: pytest.Pytester) -> None:
    # The plugin comes from a conftest, as in this repo: loaded before pytest's terminal reporter.
    pytester.makeconftest('pytest_plugins = ["harness.entry.plugin"]\n')
    pytester.makepyfile(test_probe='''
        import pytest
        from harness.core.progress import say, step

        @pytest.fixture(scope="session")
        def built():
            with step("building the probe kit"):
                pass

        def test_passes(built):
            say("said inside a passing test")
        ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # A passing test's captured output is never shown: these lines went past the capture.
    result.stdout.fnmatch_lines(["*building the probe kit ...", "*done building the probe kit in *",
                                 "*said inside a passing test"])


def test_a_silent_step_is_repeated_with_its_elapsed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.2)
    previous = progress.current_sink()
    progress.set_sink(lines.append)
    try:
        with progress.step("waiting on something slow"):
            threading.Event().wait(1.5)
    finally:
        progress.set_sink(previous)
    beats = [line for line in lines if "... still waiting on something slow" in line]
    assert len(beats) >= 2, lines
    assert lines[-1].split("] ", 1)[1].startswith("done waiting on something slow in 1."), lines


def test_a_long_wait_says_what_it_is_waiting_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The repeat line of a wait carries the state the wait last observed, shortened."""
    lines: list[str] = []
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.2)
    previous = progress.current_sink()
    progress.set_sink(lines.append)
    polls = iter(range(1000))
    try:
        wait_for("the tenants Kustomization", lambda: (
            next(polls) >= 8, None, "Ready=False DependencyNotReady:\n dependency 'kyverno-policies' " + "x" * 400),
            timeout_s=10.0, interval_s=0.1)
    finally:
        progress.set_sink(previous)
    beats = [line for line in lines if "... still waiting for the tenants Kustomization (" in line]
    assert beats, lines
    assert beats[-1].endswith("): Ready=False DependencyNotReady: dependency 'kyverno-policies' "
                              + "x" * (progress.OBSERVED_LIMIT - 62) + " [...]"), beats[-1]


def test_a_step_started_while_the_ticker_sleeps_gets_its_beat(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ticker an earlier step started (asleep for up to a second at the usual heartbeat) looks
    again when a new step starts, at the cadence then in force: the new step is not silent for
    the rest of that sleep."""
    lines: list[str] = []
    previous = progress.current_sink()
    progress.set_sink(lines.append)
    try:
        with progress.step("an earlier step", quiet=True):
            pass  # the ticker is running and asleep for min(1 s, HEARTBEAT_S / 4)
        monkeypatch.setattr(progress, "HEARTBEAT_S", 0.2)
        with progress.step("waiting on something short", quiet=True):
            threading.Event().wait(0.6)
    finally:
        progress.set_sink(previous)
    assert any("... still waiting on something short" in line for line in lines), lines
