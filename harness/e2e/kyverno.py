"""Kyverno's admission controller as the tests disturb it: its replicas, its pods, its leader,
and the webhook configurations that call it."""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness.access.kube import Kube, refusal_message
from harness.core.repo import API
from harness.core.waits import SOON_S, wait_for

ADMISSION = "kyverno-admission-controller"
KYVERNO_NAMESPACE = "kyverno"
LEASE = "kyverno"  # the admission controller's leader election
PRE_LEASE = "kyvernopre"  # its init container's (kyverno-pre), held by the pod it ran in


def admission_pods(kube: Kube) -> list[str]:
    return [p["metadata"]["name"] for p in kube.list("v1", "Pod", KYVERNO_NAMESPACE)
            if p["metadata"]["name"].startswith(f"{ADMISSION}-")]


def admission_webhooks(kube: Kube) -> list[str]:
    """Webhook configurations that call the admission controller (its Service, kyverno-svc)."""
    return [w["metadata"]["name"] for w in kube.list("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")
            if any(((h.get("clientConfig") or {}).get("service") or {}).get("name") == "kyverno-svc"
                   for h in w.get("webhooks") or [])]


def replicas(kube: Kube) -> int:
    return int((kube.get("apps/v1", "Deployment", ADMISSION, KYVERNO_NAMESPACE) or {})["spec"]["replicas"])


def scale(kube: Kube, count: int) -> None:
    kube.patch("apps/v1", "Deployment", ADMISSION, KYVERNO_NAMESPACE, {"spec": {"replicas": count}})


def scale_back(kube: Kube, count: int, timeout_s: float) -> None:
    """The admission controller scaled back to `count` after a test scaled it to zero: once the
    old pods are gone (a terminating one still leads, in its preStop sleep), their Leases are
    removed, then the Deployment scaled. Kyverno never gives a Lease up, and client-go counts a
    held Lease's 12 s from when a candidate first sees it, however long its holder has been
    gone: left in place, the new pod's init container and then its main container would each
    wait that out for a pod that no longer exists (about 25 s of every restore). A rollout,
    where the old pod lives on, is left to wait as it does for users (test_kyverno_rollout.py)."""
    if replicas(kube) == 0:
        wait_for("Kyverno's admission controller pods gone", lambda: (not (pods := admission_pods(kube)), pods,
                                                                      f"still there: {pods}"), timeout_s, first_s=SOON_S)
        clear_dead_leases(kube)
    scale(kube, count)


def clear_dead_leases(kube: Kube) -> list[str]:
    """The admission controller's Leases (the main container's and its init container's) whose
    holder pod no longer exists, deleted only if unchanged since read (a Lease a new pod took
    meanwhile stays). Returns the names deleted."""
    deleted = []
    for name in (LEASE, PRE_LEASE):
        lease = kube.get("coordination.k8s.io/v1", "Lease", name, KYVERNO_NAMESPACE)
        holder = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
        if not lease or not holder or kube.get("v1", "Pod", holder, KYVERNO_NAMESPACE) is not None:
            continue
        try:
            kube.delete("coordination.k8s.io/v1", "Lease", name, KYVERNO_NAMESPACE,
                        resource_version=lease["metadata"]["resourceVersion"])
        except ApiException as exc:
            if exc.status != 409:
                raise
            continue  # taken (or renewed) since it was read: no longer a dead holder's
        deleted.append(name)
    return deleted


def restart(kube: Kube) -> None:
    """A rollout of the admission controller, as `kubectl rollout restart` makes one: a new pod
    template, so new pods come up and the old ones terminate as the Deployment's strategy says."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    kube.patch("apps/v1", "Deployment", ADMISSION, KYVERNO_NAMESPACE, {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})


def available(kube: Kube) -> int:
    deploy = kube.get("apps/v1", "Deployment", ADMISSION, KYVERNO_NAMESPACE) or {}
    return int((deploy.get("status") or {}).get("availableReplicas") or 0)


def lease_holder(kube: Kube) -> tuple[str, dict[str, Any] | None]:
    """The name the leader Lease holds, and that pod (None when it is gone)."""
    lease = kube.get("coordination.k8s.io/v1", "Lease", LEASE, KYVERNO_NAMESPACE) or {}
    holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
    return holder, kube.get("v1", "Pod", holder, KYVERNO_NAMESPACE) if holder else None


def leader(kube: Kube) -> str:
    """The admission controller pod that holds the leader Lease, "" while none does. Kyverno
    does not give the Lease up when it stops, so a holder that is no longer a Ready pod is no
    leader: its successor takes over once the Lease expires."""
    holder, pod = lease_holder(kube)
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in ((pod or {}).get("status") or {}).get("conditions") or [])
    return holder if ready and not (pod or {}).get("metadata", {}).get("deletionTimestamp") else ""


def patch_policy(kube: Kube, name: str, spec: dict[str, Any], timeout_s: float) -> None:
    """ValidatingPolicy `name`'s spec patched, once Kyverno's policy webhook (fail-closed) takes
    the call. A Ready pod holding the Lease is not enough: the Service routes to it only once
    the node's kube-proxy has caught up with its endpoint, and until then the API server's call
    is refused (connection refused, HTTP 500). Any other refusal fails at once."""

    def patched() -> tuple[bool, None, str]:
        try:
            kube.patch(API["ValidatingPolicy"], "ValidatingPolicy", name, None, {"spec": spec})
        except ApiException as exc:
            message = refusal_message(exc)
            if exc.status == 500 and "failed calling webhook" in message:
                return False, None, message
            raise
        return True, None, ""

    wait_for(f"ValidatingPolicy {name} patched (Kyverno's policy webhook taking calls)", patched, timeout_s, first_s=SOON_S)
