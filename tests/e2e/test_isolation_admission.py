"""Threat-model rows a tenant can try straight through the API as its account: each is refused
at admission (or by RBAC) for the reason it claims, and its twin through the same call succeeds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from harness.access.kube import Kube, refusal, refusal_message
from harness.core.repo import API, TENANT_LABEL
from harness.core.topology import Tenant
from harness.e2e import tenancy
from harness.e2e.handles import ClusterHandle, Fleet
from harness.kit.images import podinfo_tag

pytestmark = [pytest.mark.e2e, pytest.mark.admission]


@pytest.fixture
def image(fleet: Fleet) -> str:
    return podinfo_tag(fleet.kit.versions)


# Row 1: a HelmRelease whose chart comes from another namespace (the Kustomization twin is in
# test_tenant_isolation.py).

def test_tenant_release_with_own_repository_is_admitted(cluster: ClusterHandle, tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.helm_release(team, probe_name, suspend=True))


def test_tenant_release_with_foreign_repository_is_refused(tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, tenancy.helm_release(team, probe_name, repository="podinfo", repository_namespace="flux-system",
                                                        suspend=True),
                           tenancy.DENIED, tenancy.by_policy("flux-tenant-source-ref"), "cross-namespace source references are not allowed")


# Row 5: targetNamespace and storageNamespace outside the tenant's namespace.

def test_tenant_objects_targeting_own_namespace_are_admitted(cluster: ClusterHandle, tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.kustomization(team, probe_name, suspend=True, targetNamespace=team.namespace))
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.helm_release(team, 
        probe_name, suspend=True, targetNamespace=team.namespace, storageNamespace=team.namespace))


@pytest.mark.parametrize(("kind", "field", "namespace"), [
    pytest.param("Kustomization", "targetNamespace", "kube-system", id="kustomization-target-kube-system"),
    pytest.param("HelmRelease", "targetNamespace", "default", id="release-target-default"),
    pytest.param("HelmRelease", "storageNamespace", "flux-system", id="release-storage-flux-system"),
])
def test_tenant_objects_targeting_other_namespaces_are_refused(tenant: Kube, probe_name: str, kind: str, field: str,
                                                               namespace: str, team: Tenant) -> None:
    build = tenancy.kustomization if kind == "Kustomization" else tenancy.helm_release
    tenancy.assert_refused(tenant, build(team, probe_name, suspend=True, **{field: namespace}), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-target-namespace"), f"spec.{field} {namespace} is not allowed")


# Row 6: kubeConfig on a HelmRelease (the Kustomization case is in test_tenant_isolation.py).

def test_tenant_release_with_kubeconfig_is_refused(tenant: Kube, probe_name: str, team: Tenant) -> None:
    release = tenancy.helm_release(team, probe_name, suspend=True, kubeConfig={"secretRef": {"name": "admin-kubeconfig"}})
    tenancy.assert_refused(tenant, release, tenancy.DENIED, tenancy.by_policy("flux-tenant-no-kubeconfig"), "spec.kubeConfig is not allowed")


# Row 8: workloads running as, or holding a token of, the reconciler account.

def test_tenant_workloads_with_their_own_account_are_admitted(cluster: ClusterHandle, tenant: Kube, probe_name: str,
                                                             image: str, team: Tenant) -> None:
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.pod(probe_name, None, image, team.namespace))
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.deployment(probe_name, "default", image, team.namespace))
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.token_secret(probe_name, "default", team.namespace))


@pytest.mark.parametrize("what", ["pod", "deployment"])
def test_tenant_workload_as_reconciler_account_is_refused(tenant: Kube, probe_name: str, image: str, what: str, team: Tenant) -> None:
    build = tenancy.pod if what == "pod" else tenancy.deployment
    tenancy.assert_refused(tenant, build(probe_name, team.account, image, team.namespace), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-reconciler-account"),
                           f"service account {team.account} is the tenant reconciler account")


def test_tenant_token_secret_for_reconciler_account_is_refused(tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, tenancy.token_secret(probe_name, team.account, team.namespace), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-reconciler-token"),
                           f"a token Secret for the tenant reconciler account {team.account}")


# Row 9: sources. The tenant's own repository is admitted and fetched; everything else is refused
# with the allowlist's reason, whatever the URL trick.

def test_tenant_source_of_its_own_repository_is_admitted(fleet: Fleet, cluster: ClusterHandle, tenant: Kube,
                                                         probe_name: str, team: Tenant) -> None:
    url = fleet.server.repo_url(team.repo)
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.source("GitRepository", probe_name, url, team.namespace))
    charts = fleet.server.charts_url("podinfo")
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.source("HelmRepository", probe_name, charts, team.namespace))
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.source("OCIRepository", probe_name,
                                                                 "oci://ghcr.io/stefanprodan/charts/podinfo", team.namespace))


def _url_tricks(team: Tenant, own: str, server: str) -> dict[str, tuple[str, str]]:
    """Case -> (URL, the allowlist's reason), built around the tenant's own repository URL."""
    other = f"{server}/git/someone-else/apps.git"
    off, plain = f"is not on the allowlist of tenant {team.name}", "is not a plain URL"
    return {
        "another-repo-on-the-host": (other, off),
        "parent-folder": (own.rsplit("/", 1)[0], off),
        "lookalike-suffix": (own + "-evil", off),
        "dot-segments": (own + "/../../web-team/apps.git", plain),
        "encoded-dot-segments": (own + "/%2e%2e/%2e%2e/web-team/apps.git", plain),
        "encoded-slashes": (own + "%2f..%2f..%2fweb-team%2fapps.git", plain),
        "userinfo": (own.replace("://", "://attacker@", 1), plain),
        "backslashes": (own + "\\..\\..\\web-team\\apps.git", plain),
        "trailing-space": (own + " ", plain),  # a leading one fails the CRD schema first
        "query": (own + "?../../web-team", plain),
    }


TRICKS = ["another-repo-on-the-host", "parent-folder", "lookalike-suffix", "dot-segments", "encoded-dot-segments",
          "encoded-slashes", "userinfo", "backslashes", "trailing-space", "query"]


@pytest.mark.parametrize("trick", TRICKS)
def test_tenant_git_source_url_trick_is_refused(fleet: Fleet, tenant: Kube, probe_name: str, trick: str, team: Tenant) -> None:
    url, reason = _url_tricks(team, fleet.server.repo_url(team.repo), fleet.server.url)[trick]
    tenancy.assert_refused(tenant, tenancy.source("GitRepository", probe_name, url, team.namespace), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-source-allowlist"), reason)


def test_tenant_without_an_allowlist_is_refused_every_source(fleet: Fleet, cluster: ClusterHandle,
                                                             probe_name: str, team: Tenant) -> None:
    """Fail closed: a namespace of a tenant nobody gave an allowlist gets no source at all, not
    even a URL a listed tenant may use (the twin: test_tenant_source_of_its_own_repository_is_admitted)."""
    kube = cluster.kube
    kube.create({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": probe_name, "labels": {TENANT_LABEL: "unlisted-team"}}})
    try:
        tenancy.assert_refused(kube, tenancy.source("GitRepository", probe_name, fleet.server.repo_url(team.repo),
                                                    probe_name),
                               tenancy.DENIED, tenancy.by_policy("flux-tenant-source-allowlist"),
                               "tenant unlisted-team has no source allowlist")
    finally:
        kube.delete("v1", "Namespace", probe_name)


@pytest.mark.parametrize(("kind", "url"), [
    pytest.param("HelmRepository", "https://charts.example.org/podinfo", id="helm"),
    pytest.param("OCIRepository", "oci://ghcr.io/attacker/charts/podinfo", id="oci"),
])
def test_tenant_chart_source_off_the_allowlist_is_refused(tenant: Kube, probe_name: str, kind: str, url: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, tenancy.source(kind, probe_name, url, team.namespace), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-source-allowlist"), f"{url} is not on the allowlist of tenant {team.name}")


def test_tenant_bucket_source_is_refused(tenant: Kube, probe_name: str, team: Tenant) -> None:
    bucket = {"apiVersion": API["Bucket"], "kind": "Bucket", "metadata": {"name": probe_name, "namespace": team.namespace},
              "spec": {"interval": "5m", "suspend": True, "bucketName": "data", "endpoint": "s3.amazonaws.com"}}
    tenancy.assert_refused(tenant, bucket, tenancy.DENIED, tenancy.by_policy("flux-tenant-source-allowlist"), "Bucket sources are not allowed")


# Row 12: the policy engine's kinds. The tenant may read them (view), never write them.

POLICY_GROUPS = ("kyverno.io", "policies.kyverno.io")


def _allowed(tenant: Kube, verb: str, api_version: str, kind: str, admin: Kube, team: Tenant) -> bool:
    plural = admin.dynamic.resources.get(api_version=api_version, kind=kind).name
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    review = tenant.create({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
                            "spec": {"resourceAttributes": {"namespace": team.namespace, "verb": verb, "group": group,
                                                            "resource": plural}}})
    return bool(review["status"]["allowed"])


@pytest.mark.policy_engine("kyverno")
def test_tenant_can_read_but_not_write_policy_engine_kinds(cluster: ClusterHandle, tenant: Kube, team: Tenant) -> None:
    kinds = [k for group in POLICY_GROUPS for k in cluster.kube.namespaced_kinds(group)]
    assert any(kind == "Policy" for _, kind in kinds), f"discovery found no kyverno.io Policy kind: {kinds}"
    writable = [f"{kind} ({verb})" for api_version, kind in kinds for verb in ("create", "update", "patch", "delete")
                if _allowed(tenant, verb, api_version, kind, cluster.kube, team)]
    assert writable == [], f"{team.user} may write the policy engine's kinds: {writable}"
    assert _allowed(tenant, "list", "kyverno.io/v1", "Policy", cluster.kube, team), "the twin: tenants may read policies"
    tenant.list("kyverno.io/v1", "Policy", team.namespace)  # and really can: a 403 would raise here


@pytest.mark.policy_engine("kyverno")
def test_tenant_generate_policy_is_forbidden(tenant: Kube, probe_name: str, team: Tenant) -> None:
    policy: dict[str, Any] = {
        "apiVersion": "kyverno.io/v1", "kind": "Policy", "metadata": {"name": probe_name, "namespace": team.namespace},
        "spec": {"rules": [{"name": "copy-secrets", "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
                            "generate": {"apiVersion": "v1", "kind": "Secret", "name": "stolen",
                                         "namespace": "flux-system", "synchronize": True,
                                         "clone": {"namespace": "flux-system", "name": "flux-system"}}}]},
    }
    tenancy.assert_refused(tenant, policy, 403, "forbidden", team.user, "policies")


# Row 13: the onboarding objects, changed directly by the tenant's account.

def test_tenant_may_change_its_own_objects(cluster: ClusterHandle, tenant: Kube, team: Tenant) -> None:
    """The twin: podinfo's HelmRepository is the tenant's own (applied by its Kustomization)."""
    patched = tenant.patch(API["HelmRepository"], "HelmRepository", "podinfo", team.namespace,
                           {"metadata": {"annotations": {"e2e.fleet/probe": "own"}}})
    assert patched["metadata"]["annotations"]["e2e.fleet/probe"] == "own"
    cluster.kube.patch(API["HelmRepository"], "HelmRepository", "podinfo", team.namespace,
                       {"metadata": {"annotations": {"e2e.fleet/probe": None}}})


@pytest.mark.parametrize(("kind", "which", "change"), [
    pytest.param("GitRepository", "source", {"spec": {"ref": {"branch": "attacker"}}}, id="git-branch"),
    pytest.param("Kustomization", "sync", {"spec": {"path": "./elsewhere"}}, id="kustomization-path"),
    pytest.param("ServiceAccount", "account", {"metadata": {"annotations": {"e2e.fleet/probe": "taken"}}},
                 id="service-account"),
])
def test_tenant_cannot_change_its_onboarding(cluster: ClusterHandle, tenant: Kube, team: Tenant, kind: str,
                                             which: str, change: dict[str, Any]) -> None:
    api, name = API.get(kind, "v1"), getattr(team, which)
    before = cluster.kube.get(api, kind, name, team.namespace)
    assert before is not None
    try:
        tenant.patch(api, kind, name, team.namespace, change)
    except ApiException as exc:
        assert exc.status == tenancy.DENIED and tenancy.by_policy("flux-tenant-onboarding") in str(exc.body), refusal(exc)
        assert "owned by Kustomization flux-system/tenants" in str(exc.body), refusal(exc)
    else:
        pytest.fail(f"{team.user} changed {kind} {team.namespace}/{name}")
    after = cluster.kube.get(api, kind, name, team.namespace)
    assert after is not None
    assert (after.get("spec"), after["metadata"].get("annotations")) == (
        before.get("spec"), before["metadata"].get("annotations")), f"{kind} {team.namespace}/{name} changed"
    with pytest.raises(ApiException) as deleted:
        tenant.delete(api, kind, name, team.namespace)
    assert deleted.value.status == tenancy.DENIED and tenancy.by_policy("flux-tenant-onboarding") in str(deleted.value.body), refusal(deleted.value)


# Row 20: Flux references the lockdown does not check.

def _depends_on(team: Tenant, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    build = tenancy.kustomization if kind == "Kustomization" else tenancy.helm_release
    entry = {"name": "podinfo" if kind == "HelmRelease" else team.sync}
    if namespace:
        entry["namespace"] = namespace
    return build(team, name, suspend=True, dependsOn=[entry])


@pytest.mark.parametrize("kind", ["Kustomization", "HelmRelease"])
def test_tenant_reconciler_depending_on_its_own_namespace_is_admitted(cluster: ClusterHandle, tenant: Kube,
                                                                      probe_name: str, kind: str, team: Tenant) -> None:
    tenancy.assert_admitted(tenant, cluster.kube, _depends_on(team, kind, probe_name, None))
    # A name of its own: the first is still being deleted (Flux's finalizer) when this is created.
    tenancy.assert_admitted(tenant, cluster.kube, _depends_on(team, kind, f"{probe_name}-own", team.namespace))


@pytest.mark.parametrize("kind", ["Kustomization", "HelmRelease"])
def test_tenant_reconciler_depending_on_another_namespace_is_refused(tenant: Kube, probe_name: str,
                                                                     kind: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, _depends_on(team, kind, probe_name, "flux-system"), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-depends-on"), "spec.dependsOn names flux-system/",
                           "cross-namespace dependencies are not allowed")


def _forged_artifact(fleet: Fleet) -> dict[str, Any]:
    """What a tenant would write to make its reconciler download the platform's artifact."""
    return {"status": {"artifact": {
        "path": "gitrepository/flux-system/flux-system/latest.tar.gz",
        "url": "http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/flux-system/latest.tar.gz",
        "revision": f"main@sha1:{fleet.fleet_commit or '0' * 40}", "digest": "sha256:" + "0" * 64,
        "lastUpdateTime": "2026-01-01T00:00:00Z"}}}


@pytest.fixture
def own_source(fleet: Fleet, cluster: ClusterHandle, tenant: Kube, probe_name: str, team: Tenant) -> Iterator[str]:
    """A suspended GitRepository of the tenant's (on its allowlist)."""
    tenant.create(tenancy.source("GitRepository", probe_name, fleet.server.repo_url(team.repo), team.namespace))
    yield probe_name
    cluster.kube.delete(API["GitRepository"], "GitRepository", probe_name, team.namespace)


def test_flux_writes_the_status_of_tenant_sources(fleet: Fleet, cluster: ClusterHandle, own_source: str, team: Tenant) -> None:
    """The twin: the same status write, made as source-controller, goes through."""
    flux_account = cluster.kube.as_user("system:serviceaccount:flux-system:source-controller")
    written = flux_account.patch_subresource(API["GitRepository"], "GitRepository", own_source, team.namespace, "status",
                                             _forged_artifact(fleet))
    assert written["status"]["artifact"]["path"].startswith("gitrepository/flux-system/"), written["status"]


def test_tenant_cannot_write_the_status_of_its_flux_objects(fleet: Fleet, cluster: ClusterHandle, tenant: Kube,
                                                            own_source: str, team: Tenant) -> None:
    for kind, name, body in (("GitRepository", own_source, _forged_artifact(fleet)),
                             ("Kustomization", team.sync, {"status": {"observedGeneration": 1}})):
        with pytest.raises(ApiException) as refused:
            tenant.patch_subresource(API[kind], kind, name, team.namespace, "status", body)
        message = refusal_message(refused.value)
        assert refused.value.status == tenancy.DENIED, refusal(refused.value)
        assert tenancy.by_policy("flux-tenant-status") in message, refusal(refused.value)
        assert f"the status of {kind} {team.namespace}/{name} is written by Flux only" in message, refusal(refused.value)
    source = cluster.kube.get(API["GitRepository"], "GitRepository", own_source, team.namespace) or {}
    assert "artifact" not in (source.get("status") or {}), source.get("status")


@pytest.mark.parametrize(("field", "value", "reason"), [
    pytest.param("recurseSubmodules", True, "spec.recurseSubmodules is not allowed", id="submodules"),
    pytest.param("proxySecretRef", {"name": "proxy"}, "spec.proxySecretRef is not allowed", id="proxy"),
])
def test_tenant_git_source_fetching_beyond_its_url_is_refused(fleet: Fleet, tenant: Kube, probe_name: str,
                                                              field: str, value: Any, reason: str, team: Tenant) -> None:
    """The twin: test_tenant_source_of_its_own_repository_is_admitted (same URL, neither field)."""
    source = tenancy.source("GitRepository", probe_name, fleet.server.repo_url(team.repo), team.namespace, **{field: value})
    tenancy.assert_refused(tenant, source, tenancy.DENIED, tenancy.by_policy("flux-tenant-source-fetch"), reason)


@pytest.mark.parametrize(("chart", "kind", "reason"), [
    pytest.param("./charts/podinfo", "GitRepository", "charts from a GitRepository are not allowed", id="from-git"),
    pytest.param("../web-team/podinfo", "HelmRepository", "chart ../web-team/podinfo is not a chart name",
                 id="path-in-chart-name"),
])
def test_tenant_release_of_an_unpackaged_or_pathed_chart_is_refused(tenant: Kube, probe_name: str, chart: str,
                                                                    kind: str, reason: str, team: Tenant) -> None:
    """The twin: test_tenant_release_with_own_repository_is_admitted (chart podinfo, HelmRepository)."""
    tenancy.assert_refused(tenant, tenancy.chart_release(team, probe_name, chart, kind), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-charts"), reason)


def _helm_chart(team: Tenant, name: str) -> dict[str, Any]:
    return {"apiVersion": API["HelmChart"], "kind": "HelmChart", "metadata": {"name": name, "namespace": team.namespace},
            "spec": {"interval": "5m", "suspend": True, "chart": "./", "sourceRef": {"kind": "GitRepository",
                                                                                  "name": team.source}}}


def test_helm_controller_writes_helm_charts_in_tenant_namespaces(cluster: ClusterHandle, probe_name: str, team: Tenant) -> None:
    """The twin: the same create, as helm-controller."""
    helm_controller = cluster.kube.as_user("system:serviceaccount:flux-system:helm-controller")
    tenancy.assert_admitted(helm_controller, cluster.kube, _helm_chart(team, probe_name))


def test_tenant_cannot_write_helm_charts(tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, _helm_chart(team, probe_name), tenancy.DENIED, tenancy.by_policy("flux-tenant-helm-charts"),
                           "HelmCharts in tenant namespaces are written by helm-controller only")
