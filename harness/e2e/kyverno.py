"""Kyverno's admission controller as the tests disturb it: its replicas, its pods, its leader,
and the webhook configurations that call it."""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness.access.kube import Kube, refusal_message
from harness.core.repo import API
from harness.core.waits import wait_for

ADMISSION = "kyverno-admission-controller"
KYVERNO_NAMESPACE = "kyverno"
LEASE = "kyverno"  # the admission controller's leader election


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

    wait_for(f"ValidatingPolicy {name} patched (Kyverno's policy webhook taking calls)", patched, timeout_s)
