"""Fixtures shared by the e2e tests: probe names, the tenant's identity, tenant repo restore."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from harness.access.kube import Kube
from harness.e2e import publish
from harness.e2e.converge import tenant_ready_everywhere
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.repos import TENANT_ACCOUNT, TENANT_REPO


@pytest.fixture
def probe_name() -> str:
    """A unique name for objects this test creates."""
    return f"e2e-probe-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def tenant(cluster: ClusterHandle) -> Kube:
    """API access as the tenant's reconciler account (impersonated)."""
    return cluster.kube.as_user(TENANT_ACCOUNT)


@pytest.fixture
def restore_tenant_repo(fleet: Fleet) -> Iterator[Callable[[], str | None]]:
    """Puts the tenant repo back as it was (a new commit); also called after the test."""
    original = publish.snapshot(fleet.server, TENANT_REPO)

    def restore() -> str | None:
        commit = publish.restore(fleet.server, TENANT_REPO, original, "e2e: restore tenant repo")
        if commit is not None:
            tenant_ready_everywhere(fleet, commit)
        return commit

    yield restore
    restore()
