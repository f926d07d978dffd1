"""Onboards a tenant into the fleet repo, as `flux create tenant/source/kustomization` would.

All files are computed and checked first, then written; a refusal or a failed write leaves
the tree as it was.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.core import yamlio
from harness.core.errors import HarnessError
from harness.core.repo import API, ENVIRONMENTS, SOURCE_ALLOWLIST, TENANT_LABEL

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# What the source allowlist policy accepts as a URL at all (its `plain` variable; a unit test
# keeps the two equal): scheme://host[:port] and plain path segments, no dot segments.
PLAIN_URL = "^[a-z][a-z0-9+.-]*://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[A-Za-z0-9._~-]+)*/?$"
_DOT_SEGMENT = re.compile(r"/[.][.]?(/|$)")
# The allowlist variable as written in the policy: a literal block of JSON.
_ALLOWLISTS_BLOCK = re.compile(r"(- name: allowlists\n\s+expression: \|-\n)((?P<indent>[ ]+)\S.*\n(?:(?P=indent).*\n)*)")
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


def plain_url(url: str) -> bool:
    """Would the allowlist policy take `url` for comparison at all?"""
    return re.fullmatch(PLAIN_URL, url) is not None and _DOT_SEGMENT.search(url) is None


def allowlists(policy_text: str) -> tuple[re.Match[str], dict[str, list[str]]]:
    """The tenants' allowlists in the policy's text, and where they are written."""
    match = _ALLOWLISTS_BLOCK.search(policy_text)
    if match is None:
        raise TenantError(
            f"{SOURCE_ALLOWLIST}: no `allowlists` variable written as a literal block "
            "(`- name: allowlists` then `expression: |-` and the JSON map); restore that layout"
        )
    try:
        current = json.loads(match.group(2))
    except ValueError as exc:
        raise TenantError(f"{SOURCE_ALLOWLIST}: the allowlists are not valid JSON ({exc}); fix them") from exc
    if not isinstance(current, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in current.values()
    ):
        raise TenantError(f"{SOURCE_ALLOWLIST}: the allowlists must map tenant names to lists of URL prefixes")
    return match, current


def with_allowlist(policy_text: str, tenant: str, prefixes: list[str]) -> str:
    """The policy's text with `tenant`'s entry added, in the same layout."""
    match, current = allowlists(policy_text)
    if tenant in current:
        raise TenantError(f"{SOURCE_ALLOWLIST} already has an allowlist for tenant {tenant!r}; remove it first")
    current[tenant] = prefixes
    block = match.group(2)
    indent = block[: len(block) - len(block.lstrip(" "))]
    written = "".join(f"{indent}{line}\n" for line in json.dumps(current, indent=2).splitlines())
    text = policy_text[: match.start(2)] + written + policy_text[match.end(2):]
    if allowlists(text)[1] != current:
        raise TenantError(f"{SOURCE_ALLOWLIST}: could not rewrite the allowlists in place; add {tenant!r} by hand")
    return text


def _check(repo: Path, name: str, namespace: str, git_url: str, branch: str, allow: tuple[str, ...]) -> None:
    if not _DNS_LABEL.match(name):
        raise TenantError(
            f"invalid tenant name {name!r}: use lower-case letters, digits and '-', starting and "
            "ending with a letter or digit, at most 63 characters (e.g. dev-team)"
        )
    if not _DNS_LABEL.match(namespace):
        raise TenantError(f"invalid namespace {namespace!r}: it must be a DNS label like 'apps'")
    if namespace in RESERVED_NAMESPACES:
        raise TenantError(f"namespace {namespace!r} belongs to the platform; pick another")
    for flag, url in (("--git-url", git_url), *(("--allow", a) for a in allow)):
        if not plain_url(url):
            raise TenantError(
                f"invalid {flag} {url!r}: the source allowlist admits only plain URLs, "
                "scheme://host[:port]/path with letters, digits and . _ ~ - in each segment "
                "(no user@, %-encoding, spaces, query or . and .. segments)"
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


def add_tenant(repo: Path, name: str, namespace: str, git_url: str, branch: str = "main",
               allow: tuple[str, ...] = ()) -> list[Path]:
    """Write tenants/base/NAME, register it in both overlays and give it a source allowlist
    (its own repository and the `allow` prefixes); return the files written."""
    _check(repo, name, namespace, git_url, branch, allow)
    planned: dict[Path, str] = {
        repo / "tenants" / "base" / name / file: text
        for file, text in tenant_files(name, namespace, git_url, branch).items()
    }
    policy = repo / SOURCE_ALLOWLIST
    if not policy.is_file():
        raise TenantError(f"{SOURCE_ALLOWLIST} is missing: is {repo} a fleet repo?")
    entry = list(dict.fromkeys([git_url.rstrip("/"), *(a.rstrip("/") for a in allow)]))
    planned[policy] = with_allowlist(policy.read_text(), name, entry)
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
