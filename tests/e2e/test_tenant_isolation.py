"""A tenant cannot write outside its namespace; each denial has a twin that succeeds the same way."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.access.kube import Kube
from harness.access.readiness import condition
from harness.core import yamlio
from harness.core.topology import Tenant
from harness.core.waits import SOON_S, wait_for
from harness.e2e import flux, publish, tenancy
from harness.e2e.converge import tenant_failed_everywhere, tenant_ready_everywhere
from harness.e2e.flux import Ref
from harness.e2e.handles import ClusterHandle, Fleet

pytestmark = pytest.mark.e2e

# a. Direct API calls as the tenant's service account.

@pytest.mark.admission
def test_tenant_account_can_create_in_its_namespace(cluster: ClusterHandle, tenant: Kube, probe_name: str, team: Tenant) -> None:
    created = tenant.create(tenancy.config_map(probe_name, team.namespace))
    try:
        assert created["metadata"]["namespace"] == team.namespace
    finally:
        cluster.kube.delete("v1", "ConfigMap", probe_name, team.namespace)


@pytest.mark.parametrize(("target", "namespace"), [
    pytest.param("ConfigMap", "default", id="configmap-in-default"),
    pytest.param("ConfigMap", "kube-system", id="configmap-in-kube-system"),
    pytest.param("ConfigMap", "flux-system", id="configmap-in-flux-system"),
    pytest.param("ClusterRoleBinding", None, id="cluster-role-binding"),
    pytest.param("Namespace", None, id="namespace"),
])
@pytest.mark.admission
def test_tenant_account_cannot_write_outside_its_namespace(
    cluster: ClusterHandle, tenant: Kube, probe_name: str, target: str, namespace: str | None, team: Tenant
) -> None:
    objects = {
        "ConfigMap": tenancy.config_map(probe_name, namespace),
        "Namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": probe_name}},
        "ClusterRoleBinding": {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": probe_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": team.account, "namespace": team.namespace}],
        },
    }
    tenancy.assert_refused(tenant, objects[target], 403, "forbidden", team.user)


# b. A commit to the tenant repo that reaches outside the namespace.

def _add_to_base(work: Path, name: str) -> None:
    """A well-behaved change: one more ConfigMap in the tenant's base (in its namespace)."""
    (work / "base" / f"{name}.yaml").write_text(yamlio.dump(tenancy.config_map(name, None)))
    kustomization = yamlio.load((work / "base" / "kustomization.yaml").read_text())
    kustomization["resources"].append(f"{name}.yaml")
    (work / "base" / "kustomization.yaml").write_text(yamlio.dump(kustomization))


