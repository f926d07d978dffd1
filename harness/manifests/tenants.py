"""Onboards a tenant into the fleet repo, as `flux create tenant/source/kustomization` would.

All files are computed and checked first, then written; a refusal or a failed write leaves
the tree as it was.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.core import yamlio
from harness.core.errors import HarnessError
from harness.core.repo import API, ENVIRONMENTS, TENANT_LABEL

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_URL = re.compile(r"^(https?|ssh)://[^\s/]+/\S+$")
RESERVED_NAMESPACES = {"default", "flux-system", "kube-system", "kube-public", "kube-node-lease",
                       "kyverno"}


class TenantError(HarnessError):
    """The tenant cannot be added; the message says why and what to do."""


def _docs(*objects: dict[str, Any]) -> str:
    return "---\n".join(yamlio.dump(o) for o in objects)


def tenant_files(name: str, namespace: str, git_url: str, branch: str) -> dict[str, str]:
    """The contents of tenants/base/NAME/, keyed by file name."""
    labels = {TENANT_LABEL: name}
    rbac = _docs(
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": labels}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": name, "namespace": namespace, "labels": labels}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": f"{name}-reconciler", "namespace": namespace, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    )
    sync = _docs(
        {"apiVersion": API["GitRepository"], "kind": "GitRepository",
         "metadata": {"name": name, "namespace": namespace, "labels": labels},
         "spec": {"interval": "1m", "url": git_url, "ref": {"branch": branch}}},
        {"apiVersion": API["Kustomization"], "kind": "Kustomization",
         "metadata": {"name": name, "namespace": namespace, "labels": labels},
         "spec": {"serviceAccountName": name, "interval": "5m", "retryInterval": "1m",
                  "timeout": "3m", "sourceRef": {"kind": "GitRepository", "name": name},
                  "prune": True}},
    )
    kustomization = yamlio.dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": ["rbac.yaml", "sync.yaml"]},
    )
    return {"rbac.yaml": rbac, "sync.yaml": sync, "kustomization.yaml": kustomization}


def overlay_patch(name: str, namespace: str, env: str) -> str:
    return yamlio.dump(
        {"apiVersion": API["Kustomization"], "kind": "Kustomization",
         "metadata": {"name": name, "namespace": namespace}, "spec": {"path": f"./{env}"}},
    )


def owned_namespaces(repo: Path) -> dict[str, str]:
    """Namespace -> tenant, for every tenant already in tenants/base."""
    owners = {}
    for path in sorted((repo / "tenants" / "base").glob("*/*.yaml")):
        for doc in yamlio.load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Namespace":
                owners[doc["metadata"]["name"]] = path.parent.name
    return owners


def _check(repo: Path, name: str, namespace: str, git_url: str, branch: str) -> None:
    if not _DNS_LABEL.match(name):
        raise TenantError(
            f"invalid tenant name {name!r}: use lower-case letters, digits and '-', starting and "
            "ending with a letter or digit, at most 63 characters (e.g. dev-team)"
        )
    if not _DNS_LABEL.match(namespace):
        raise TenantError(f"invalid namespace {namespace!r}: it must be a DNS label like 'apps'")
    if namespace in RESERVED_NAMESPACES:
        raise TenantError(f"namespace {namespace!r} belongs to the platform; pick another")
    if not _URL.match(git_url):
        raise TenantError(
            f"invalid --git-url {git_url!r}: expected https://host/path, http://host/path or "
            "ssh://host/path"
        )
    if not branch or any(c.isspace() for c in branch):
        raise TenantError(f"invalid --branch {branch!r}")
    if (repo / "tenants" / "base" / name).exists():
        raise TenantError(f"tenant {name!r} already exists (tenants/base/{name}); pick another name")
    owner = owned_namespaces(repo).get(namespace)
    if owner is not None:
        raise TenantError(f"namespace {namespace!r} is already owned by tenant {owner!r}")
    for env in ENVIRONMENTS:
        if not (repo / "tenants" / env / "kustomization.yaml").is_file():
            raise TenantError(f"tenants/{env}/kustomization.yaml is missing: is {repo} a fleet repo?")


def add_tenant(repo: Path, name: str, namespace: str, git_url: str, branch: str = "main") -> list[Path]:
    """Write tenants/base/NAME and register it in both overlays; return the files written."""
    _check(repo, name, namespace, git_url, branch)
    planned: dict[Path, str] = {
        repo / "tenants" / "base" / name / file: text
        for file, text in tenant_files(name, namespace, git_url, branch).items()
    }
    for env in ENVIRONMENTS:
        kfile = repo / "tenants" / env / "kustomization.yaml"
        data = yamlio.load(kfile.read_text()) or {}
        data.setdefault("resources", []).append(f"../base/{name}")
        data.setdefault("patches", []).append({"path": f"{name}-patch.yaml"})
        planned[kfile] = yamlio.dump(data)
        planned[kfile.parent / f"{name}-patch.yaml"] = overlay_patch(name, namespace, env)
    originals = {path: path.read_text() if path.exists() else None for path in planned}
    try:
        for path, text in planned.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    except BaseException:
        for path, before in originals.items():
            if before is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(before)
        base = repo / "tenants" / "base" / name
        if base.is_dir() and not any(base.iterdir()):
            base.rmdir()
        raise
    return sorted(planned)
