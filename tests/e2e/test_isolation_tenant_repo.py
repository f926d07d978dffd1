"""Threat-model rows a tenant tries the way it really acts: by committing to its own repo.

One commit adds probe folders and, in both overlays, nested Kustomizations (and a HelmRelease)
that the tenant's reconciler applies as usual; each nested object then succeeds or fails on its
own, with Flux's or the API server's reason. Objects the policies refuse outright are committed
one at a time, since their refusal fails the tenant's whole Kustomization."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.core.repo import API
from harness.core.topology import Tenant
from harness.e2e import flux, publish, tenancy
from harness.e2e.cases import OPEN_PEER, OWN_PEER
from harness.e2e.converge import tenant_failed_everywhere, tenant_ready_everywhere
from harness.e2e.flux import Ref
from harness.e2e.handles import ClusterHandle, Fleet
from harness.kit.images import podinfo_tag

pytestmark = pytest.mark.e2e

PROBE_CONFIGMAP = "tenant-probe"
FOREIGN_CONFIGMAP = "tenant-probe-foreign-account"
CLUSTER_PROBE = "e2e-tenant-probe"
PROBE_POD = "tenant-probe-pod"


def _cluster_scoped() -> dict[str, dict[str, Any]]:
    """Row 7: what a RoleBinding to `admin` must not let the tenant create."""
    return {
        "cluster-role": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                         "metadata": {"name": CLUSTER_PROBE},
                         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        "crd": {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "tenantprobes.e2e.fleet.example"},
                "spec": {"group": "e2e.fleet.example", "scope": "Namespaced",
                         "names": {"plural": "tenantprobes", "singular": "tenantprobe", "kind": "TenantProbe"},
                         "versions": [{"name": "v1", "served": True, "storage": True,
                                       "schema": {"openAPIV3Schema": {"type": "object"}}}]}},
        "webhook": {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": CLUSTER_PROBE}, "webhooks": []},
    }


CLUSTER_KINDS = {"cluster-role": ("rbac.authorization.k8s.io/v1", "ClusterRole", CLUSTER_PROBE),
                 "crd": ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "tenantprobes.e2e.fleet.example"),
                 "webhook": ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", CLUSTER_PROBE)}


def _workload_plane(team: Tenant, image: str) -> dict[str, list[dict[str, Any]]]:
    """Rows 16, 17, 19, 20 and 21 through the tenant's repo: a folder each, applied by a nested
    Kustomization, and the compliant pod and NetworkPolicy that are their twins."""
    restricted = tenancy.pod(PROBE_POD, None, image, team.namespace)
    privileged = tenancy.pod(PROBE_POD + "-privileged", None, image, team.namespace)
    tenancy.make_privileged(privileged["spec"]["containers"][0])
    node_port = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tenant-probe-node-port"},
                 "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}}
    everyone = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "tenant-probe-everyone"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]}
    depends = tenancy.kustomization(team, "tenant-probe-depends-on", suspend=True,
                                    dependsOn=[{"name": "tenants", "namespace": "flux-system"}])
    # Row 21: a NetworkPolicy that opens the namespace's egress to every namespace, and its twin
    # that names the namespace's own pods only.
    opening = tenancy.egress_policy("tenant-probe-open-egress", team.namespace, OPEN_PEER)
    own = tenancy.egress_policy("tenant-probe-own-egress", team.namespace, OWN_PEER)
    return {"restricted-pod": [restricted], "privileged-pod": [privileged], "node-port-service": [node_port],
            "everyone-binding": [everyone], "foreign-depends-on": [depends], "own-network-policy": [own],
            "opening-network-policy": [opening]}


def _write_probes(team: Tenant, work: Path, own_repo_url: str, image: str) -> None:
    probes = work / "probes"
    tenancy.write_kustomize_dir(probes / "configmap", [tenancy.config_map(PROBE_CONFIGMAP)])
    for name, objects in _workload_plane(team, image).items():
        for obj in objects:
            obj["metadata"].pop("namespace", None)
        tenancy.write_kustomize_dir(probes / name, objects)
    tenancy.write_kustomize_dir(probes / "configmap-foreign-account", [tenancy.config_map(FOREIGN_CONFIGMAP)])
    for name, obj in _cluster_scoped().items():
        tenancy.write_kustomize_dir(probes / name, [obj])
    # Row 4: the same folder as a remote base, fetched over HTTP from the tenant's own repo.
    tenancy.write_kustomize_dir(probes / "remote-base", [], [f"{own_repo_url}//probes/configmap?ref=main"])
    # Row 14: a resource path that climbs out of the source root.
    tenancy.write_kustomize_dir(probes / "traversal", [], ["../../../../../../../../../etc/passwd"])
    nested = [
        tenancy.kustomization(team, "probe-local", path="./probes/configmap"),
        tenancy.kustomization(team, "probe-foreign-account", path="./probes/configmap-foreign-account",
                              account="kustomize-controller"),
        *(tenancy.kustomization(team, f"probe-{name}", path=f"./probes/{name}") for name in _cluster_scoped()),
        tenancy.kustomization(team, "probe-remote-base", path="./probes/remote-base"),
        tenancy.kustomization(team, "probe-traversal", path="./probes/traversal"),
        tenancy.helm_release(team, "probe-foreign-release", account="helm-controller"),
        *(tenancy.kustomization(team, f"probe-{name}", path=f"./probes/{name}") for name in _workload_plane(team, image)),
    ]
    for obj in nested:
        obj["metadata"].pop("namespace")  # the overlays set it, as for every tenant object
        if obj["kind"] == "Kustomization":
            obj["spec"]["targetNamespace"] = team.namespace  # namespaced objects land here, not in `default`
    tenancy.write_kustomize_dir(probes / "nested", nested)
    tenancy.add_to_overlays(work, "../probes/nested")


@pytest.fixture(scope="module")
def probes(fleet: Fleet, team: Tenant) -> Iterator[str]:
    """The probe commit, applied by the tenant's Kustomization on every cluster; reverted after."""
    own, image = fleet.server.repo_url(team.repo), podinfo_tag(fleet.kit.versions)
    with publish.committed(fleet.server, team.repo, lambda w: _write_probes(team, w, own, image),
                           "e2e: probes (nested Kustomizations)",
                           lambda commit: tenant_ready_everywhere(fleet, team, commit)) as commit:
        yield commit


