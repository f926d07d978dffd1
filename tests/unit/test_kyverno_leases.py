"""Kyverno's admission controller scaled back after a test: the Leases of pods that are gone are
removed (only if unchanged since read), a Lease whose holder still runs, or was taken meanwhile,
is kept."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from harness.e2e import kyverno


class FakeKube:
    """Leases by name (holder, resourceVersion), the pods that exist, and what a delete meets."""

    def __init__(self, leases: dict[str, str], pods: set[str], on_delete: ApiException | None = None) -> None:
        self.leases = {name: {"metadata": {"name": name, "resourceVersion": f"rv-{name}"},
                              "spec": {"holderIdentity": holder}} for name, holder in leases.items()}
        self.pods = pods
        self.on_delete = on_delete
        self.deleted: list[tuple[str, str | None]] = []
        self.replicas = 0

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        assert namespace == kyverno.KYVERNO_NAMESPACE
        if kind == "Lease":
            return self.leases.get(name)
        if kind == "Pod":
            return {"metadata": {"name": name}} if name in self.pods else None
        assert kind == "Deployment", kind
        return {"spec": {"replicas": self.replicas}}

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [{"metadata": {"name": p}} for p in sorted(self.pods)]

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               resource_version: str | None = None) -> None:
        if self.on_delete is not None:
            raise self.on_delete
        self.deleted.append((name, resource_version))

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, body: dict[str, Any]) -> None:
        self.replicas = body["spec"]["replicas"]


GONE = "kyverno-admission-controller-old-abcde"
RUNNING = "kyverno-admission-controller-new-fghij"


def test_leases_of_a_gone_pod_are_deleted_at_the_version_read() -> None:
    kube = FakeKube({kyverno.LEASE: GONE, kyverno.PRE_LEASE: GONE}, pods=set())
    assert kyverno.clear_dead_leases(kube) == [kyverno.LEASE, kyverno.PRE_LEASE]  # type: ignore[arg-type]
    assert kube.deleted == [(kyverno.LEASE, f"rv-{kyverno.LEASE}"), (kyverno.PRE_LEASE, f"rv-{kyverno.PRE_LEASE}")]


def test_a_lease_whose_holder_runs_is_kept() -> None:
    kube = FakeKube({kyverno.LEASE: RUNNING, kyverno.PRE_LEASE: GONE}, pods={RUNNING})
    assert kyverno.clear_dead_leases(kube) == [kyverno.PRE_LEASE]  # type: ignore[arg-type]


def test_a_lease_taken_since_it_was_read_is_kept() -> None:
    kube = FakeKube({kyverno.LEASE: GONE}, pods=set(), on_delete=ApiException(status=409, reason="Conflict"))
    assert kyverno.clear_dead_leases(kube) == []  # type: ignore[arg-type]


def test_another_refusal_of_the_delete_is_raised() -> None:
    kube = FakeKube({kyverno.LEASE: GONE}, pods=set(), on_delete=ApiException(status=403, reason="Forbidden"))
    with pytest.raises(ApiException):
        kyverno.clear_dead_leases(kube)  # type: ignore[arg-type]


def test_scale_back_clears_only_once_the_pods_are_gone_and_then_scales() -> None:
    kube = FakeKube({kyverno.LEASE: GONE, kyverno.PRE_LEASE: GONE}, pods=set())
    kyverno.scale_back(kube, 1, timeout_s=5.0)  # type: ignore[arg-type]
    assert [name for name, _ in kube.deleted] == [kyverno.LEASE, kyverno.PRE_LEASE] and kube.replicas == 1


def test_scale_back_from_a_running_deployment_leaves_the_leases() -> None:
    kube = FakeKube({kyverno.LEASE: RUNNING}, pods={RUNNING})
    kube.replicas = 1
    kyverno.scale_back(kube, 2, timeout_s=5.0)  # type: ignore[arg-type]
    assert kube.deleted == [] and kube.replicas == 2
