"""A rollout of Kyverno's admission controller (what every chart upgrade, restart or node drain
does) refuses no compliant tenant request and admits no violating one.

The replaced pod stops listening on SIGTERM while kube-proxy still routes the API server's new
webhook calls to it for a moment; without the fleet's preStop sleep (infrastructure/kyverno,
release.yaml) those calls fail with "connection refused" and the fail-closed webhooks refuse
compliant requests. The upgrade probe met that gap once in a few runs at one request per case
every 2 s; here the cases run back to back through the whole rollout, so a gap of a few hundred
milliseconds is met by dozens of requests.
"""

from __future__ import annotations

import time
import uuid

import pytest

from harness.core.progress import say
from harness.core.waits import wait_for
from harness.e2e import kyverno, probe
from harness.e2e.cases import Case, cases
from harness.e2e.handles import ClusterHandle, Fleet
from harness.kit.images import podinfo_tag

pytestmark = [pytest.mark.e2e, pytest.mark.admission, pytest.mark.policy_engine("kyverno")]

# Creates whose compliant twin goes through one of Kyverno's fail-closed webhooks (the
# Kustomization and source checks), as the three refused in the run that met the gap did.
CASES = ("service-account/create", "source-ref/create")
# The fewest compliant answers the probe must have had while the old pod was terminating for the
# test to mean anything (back to back, a round of these cases takes well under a second).
MIN_ANSWERS_IN_WINDOW = 20


def _cases(fleet: Fleet) -> tuple[Case, ...]:
    team = fleet.tenants[0]
    found = tuple(c for c in cases(team, podinfo_tag(fleet.kit.versions), fleet.server.repo_url(team.repo), "roll")
                  if c.name in CASES)
    assert sorted(c.name for c in found) == sorted(CASES), [c.name for c in found]
    return found


def test_a_rollout_of_the_admission_controller_refuses_no_compliant_request(fleet: Fleet,
                                                                            cluster: ClusterHandle) -> None:
    kube, record = cluster.kube, probe.Record()
    replicas = kyverno.replicas(kube)
    old = set(kyverno.admission_pods(kube))
    assert old, f"no {kyverno.ADMISSION} pod runs before the rollout"
    timeout = fleet.config.timeout(240)
    with (probe.running([cluster], fleet.tenants[0], _cases(fleet), record, f"roll-{uuid.uuid4().hex[:6]}",
                        period_s=0.0),
          record.phase(f"{kyverno.ADMISSION} rolled out")):
        wait_for("the probe's first answers", lambda: (len(record.all()) > 4, None, "no answers yet"),
                 fleet.config.timeout(30))
        restarted = time.time()
        kyverno.restart(kube)

        def replaced() -> tuple[bool, object, str]:
            pods = set(kyverno.admission_pods(kube))
            left, available = pods & old, kyverno.available(kube)
            return (not left and available >= replicas, pods,
                    f"old pods still there: {sorted(left)}, available {available}/{replicas}")

        wait_for(f"{kyverno.ADMISSION} replaced (its old pods gone, the new ones available)", replaced, timeout)
        replaced_at = time.time()
        wait_for("a new admission controller leading", lambda: (kyverno.leader(kube) not in ("", *old), None,
                                                                f"leader: {kyverno.leader(kube)!r}"), timeout)
    window = [e for e in record.all() if e.check == "compliant" and restarted <= e.at <= replaced_at]
    say(f"{len(window)} compliant requests answered while the old pods terminated ({replaced_at - restarted:.1f} s)")
    probe.assert_held(record)
    assert len(window) >= MIN_ANSWERS_IN_WINDOW, (
        f"only {len(window)} compliant answers while the old pods terminated ({replaced_at - restarted:.1f} s): "
        "the probe did not run back to back, so a gap could have been missed")

    def enforced() -> tuple[bool, object, str]:
        waiting = fleet.engine.not_enforced(kube)
        return not waiting, waiting, f"not enforced: {waiting}"

    wait_for("every policy enforced after the rollout", enforced, timeout)
