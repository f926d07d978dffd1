"""Every tenant policy as probe cases: a request its policy must refuse and a compliant twin
through the same call, both made as the API server's dry run (admission judges them, admission
policies included; nothing is stored, so nothing is left to sweep).

Three shapes: a CREATE of a new object; an UPDATE that turns one of the probe's own compliant
objects (created once, before the window) into a violating one, with an harmless UPDATE of the
same object as its twin; and the onboarding policy's UPDATE and DELETE of the platform's objects
in the tenant namespace, with the same calls on the tenant's own objects as twins.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.access.kube import Kube
from harness.core.repo import API
from harness.core.topology import GIT_HOST, Tenant
from harness.e2e import tenancy
from harness.e2e.handles import Fleet
from harness.e2e.publish import Rewrite
from harness.e2e.repos import rewrites_for
from harness.kit.images import podinfo_tag
from harness.manifests.policies import Example, create_examples
from harness.manifests.tenants import TENANT_ROLE

Request = Callable[["Actors", str], object]  # makes one dry-run request; the str makes names unique


@dataclass(frozen=True)
class Actors:
    """Who makes the requests: the tenant's account, and Flux's controller where the compliant
    twin of a request is the same write made by Flux (status, HelmCharts)."""

    tenant: Kube
    source_controller: Kube
    helm_controller: Kube

    @classmethod
    def of(cls, admin: Kube, tenant_user: str) -> Actors:
        """Each identity impersonated through `admin` (its cluster and request deadline)."""
        return cls(admin.as_user(tenant_user), admin.as_user("system:serviceaccount:flux-system:source-controller"),
                   admin.as_user("system:serviceaccount:flux-system:helm-controller"))


@dataclass(frozen=True)
class Case:
    """One way a tenant trips a policy: `violating` must be refused by `policy` (HTTP 422 naming
    its admission policy), `compliant` must be admitted."""

    policy: str
    name: str  # policy short name and shape, e.g. "services/create"
    violating: Request
    compliant: Request
    # For UPDATE cases: the compliant object the probe creates before the window.
    fixture: dict[str, Any] | None = None
    origin: str = ""  # for a case derived from the offline tests: the test and its two resources


def _create(build: Callable[[str], dict[str, Any]]) -> Request:
    return lambda actors, name: actors.tenant.create(build(name), dry_run=True)


def _create_as(who: str, build: Callable[[str], dict[str, Any]]) -> Request:
    return lambda actors, name: getattr(actors, who).create(build(name), dry_run=True)


def _patch(obj: dict[str, Any], body: dict[str, Any], who: str = "tenant") -> Request:
    meta = obj["metadata"]
    return lambda actors, _: getattr(actors, who).patch(obj["apiVersion"], obj["kind"], meta["name"],
                                                        meta.get("namespace"), body, dry_run=True)


def _delete(api_version: str, kind: str, name: str, ns: str) -> Request:
    return lambda actors, _: actors.tenant.delete(api_version, kind, name, ns, dry_run=True)


def _status(kind: str, name: str, ns: str, body: dict[str, Any], who: str) -> Request:
    return lambda actors, _: getattr(actors, who).patch_subresource(API[kind], kind, name, ns, "status", body,
                                                                    dry_run=True)


def _token(account: str, ns: str) -> Request:
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
    return lambda actors, _: actors.tenant.create_subresource("v1", "ServiceAccount", account, ns, "token",
                                                              request, dry_run=True)


ANNOTATE = {"metadata": {"annotations": {"fleet.e2e/probe": "touched"}}}


def _service(name: str, ns: str, kind: str = "ClusterIP") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": kind, "selector": {"app": name}, "ports": [{"port": 80}]}}


def _binding(name: str, ns: str, subject: dict[str, Any]) -> dict[str, Any]:
    """A RoleBinding of the role the tenant holds (`admin`, as `tenant add` binds it). RBAC's
    escalation check runs before admission, and while the clusterrole aggregation controller
    folds a new kind's rules into `view`, `edit` and `admin` (each on its own, e.g. Flux v2.9's
    source.extensions.fluxcd.io in flux-view), a binding of `view` can be refused for rules
    `admin` does not have yet. A binding of the role its binder holds never asks for more than
    that role, so only the policy judges these (the policy looks at the subjects, not the role)."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TENANT_ROLE},
            "subjects": [subject]}


