"""`make bench` reports the e2e's bring-up per cluster against the seed replay's mean."""

from __future__ import annotations

from harness.e2e.bench import Result
from harness.e2e.handles import Timings


def test_ratio_is_the_e2e_per_cluster_over_the_seed_replay_per_cluster() -> None:
    seed, harness = Timings(), Timings()
    seed.steps += [("staging: kind create cluster", 30.0), ("production: kind create cluster", 31.0)]
    harness.steps += [("staging: create kind cluster", 29.0)]
    result = Result(seed, {"staging": 150.0, "production": 130.0}, harness, harness_wall=168.0, clusters=2)
    assert result.ratio == (168.0 / 2) / 140.0
    report = result.report()
    assert "ratio 0.60" in report
    assert "seed replay, staging" in report and "e2e bring-up of 2 clusters" in report
