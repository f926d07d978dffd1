"""Onboards a tenant into the fleet repo, as `flux create tenant/source/kustomization` would.

All files are computed and checked first, then written; a refusal or a failed write leaves
the tree as it was.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from harness.core import yamlio
from harness.core.errors import ConfigError, HarnessError
from harness.core.repo import (
    API,
    NATIVE_POLICIES_DIR,
    SOURCE_ALLOWLIST,
    TENANT_LABEL,
    pod_security_labels,
)
from harness.core.topology import environments
from harness.core.versions import load_versions

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


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
_SUFFIX = {None: Fraction(1), "m": Fraction(1, 1000), "k": Fraction(10**3), "M": Fraction(10**6),
           "G": Fraction(10**9), "T": Fraction(10**12), "Ki": Fraction(2**10), "Mi": Fraction(2**20),
           "Gi": Fraction(2**30), "Ti": Fraction(2**40)}


def quantity(text: str) -> Fraction:
    """A Kubernetes resource quantity (500m, 2, 256Mi, 4Gi) as an exact number."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(text)
    return Fraction(match.group(1)) * _SUFFIX[match.group(2)]


# The role `tenant add` binds a tenant's account to in its namespace (namespaced rights only).
TENANT_ROLE = "admin"
# Per container, when a container names none (the quota below counts requests and limits, so the
# API server refuses a pod without them unless the LimitRange supplies them).
DEFAULT_REQUEST = {"cpu": "50m", "memory": "64Mi"}
DEFAULT_LIMIT = {"cpu": "500m", "memory": "256Mi"}
# Object counts per tenant: enough for a team's apps, not enough to flood the API server or Flux's
# controllers (every source and reconciler is work for the platform). No NodePort or LoadBalancer
# Service at all (the services policy refuses them too; the quota says so to `kubectl describe`).
OBJECT_COUNTS = {
    "services": "20", "services.nodeports": "0", "services.loadbalancers": "0",
    "configmaps": "50", "secrets": "50", "persistentvolumeclaims": "10", "requests.storage": "50Gi",
    **{f"count/{plural}.{group}": "20" for plural, group in (
        ("gitrepositories", "source.toolkit.fluxcd.io"), ("ocirepositories", "source.toolkit.fluxcd.io"),
        ("helmrepositories", "source.toolkit.fluxcd.io"), ("helmcharts", "source.toolkit.fluxcd.io"),
        ("kustomizations", "kustomize.toolkit.fluxcd.io"), ("helmreleases", "helm.toolkit.fluxcd.io"))},
}


@dataclass(frozen=True)
class Quota:
    """What one tenant's namespace may use in total (its ResourceQuota); `tenant add` flags."""

    requests_cpu: str = "2"
    requests_memory: str = "4Gi"
    limits_cpu: str = "4"
    limits_memory: str = "8Gi"
    pods: str = "30"

    def problems(self) -> list[str]:
        """What makes this quota unusable, as `tenant add` flags."""
        found = []
        for f in fields(self):
            value = getattr(self, f.name)
            try:
                amount = quantity(value)
            except ValueError:
                found.append(f"--{f.name.replace('_', '-')} {value!r} is not a quantity (e.g. 2, 500m, 4Gi)")
                continue
            if f.name == "pods" and (amount.denominator != 1 or amount < 1):
                found.append(f"--pods {value!r} must be a whole number of at least 1")
        if found:
            return found
        for resource in ("cpu", "memory"):
            requests, limits = getattr(self, f"requests_{resource}"), getattr(self, f"limits_{resource}")
            if quantity(requests) > quantity(limits):
                found.append(f"--requests-{resource} {requests} exceeds --limits-{resource} {limits}")
            if quantity(DEFAULT_REQUEST[resource]) > quantity(requests) or \
                    quantity(DEFAULT_LIMIT[resource]) > quantity(limits):
                found.append(f"--requests-{resource} {requests} / --limits-{resource} {limits} leave no room for "
                             f"one container at the defaults ({DEFAULT_REQUEST[resource]} requested, "
                             f"{DEFAULT_LIMIT[resource]} limit)")
        return found

    def hard(self) -> dict[str, str]:
        return {"requests.cpu": self.requests_cpu, "requests.memory": self.requests_memory,
                "limits.cpu": self.limits_cpu, "limits.memory": self.limits_memory, "pods": self.pods,
                **OBJECT_COUNTS}


