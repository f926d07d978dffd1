"""The upgrade probe's cases come from the policies: for a policy with no written case in
harness/e2e/cases.py, the probe derives one from the policy's offline tests (a resource the
test expects refused, created by the tenant, against one it expects admitted). These tests show
on a live cluster that the derivation holds for every policy it can serve, and that the probe's
case set as `make upgrade` builds it leaves no applied policy out."""

from __future__ import annotations

import pytest

from harness.core.topology import Tenant
from harness.e2e import probe
from harness.e2e.cases import of_fleet
from harness.e2e.converge import applied_policy_names
from harness.e2e.handles import ClusterHandle, Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.admission]


def test_each_policy_derives_a_case_that_holds(fleet: Fleet, cluster: ClusterHandle, team: Tenant) -> None:
    """Every policy whose offline tests have a CREATE example in a tenant namespace: one of its
    derived cases is refused by that policy's own admission policy, with its twin admitted, for
    this tenant (the examples are moved to its namespace, account and repository)."""
    _, candidates = of_fleet(fleet, team, "derived", fleet.topology.root)
    applied = applied_policy_names(fleet.topology.root)
    assert set(candidates) & set(applied), f"no applied policy has a derived case: {sorted(candidates)}"
    failed = {}
    for policy in sorted(set(candidates) & set(applied)):
        case, wrong = probe.calibrated(cluster, team, candidates[policy])
        if case is None:
            failed[policy] = wrong[:4]
    assert not failed, "policies none of whose derived cases holds on the cluster:\n" + "\n".join(
        f"{policy}:\n  " + "\n  ".join(wrong) for policy, wrong in failed.items())


def test_the_probe_covers_every_applied_policy(fleet: Fleet, cluster: ClusterHandle, team: Tenant) -> None:
    """With no written case at all, derivation alone must leave out only the policies its
    examples cannot express (an identity, an UPDATE or DELETE, a subresource): those, and only
    those, need a written case; with the written ones, no policy is left out."""
    written, candidates = of_fleet(fleet, team, "covered", fleet.topology.root)
    applied = applied_policy_names(fleet.topology.root)
    assert candidates, f"no offline example under {fleet.topology.root}"
    found, problems = probe.with_derived(cluster, team, written, candidates, applied)
    assert not problems, "\n".join(problems)
    assert {c.policy for c in found} == set(applied)
    _, alone = probe.with_derived(cluster, team, (), candidates, applied)
    left_out = {p.split()[1] for p in alone}
    assert left_out == set(applied) - set(candidates), (sorted(left_out), sorted(set(applied) - set(candidates)))