def _failed(fleet: Fleet, cluster: ClusterHandle, team: Tenant, name: str, commit: str, kind: str = "Kustomization",
            mentioning: str = "") -> str:
    ref = Ref(kind, team.namespace, name)
    token = flux.request_reconcile(cluster.kube, ref)
    # A Kustomization names the commit it tried; a HelmRelease must fail after this request.
    status = flux.wait_failed(cluster.kube, ref, commit if kind == "Kustomization" else None,
                              fleet.config.timeout(180), mentioning,
                              handled=None if kind == "Kustomization" else token)
    return status.message


def test_nested_kustomization_as_the_tenant_is_applied(fleet: Fleet, cluster: ClusterHandle, probes: str, team: Tenant) -> None:
    """The twin of rows 3, 4, 7 and 14: the same path, with a well-behaved folder."""
    flux.wait_ready(cluster.kube, Ref("Kustomization", team.namespace, "probe-local"), probes, fleet.config.timeout(180))
    assert cluster.kube.get("v1", "ConfigMap", PROBE_CONFIGMAP, team.namespace) is not None


def test_nested_kustomization_as_an_account_of_another_namespace_is_forbidden(
    fleet: Fleet, cluster: ClusterHandle, probes: str, team: Tenant
) -> None:
    """Row 3: kustomize-controller exists in flux-system only; in a tenant namespace it is nobody."""
    message = _failed(fleet, cluster, team, "probe-foreign-account", probes)
    assert f"system:serviceaccount:{team.namespace}:kustomize-controller" in message and "forbidden" in message.lower(), message
    assert cluster.kube.get("v1", "ConfigMap", FOREIGN_CONFIGMAP, team.namespace) is None


def test_nested_release_as_an_account_of_another_namespace_is_forbidden(
    fleet: Fleet, cluster: ClusterHandle, probes: str, team: Tenant
) -> None:
    """Row 3 for helm-controller; the twin is the tenant's own podinfo release."""
    flux.wait_ready(cluster.kube, Ref("HelmRelease", team.namespace, "podinfo"), None, fleet.config.timeout(120))
    # helm-controller v1.4 first reports the chart it has not pulled yet; the verdict comes after.
    message = _failed(fleet, cluster, team, "probe-foreign-release", probes, "HelmRelease", "forbidden")
    assert f"system:serviceaccount:{team.namespace}:helm-controller" in message and "forbidden" in message.lower(), message
    assert cluster.kube.get("apps/v1", "Deployment", "probe-foreign-release-podinfo", team.namespace) is None


@pytest.mark.parametrize("what", ["cluster-role", "crd", "webhook"])
def test_cluster_scoped_object_in_tenant_repo_is_forbidden(fleet: Fleet, cluster: ClusterHandle, probes: str,
                                                           what: str, team: Tenant) -> None:
    """Row 7."""
    api_version, kind, name = CLUSTER_KINDS[what]
    message = _failed(fleet, cluster, team, f"probe-{what}", probes)
    assert "forbidden" in message.lower() and team.user in message, message
    assert "at the cluster scope" in message, message
    assert cluster.kube.get(api_version, kind, name) is None, f"{kind} {name} was created"


def test_remote_base_is_refused_by_the_lockdown(fleet: Fleet, cluster: ClusterHandle, probes: str, team: Tenant) -> None:
    """Row 4: the controller can fetch the base (git is in its image, as upstream's), and
    --no-remote-bases keeps the fetched copy out of the build."""
    message = _failed(fleet, cluster, team, "probe-remote-base", probes)
    # The refused path is the clone's temporary folder: the fetch itself worked.
    assert "is not in or below" in message and "/kustomize-" in message, message
    assert "executable file not found" not in message and "no 'git'" not in message, message


