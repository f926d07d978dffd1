"""A broken tenant repo turns the run red with the object, Flux's reason and a diagnostics folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness import flux, publish, yamlio
from harness.fleet import TENANT_REPO, Fleet, collect_diagnostics
from harness.flux import FluxError, Ref

pytestmark = pytest.mark.e2e


def _break_values(work: Path) -> None:
    """An invalid values type: the chart renders `replicas: "two"`, which the API rejects."""
    path = work / "base" / "podinfo-release.yaml"
    release = yamlio.load(path.read_text())
    release["spec"]["values"]["replicaCount"] = "two"
    release["spec"]["install"]["remediation"]["retries"] = 0
    release["spec"]["upgrade"]["remediation"]["retries"] = 0
    path.write_text(yamlio.dump(release))
    for env in ("staging", "production"):
        overlay = work / env / "podinfo-values.yaml"
        patch = yamlio.load(overlay.read_text())
        patch["spec"]["values"].pop("replicaCount", None)
        overlay.write_text(yamlio.dump(patch))


def test_broken_helm_values_fail_with_object_reason_and_diagnostics(
    fleet: Fleet, restore_tenant_repo: Callable[[], str | None]
) -> None:
    commit = publish.commit_change(fleet.server, TENANT_REPO, _break_values, "e2e: invalid values type")
    assert commit is not None
    handle = next(iter(fleet.clusters.values()))
    flux.request_reconcile(handle.kube, Ref("GitRepository", "apps", "dev-team"))
    # The tenant Kustomization applies the (schema-valid) HelmRelease; the release itself fails.
    flux.wait_ready(handle.kube, Ref("Kustomization", "apps", "dev-team"), commit, fleet.config.timeout(180))
    with pytest.raises(FluxError) as failure:
        flux.wait_ready(handle.kube, Ref("HelmRelease", "apps", "podinfo"), None, fleet.config.timeout(120),
                        diagnostics="artifacts/...")
    message = str(failure.value)
    assert "HelmRelease apps/podinfo" in message, message
    assert "reason=" in message and "replicas" in message, message
    folder = collect_diagnostics(fleet, "failure-experience")
    objects = (folder / handle.env / "flux-objects.yaml").read_text()
    assert "name: podinfo" in objects and "replicas" in objects
    assert (folder / handle.env / "logs-flux-system-helm-controller.txt").stat().st_size > 0