# The one peer beyond its namespace a tenant's pods may reach (the network-policies policy names
# the same labels): the cluster DNS.
CLUSTER_DNS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
               "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}


def _docs(*objects: dict[str, Any]) -> str:
    return "---\n".join(yamlio.dump(o) for o in objects)


def tenant_files(name: str, namespace: str, git_url: str, branch: str, quota: Quota,
                 kubernetes_minor: str) -> dict[str, str]:
    """The contents of tenants/base/NAME/, keyed by file name."""
    labels = {TENANT_LABEL: name}
    rbac = _docs(
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": namespace, "labels": {**labels, **pod_security_labels(kubernetes_minor)}}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": name, "namespace": namespace, "labels": labels}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": f"{name}-reconciler", "namespace": namespace, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TENANT_ROLE},
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
    quotas = _docs(
        {"apiVersion": "v1", "kind": "ResourceQuota",
         "metadata": {"name": name, "namespace": namespace, "labels": labels},
         "spec": {"hard": quota.hard()}},
        {"apiVersion": "v1", "kind": "LimitRange",
         "metadata": {"name": name, "namespace": namespace, "labels": labels},
         "spec": {"limits": [{"type": "Container", "defaultRequest": dict(DEFAULT_REQUEST),
                              "default": dict(DEFAULT_LIMIT)}]}},
    )
    network = yamlio.dump(
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": name, "namespace": namespace, "labels": labels},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{"from": [{"podSelector": {}}]}],
                  "egress": [{"to": [{"podSelector": {}}]},
                             {"to": [dict(CLUSTER_DNS)], "ports": [{"protocol": "UDP", "port": 53},
                                                                   {"protocol": "TCP", "port": 53}]}]}},
    )
    kustomization = yamlio.dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": ["rbac.yaml", "quota.yaml", "network.yaml", "sync.yaml"]},
    )
    return {"rbac.yaml": rbac, "quota.yaml": quotas, "network.yaml": network, "sync.yaml": sync,
            "kustomization.yaml": kustomization}


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


def _check(repo: Path, name: str, namespace: str, git_url: str, branch: str, allow: tuple[str, ...],
           quota: Quota) -> None:
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
    problems = quota.problems()
    if problems:
        raise TenantError(f"invalid quota: {'; '.join(problems)}")
    if (repo / "tenants" / "base" / name).exists():
        raise TenantError(f"tenant {name!r} already exists (tenants/base/{name}); pick another name")
    owner = owned_namespaces(repo).get(namespace)
    if owner is not None:
        raise TenantError(f"namespace {namespace!r} is already owned by tenant {owner!r}")
    try:
        envs = environments(repo)
    except ConfigError as exc:
        raise TenantError(f"{exc}: is {repo} a fleet repo?") from None
    for env in envs:
        if not (repo / "tenants" / env / "kustomization.yaml").is_file():
            raise TenantError(f"tenants/{env}/kustomization.yaml is missing: is {repo} a fleet repo?")


def add_tenant(repo: Path, name: str, namespace: str, git_url: str, branch: str = "main",
               allow: tuple[str, ...] = (), quota: Quota | None = None,
               kubernetes_minor: str | None = None) -> list[Path]:
    """Write tenants/base/NAME, register it in every environment's overlay and give it a source allowlist
    (its own repository and the `allow` prefixes); return the files written. Its namespace runs
    pods under Pod Security `restricted` pinned to `kubernetes_minor` (default: versions.yaml's)."""
    quota = quota or Quota()
    _check(repo, name, namespace, git_url, branch, allow, quota)
    minor = kubernetes_minor or load_versions().kubernetes_minor
    planned: dict[Path, str] = {
        repo / "tenants" / "base" / name / file: text
        for file, text in tenant_files(name, namespace, git_url, branch, quota, minor).items()
    }
    policy = repo / SOURCE_ALLOWLIST
    if not policy.is_file():
        raise TenantError(f"{SOURCE_ALLOWLIST} is missing: is {repo} a fleet repo?")
    entry = list(dict.fromkeys([git_url.rstrip("/"), *(a.rstrip("/") for a in allow)]))
    # The Kyverno policy, and in a fleet that deploys the native variant (harness/manifests/native.py)
    # the native policy generated from it too, so the two stay as `make native` would write them.
    for path in (policy, repo / NATIVE_POLICIES_DIR / Path(SOURCE_ALLOWLIST).name):
        if path.is_file():
            planned[path] = with_allowlist(path.read_text(), name, entry)
    for env in environments(repo):
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
