"""Readiness predicates on Flux object dicts."""

from __future__ import annotations

from typing import Any

import pytest

from harness.access.readiness import has_revision, is_current, status_of

SHA = "3f2a9c1e5b7d9f0a1c3e5b7d9f0a1c3e5b7d9f0a"


def obj(generation: int = 2, observed: int = 2, **ready: Any) -> dict[str, Any]:
    conditions = [{"type": "Ready", **ready}] if ready else []
    return {"metadata": {"generation": generation},
            "status": {"observedGeneration": observed, "conditions": conditions,
                       "lastAppliedRevision": f"main@sha1:{SHA}"}}


def test_ready_at_pushed_revision() -> None:
    status = status_of(obj(status="True", reason="ReconciliationSucceeded"), commit=SHA)
    assert status.verdict == "ready"


def test_ready_at_other_revision_is_pending() -> None:
    status = status_of(obj(status="True", reason="ReconciliationSucceeded"), commit="0" * 40)
    assert status.verdict == "pending"
    assert "another revision" in status.message


def test_stale_generation_is_pending_even_if_ready() -> None:
    assert status_of(obj(generation=3, observed=2, status="True")).verdict == "pending"


def test_ready_false_on_current_generation_is_failed_with_reason() -> None:
    status = status_of(obj(status="False", reason="ReconciliationFailed", message="forbidden"))
    assert (status.verdict, status.reason, status.message) == ("failed", "ReconciliationFailed", "forbidden")
    assert not status.terminal  # Flux retries these


def test_unknown_is_pending() -> None:
    assert status_of(obj(status="Unknown", reason="Progressing")).verdict == "pending"


def test_stalled_is_failed() -> None:
    o = obj(status="False", reason="UpgradeFailed", message=".spec.replicas: expected numeric")
    o["status"]["conditions"].append({"type": "Stalled", "status": "True", "reason": "InvalidChartReference",
                                      "message": "bad"})
    assert status_of(o).verdict == "failed"
    assert status_of(o).reason == "InvalidChartReference"
    assert status_of(o).terminal
    assert ".spec.replicas: expected numeric" in status_of(o).message  # Ready's detail is kept


def test_stalled_about_an_older_generation_is_not_terminal() -> None:
    o = obj(generation=3, observed=2, status="False", reason="UpgradeFailed", observedGeneration=2)
    o["status"]["conditions"].append({"type": "Stalled", "status": "True", "reason": "InvalidChartReference",
                                      "message": "bad", "observedGeneration": 2})
    status = status_of(o)
    assert (status.verdict, status.terminal) == ("pending", False)


def test_first_failure_of_an_object_that_never_succeeded_is_failed() -> None:
    # Flux leaves status.observedGeneration at -1 until a reconcile succeeds; the condition
    # itself says which generation it is about.
    o = obj(generation=1, observed=-1, status="False", reason="ReconciliationFailed",
            message="Kustomization/x is forbidden", observedGeneration=1)
    status = status_of(o)
    assert (status.verdict, status.reason) == ("failed", "ReconciliationFailed")


def test_failure_about_an_older_generation_is_pending() -> None:
    o = obj(generation=2, observed=1, status="False", reason="ReconciliationFailed", observedGeneration=1)
    assert status_of(o).verdict == "pending"


def test_no_conditions_is_pending() -> None:
    assert status_of(obj()).verdict == "pending"


@pytest.mark.parametrize(("revision", "expected"), [
    (f"main@sha1:{SHA}", True), (f"sha1:{SHA}", True), ("main@sha1:abc", False), ("", False),
])
def test_has_revision(revision: str, expected: bool) -> None:
    assert has_revision(revision, SHA) is expected


def test_is_current_needs_generation() -> None:
    assert not is_current({"metadata": {}, "status": {"observedGeneration": 1}})
