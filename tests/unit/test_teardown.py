"""Teardown is best-effort: a failing step never replaces the test's own failure."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from harness.core import progress
from harness.core.errors import CommandError
from harness.core.teardown import best_effort


def test_a_failing_teardown_step_is_said_and_the_tests_failure_survives() -> None:
    lines: list[str] = []
    done: list[str] = []

    def docker_rm_fails() -> None:
        raise CommandError(["docker", "rm", "-f", "fleet-abc123-registry"], 1, "daemon gone", "command failed")

    previous = progress.current_sink()

    progress.set_sink(lines.append)
    try:
        with pytest.raises(AssertionError, match="the test's own failure"), ExitStack() as stack:
            stack.callback(best_effort, "remove network fleet-abc123", done.append, "network")
            stack.callback(best_effort, "remove registry fleet-abc123-registry", docker_rm_fails)
            raise AssertionError("the test's own failure")
    finally:
        progress.set_sink(previous)
    assert done == ["network"]  # the steps after the failing one still ran
    assert any("teardown: could not remove registry fleet-abc123-registry" in line and "daemon gone" in line
               for line in lines), lines
