"""Admission fails closed: while the policy engine's admission controller is down, the API server
refuses what the policies govern (the webhooks' failurePolicy is Fail) instead of letting it
through unchecked. The cost, measured here too: compliant tenant objects of those kinds are
refused for as long as it is down; kinds no policy governs are not affected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.access.kube import Kube
from harness.core.waits import wait_for
from harness.e2e import tenancy
from harness.e2e.converge import policies_not_ready
from harness.e2e.handles import ClusterHandle, Fleet

pytestmark = pytest.mark.e2e

ADMISSION = "kyverno-admission-controller"
KYVERNO_NAMESPACE = "kyverno"


def _admission_pods(kube: Kube) -> list[str]:
    return [p["metadata"]["name"] for p in kube.list("v1", "Pod", KYVERNO_NAMESPACE)
            if p["metadata"]["name"].startswith(f"{ADMISSION}-")]


def _scale(kube: Kube, replicas: int) -> None:
    kube.patch("apps/v1", "Deployment", ADMISSION, KYVERNO_NAMESPACE, {"spec": {"replicas": replicas}})


@pytest.fixture
def admission_down(fleet: Fleet, cluster: ClusterHandle) -> Iterator[Callable[[], None]]:
    """Kyverno's admission controller scaled to zero and gone; yields `restore`, which scales it
    back and waits until every policy is ready again (also run after the test)."""
    kube = cluster.kube
    replicas = (kube.get("apps/v1", "Deployment", ADMISSION, KYVERNO_NAMESPACE) or {})["spec"]["replicas"]
    restored: list[bool] = []

    def restore() -> None:
        if restored:
            return
        _scale(kube, replicas)

        def back() -> tuple[bool, dict[str, Any], str]:
            deploy = kube.get("apps/v1", "Deployment", ADMISSION, KYVERNO_NAMESPACE) or {}
            available = (deploy.get("status") or {}).get("availableReplicas") or 0
            waiting = policies_not_ready(kube)
            return available >= replicas and not waiting, waiting, f"available={available} not ready={waiting}"

        wait_for(f"{ADMISSION} back and every policy ready", back, fleet.config.timeout(240))
        restored.append(True)

    _scale(kube, 0)
    try:
        def gone() -> tuple[bool, list[str], str]:
            pods = _admission_pods(kube)
            return not pods, pods, f"pods left: {pods}"

        wait_for(f"{ADMISSION} pods to be gone", gone, fleet.config.timeout(120))
        yield restore
    finally:
        restore()


def test_admission_fails_closed_while_the_policy_engine_is_down(
    fleet: Fleet, cluster: ClusterHandle, tenant: Kube, probe_name: str, admission_down: Callable[[], None]
) -> None:
    violating = tenancy.kustomization(probe_name, account=None, suspend=True)
    compliant = tenancy.kustomization(f"{probe_name}-ok", suspend=True)
    tenancy.assert_refused(tenant, violating, 500, "failed calling webhook")
    tenancy.assert_refused(tenant, compliant, 500, "failed calling webhook")  # the cost of failing closed
    # Kinds no policy governs are untouched: the webhooks match only the policies' kinds.
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.config_map(probe_name, "apps"))

    admission_down()  # the twin: the same two objects once the controller is back

    def admits() -> tuple[bool, str, str]:
        try:
            tenancy.assert_admitted(tenant, cluster.kube, compliant)
        except AssertionError as exc:
            return False, "", str(exc)
        return True, "", "admitted"

    wait_for("a compliant tenant Kustomization to be admitted again", admits, fleet.config.timeout(120))
    tenancy.assert_refused(tenant, violating, 400, "flux-tenant-service-account", "spec.serviceAccountName is required")
