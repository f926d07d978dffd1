"""The upgrade probe's report: how answers are classified into rows, per-case counts and gaps,
the summary line scripts read, and the verdict that names every failure."""

from __future__ import annotations

import pytest

from harness.e2e.probe import (
    DETAIL_LIMIT,
    GAP_LIMIT_S,
    PERIOD_S,
    PODINFO_LIMIT_S,
    Event,
    Phase,
    Record,
    assert_held,
    case_rows,
    case_table,
    clipped,
    failures,
    largest_gap,
    longest_gap,
    rows,
    summary_line,
    table,
)


def _record() -> Record:
    record = Record()
    record.phases = [Phase("flux", 100.0, 110.0), Phase("kyverno", 110.0, 120.0)]
    for at, env, check, case, answer in [
        (100.0, "staging", "podinfo", "", "up"), (102.0, "staging", "podinfo", "", "down"),
        (104.0, "staging", "podinfo", "", "down"), (106.0, "staging", "podinfo", "", "up"),
        (101.0, "staging", "compliant", "a/create", "other"),
        (101.0, "staging", "violating", "a/create", "own"),
        (111.0, "production", "violating", "a/create", "admitted"),
        (112.0, "production", "violating", "a/create", "own"),
        (112.5, "production", "violating", "b/update", "none"),
        (113.0, "production", "compliant", "a/create", "own"), (114.0, "production", "compliant", "a/create", "admitted"),
    ]:
        record.add(Event(at, env, check, case, answer, f"{answer} detail"))  # type: ignore[arg-type]
    return record


def test_rows_count_each_phase_and_the_total() -> None:
    result = {r.phase: r for r in rows(_record())}
    assert (result["flux"].violations_admitted, result["flux"].compliant_refused) == (0, 1)
    assert result["flux"].podinfo_unavailable_s == 4.0  # failed at 102 and 104, answered at 106
    assert (result["kyverno"].violations_admitted, result["kyverno"].compliant_refused) == (1, 1)
    assert result["kyverno"].no_answer == 1
    assert result["total"].seconds == 20.0 and result["total"].compliant_refused == 2


def test_summary_line_and_tables() -> None:
    result = rows(_record())
    assert summary_line(result) == "upgrade summary: violations admitted 1, compliant refused 2, podinfo unavailable 4 s"
    lines = table(result).splitlines()
    assert "no answer" in lines[0] and "violating refused otherwise" in lines[0] and len(lines) == 4
    assert lines[-1].startswith("total")
    cases = case_table(case_rows(_record())).splitlines()
    assert cases[0].split()[:2] == ["cluster", "case"] and len(cases) == 4  # production a, b; staging a


def _violating(answers: list[tuple[float, str]]) -> list[Event]:
    return [Event(at, "staging", "violating", "a/create", answer, "") for at, answer in answers]  # type: ignore[arg-type]


def test_a_gap_counts_only_when_the_api_server_answered_in_it() -> None:
    answered = _violating([(0.0, "own"), (2.0, "own"), (4.0, "other"), (6.0, "admitted"), (8.0, "other"), (10.0, "own")])
    assert longest_gap(answered) == (8.0, 8.0)
    silent = _violating([(0.0, "own"), (2.0, "none"), (4.0, "none"), (6.0, "none"), (8.0, "own")])
    assert longest_gap(silent) == (8.0, 0.0)
    never = _violating([(0.0, "other"), (2.0, "other")])
    assert longest_gap(never) == (2.0 + PERIOD_S, 2.0 + PERIOD_S)
    steady = _violating([(0.0, "own"), (2.0, "own"), (4.1, "own")])
    assert longest_gap(steady) == (pytest.approx(2.1), 0.0)
    # A long silence does not hide a shorter gap in which the API server answered.
    both = _violating([(0.0, "own"), (20.0, "own"), (22.0, "admitted"), (27.0, "own")])
    assert longest_gap(both) == (20.0, 7.0)


def test_verdict_names_every_failure() -> None:
    record = _record()
    record.add(Event(130.0, "staging", "podinfo", "", "down", ""))
    record.add(Event(130.0 + PODINFO_LIMIT_S + 1, "staging", "podinfo", "", "up", ""))
    for event in _violating([(200.0, "own"), (202.0, "other"), (200.0 + GAP_LIMIT_S + 2, "own")]):
        record.add(event)
    found = failures(record)
    assert any(f.startswith("a/create: violating request ADMITTED on production at ") for f in found), found
    assert any(f.startswith("a/create: compliant twin refused on staging") for f in found), found
    assert any(f.startswith("a/create: compliant twin refused on production") for f in found), found
    assert any("a/create: no refusal by its own policy for 7.0 s on staging" in f for f in found), found
    assert any(f.startswith("podinfo unavailable on staging for 11 s") for f in found), found
    with pytest.raises(AssertionError, match=r"isolation probe failure\(s\):\n  a/create: violating request ADMITTED"):
        assert_held(record)
    clean = Record()
    for event in _violating([(1.0, "own"), (3.0, "own"), (5.0, "none"), (12.0, "own")]):
        clean.add(event)
    assert failures(clean) == []
    assert_held(clean)


def test_a_cluster_still_down_at_the_end_counts_one_period() -> None:
    record = Record()
    record.phases = [Phase("p", 0.0, 10.0)]
    record.add(Event(1.0, "staging", "podinfo", "", "down", "down"))
    assert rows(record)[0].podinfo_unavailable_s == PERIOD_S


def test_largest_gap_is_per_cluster_check_and_case() -> None:
    # staging podinfo: 100, 102, 104, 106 (2 s apart); production a/create compliant: 113, 114.
    assert largest_gap(_record()) == 2.0
    record = _record()
    record.add(Event(111.5, "staging", "podinfo", "", "up", ""))
    assert largest_gap(record) == 5.5


def test_a_long_refusal_keeps_who_refused_and_why() -> None:
    # A webhook's failure names the webhook first and the reason last, past 240 characters.
    detail = ('HTTP 500 Internal error occurred: failed calling webhook "vpol.validate.kyverno.svc-fail-finegrained-'
              'flux-tenant-depends-on": failed to call webhook: Post "https://kyverno-svc.kyverno.svc:443/vpol/'
              + "x" * 200 + '?timeout=10s": dial tcp 10.96.120.7:443: connect: connection refused')
    shown = clipped(detail)
    assert len(shown) <= DETAIL_LIMIT
    assert shown.startswith("HTTP 500 Internal error occurred: failed calling webhook")
    assert shown.endswith("dial tcp 10.96.120.7:443: connect: connection refused")
    assert clipped("HTTP 422 short") == "HTTP 422 short"