def _helm_chart(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": API["HelmChart"], "kind": "HelmChart", "metadata": {"name": name, "namespace": ns},
            "spec": {"interval": "5m", "suspend": True, "chart": "podinfo",
                     "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}


def _deployment(name: str, ns: str, image: str, account: str | None, pull: str = "Always") -> dict[str, Any]:
    deployment = tenancy.deployment(name, account, image, ns)
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = pull
    return deployment


EVERYONE = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}
OWN_PEER = {"podSelector": {"matchLabels": {"app": "db"}}}
OPEN_PEER: dict[str, Any] = {"namespaceSelector": {}}
FORGED_ARTIFACT = {"status": {"artifact": {
    "path": "gitrepository/flux-system/flux-system/latest.tar.gz",
    "url": "http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/flux-system/latest.tar.gz",
    "revision": "main@sha1:" + "0" * 40, "digest": "sha256:" + "0" * 64, "lastUpdateTime": "2026-01-01T00:00:00Z"}}}


def cases(team: Tenant, image: str, own_repository: str, prefix: str) -> tuple[Case, ...]:
    """Every tenant policy's cases, acting as `team`. `own_repository` is the tenant repo's URL
    as the clusters reach it (on its allowlist); `prefix` names the fixtures of the UPDATE cases.
    The HelmChart update and the onboarding twins act on the tenant's `podinfo` release, which
    the example tenant repository ships."""
    attacker = "https://github.com/attacker/x"
    ns = team.namespace
    own_account = {"kind": "ServiceAccount", "name": "default", "namespace": team.namespace}
    kustomization = tenancy.kustomization(team, f"{prefix}-ks", suspend=True)
    release = tenancy.helm_release(team, f"{prefix}-hr", suspend=True)
    source = tenancy.source("GitRepository", f"{prefix}-src", own_repository, ns)
    token_secret = tenancy.token_secret(f"{prefix}-tok", "default", ns)
    service = _service(f"{prefix}-svc", ns)
    policy = tenancy.egress_policy(f"{prefix}-np", ns, OWN_PEER)
    binding = _binding(f"{prefix}-rb", ns, own_account)
    deployment = _deployment(f"{prefix}-dp", ns, image, None)
    # The HelmChart helm-controller made for the tenant's podinfo release (<namespace>-<release>).
    podinfo_chart = {"apiVersion": API["HelmChart"], "kind": "HelmChart", "metadata": {"name": f"{ns}-podinfo", "namespace": ns}}
    cached = copy.deepcopy(deployment["spec"]["template"]["spec"]["containers"][0])
    cached["imagePullPolicy"] = "IfNotPresent"

    def create(policy_name: str, bad: Callable[[str], dict[str, Any]], good: Callable[[str], dict[str, Any]]) -> Case:
        return Case(policy_name, f"{policy_name.removeprefix('flux-tenant-')}/create", _create(bad), _create(good))

    def update(policy_name: str, fixture: dict[str, Any], bad: dict[str, Any]) -> Case:
        return Case(policy_name, f"{policy_name.removeprefix('flux-tenant-')}/update", _patch(fixture, bad),
                    _patch(fixture, ANNOTATE), fixture)

    return (
        create("flux-tenant-service-account", lambda n: tenancy.kustomization(team, n, account=None, suspend=True),
               lambda n: tenancy.kustomization(team, n, suspend=True)),
        update("flux-tenant-service-account", kustomization, {"spec": {"serviceAccountName": None}}),
        create("flux-tenant-source-ref", lambda n: tenancy.helm_release(team, n, repository_namespace="flux-system", suspend=True),
               lambda n: tenancy.helm_release(team, n, suspend=True)),
        update("flux-tenant-source-ref", release,
               {"spec": {"chart": {"spec": {"sourceRef": {"namespace": "flux-system"}}}}}),
        create("flux-tenant-target-namespace",
               lambda n: tenancy.kustomization(team, n, suspend=True, targetNamespace="kube-system"),
               lambda n: tenancy.kustomization(team, n, suspend=True, targetNamespace=ns)),
        update("flux-tenant-target-namespace", kustomization, {"spec": {"targetNamespace": "kube-system"}}),
        create("flux-tenant-no-kubeconfig",
               lambda n: tenancy.helm_release(team, n, suspend=True, kubeConfig={"secretRef": {"name": "admin-kubeconfig"}}),
               lambda n: tenancy.helm_release(team, n, suspend=True)),
        update("flux-tenant-no-kubeconfig", release, {"spec": {"kubeConfig": {"secretRef": {"name": "admin"}}}}),
        create("flux-tenant-source-allowlist", lambda n: tenancy.source("GitRepository", n, attacker, ns),
               lambda n: tenancy.source("GitRepository", n, own_repository, ns)),
        update("flux-tenant-source-allowlist", source, {"spec": {"url": attacker}}),
        create("flux-tenant-source-fetch",
               lambda n: tenancy.source("GitRepository", n, own_repository, ns, recurseSubmodules=True),
               lambda n: tenancy.source("GitRepository", n, own_repository, ns)),
        update("flux-tenant-source-fetch", source, {"spec": {"proxySecretRef": {"name": "proxy"}}}),
        create("flux-tenant-depends-on",
               lambda n: tenancy.kustomization(team, n, suspend=True, dependsOn=[{"name": "kyverno", "namespace": "flux-system"}]),
               lambda n: tenancy.kustomization(team, n, suspend=True, dependsOn=[{"name": team.sync}])),
        update("flux-tenant-depends-on", kustomization,
               {"spec": {"dependsOn": [{"name": "kyverno", "namespace": "flux-system"}]}}),
        create("flux-tenant-charts", lambda n: tenancy.chart_release(team, n, "./charts/podinfo", "GitRepository"),
               lambda n: tenancy.helm_release(team, n, suspend=True)),
        update("flux-tenant-charts", release, {"spec": {"chart": {"spec": {"chart": "../web-team/podinfo"}}}}),
        create("flux-tenant-reconciler-account", lambda n: _deployment(n, ns, image, team.account),
               lambda n: _deployment(n, ns, image, None)),
        update("flux-tenant-reconciler-account", deployment,
               {"spec": {"template": {"spec": {"serviceAccountName": team.account}}}}),
        create("flux-tenant-image-pull", lambda n: _deployment(n, ns, image, None, pull="IfNotPresent"),
               lambda n: _deployment(n, ns, image, None)),
        update("flux-tenant-image-pull", deployment, {"spec": {"template": {"spec": {"containers": [cached]}}}}),
        create("flux-tenant-reconciler-token", lambda n: tenancy.token_secret(n, team.account, ns),
               lambda n: tenancy.token_secret(n, "default", ns)),
        update("flux-tenant-reconciler-token", token_secret,
               {"metadata": {"annotations": {"kubernetes.io/service-account.name": team.account}}}),
        create("flux-tenant-services", lambda n: _service(n, ns, "NodePort"), lambda n: _service(n, ns)),
        update("flux-tenant-services", service, {"spec": {"externalIPs": ["10.0.0.1"]}}),
        create("flux-tenant-network-policies", lambda n: tenancy.egress_policy(n, ns, OPEN_PEER),
               lambda n: tenancy.egress_policy(n, ns, OWN_PEER)),
        update("flux-tenant-network-policies", policy, {"spec": {"egress": [{"to": [OPEN_PEER]}]}}),
        create("flux-tenant-role-bindings", lambda n: _binding(n, ns, EVERYONE), lambda n: _binding(n, ns, own_account)),
        update("flux-tenant-role-bindings", binding, {"subjects": [EVERYONE]}),
        Case("flux-tenant-helm-charts", "helm-charts/create", _create(lambda n: _helm_chart(n, ns)),
             _create_as("helm_controller", lambda n: _helm_chart(n, ns))),
        Case("flux-tenant-helm-charts", "helm-charts/update", _patch(podinfo_chart, ANNOTATE),
             _patch(podinfo_chart, ANNOTATE, who="helm_controller")),
        Case("flux-tenant-status", "status/update",
             _status("GitRepository", team.source, ns, FORGED_ARTIFACT, "tenant"),
             _status("GitRepository", team.source, ns, FORGED_ARTIFACT, "source_controller")),
        Case("flux-tenant-reconciler-token-request", "reconciler-token-request/create",
             _token(team.account, ns), _token("default", ns)),
        Case("flux-tenant-onboarding", "onboarding/update",
             _patch(tenancy.source("GitRepository", team.source, own_repository, ns), ANNOTATE),
             _patch(tenancy.helm_release(team, "podinfo"), ANNOTATE)),
        Case("flux-tenant-onboarding", "onboarding/delete",
             _delete("v1", "ServiceAccount", team.account, ns),
             _delete(API["HelmRelease"], "HelmRelease", "podinfo", ns)),
    )


def _strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v, change) for v in value]
    return value