def test_path_traversal_out_of_the_source_is_refused(fleet: Fleet, cluster: ClusterHandle, probes: str, team: Tenant) -> None:
    """Row 14."""
    message = _failed(fleet, cluster, team, "probe-traversal", probes)
    assert "etc/passwd" in message and "is not in or below" in message, message


@pytest.mark.parametrize("probe", ["restricted-pod", "own-network-policy"])
def test_compliant_workload_from_the_tenant_repo_is_applied(fleet: Fleet, cluster: ClusterHandle, probes: str,
                                                            probe: str, team: Tenant) -> None:
    """The twins of rows 16, 17, 19, 20 and 21 below: a pod and a NetworkPolicy that comply,
    through the same path, are created."""
    flux.wait_ready(cluster.kube, Ref("Kustomization", team.namespace, f"probe-{probe}"), probes,
                    fleet.config.timeout(180))
    obj = _workload_plane(team, "unused")[probe][0]
    assert cluster.kube.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], team.namespace) is not None


@pytest.mark.parametrize(("probe", "fragments"), [
    pytest.param("privileged-pod", ('violates PodSecurity "restricted:', "privileged (container \"probe\""),
                 id="privileged-pod"),
    pytest.param("node-port-service", (tenancy.by_policy("flux-tenant-services"), "spec.type NodePort is not allowed"),
                 id="node-port-service"),
    pytest.param("everyone-binding", (tenancy.by_policy("flux-tenant-role-bindings"),
                                      "binds Group system:authenticated"), id="everyone-binding"),
    pytest.param("foreign-depends-on", (tenancy.by_policy("flux-tenant-depends-on"),
                                        "spec.dependsOn names flux-system/tenants"), id="foreign-depends-on"),
    pytest.param("opening-network-policy", (tenancy.by_policy("flux-tenant-network-policies"),
                                            "egress may only go to pods of its own namespace"),
                 id="opening-network-policy"),
])
def test_workload_plane_escape_from_the_tenant_repo_is_refused(fleet: Fleet, cluster: ClusterHandle, probes: str,
                                                               probe: str, fragments: tuple[str, ...], team: Tenant) -> None:
    """Rows 16, 17, 19, 20, 21: the nested Kustomization fails with the refusal, and nothing is created."""
    message = _failed(fleet, cluster, team, f"probe-{probe}", probes)
    assert all(f in message for f in fragments), message
    obj = _workload_plane(team, "unused")[probe][0]
    name = obj["metadata"]["name"]
    assert cluster.kube.get(obj["apiVersion"], obj["kind"], name, team.namespace) is None, f"{obj['kind']} {name} was created"


# Rows 2 and 13: objects the policies refuse outright, committed one at a time.

def _add_nested(work: Path, obj: dict[str, Any]) -> None:
    obj["metadata"].pop("namespace", None)
    tenancy.write_kustomize_dir(work / "hostile", [obj])
    tenancy.add_to_overlays(work, "../hostile")


def _commit_refused(fleet: Fleet, team: Tenant, obj: dict[str, Any], *fragments: str) -> None:
    bad = publish.commit_change(fleet.server, team.repo, lambda w: _add_nested(w, obj), f"e2e: {obj['kind']}")
    assert bad is not None
    for env, status in tenant_failed_everywhere(fleet, team, bad).items():
        assert all(f in status.message for f in fragments), f"{env}: {status.describe()}"


def test_tenant_repo_kustomization_without_account_is_refused(
    fleet: Fleet, restore_tenant_repo: Callable[[], str | None], probe_name: str, team: Tenant
) -> None:
    """Row 2 (the twin: every nested Kustomization with the account is applied, above)."""
    _commit_refused(fleet, team, tenancy.kustomization(team, probe_name, path="./base", account=None),
                    tenancy.by_policy("flux-tenant-service-account"), "spec.serviceAccountName is required")
    for handle in fleet.clusters.values():
        assert handle.kube.get(API["Kustomization"], "Kustomization", probe_name, team.namespace) is None, handle.env
    assert restore_tenant_repo() is not None


def test_tenant_repo_redeclaring_its_onboarding_is_refused(
    fleet: Fleet, restore_tenant_repo: Callable[[], str | None], team: Tenant
) -> None:
    """Row 13: the tenant's repo re-declares its own GitRepository on another branch."""
    redeclared = tenancy.source("GitRepository", team.source, fleet.server.repo_url(team.repo), team.namespace)
    redeclared["spec"].update({"suspend": False, "interval": "1m", "ref": {"branch": "attacker"}})
    _commit_refused(fleet, team, redeclared, "flux-tenant-onboarding", "owned by Kustomization flux-system/tenants")
    for handle in fleet.clusters.values():
        source = handle.kube.get(API["GitRepository"], "GitRepository", team.source, team.namespace) or {}
        assert source["spec"]["ref"] == {"branch": "main"}, f"{handle.env}: onboarding changed: {source['spec']}"
    assert restore_tenant_repo() is not None
