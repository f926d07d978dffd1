"""The upgrade probe catches what it is there to catch, one weakening per failure class, each
done by hand on one cluster (this tests the probe; the fleet never runs that way):

- a policy that fails open while the admission controller restarts: the admitted request is
  named, with its time;
- an admission policy binding missing for 3 s: the probe, trying every case every tick, sees
  the policy admit in the gap, and its watch reports the binding deleted and created again;
- an API server that stops answering: reported as no answer, never as a refusal, and not as a
  gap of the policy's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from harness.access.kube import Kube
from harness.core import commands
from harness.core.repo import API
from harness.core.waits import SOON_S, wait_for
from harness.e2e import kyverno, probe
from harness.e2e.cases import Case, named
from harness.e2e.converge import policy_regenerated
from harness.e2e.handles import ClusterHandle, Fleet

# The probe is tried against Kyverno's own failure modes (its admission controller gone).
pytestmark = [pytest.mark.e2e, pytest.mark.policy_engine("kyverno")]

POLICY = "flux-tenant-service-account"
CASE = "service-account/create"
BINDING = f"vpol-{POLICY}-binding"
ADMISSION = "admissionregistration.k8s.io/v1"
# How long the binding stays away: more than one tick of the probe, less than its gap limit.
BINDING_GAP_S = 3.0
# How long the API server is frozen: longer than one probe request's deadline.
SILENCE_S = probe.REQUEST_TIMEOUT_S + 4.0


@pytest.fixture
def cluster(fleet: Fleet) -> ClusterHandle:
    """One cluster is enough: this tests the probe, not the fleet."""
    return next(iter(fleet.clusters.values()))


def _case(fleet: Fleet) -> tuple[Case, ...]:
    return named(fleet, "weak", CASE)


@pytest.fixture
def restore(fleet: Fleet, cluster: ClusterHandle) -> Iterator[None]:
    """Undoes a weakening: the admission controller back and leading, the policy's weakened
    fields put back as the fleet applied them, the fleet reconciled, every policy enforced again.
    The fields go back once the new leader runs: Kyverno regenerates a policy's admission policy
    and writes its status when the policy's spec changes under a running leader, while a change
    it only finds on taking the lease can leave the status stale for minutes (a lost status
    write is not retried), which Flux's health check of the policies then waits out."""
    kube = cluster.kube
    fleet_spec = kube.get(API["ValidatingPolicy"], "ValidatingPolicy", POLICY)
    assert fleet_spec is not None, f"ValidatingPolicy {POLICY} is missing before the test"
    weakened = {field: fleet_spec["spec"].get(field) for field in ("failurePolicy", "autogen")}
    replicas = kyverno.replicas(kube)
    yield
    kyverno.scale_back(kube, replicas, fleet.config.timeout(120))
    wait_for("a Kyverno admission controller leading again", lambda: (bool(kyverno.leader(kube)), None, "no leader"),
             fleet.config.timeout(180), first_s=SOON_S)
    kyverno.patch_policy(kube, POLICY, weakened, fleet.config.timeout(120))
    policy_regenerated(fleet, cluster, POLICY)


def _own_refusal_seen(record: probe.Record, after: float) -> tuple[bool, object, str]:
    own = [e for e in record.all() if e.check == "violating" and e.answer == "own" and e.at > after]
    return bool(own), None, "no refusal by the policy since"


def test_probe_names_the_request_a_failing_open_policy_admitted(fleet: Fleet, cluster: ClusterHandle,
                                                                restore: None) -> None:
    kube = cluster.kube
    record = probe.Record()
    with (probe.running([cluster], fleet.tenants[0], _case(fleet), record, f"weak-{uuid.uuid4().hex[:6]}"),
          record.phase("policy fails open, admission controller restarting")):
        wait_for("the probe's first refusal", lambda: _own_refusal_seen(record, 0.0), fleet.config.timeout(30), first_s=SOON_S)
        kyverno.patch_policy(kube, POLICY, {"failurePolicy": "Ignore",
                                            "autogen": {"validatingAdmissionPolicy": {"enabled": False}}},
                             fleet.config.timeout(120))

        def moved() -> tuple[bool, object, str]:
            vap = kube.get(ADMISSION, "ValidatingAdmissionPolicy", f"vpol-{POLICY}")
            return vap is None, vap, "the generated ValidatingAdmissionPolicy still exists"

        wait_for(f"Kyverno to take {POLICY} back into its webhook", moved, fleet.config.timeout(120), first_s=SOON_S)
        kyverno.scale(kube, 0)

        def caught() -> tuple[bool, object, str]:
            return bool(record.admissions()), None, "no admission seen by the probe yet"

        wait_for("the probe to see a violating request admitted", caught, fleet.config.timeout(180), first_s=SOON_S)
    with pytest.raises(AssertionError, match=rf"{CASE}: violating request ADMITTED on {cluster.env} at "
                                             r"\d\d:\d\d:\d\d UTC"):
        probe.assert_held(record)
    assert probe.summary_line(probe.rows(record)).startswith("upgrade summary: violations admitted ")
    assert probe.rows(record)[-1].violations_admitted == len(record.admissions()) > 0
    assert any(c.what == "deleted" and c.name == f"vpol-{POLICY}" for c in record.changes), record.changes
    assert any(e.ok for e in record.all() if e.check == "podinfo"), "the probe never reached podinfo"


