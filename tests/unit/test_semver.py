"""Helm's version ranges, as the e2e uses them to predict which chart each overlay gets."""

from __future__ import annotations

import pytest

from harness.core.semver import highest, satisfies

STABLE, PRE = ">=6.0.0 <7.0.0", ">=6.0.0-0 <7.0.0-0"


@pytest.mark.parametrize(("version", "constraint", "expected"), [
    ("6.9.2", STABLE, True),
    ("6.9.3-rc.1", STABLE, False),  # no pre-release in the range: pre-releases are out
    ("6.9.3-rc.1", PRE, True),
    ("7.0.0", STABLE, False),
    ("7.0.0-rc.1", PRE, False),
    ("5.9.9", STABLE, False),
    ("6.0.0", "=6.0.0 || >=8.0.0", True),
])
def test_ranges(version: str, constraint: str, expected: bool) -> None:
    assert satisfies(version, constraint) is expected


def test_the_highest_match_is_picked_and_prereleases_sort_before_their_release() -> None:
    versions = ["6.9.2", "6.9.3-rc.1", "6.9.3-rc.10", "6.9.3-rc.2", "6.8.0"]
    assert highest(versions, STABLE) == "6.9.2"
    assert highest(versions, PRE) == "6.9.3-rc.10"
    assert highest(["6.9.3", "6.9.3-rc.1"], PRE) == "6.9.3"
    assert highest(versions, ">=8.0.0") is None
