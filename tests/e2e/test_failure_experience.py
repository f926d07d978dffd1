"""A broken tenant repo turns a test red fast, with the object, Flux's reason and the
diagnostics folder the plugin collects on failure.

The failing test runs in a pytest session of its own (pytester, in this process) against this
run's fleet, so what is checked is the plugin's own on-failure path and the report a person
reads, not a folder this test made.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from harness.core import yamlio
from harness.core.topology import Tenant
from harness.e2e import flux, publish
from harness.e2e.converge import source_ref, sync_ref
from harness.e2e.handles import Fleet
from harness.entry.plugin import FLEET_KEY

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e

RELEASE_TIMEOUT_S = 180.0


def _break_values(work: Path) -> None:
    """An invalid values type: the chart renders `replicas: "two"`, which the API rejects."""
    path = work / "base" / "podinfo-release.yaml"
    release = yamlio.load(path.read_text())
    release["spec"]["values"]["replicaCount"] = "two"
    release["spec"]["install"]["remediation"]["retries"] = 0
    release["spec"]["upgrade"]["remediation"]["retries"] = 0
    path.write_text(yamlio.dump(release))
    for overlay in sorted(work.glob("*/podinfo-values.yaml")):
        patch = yamlio.load(overlay.read_text())
        patch["spec"]["values"].pop("replicaCount", None)
        overlay.write_text(yamlio.dump(patch))


class FleetForInnerSession:
    """Hands this run's fleet to the inner session: to the plugin's on-failure hook (through
    the session stash, as the fleet fixture does) and to the failing test."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        session.stash[FLEET_KEY] = self.fleet

    @pytest.fixture
    def outer_fleet(self) -> Fleet:
        return self.fleet


INNER_TEST = f'''
from harness.e2e import flux
from harness.e2e.flux import Ref

def test_podinfo_release_is_ready(outer_fleet):
    handle = next(iter(outer_fleet.clusters.values()))
    namespace = outer_fleet.tenants[0].namespace
    flux.wait_ready(handle.kube, Ref("HelmRelease", namespace, "podinfo"), None, {RELEASE_TIMEOUT_S})
'''


@pytest.mark.first_tenant
def test_broken_helm_values_fail_fast_with_reason_and_diagnostics(
    fleet: Fleet, team: Tenant, restore_tenant_repo: Callable[[], str | None], pytester: pytest.Pytester
) -> None:
    commit = publish.commit_change(fleet.server, team.repo, _break_values, "e2e: invalid values type")
    assert commit is not None
    handle = next(iter(fleet.clusters.values()))
    flux.request_reconcile(handle.kube, source_ref(team))
    # The tenant Kustomization applies the (schema-valid) HelmRelease; the release itself fails.
    flux.wait_ready(handle.kube, sync_ref(team), commit, fleet.config.timeout(180))

    pytester.makepyfile(test_inner=INNER_TEST)
    # The inner session's diagnostics go to a scratch folder, not into this run's artifacts.
    inner_fleet = replace(fleet, config=replace(fleet.config, artifacts=pytester.path / "artifacts"))
    started = time.monotonic()
    result = pytester.runpytest_inprocess("-p", "harness.entry.plugin", "-p", "no:cacheprovider",
                                          plugins=[FleetForInnerSession(inner_fleet)])
    elapsed = time.monotonic() - started

    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert f"HelmRelease {team.namespace}/podinfo failed: reason=" in output and "replicas" in output, output
    assert elapsed < RELEASE_TIMEOUT_S / 2, f"the failure took {elapsed:.0f}s: it waited instead of failing fast"
    found = re.search(r"diagnostics for this failure: (\S+)", output)
    assert found, f"the report names no diagnostics folder:\n{output}"
    folder = Path(found.group(1)) / handle.env
    assert folder.is_relative_to(inner_fleet.config.artifacts), folder
    objects = (folder / "flux-objects.yaml").read_text()
    assert "name: podinfo" in objects and "replicas" in objects
    assert (folder / "logs-flux-system-helm-controller.txt").stat().st_size > 0
