"""The convergence engine: its plan follows the fleet's dependsOn with each kind's deadline, every
wait carries a reconcile request and ignores what came before it, and no API attempt outlasts
the wait's deadline. Flux is played by a scripted fake of the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from harness.core import topology
from harness.core.repo import platform_order
from harness.e2e import converge, flux
from harness.e2e.converge import DEADLINE_S, FIRST_INSTALL_S, Target, platform_plan, tenant_plan
from harness.e2e.flux import FluxError, Ref

SHA = "3f2a9c1e5b7d9f0a1c3e5b7d9f0a1c3e5b7d9f0a"
OLD = "0" * 40
State = Callable[[str | None, int], dict[str, Any]]  # (last token handled, polls since) -> object


def flux_object(ready: str = "True", reason: str = "ReconciliationSucceeded", handled: str | None = None,
                stalled: bool = False, attempted: str = SHA, message: str = "") -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": ready, "reason": reason, "message": message, "observedGeneration": 1}]
    if stalled:
        conditions.append({"type": "Stalled", "status": "True", "reason": reason, "message": message,
                           "observedGeneration": 1})
    return {"metadata": {"generation": 1},
            "status": {"observedGeneration": 1, "conditions": conditions, "lastAppliedRevision": f"main@sha1:{SHA}",
                       "lastAttemptedRevision": f"main@sha1:{attempted}", "lastHandledReconcileAt": handled}}


class FakeKube:
    """Objects whose status a script computes from the last reconcile request; records every
    request made and each get's deadline."""

    def __init__(self, states: dict[Ref, State]) -> None:
        self.states = states
        self.tokens: dict[Ref, str] = {}
        self.polls: dict[Ref, int] = {}
        self.asked: list[Ref] = []
        self.deadlines: list[float | None] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None,
            timeout_s: float | None = None) -> dict[str, Any] | None:
        ref = Ref(kind, namespace or "", name)
        self.deadlines.append(timeout_s)
        self.polls[ref] = self.polls.get(ref, 0) + 1
        state = self.states.get(ref)
        return state(self.tokens.get(ref), self.polls[ref]) if state else None

    def annotate(self, api_version: str, kind: str, name: str, namespace: str | None, annotations: dict[str, str]) -> None:
        ref = Ref(kind, namespace or "", name)
        self.asked.append(ref)
        self.tokens[ref] = annotations[flux.REQUESTED_AT]
        self.polls[ref] = 0


def ready_once_asked(token: str | None, polls: int) -> dict[str, Any]:
    return flux_object(handled=token) if token else flux_object(ready="False", reason="Progressing", handled="old")


def test_the_platform_plan_follows_depends_on_with_each_kinds_deadline(repo_root: Any) -> None:
    plan = platform_plan("staging", SHA)
    assert [t.ref for t in plan] == [Ref("GitRepository", "flux-system", "flux-system"),
                                     *(Ref("Kustomization", "flux-system", n) for n in platform_order("staging")),
                                     Ref("HelmRelease", "flux-system", "kyverno")]
    assert [t.budget_s for t in plan] == [DEADLINE_S[t.ref.kind] for t in plan]
    assert all(t.commit == SHA for t in plan if t.ref.kind != "HelmRelease")
    first = platform_plan("staging", SHA, first_install=True)
    assert {t.budget_s for t in first if t.ref.kind == "Kustomization"} == {FIRST_INSTALL_S}


def test_converge_asks_every_target_in_order_down_to_the_releases_the_tenant_repo_ships() -> None:
    dev = topology.read().tenants[0]
    assert dev.releases == ("podinfo",)  # a probe a test adds to the repository is not one of them
    plan = tenant_plan(dev, SHA)
    kube = FakeKube({t.ref: ready_once_asked for t in plan})
    converge.converge(kube, plan)  # type: ignore[arg-type]
    assert kube.asked == [converge.source_ref(dev), converge.sync_ref(dev), Ref("HelmRelease", dev.namespace, "podinfo")]


def test_a_failure_from_before_the_request_does_not_fail_the_wait() -> None:
    """Stalled before the request (what a disruptive test leaves behind); Ready once it is handled."""
    ref = Ref("Kustomization", "flux-system", "tenants")

    def state(token: str | None, polls: int) -> dict[str, Any]:
        if polls < 2:
            return flux_object(ready="False", reason="HealthCheckFailed", stalled=True, handled="before")
        return flux_object(handled=token)

    kube = FakeKube({ref: state})
    converge.converge(kube, [Target(ref, SHA)])  # type: ignore[arg-type]
    assert kube.asked == [ref]


def test_a_failure_that_answers_the_request_fails_at_once_with_flux_reason() -> None:
    ref = Ref("Kustomization", "apps", "dev-team")
    state: State = lambda token, polls: flux_object(ready="False", reason="InvalidPath", handled=token,
                                                     message="path not found")
    started = time.monotonic()
    with pytest.raises(FluxError, match="Kustomization apps/dev-team failed: reason=InvalidPath: path not found"):
        converge.converge(FakeKube({ref: state}), [Target(ref, SHA)])  # type: ignore[arg-type]
    assert time.monotonic() - started < 10, "it waited instead of failing fast"


def test_a_failure_of_an_older_revision_is_not_the_commits() -> None:
    """Handled, but the failure is about the revision before the one asked for: wait on; fail
    once the asked-for revision fails."""
    ref = Ref("Kustomization", "apps", "dev-team")

    def state(token: str | None, polls: int) -> dict[str, Any]:
        attempted = OLD if polls < 2 else SHA
        return flux_object(ready="False", reason="InvalidPath", handled=token, attempted=attempted, message=attempted)

    kube = FakeKube({ref: state})
    with pytest.raises(FluxError, match=f"reason=InvalidPath: {SHA}"):
        converge.converge(kube, [Target(ref, SHA)])  # type: ignore[arg-type]
    assert kube.polls[ref] == 2


def test_no_api_attempt_outlasts_the_deadline() -> None:
    ref = Ref("GitRepository", "flux-system", "flux-system")
    kube = FakeKube({ref: lambda token, polls: flux_object(ready="False", reason="Progressing", handled=token)})
    with pytest.raises(FluxError, match="not done after"):
        converge.converge(kube, [Target(ref, SHA, deadline_s=3.0)])  # type: ignore[arg-type]
    bounds = [d for d in kube.deadlines if d is not None]
    assert bounds and len(bounds) == len(kube.deadlines), kube.deadlines
    assert max(bounds) <= 3.0 and min(bounds) >= flux.MIN_REQUEST_S, bounds
