"""The upgrade probe's report: what each phase row counts, the summary line scripts read, and
the verdict that names admitted objects."""

from __future__ import annotations

import pytest

from harness.e2e.probe import (
    Event,
    Phase,
    Record,
    assert_none_admitted,
    largest_gap,
    rows,
    summary_line,
    table,
)


def _record() -> Record:
    record = Record()
    record.phases = [Phase("flux", 100.0, 110.0), Phase("kyverno", 110.0, 120.0)]
    for at, env, check, ok, detail in [
        (100.0, "staging", "podinfo", True, ""), (102.0, "staging", "podinfo", False, "down"),
        (104.0, "staging", "podinfo", False, "down"), (106.0, "staging", "podinfo", True, ""),
        (101.0, "staging", "compliant", False, "HTTP 500"),
        (111.0, "production", "violating", False, "Kustomization apps/p-5-bad (x) ADMITTED on production at 10:00:00 UTC"),
        (112.0, "production", "violating", True, "HTTP 422"),
        (113.0, "production", "compliant", False, "HTTP 503"), (114.0, "production", "compliant", True, ""),
    ]:
        record.add(Event(at, env, check, ok, detail))  # type: ignore[arg-type]
    return record


def test_rows_count_each_phase_and_the_total() -> None:
    result = {r.phase: r for r in rows(_record())}
    assert (result["flux"].violations_admitted, result["flux"].compliant_refused) == (0, 1)
    assert result["flux"].podinfo_unavailable_s == 4.0  # failed at 102 and 104, answered at 106
    assert (result["kyverno"].violations_admitted, result["kyverno"].compliant_refused) == (1, 1)
    assert result["total"].seconds == 20.0 and result["total"].compliant_refused == 2


def test_summary_line_and_table() -> None:
    result = rows(_record())
    assert summary_line(result) == "upgrade summary: violations admitted 1, compliant refused 2, podinfo unavailable 4 s"
    lines = table(result).splitlines()
    assert lines[0].split()[:2] == ["phase", "duration"] and len(lines) == 4
    assert lines[-1].startswith("total")


def test_verdict_names_every_admitted_object() -> None:
    with pytest.raises(AssertionError, match=r"1 policy-violating .*\n  Kustomization apps/p-5-bad \(x\) ADMITTED on production"):
        assert_none_admitted(_record())
    clean = Record()
    clean.add(Event(1.0, "staging", "violating", True, "HTTP 422"))
    assert_none_admitted(clean)


def test_a_cluster_still_down_at_the_end_counts_one_period() -> None:
    record = Record()
    record.phases = [Phase("p", 0.0, 10.0)]
    record.add(Event(1.0, "staging", "podinfo", False, "down"))
    assert rows(record)[0].podinfo_unavailable_s == 2.0


def test_largest_gap_is_per_cluster_and_check() -> None:
    # staging podinfo: 100, 102, 104, 106 (2 s apart); production compliant: 113, 114.
    assert largest_gap(_record()) == 2.0
    record = _record()
    record.add(Event(111.5, "staging", "podinfo", True, ""))
    assert largest_gap(record) == 5.5
