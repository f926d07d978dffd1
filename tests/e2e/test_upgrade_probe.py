"""The upgrade probe catches what it is there to catch: an upgrade whose Kyverno policies fail
open while the admission controller restarts. The weakening is done by hand here (a policy
moved back to Kyverno's webhook with failurePolicy Ignore, then the admission controller
scaled to zero); the probe must turn red naming the admitted object. This tests the probe;
the fleet itself never runs that way (test_isolation_fail_closed.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from harness.core.repo import API
from harness.core.waits import wait_for
from harness.e2e import kyverno, probe, publish
from harness.e2e.converge import platform_ready, policies_not_ready
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.repos import FLEET_REPO, TENANT_ACCOUNT, TENANT_REPO
from harness.kit.images import podinfo_tag

pytestmark = pytest.mark.e2e

POLICY = "flux-tenant-service-account"


@pytest.fixture
def cluster(fleet: Fleet) -> ClusterHandle:
    """One cluster is enough: this tests the probe, not the fleet."""
    return next(iter(fleet.clusters.values()))


@pytest.fixture
def weakened(fleet: Fleet, cluster: ClusterHandle) -> Iterator[None]:
    """Undoes the weakening after the test: admission controller back, the fleet's policy
    re-applied by Flux (it owns those fields), every policy enforced again."""
    kube = cluster.kube
    replicas = kyverno.replicas(kube)
    yield
    kyverno.scale(kube, replicas)
    platform_ready(fleet, cluster, publish.head(fleet.server, FLEET_REPO))

    def back() -> tuple[bool, object, str]:
        waiting = policies_not_ready(kube)
        vap = kube.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", f"vpol-{POLICY}")
        return not waiting and vap is not None, waiting, f"not ready: {waiting}, vpol-{POLICY}: {vap is not None}"

    wait_for("every policy enforced again after the weakening", back, fleet.config.timeout(240))


def test_probe_names_the_object_a_failing_open_policy_admitted(fleet: Fleet, cluster: ClusterHandle,
                                                               weakened: None) -> None:
    kube = cluster.kube
    case = next(c for c in probe.cases(podinfo_tag(fleet.kit.versions), fleet.server.repo_url(TENANT_REPO))
                if c.policy == POLICY)
    record, prefix = probe.Record(), f"weak-probe-{uuid.uuid4().hex[:6]}"
    try:
        with (probe.running([cluster], TENANT_ACCOUNT, (case,), record, prefix),
              record.phase("policy fails open, admission controller restarting")):
            kube.patch(API["ValidatingPolicy"], "ValidatingPolicy", POLICY, None, {"spec": {
                "failurePolicy": "Ignore", "autogen": {"validatingAdmissionPolicy": {"enabled": False}}}})

            def moved() -> tuple[bool, object, str]:
                vap = kube.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", f"vpol-{POLICY}")
                return vap is None, vap, "the generated ValidatingAdmissionPolicy still exists"

            wait_for(f"Kyverno to take {POLICY} back into its webhook", moved, fleet.config.timeout(120))
            refused_before = [e for e in record.within(0.0, float("inf")) if e.check == "violating"]
            kyverno.scale(kube, 0)

            def caught() -> tuple[bool, object, str]:
                return bool(record.admissions()), record.admissions(), "no admission seen by the probe yet"

            wait_for("the probe to see a violating object admitted", caught, fleet.config.timeout(180))
    finally:
        probe.sweep_objects(cluster, prefix)
    # Before the admission controller went, the same violating object was refused.
    assert refused_before and all(e.ok for e in refused_before), refused_before
    with pytest.raises(AssertionError, match=rf"Kustomization apps/{prefix}-\d+-bad \({POLICY}\) ADMITTED "
                                             rf"on {cluster.env} at \d\d:\d\d:\d\d UTC"):
        probe.assert_none_admitted(record)
    assert probe.summary_line(probe.rows(record)).startswith("upgrade summary: violations admitted ")
    assert probe.rows(record)[-1].violations_admitted == len(record.admissions()) > 0
    podinfo = [e for e in record.within(0.0, float("inf")) if e.check == "podinfo"]
    assert any(e.ok for e in podinfo), f"the probe never reached podinfo: {podinfo[-1:]}"