def _add_escape(work: Path, name: str, namespace: str) -> None:
    """A hostile change: the overlays stop forcing the tenant's namespace and add an object elsewhere."""
    (work / "escape").mkdir()
    (work / "escape" / f"{name}.yaml").write_text(yamlio.dump(tenancy.config_map(name, namespace)))
    (work / "escape" / "kustomization.yaml").write_text(yamlio.dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": [f"{name}.yaml"]}))
    tenancy.add_to_overlays(work, "../escape", keep_namespace=False)


def test_tenant_commit_inside_its_namespace_is_applied(fleet: Fleet, restore_tenant_repo: Callable[[], str | None],
                                                       probe_name: str, team: Tenant) -> None:
    commit = publish.commit_change(fleet.server, team.repo, lambda w: _add_to_base(w, probe_name),
                                   "e2e: add a ConfigMap in apps")
    assert commit is not None
    tenant_ready_everywhere(fleet, team, commit)
    for handle in fleet.clusters.values():
        assert handle.kube.get("v1", "ConfigMap", probe_name, team.namespace) is not None, handle.env


def test_tenant_commit_outside_its_namespace_is_forbidden_and_revert_recovers(
    fleet: Fleet, restore_tenant_repo: Callable[[], str | None], probe_name: str, team: Tenant
) -> None:
    bad = publish.commit_change(fleet.server, team.repo, lambda w: _add_escape(w, probe_name, "default"),
                                "e2e: try to write into default")
    assert bad is not None
    for env, status in tenant_failed_everywhere(fleet, team, bad).items():
        handle = fleet.clusters[env]
        assert "forbidden" in status.message.lower(), f"{handle.env}: {status.describe()}"
        assert team.user in status.message, f"{handle.env}: {status.describe()}"
        assert handle.kube.get("v1", "ConfigMap", probe_name, "default") is None, f"{handle.env}: escaped"
        release = handle.kube.get(flux.API["HelmRelease"], "HelmRelease", "podinfo", team.namespace)
        assert release is not None, f"{handle.env}: the tenant's existing objects were removed"
    reverted = restore_tenant_repo()
    assert reverted is not None  # and every cluster is Ready at it (checked by restore)


# c. The lockdown refuses cross-namespace source references, whatever the namespace.

# Named for the session: a killed run on `make up`'s server leaves it behind.
PROBE_REPO = f"probe/configmap-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def probe_repo(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny repo on the Git server: one ConfigMap with no namespace; yields its commit. It
    goes with the session, so the next run on the same server (`make up`) makes it anew."""
    folder = tmp_path_factory.mktemp("probe-repo")
    tenancy.write_kustomize_dir(folder, [tenancy.config_map("lockdown-probe")])
    commit, _ = publish.publish(fleet.server, PROBE_REPO, {"": folder}, [], "probe: one ConfigMap")
    try:
        yield commit
    finally:
        fleet.server.remove_repo(PROBE_REPO)


@pytest.fixture
def probe_namespace(fleet: Fleet, cluster: ClusterHandle, probe_name: str, probe_repo: str) -> Iterator[str]:
    """A namespace outside the tenant policies (so only the lockdown applies), whose `default`
    account may edit it, with the probe repo as GitRepository `probe` there and in flux-system."""
    kube = cluster.kube
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": probe_name}})
    try:  # whatever part was made goes again, also when the setup fails half-way
        kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": "default-edit", "namespace": probe_name},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                     "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": probe_name}]})
        namespaces = (probe_name, "flux-system")
        for namespace in namespaces:  # both created before either is waited on: fetched side by side
            kube.create({"apiVersion": flux.API["GitRepository"], "kind": "GitRepository",
                         "metadata": {"name": probe_name, "namespace": namespace},
                         "spec": {"interval": "5m", "url": fleet.server.repo_url(PROBE_REPO), "ref": {"branch": "main"}}})
        for namespace in namespaces:
            flux.wait_ready(kube, Ref("GitRepository", namespace, probe_name), probe_repo, fleet.config.timeout(120))
        yield probe_name
    finally:
        kube.delete(flux.API["GitRepository"], "GitRepository", probe_name, "flux-system")
        kube.delete("v1", "Namespace", probe_name)


def _probe_kustomization(name: str, namespace: str, source_namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": flux.API["Kustomization"], "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": "5m", "path": "./", "prune": True, "targetNamespace": namespace,
                 "serviceAccountName": "default",
                 "sourceRef": {"kind": "GitRepository", "name": namespace, "namespace": source_namespace}},
    }


def test_source_in_own_namespace_is_applied(fleet: Fleet, cluster: ClusterHandle, probe_namespace: str,
                                            probe_repo: str) -> None:
    kube = cluster.kube
    kube.create(_probe_kustomization("own-source", probe_namespace, probe_namespace))
    flux.wait_ready(kube, Ref("Kustomization", probe_namespace, "own-source"), probe_repo, fleet.config.timeout(120))
    assert kube.get("v1", "ConfigMap", "lockdown-probe", probe_namespace) is not None


def test_source_in_flux_system_is_access_denied(fleet: Fleet, cluster: ClusterHandle, probe_namespace: str) -> None:
    kube = cluster.kube
    kube.create(_probe_kustomization("foreign-source", probe_namespace, "flux-system"))

    def probe() -> tuple[bool, dict[str, Any], str]:
        obj = kube.get(flux.API["Kustomization"], "Kustomization", "foreign-source", probe_namespace) or {}
        ready = condition(obj, "Ready") or {}
        return ready.get("reason") == "AccessDenied", ready, str(ready)

    ready = wait_for("Kustomization with a flux-system sourceRef to be refused", probe, fleet.config.timeout(120), first_s=SOON_S)
    assert ready["status"] == "False"
    assert "cross-namespace references have been blocked" in ready["message"], ready
    assert kube.get("v1", "ConfigMap", "lockdown-probe", probe_namespace) is None


# d. Kyverno rejects tenant objects that break the policies, at admission.

@pytest.mark.admission
def test_policy_admits_tenant_kustomization_with_service_account(cluster: ClusterHandle, tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.kustomization(team, probe_name, suspend=True))


@pytest.mark.admission
def test_policy_rejects_tenant_kustomization_without_service_account(tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, tenancy.kustomization(team, probe_name, account=None, suspend=True), tenancy.DENIED,
                   tenancy.by_policy("flux-tenant-service-account"), "spec.serviceAccountName is required")


@pytest.mark.admission
def test_policy_rejects_tenant_kustomization_with_foreign_source(tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, tenancy.kustomization(team, probe_name, source_namespace="flux-system", suspend=True),
                   tenancy.DENIED, tenancy.by_policy("flux-tenant-source-ref"), "cross-namespace source references are not allowed")


@pytest.mark.admission
def test_policy_admits_tenant_source_on_the_allowlist(fleet: Fleet, cluster: ClusterHandle, tenant: Kube,
                                                      probe_name: str, team: Tenant) -> None:
    url = fleet.server.repo_url(team.repo)
    tenancy.assert_admitted(tenant, cluster.kube, tenancy.source("GitRepository", probe_name, url, team.namespace))


@pytest.mark.admission
def test_policy_rejects_tenant_source_off_the_allowlist(tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, tenancy.source("GitRepository", probe_name, "https://github.com/attacker/manifests", team.namespace),
                           tenancy.DENIED, tenancy.by_policy("flux-tenant-source-allowlist"), f"is not on the allowlist of tenant {team.name}")


@pytest.mark.admission
def test_policy_rejects_tenant_kustomization_with_kubeconfig(tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, tenancy.kustomization(team, probe_name, suspend=True, kubeConfig={"secretRef": {"name": "admin-kubeconfig"}}),
                   tenancy.DENIED, tenancy.by_policy("flux-tenant-no-kubeconfig"), "spec.kubeConfig is not allowed")


def _probe_charts(fleet: Fleet, kube: Kube, name: str, namespace: str) -> None:
    """The chart repository as HelmRepository `name` in `namespace`, Ready."""
    repository = tenancy.source("HelmRepository", name, fleet.server.charts_url("podinfo"), namespace)
    repository["spec"]["suspend"] = False
    kube.create(repository)
    flux.wait_ready(kube, Ref("HelmRepository", namespace, name), None, fleet.config.timeout(120))


def test_release_from_own_namespace_is_installed(fleet: Fleet, cluster: ClusterHandle, probe_namespace: str) -> None:
    """The twin of the HelmRelease refusal below (row 1), through helm-controller."""
    _probe_charts(fleet, cluster.kube, probe_namespace, probe_namespace)
    # Namespace and account are given: no tenant's defaults apply (any tenant would do).
    cluster.kube.create(tenancy.helm_release(fleet.tenants[0], "own-charts", probe_namespace, repository=probe_namespace,
                                             account="default"))
    flux.wait_ready(cluster.kube, Ref("HelmRelease", probe_namespace, "own-charts"), None, fleet.config.timeout(240))
    assert cluster.kube.get("apps/v1", "Deployment", "own-charts-podinfo", probe_namespace) is not None


def _controller_log_mentions(kube: Kube, controller: str, *fragments: str) -> bool:
    pods = [p["metadata"]["name"] for p in kube.list("v1", "Pod", "flux-system")
            if p["metadata"]["name"].startswith(f"{controller}-")]
    return any(all(f in line for f in fragments) for pod in pods for line in kube.logs("flux-system", pod).splitlines())


def test_release_from_flux_system_is_access_denied(fleet: Fleet, cluster: ClusterHandle, probe_namespace: str) -> None:
    """Row 1 for HelmRelease: helm-controller's --no-cross-namespace-refs refuses the chart
    template before creating its HelmChart. (helm-controller v1.6 reports that refusal only in its
    log, not in the HelmRelease's status; in tenant namespaces the policy refuses it at admission.)"""
    kube = cluster.kube
    _probe_charts(fleet, kube, probe_namespace, "flux-system")
    try:
        kube.create(tenancy.helm_release(fleet.tenants[0], "foreign-charts", probe_namespace, repository=probe_namespace,
                                         repository_namespace="flux-system", account="default"))
        needle = (f'"HelmRelease":{{"name":"foreign-charts","namespace":"{probe_namespace}"}}',
                  "cross-namespace references are not allowed")

        def refused() -> tuple[bool, None, str]:
            return _controller_log_mentions(kube, "helm-controller", *needle), None, "not in helm-controller's log yet"

        wait_for("helm-controller to refuse the cross-namespace chart", refused, fleet.config.timeout(120), first_s=SOON_S)
        release = kube.get(flux.API["HelmRelease"], "HelmRelease", "foreign-charts", probe_namespace) or {}
        assert (condition(release, "Ready") or {}).get("status") != "True", release.get("status")
        assert kube.get(flux.API["HelmChart"], "HelmChart", f"{probe_namespace}-foreign-charts", "flux-system") is None
        assert kube.get("apps/v1", "Deployment", "foreign-charts-podinfo", probe_namespace) is None
    finally:
        kube.delete(flux.API["HelmRepository"], "HelmRepository", probe_namespace, "flux-system")


def test_kustomization_into_kube_system_is_forbidden_by_rbac(fleet: Fleet, cluster: ClusterHandle,
                                                             probe_namespace: str, probe_repo: str) -> None:
    """Row 5 without the policy (this namespace has no tenant label): RBAC alone refuses it.
    The twin is test_source_in_own_namespace_is_applied (targetNamespace: its own)."""
    kube = cluster.kube
    escape = _probe_kustomization("into-kube-system", probe_namespace, probe_namespace)
    escape["spec"]["targetNamespace"] = "kube-system"
    kube.create(escape)
    status = flux.wait_failed(kube, Ref("Kustomization", probe_namespace, "into-kube-system"), probe_repo,
                              fleet.config.timeout(120))
    assert "forbidden" in status.message.lower(), status.describe()
    assert f"system:serviceaccount:{probe_namespace}:default" in status.message, status.describe()
    assert kube.get("v1", "ConfigMap", "lockdown-probe", "kube-system") is None
