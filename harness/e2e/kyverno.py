"""Kyverno's admission controller as the tests disturb it: its replicas, its pods, and the
webhook configurations that call it."""

from __future__ import annotations

from harness.access.kube import Kube

ADMISSION = "kyverno-admission-controller"
KYVERNO_NAMESPACE = "kyverno"


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


def available(kube: Kube) -> int:
    deploy = kube.get("apps/v1", "Deployment", ADMISSION, KYVERNO_NAMESPACE) or {}
    return int((deploy.get("status") or {}).get("availableReplicas") or 0)
