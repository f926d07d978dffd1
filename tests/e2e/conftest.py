"""Fixtures shared by the e2e tests: probe names, the tenant's identity, tenant repo restore.

`team` (the tenant a test acts as) is parametrized by the plugin over every tenant of the
topology whose repository this tree holds; `env` over the environments."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from harness.access.kube import Kube
from harness.core.topology import Tenant
from harness.e2e import publish
from harness.e2e.converge import tenant_ready_everywhere
from harness.e2e.handles import ClusterHandle, Fleet


@pytest.fixture
def probe_name() -> str:
    """A unique name for objects this test creates."""
    return f"e2e-probe-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def tenant(cluster: ClusterHandle, team: Tenant) -> Kube:
    """API access as the tenant's reconciler account (impersonated)."""
    return cluster.kube.as_user(team.user)


@pytest.fixture
def restore_tenant_repo(fleet: Fleet, team: Tenant) -> Iterator[Callable[[], str | None]]:
    """Puts the tenant repo back as it was (a new commit); also called after the test."""
    original = publish.snapshot(fleet.server, team.repo)

    def restore() -> str | None:
        commit = publish.restore(fleet.server, team.repo, original, "e2e: restore tenant repo")
        if commit is not None:
            tenant_ready_everywhere(fleet, team, commit)
        return commit

    yield restore
    restore()
