"""A tenant's pods reach their own namespace and the cluster DNS, and nothing else: not Flux's
artifacts (the platform's repository or its own), not the Flux controllers' ports, and no one
outside the namespace reaches them. Each refusal is kube-router rejecting the connection (podcli
reads "connection refused"; for the artifacts, Flux's own flux-system policy refuses them too,
so they stay closed even without the tenant's policy), and each has its twin: the same connection from a pod the tenant's
policy does not cover (in flux-system, under Flux's own policies) is made. A tenant's own
NetworkPolicy may segment its namespace but not open it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from kubernetes.client.exceptions import ApiException

from harness.access.kube import Kube, refusal, refusal_message
from harness.core.topology import Tenant
from harness.e2e import network, tenancy
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.network import Prober
from harness.kit.images import podinfo_tag

pytestmark = [pytest.mark.e2e, pytest.mark.admission]

PROBER = "e2e-net-probe"
# A new pod's rules are programmed by the enforcer shortly after it starts.
SETTLE_S = 20.0
# Flux's own NetworkPolicies (allow-scraping, allow-webhooks) open these ports of its controllers
# to every namespace; only the tenant's egress policy keeps its pods from them.
FLUX_PORTS = {"kustomize-controller": 8080, "helm-controller": 8080, "notification-controller": 9292,
              "source-controller": 9090}


class Probers:
    """A probe pod in the tenant's namespace and one in flux-system (the twin's side)."""

    def __init__(self, tenant: Prober, platform: Prober) -> None:
        self.tenant, self.platform = tenant, platform


@pytest.fixture(scope="module")
def probers(fleet: Fleet, env: str, team: Tenant) -> Iterator[Probers]:
    handle = fleet.clusters[env]  # type: ignore[index]
    kubectl, image = fleet.kit.binary("kubectl"), podinfo_tag(fleet.kit.versions)
    namespaces = (team.namespace, "flux-system")
    try:
        for namespace in namespaces:
            network.create_prober(handle.kube, namespace, PROBER, image)
        started = [network.ready_prober(handle.kube, kubectl, handle.kubeconfig, ns, PROBER) for ns in namespaces]
        # The tenant prober's own rules are in place once a connection out of the namespace is refused.
        network.wait_refused(started[0], "tcp", f"{started[1].ip}:{network.PODINFO_PORT}", SETTLE_S)
        yield Probers(*started)
    finally:
        for namespace in namespaces:
            handle.kube.delete("v1", "Pod", PROBER, namespace)


def _refused_with_twin(probers: Probers, kind: str, target: str) -> None:
    """The tenant's pod is refused; the platform's pod connects to the same target."""
    __tracebackhide__ = True
    twin, outcome = network.at_once(*(partial(prober.http if kind == "http" else prober.tcp, target)
                                      for prober in (probers.platform, probers.tenant)))
    assert twin.connected, f"twin failed, so the refusal below would prove nothing: {twin}"
    assert not outcome.connected, f"connection got through: {outcome}"
    assert outcome.refused, f"not connected, but not refused by a network policy: {outcome}"


def _podinfo_ip(cluster: ClusterHandle, team: Tenant) -> str:
    pod = network.running_pod(cluster.kube, team.namespace, "app.kubernetes.io/name", "podinfo")
    return str(pod["status"]["podIP"])


def test_tenant_pod_reaches_its_own_pods_and_the_cluster_dns(probers: Probers, cluster: ClusterHandle, team: Tenant) -> None:
    own, direct, dns = network.at_once(
        partial(probers.tenant.http, f"http://podinfo.{team.namespace}:{network.PODINFO_PORT}/healthz"),
        partial(probers.tenant.http, f"http://{_podinfo_ip(cluster, team)}:{network.PODINFO_PORT}/healthz"),
        partial(probers.tenant.tcp, "kube-dns.kube-system.svc.cluster.local:53"))
    assert own.connected, f"the tenant's pod cannot reach its own Service (name resolved through DNS): {own}"
    assert direct.connected, f"the tenant's pod cannot reach its own pod: {direct}"
    assert dns.connected, f"the tenant's pod cannot reach the cluster DNS: {dns}"


@pytest.mark.parametrize("source", ["flux-system/flux-system", "apps/dev-team"], ids=["platform", "own"])
def test_tenant_pod_cannot_fetch_flux_artifacts(probers: Probers, cluster: ClusterHandle, source: str) -> None:
    namespace, name = source.split("/")
    repo = cluster.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", name, namespace) or {}
    url = repo.get("status", {}).get("artifact", {}).get("url")
    assert url, f"GitRepository {source} has no artifact to fetch"
    _refused_with_twin(probers, "http", url)


@pytest.mark.parametrize("controller", sorted(FLUX_PORTS))
def test_tenant_pod_cannot_reach_the_flux_controllers(probers: Probers, cluster: ClusterHandle,
                                                       controller: str) -> None:
    pod = network.running_pod(cluster.kube, "flux-system", "app", controller)
    _refused_with_twin(probers, "tcp", f"{pod['status']['podIP']}:{FLUX_PORTS[controller]}")


def test_pods_outside_the_namespace_cannot_reach_the_tenants_pods(probers: Probers, cluster: ClusterHandle, team: Tenant) -> None:
    target = f"http://{_podinfo_ip(cluster, team)}:{network.PODINFO_PORT}/healthz"
    twin, outcome = network.at_once(partial(probers.tenant.http, target), partial(probers.platform.http, target))
    assert twin.connected, f"twin failed: the tenant's own pod cannot reach its podinfo: {twin}"
    # flux-system's pods may connect anywhere (Flux's allow-egress): only the tenant's ingress rules refuse.
    assert not outcome.connected, f"connection got through: {outcome}"
    assert outcome.refused, f"not connected, but not refused by a network policy: {outcome}"


def _policy(team: Tenant, name: str, egress_peer: dict[str, object]) -> dict[str, object]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": team.namespace},
            "spec": {"podSelector": {"matchLabels": {"app": PROBER}}, "policyTypes": ["Egress"],
                     "egress": [{"to": [egress_peer]}]}}


@pytest.mark.parametrize("peer", [
    pytest.param({"namespaceSelector": {}}, id="every-namespace"),
    pytest.param({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flux-system"}},
                  "podSelector": {"matchLabels": {"app": "source-controller"}}}, id="source-controller"),
    pytest.param({"ipBlock": {"cidr": "0.0.0.0/0"}}, id="every-address"),
])
def test_tenant_network_policy_cannot_open_the_namespace(tenant: Kube, cluster: ClusterHandle, probe_name: str,
                                                         peer: dict[str, object], team: Tenant) -> None:
    tenancy.assert_refused(tenant, _policy(team, probe_name, peer), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-network-policies"),
                           "egress may only go to pods of its own namespace")
    tenancy.assert_admitted(tenant, cluster.kube, _policy(team, probe_name, {"podSelector": {"matchLabels": {"app": "db"}}}))


def test_tenant_cannot_remove_the_platforms_network_policy(tenant: Kube, cluster: ClusterHandle,
                                                           probe_name: str, team: Tenant) -> None:
    with pytest.raises(ApiException) as refused:
        tenant.delete("networking.k8s.io/v1", "NetworkPolicy", team.name, team.namespace)
    message = refusal_message(refused.value)
    assert refused.value.status == tenancy.DENIED and tenancy.by_policy("flux-tenant-onboarding") in message, \
        refusal(refused.value)
    assert cluster.kube.get("networking.k8s.io/v1", "NetworkPolicy", team.name, team.namespace)
    # The twin: the tenant removes a policy of its own.
    own = _policy(team, probe_name, {"podSelector": {}})
    tenant.create(own)
    tenant.delete("networking.k8s.io/v1", "NetworkPolicy", probe_name, team.namespace)
    assert cluster.kube.get("networking.k8s.io/v1", "NetworkPolicy", probe_name, team.namespace) is None
