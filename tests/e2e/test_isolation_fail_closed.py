"""Admission holds while the policy engine is down: Kyverno generates a ValidatingAdmissionPolicy
from each tenant policy, so the API server itself refuses a violating tenant object with the
policy's reason even with Kyverno's admission controller scaled to zero (which makes Kyverno
remove its own webhooks). Compliant objects are still admitted meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.access.kube import Kube
from harness.core.topology import Tenant
from harness.core.waits import wait_for
from harness.e2e import kyverno, publish, tenancy
from harness.e2e.converge import applied_policy_names, platform_ready, policies_not_ready
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.repos import FLEET_REPO

pytestmark = [pytest.mark.e2e, pytest.mark.admission]

@pytest.fixture
def admission_down(fleet: Fleet, cluster: ClusterHandle) -> Iterator[Callable[[], None]]:
    """Kyverno's admission controller scaled to zero and gone; yields `restore`, which scales it
    back and waits until every policy is ready again (also run after the test)."""
    kube = cluster.kube
    replicas = kyverno.replicas(kube)
    restored: list[bool] = []

    def restore() -> None:
        if restored:
            return
        kyverno.scale(kube, replicas)

        def back() -> tuple[bool, dict[str, Any], str]:
            available = kyverno.available(kube)
            waiting = policies_not_ready(kube)
            return available >= replicas and not waiting, waiting, f"available={available} not ready={waiting}"

        wait_for(f"{kyverno.ADMISSION} back and every policy ready", back, fleet.config.timeout(240))
        # Flux may have seen Kyverno down meanwhile: the fleet's layers converge again.
        platform_ready(fleet, cluster, publish.head(fleet.server, FLEET_REPO))
        restored.append(True)

    kyverno.scale(kube, 0)
    try:
        def gone() -> tuple[bool, list[str], str]:
            # Scaled to zero, Kyverno removes its own webhook configurations on the way out.
            left = kyverno.admission_pods(kube) + kyverno.admission_webhooks(kube)
            return not left, left, f"left: {left}"

        wait_for(f"{kyverno.ADMISSION} pods and Kyverno's webhooks to be gone", gone, fleet.config.timeout(120))
        yield restore
    finally:
        restore()


def test_every_tenant_policy_is_enforced_by_the_api_server(cluster: ClusterHandle) -> None:
    """Each applied tenant policy has its generated ValidatingAdmissionPolicy and binding, and
    the API server type-checked every expression without a warning. (The objects themselves
    are checked: Kyverno 1.19 can lose the policy's `status.generated` to a write conflict.)"""
    kube = cluster.kube
    names = applied_policy_names()
    assert names, "the fleet applies no ValidatingPolicy: nothing would be checked"
    for name in names:
        vap = kube.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", f"vpol-{name}")
        assert vap is not None, f"{name}: no ValidatingAdmissionPolicy vpol-{name}"
        assert vap["spec"]["failurePolicy"] == "Fail", vap["spec"]
        warnings = ((vap.get("status") or {}).get("typeChecking") or {}).get("expressionWarnings")
        assert not warnings, f"vpol-{name}: {warnings}"
        binding = kube.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding",
                           f"vpol-{name}-binding")
        assert binding is not None and binding["spec"]["validationActions"] == ["Deny"], binding


def test_tenant_policies_hold_while_the_policy_engine_is_down(
    fleet: Fleet, cluster: ClusterHandle, tenant: Kube, probe_name: str, admission_down: Callable[[], None]
, team: Tenant) -> None:
    violating = tenancy.kustomization(team, probe_name, account=None, suspend=True)
    compliant = tenancy.kustomization(team, f"{probe_name}-ok", suspend=True)
    reason = ("spec.serviceAccountName is required",)
    tenancy.assert_refused(tenant, violating, tenancy.DENIED, tenancy.by_policy("flux-tenant-service-account"), *reason)
    tenancy.assert_admitted(tenant, cluster.kube, compliant)
    tenancy.assert_refused(tenant, tenancy.source("GitRepository", probe_name, "https://github.com/attacker/x", team.namespace),
                           tenancy.DENIED, tenancy.by_policy("flux-tenant-source-allowlist"))

    admission_down()  # the twin: the same objects once Kyverno is back
    tenancy.assert_refused(tenant, violating, tenancy.DENIED, tenancy.by_policy("flux-tenant-service-account"), *reason)
    tenancy.assert_admitted(tenant, cluster.kube, compliant)
