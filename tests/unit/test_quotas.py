"""A tenant quota that lacks a usage on a new cluster (kubernetes#72384) is recounted: the
harness deletes a ConfigMap of its own in the namespace, which makes the quota controller
recount the quota in full; a quota counted in full is left alone, and the quota itself is
never written."""

from __future__ import annotations

import threading
import time
from typing import Any

from harness.e2e import quotas

FLUX_COUNT = "count/kustomizations.kustomize.toolkit.fluxcd.io"


class FakeCluster:
    """One namespace's quota and the quota controller's rule: a deleted ConfigMap has the
    quota recounted, and the recount covers the Flux kinds once they have been discovered."""

    def __init__(self, discovered: bool) -> None:
        self.discovered = discovered
        self.used: dict[str, str] = {"configmaps": "1"}
        self.calls: list[tuple[str, str]] = []
        self.looked = 0
        self.lock = threading.Lock()

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        assert (kind, namespace) == ("ResourceQuota", "apps")
        with self.lock:
            self.looked += 1
            return [{"metadata": {"name": "dev-team"},
                     "status": {"hard": {"configmaps": "50", FLUX_COUNT: "20"}, "used": dict(self.used)}}]

    def create(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        with self.lock:
            self.calls.append(("create", f"{obj['kind']} {obj['metadata']['name']}"))
        return obj

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               dry_run: bool = False) -> None:
        with self.lock:
            self.calls.append(("delete", f"{kind} {name}"))
            if kind == "ConfigMap" and self.discovered and ("create", f"ConfigMap {name}") in self.calls:
                self.used[FLUX_COUNT] = "0"


def _wait_until(check: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_a_quota_without_a_usage_is_recounted_by_a_configmap_deletion() -> None:
    cluster = FakeCluster(discovered=True)
    assert quotas.uncounted(cluster, "apps") == {"dev-team": [FLUX_COUNT]}
    with quotas.recounted(cluster, ["apps"], "staging", every_s=0.05):
        assert _wait_until(lambda: not quotas.uncounted(cluster, "apps")), cluster.calls
    assert ("create", f"ConfigMap {quotas.MARKER}") in cluster.calls
    assert cluster.calls[-1] == ("delete", f"ConfigMap {quotas.MARKER}"), "the ConfigMap was left behind"
    assert all(what.startswith("ConfigMap ") for _, what in cluster.calls), "the quota itself was written"


def test_the_recount_is_asked_again_until_the_crds_are_discovered() -> None:
    cluster = FakeCluster(discovered=False)
    with quotas.recounted(cluster, ["apps"], "staging", every_s=0.05):
        assert _wait_until(lambda: cluster.calls.count(("delete", f"ConfigMap {quotas.MARKER}")) >= 4)
        assert quotas.uncounted(cluster, "apps"), "counted before the kinds were discovered"
        cluster.discovered = True
        assert _wait_until(lambda: not quotas.uncounted(cluster, "apps")), cluster.calls


def test_a_quota_counted_in_full_is_left_alone() -> None:
    cluster = FakeCluster(discovered=True)
    cluster.used[FLUX_COUNT] = "3"
    with quotas.recounted(cluster, ["apps"], "staging", every_s=0.02):
        assert _wait_until(lambda: cluster.looked >= 10), "the watch never looked"
    assert cluster.calls == [], "a quota counted in full was recounted"