def test_probe_catches_a_binding_missing_for_three_seconds(fleet: Fleet, cluster: ClusterHandle,
                                                          restore: None) -> None:
    """Kyverno's admission controller is scaled to zero first, so the binding stays away exactly
    as long as this test keeps it away (Kyverno would write it back at once)."""
    kube = cluster.kube
    kyverno.scale(kube, 0)
    # Gone, not only unavailable: a terminating pod sleeps in its preStop hook first, still leading
    # and still writing the binding back.
    wait_for("Kyverno's admission controller gone", lambda: (not (pods := kyverno.admission_pods(kube)), pods,
                                                               f"still there: {pods}"), fleet.config.timeout(120), first_s=SOON_S)
    binding = kube.get(ADMISSION, "ValidatingAdmissionPolicyBinding", BINDING)
    assert binding is not None, f"{BINDING} is missing before the test"
    copy = {"apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": BINDING, "labels": binding["metadata"].get("labels") or {},
                         "ownerReferences": binding["metadata"].get("ownerReferences") or []},
            "spec": binding["spec"]}
    record = probe.Record()
    with (probe.running([cluster], fleet.tenants[0], _case(fleet), record, f"weak-{uuid.uuid4().hex[:6]}"),
          record.phase("admission policy binding missing")):
        wait_for("the probe's first refusal", lambda: _own_refusal_seen(record, 0.0), fleet.config.timeout(30), first_s=SOON_S)
        kube.delete(ADMISSION, "ValidatingAdmissionPolicyBinding", BINDING)
        removed = time.time()
        # The gap itself: its length is what the probe must catch, so it is held, not waited on.
        time.sleep(BINDING_GAP_S)
        kube.create(copy)
        restored = time.time()
        wait_for("the policy refusing again", lambda: _own_refusal_seen(record, restored), fleet.config.timeout(30), first_s=SOON_S)
    # In the gap the policy does not refuse (the API server drops the binding from its view a
    # moment after the delete): the request is admitted, or refused by something else should a
    # webhook of Kyverno's still fail closed; either way, not by the policy.
    in_gap = [e for e in record.all() if e.check == "violating" and removed <= e.at < restored]
    assert any(e.answer in ("admitted", "other") for e in in_gap), f"the gap was not seen: {in_gap}"
    row = next(r for r in probe.case_rows(record) if r.case == CASE)
    assert row.answered_gap_s >= probe.PERIOD_S, row
    changes = [(c.what, c.name) for c in record.changes if c.name == BINDING]
    assert changes[:2] == [("deleted", BINDING), ("created", BINDING)], record.changes
    if any(e.answer == "admitted" for e in in_gap):
        with pytest.raises(AssertionError, match=rf"{CASE}: violating request ADMITTED on {cluster.env}"):
            probe.assert_held(record)


@pytest.fixture
def silenced(fleet: Fleet, cluster: ClusterHandle) -> Iterator[str]:
    """The cluster's node container, unpaused after the test whatever happened."""
    node = cluster.node
    if not commands.succeeds(["docker", "inspect", node], timeout_s=30.0):
        pytest.fail(f"{node} is not a container of this host: this test freezes a kind node", pytrace=False)
    yield node
    commands.succeeds(["docker", "unpause", node], timeout_s=60.0)
    wait_for("the API server answering again", lambda: (_answers(cluster.kube), None, "no answer"),
             fleet.config.timeout(120))
    policy_regenerated(fleet, cluster, POLICY)


def _answers(kube: Kube) -> bool:
    try:
        kube.server_version()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


def test_probe_reports_a_silent_api_server_as_no_answer(fleet: Fleet, cluster: ClusterHandle, silenced: str) -> None:
    record = probe.Record()
    with (probe.running([cluster], fleet.tenants[0], _case(fleet), record, f"weak-{uuid.uuid4().hex[:6]}"),
          record.phase("API server frozen")):
        wait_for("the probe's first refusal", lambda: _own_refusal_seen(record, 0.0), fleet.config.timeout(30), first_s=SOON_S)
        commands.run(["docker", "pause", silenced], timeout_s=60.0)
        frozen = time.time()
        # The silence itself: held for longer than one request's deadline, then ended.
        time.sleep(SILENCE_S)
        commands.run(["docker", "unpause", silenced], timeout_s=60.0)
        thawed = time.time()
        wait_for("the policy refusing again", lambda: _own_refusal_seen(record, thawed), fleet.config.timeout(60), first_s=SOON_S)
    during = [e for e in record.all() if e.check == "violating" and e.at >= frozen]
    assert any(e.answer == "none" for e in during), f"no unanswered request recorded while frozen: {during}"
    assert not record.admissions(), record.admissions()
    assert probe.rows(record)[-1].no_answer > 0
    row = next(r for r in probe.case_rows(record) if r.case == CASE)
    assert row.none > 0 and row.answered_gap_s <= probe.GAP_LIMIT_S, row
    assert not any("no refusal by its own policy" in f for f in probe.failures(record)), probe.failures(record)
