"""The tests marked `admission` run on one cluster (--e2e-admission-cluster): that is sound only
while every cluster admits alike, which this checks on the live clusters."""

from __future__ import annotations

import pytest

from harness.core.config import E2EConfig
from harness.e2e.alike import admission_inputs, differences
from harness.e2e.handles import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.admission_alike]


def test_every_cluster_admits_alike(fleet: Fleet, e2e_config: E2EConfig) -> None:
    chosen = e2e_config.admission_cluster
    reference = admission_inputs(fleet.clusters[chosen].kube)  # type: ignore[index]
    assert any(key.startswith("ValidatingPolicy ") for key in reference), \
        f"{chosen} reports no ValidatingPolicy: nothing was compared"
    assert any(key.startswith("NetworkPolicy ") for key in reference), \
        f"{chosen} reports no tenant NetworkPolicy: nothing was compared"
    found = {env: differences(reference, admission_inputs(handle.kube))
             for env, handle in fleet.clusters.items() if env != chosen}
    unlike = {env: lines for env, lines in found.items() if lines}
    assert not unlike, (
        f"the admission tests ran on {chosen} only, but other clusters admit differently:\n"
        + "\n".join(f"  {env}: {line}" for env, lines in unlike.items() for line in lines)
        + "\nmake them alike, or run those tests on each cluster: --e2e-admission-cluster=every "
          "(FLEET_E2E_ADMISSION_CLUSTER=every)")
