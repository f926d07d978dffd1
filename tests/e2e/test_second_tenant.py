"""A tenant onboarded with `harness tenant add` reconciles, and a neighbour's hostile commit
does not disturb it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from harness.core import yamlio
from harness.core.parallel import run_together
from harness.core.repo import API
from harness.core.topology import Tenant
from harness.e2e import flux, network, publish, tenancy
from harness.e2e.converge import platform_ready_everywhere, tenant_failed_everywhere
from harness.e2e.flux import Ref
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.repos import FLEET_REPO
from harness.kit.images import podinfo_tag
from harness.manifests.tenants import add_tenant

# web-team's neighbour is the first served tenant (the example: dev-team).
pytestmark = [pytest.mark.e2e, pytest.mark.first_tenant]

# Unique per session, so a second run against a kept `make up` environment publishes anew.
WEB_REPO = f"web-team/apps-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def web_repo(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The web-team's own repo: one ConfigMap, with staging and production folders."""
    root = tmp_path_factory.mktemp("web-team")
    (root / "base").mkdir()
    (root / "base" / "configmap.yaml").write_text(yamlio.dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-settings"}, "data": {"team": "web"}}))
    (root / "base" / "kustomization.yaml").write_text(yamlio.dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "web",
         "resources": ["configmap.yaml"]}))
    for env in fleet.topology.environments:
        (root / env).mkdir()
        (root / env / "kustomization.yaml").write_text(yamlio.dump(
            {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["../base"]}))
    commit, _ = publish.publish(fleet.server, WEB_REPO, {"": root}, [], "web-team apps")
    return commit


@pytest.fixture(scope="module")
def web_tenant(fleet: Fleet, web_repo: str) -> Iterator[str]:
    """web-team onboarded in the fleet repo with the CLI's code and allowlisted; removed after."""
    url = fleet.server.repo_url(WEB_REPO)

    def onboard(work: Path) -> None:
        add_tenant(work, "web-team", "web", url)  # also writes web-team's source allowlist

    with publish.committed(fleet.server, FLEET_REPO, onboard, "onboard web-team (harness tenant add)",
                           partial(platform_ready_everywhere, fleet)):
        yield web_repo


def test_onboarded_tenant_reconciles_on_every_cluster(fleet: Fleet, team: Tenant, web_tenant: str) -> None:
    """Also takes `team`, as every test of this module does: a session-scoped parameter some tests
    of a module take and others not makes pytest set the module's fixtures up twice."""
    for handle in fleet.clusters.values():
        ks = flux.wait_ready(handle.kube, Ref("Kustomization", "web", "web-team"), web_tenant, fleet.config.timeout(180))
        assert ks["spec"]["serviceAccountName"] == "web-team"
        assert ks["spec"]["path"] == f"./{handle.env}"
        assert handle.kube.get("v1", "ConfigMap", "web-settings", "web") is not None, handle.env
        assert handle.kube.get("v1", "ConfigMap", "web-settings", team.namespace) is None, handle.env


def test_neighbours_hostile_commit_leaves_the_other_tenant_ready(
    fleet: Fleet, team: Tenant, web_tenant: str, restore_tenant_repo: Callable[[], str | None], probe_name: str
) -> None:
    def escape(work: Path) -> None:
        (work / "escape.yaml").write_text(yamlio.dump(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": probe_name, "namespace": "web"}}))
        tenancy.add_to_overlays(work, "../escape.yaml", keep_namespace=False)

    bad = publish.commit_change(fleet.server, team.repo, escape, f"e2e: {team.name} writes into web")
    assert bad is not None
    for env, status in tenant_failed_everywhere(fleet, team, bad).items():
        handle = fleet.clusters[env]
        assert "forbidden" in status.message.lower(), status.describe()
        assert handle.kube.get("v1", "ConfigMap", probe_name, "web") is None, f"{handle.env}: wrote into web"
        flux.request_reconcile(handle.kube, Ref("Kustomization", "web", "web-team"))
        flux.wait_ready(handle.kube, Ref("Kustomization", "web", "web-team"), web_tenant, fleet.config.timeout(120))


def test_one_tenants_repository_is_refused_to_the_other(fleet: Fleet, team: Tenant, web_tenant: str,
                                                        probe_name: str) -> None:
    """Row 9 across tenants: each allowlist is the tenant's own; the twin is web-team's own repo."""
    dev_url, web_url = fleet.server.repo_url(team.repo), fleet.server.repo_url(WEB_REPO)
    for handle in fleet.clusters.values():
        dev, web = handle.kube.as_user(team.user), handle.kube.as_user("system:serviceaccount:web:web-team")
        tenancy.assert_refused(dev, tenancy.source("GitRepository", probe_name, web_url, team.namespace), tenancy.DENIED,
                               tenancy.by_policy("flux-tenant-source-allowlist"),
                               f"{web_url} is not on the allowlist of tenant {team.name}")
        tenancy.assert_refused(web, tenancy.source("GitRepository", probe_name, dev_url, "web"), tenancy.DENIED,
                               tenancy.by_policy("flux-tenant-source-allowlist"), f"{dev_url} is not on the allowlist of tenant web-team")
        tenancy.assert_admitted(web, handle.kube, tenancy.source("GitRepository", probe_name, web_url, "web"))


def test_neighbours_pods_cannot_reach_each_other(fleet: Fleet, web_tenant: str, team: Tenant) -> None:
    """Row 21 across tenants: web-team's pod and dev-team's podinfo are refused to each other,
    and web-team's pod cannot fetch dev-team's artifact; the twins: each reaches what is its own
    (the cluster DNS, its own Service)."""
    kubectl, image = fleet.kit.binary("kubectl"), podinfo_tag(fleet.kit.versions)

    def on(handle: ClusterHandle) -> None:
        try:
            web = network.start_prober(handle.kube, kubectl, handle.kubeconfig, "web", "e2e-net-probe", image)
            podinfo = network.prober_of(kubectl, handle.kubeconfig,
                                        network.running_pod(handle.kube, team.namespace, "app.kubernetes.io/name", "podinfo"))
            network.wait_refused(web, "tcp", f"{podinfo.ip}:{network.PODINFO_PORT}", 20.0)
            artifact = (handle.kube.get(API["GitRepository"], "GitRepository", team.source, team.namespace)
                        or {})["status"]["artifact"]["url"]
            *refusals, dns, own = network.at_once(
                partial(web.tcp, f"{podinfo.ip}:{network.PODINFO_PORT}"),
                partial(podinfo.tcp, f"{web.ip}:{network.PODINFO_PORT}"), partial(web.http, artifact),
                partial(web.tcp, "kube-dns.kube-system.svc.cluster.local:53"),
                partial(podinfo.http, f"http://podinfo.{team.namespace}:{network.PODINFO_PORT}/healthz"))
            for outcome in refusals:
                assert outcome.refused, f"{handle.env}: expected refused by a network policy: {outcome}"
            for outcome in (dns, own):
                assert outcome.connected, f"{handle.env}: twin failed: {outcome}"
        finally:
            handle.kube.delete("v1", "Pod", "e2e-net-probe", "web")

    # The clusters at once: most of each one's time is its probe pod starting and the enforcer
    # programming its rules, which the other cluster's cores need not wait on.
    run_together({env: partial(on, handle) for env, handle in fleet.clusters.items()})
