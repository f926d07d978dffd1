"""Fixtures shared by the e2e tests: probe names, the tenant's identity, tenant repo restore."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import publish
from harness.fleet import TENANT_ACCOUNT, TENANT_REPO, ClusterHandle, Fleet, tenant_ready_everywhere
from harness.kube import Kube


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
    with publish.checkout(fleet.server, TENANT_REPO) as work:
        snapshot = {p.relative_to(work): p.read_bytes() for p in work.rglob("*")
                    if p.is_file() and ".git" not in p.parts}

    def write_snapshot(work: Path) -> None:
        for path in [p for p in work.rglob("*") if p.is_file() and ".git" not in p.parts]:
            path.unlink()
        for rel, data in snapshot.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_bytes(data)

    def restore() -> str | None:
        commit = publish.commit_change(fleet.server, TENANT_REPO, write_snapshot, "e2e: restore tenant repo")
        if commit is not None:
            tenant_ready_everywhere(fleet, commit)
        return commit

    yield restore
    restore()
