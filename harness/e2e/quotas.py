"""Tenant ResourceQuotas counted in full on a brand-new cluster.

A ResourceQuota created before kube-controller-manager's quota controller has discovered the
Flux CRDs (it rediscovers resources every 30 s) reports no usage for its `count/<Flux kind>`
entries until its next full resync, five minutes later (kubernetes/kubernetes#72384), and the
API server refuses the tenant's Flux objects meanwhile ("status unknown for quota"). The native
variant applies its tenants within seconds of the CRDs, so about every other fresh bring-up
waited those five minutes.

The controller recounts a quota in full when an object of a kind the quota tracks is deleted in
its namespace. While a tenant's quota lacks a usage, the harness creates and deletes a ConfigMap
of its own there, every few seconds: it asks for the recount, as it asks Flux to reconcile
rather than waiting out an interval. The quota itself is never touched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from harness.access.kube import KubeError
from harness.core.progress import say

RECOUNT_EVERY_S = 5.0
MARKER = "e2e-quota-recount"


class QuotaClient(Protocol):
    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]: ...
    def create(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]: ...
    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               dry_run: bool = False) -> None: ...


def uncounted(kube: QuotaClient, namespace: str) -> dict[str, list[str]]:
    """Each ResourceQuota of `namespace` with limits its status has no usage for, and those limits."""
    found = {}
    for quota in kube.list("v1", "ResourceQuota", namespace):
        status = quota.get("status") or {}
        missing = sorted(set(status.get("hard") or {}) - set(status.get("used") or {}))
        if missing:
            found[quota["metadata"]["name"]] = missing
    return found


def ask_recount(kube: QuotaClient, namespace: str) -> None:
    """Have the quota controller recount every quota of `namespace` that tracks ConfigMaps."""
    kube.delete("v1", "ConfigMap", MARKER, namespace)  # one a failed attempt left behind
    kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": MARKER, "namespace": namespace},
                 "data": {"why": "deleted at once: its deletion makes the quota controller recount"}})
    kube.delete("v1", "ConfigMap", MARKER, namespace)


@contextmanager
def recounted(kube: QuotaClient, namespaces: Sequence[str], env: str,
              every_s: float = RECOUNT_EVERY_S) -> Iterator[None]:
    """While the block runs, ask for a recount in each of `namespaces` whose quota lacks a usage
    (a namespace or quota that does not exist yet is looked at again next time)."""
    stop = threading.Event()

    def watch() -> None:
        told: set[str] = set()
        while not stop.wait(every_s):
            for namespace in namespaces:
                try:
                    missing = uncounted(kube, namespace)
                    if not missing:
                        continue
                    if namespace not in told:
                        told.add(namespace)
                        say(f"{env}: quota {', '.join(f'{namespace}/{name}' for name in missing)} has no usage "
                            f"for {', '.join(sorted({r for rs in missing.values() for r in rs}))} (a new cluster's "
                            f"quota controller found the CRDs after the quota, kubernetes#72384): asking for a "
                            f"recount with ConfigMap {namespace}/{MARKER}")
                    ask_recount(kube, namespace)
                except (KubeError, ApiException):  # no namespace yet, say: look again next time
                    continue

    thread = threading.Thread(target=watch, name=f"{env}-quota-recount", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(every_s + 30.0)