def _as_tenant(resource: dict[str, Any], offline: Tenant, team: Tenant, rewrites: list[Rewrite]) -> dict[str, Any]:
    """An offline test's resource, made `team`'s: what names the test's tenant (its namespace,
    name, account and repository) names `team` instead, and the fleet's outside addresses are
    rewritten as the published repos have them."""
    exact = {offline.namespace: team.namespace, offline.name: team.name, offline.account: team.account}

    def change(text: str) -> str:
        text = exact.get(text, text)
        if offline.repo and team.repo:
            text = text.replace(f"{GIT_HOST}{offline.repo}", f"{GIT_HOST}{team.repo}")
        for rewrite in rewrites:
            text = text.replace(rewrite.old, rewrite.new)
        return text

    mapped: dict[str, Any] = _strings(copy.deepcopy(resource), change)
    return mapped


def _create_named(resource: dict[str, Any]) -> Request:
    """A CREATE of `resource` under the name the probe gives each request."""

    def build(name: str) -> dict[str, Any]:
        named = copy.deepcopy(resource)
        named["metadata"]["name"] = name
        return named

    return _create(build)


def derived(examples: list[Example], tenants: tuple[Tenant, ...], team: Tenant,
            rewrites: list[Rewrite]) -> dict[str, list[Case]]:
    """Each policy's candidate cases from its offline tests: a resource the test expects it to
    fail, created by `team` under a fresh name, against one of the same kind it expects to pass.
    Only resources in a tenant's namespace count (moved to `team`'s); which candidate the live
    cluster judges as the test does is for the probe to find (`probe.calibrated`)."""
    by_namespace = {t.namespace: t for t in tenants}
    found: dict[str, list[Case]] = {}
    for bad in examples:
        offline = by_namespace.get((bad.resource.get("metadata") or {}).get("namespace", ""))
        if bad.result != "fail" or offline is None:
            continue
        for good in examples:
            if (good.policy, good.result, good.resource.get("kind"), good.test) != (
                    bad.policy, "pass", bad.resource.get("kind"), bad.test):
                continue
            if (good.resource.get("metadata") or {}).get("namespace") != offline.namespace:
                continue
            violating = _as_tenant(bad.resource, offline, team, rewrites)
            compliant = _as_tenant(good.resource, offline, team, rewrites)
            found.setdefault(bad.policy, []).append(Case(
                bad.policy, f"{bad.policy.removeprefix('flux-tenant-')}/derived",
                _create_named(violating), _create_named(compliant),
                origin=f"{bad.test}: {bad.resource['kind']} {bad.resource['metadata']['name']} against "
                       f"{good.resource['metadata']['name']}"))
    return found


def written(fleet: Fleet, team: Tenant, prefix: str) -> tuple[Case, ...]:
    """The written cases acting as `team` on `fleet` (its podinfo image, its own repository)."""
    return cases(team, podinfo_tag(fleet.kit.versions), fleet.server.repo_url(team.repo), prefix)


def named(fleet: Fleet, prefix: str, *names: str) -> tuple[Case, ...]:
    """The written cases of these names, acting as the fleet's first tenant (the probe's)."""
    found = tuple(c for c in written(fleet, fleet.tenants[0], prefix) if c.name in names)
    missing = sorted(set(names) - {c.name for c in found})
    if missing:
        raise ValueError(f"no written probe case named {missing} (harness/e2e/cases.py)")
    return found


def of_fleet(fleet: Fleet, team: Tenant, prefix: str, root: Path) -> tuple[tuple[Case, ...], dict[str, list[Case]]]:
    """The written cases acting as `team` on `fleet`, and each policy's candidates derived from
    the offline tests of the tree at `root` (the fleet's start, for an upgrade)."""
    return written(fleet, team, prefix), derived(create_examples(root), fleet.topology.tenants, team, rewrites_for(fleet.server, fleet.kit.versions))
