"""What a tenant does, as objects: the manifests the isolation tests try through the API as the
tenant's account or commit to its repo, and the verdicts they expect (refused with a reason,
or admitted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from harness.access.kube import Kube, refusal
from harness.core import yamlio
from harness.core.repo import API

TENANT_NAMESPACE = "apps"
TENANT_NAME = "dev-team"
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"


def config_map(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"probe": "e2e"}}


def kustomization(name: str, namespace: str = TENANT_NAMESPACE, *, path: str = "./", source: str = TENANT_NAME,
                  source_namespace: str | None = None, account: str | None = TENANT_NAME,
                  suspend: bool = False, **spec: Any) -> dict[str, Any]:
    """A Flux Kustomization; the keyword arguments are further spec fields."""
    ref: dict[str, Any] = {"kind": "GitRepository", "name": source}
    if source_namespace:
        ref["namespace"] = source_namespace
    body: dict[str, Any] = {"interval": "5m", "path": path, "prune": True, "sourceRef": ref, **spec}
    if account:
        body["serviceAccountName"] = account
    if suspend:
        body["suspend"] = True
    return {"apiVersion": API["Kustomization"], "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def helm_release(name: str, namespace: str = TENANT_NAMESPACE, *, repository: str = "podinfo",
                 repository_namespace: str | None = None, account: str | None = TENANT_NAME,
                 suspend: bool = False, **spec: Any) -> dict[str, Any]:
    """A HelmRelease of the podinfo chart from a HelmRepository; keywords are further spec fields."""
    ref: dict[str, Any] = {"kind": "HelmRepository", "name": repository}
    if repository_namespace:
        ref["namespace"] = repository_namespace
    body: dict[str, Any] = {"interval": "5m", "releaseName": name,
                            "chart": {"spec": {"chart": "podinfo", "version": "*", "sourceRef": ref}},
                            "values": {"replicaCount": 1}, **spec}
    if account:
        body["serviceAccountName"] = account
    if suspend:
        body["suspend"] = True
    return {"apiVersion": API["HelmRelease"], "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": namespace}, "spec": body}


def source(kind: str, name: str, url: str, namespace: str = TENANT_NAMESPACE, **spec: Any) -> dict[str, Any]:
    """A suspended source of `kind` (admission is what is tested; nothing is fetched)."""
    body: dict[str, Any] = {"interval": "5m", "suspend": True, "url": url, **spec}
    if kind == "GitRepository":
        body["ref"] = {"branch": "main"}
    return {"apiVersion": API[kind], "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": body}


def pod_spec(account: str | None, image: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "probe", "image": image}], "restartPolicy": "Never"}
    if account:
        spec["serviceAccountName"] = account
    return spec


def pod(name: str, account: str | None, image: str, namespace: str = TENANT_NAMESPACE) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": pod_spec(account, image)}


def deployment(name: str, account: str | None, image: str, namespace: str = TENANT_NAMESPACE) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {**pod_spec(account, image), "restartPolicy": "Always"}}}}


def token_secret(name: str, account: str, namespace: str = TENANT_NAMESPACE) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {"kubernetes.io/service-account.name": account}}}


def write_kustomize_dir(folder: Path, objects: list[dict[str, Any]], resources: list[str] | None = None) -> None:
    """A folder kustomize can build: the objects in one file, plus any other `resources`."""
    folder.mkdir(parents=True, exist_ok=True)
    listed = list(resources or [])
    if objects:
        (folder / "objects.yaml").write_text(yamlio.dump_all(objects))
        listed.insert(0, "objects.yaml")
    (folder / "kustomization.yaml").write_text(yamlio.dump(
        {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", "resources": listed}))


def add_to_overlays(work: Path, resource: str) -> None:
    """Every environment overlay of the tenant repo also applies `resource`."""
    for overlay in sorted(work.glob("*/kustomization.yaml")):
        if overlay.parent.name == "base":
            continue
        data = yamlio.load(overlay.read_text())
        if "../base" in data.get("resources", []):
            data["resources"].append(resource)
            overlay.write_text(yamlio.dump(data))


def assert_refused(kube: Kube, obj: dict[str, Any], status: int, *fragments: str) -> str:
    """Creating obj is refused with this HTTP status and a message holding every fragment;
    returns the message. An object that was created is removed before failing."""
    __tracebackhide__ = True
    try:
        kube.create(obj)
    except ApiException as exc:
        body = str(exc.body)
        if exc.status != status or not all(f in body for f in fragments):
            raise AssertionError(f"expected HTTP {status} mentioning {fragments}, got {refusal(exc)}") from None
        return body
    kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
    raise AssertionError(f"{obj['kind']} {obj['metadata']} was created, expected HTTP {status} {fragments}")


def assert_admitted(kube: Kube, admin: Kube, obj: dict[str, Any]) -> None:
    """Creating obj as `kube` succeeds (the positive twin); `admin` removes it again."""
    __tracebackhide__ = True
    meta = obj["metadata"]
    try:
        created = kube.create(obj)
    except ApiException as exc:
        raise AssertionError(f"{obj['kind']} {meta} was refused, expected it admitted: {refusal(exc)}") from None
    admin.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
    assert created["metadata"]["name"] == meta["name"]
