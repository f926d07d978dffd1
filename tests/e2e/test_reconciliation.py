"""On every cluster, the fleet reconciles from Git: lockdown live, every layer Ready, every
tenant Ready at its pushed revision, the example's podinfo up.

Also what a fresh install at the current set is judged by (`fresh_install`): the new CLI's
`flux bootstrap` with the lockdown, every layer coming up from nothing in dependsOn order, the
charts installed rather than upgraded. An upgraded fleet shows none of these."""

from __future__ import annotations

import json
import urllib.request

import pytest

from harness.access.portforward import port_forward
from harness.access.readiness import status_of
from harness.core import yamlio
from harness.core.lockdown import LOCKDOWN_FLAGS, lockdown_problems
from harness.core.repo import API, platform_order
from harness.core.semver import highest
from harness.core.topology import Tenant
from harness.core.versions import REPO_ROOT
from harness.e2e import flux, publish
from harness.e2e.converge import applied_policy_names, source_ref, sync_ref
from harness.e2e.flux import Ref
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.repos import FLEET_REPO

pytestmark = [pytest.mark.e2e, pytest.mark.fresh_install]

def assert_ready(cluster: ClusterHandle, ref: Ref, commit: str | None = None) -> dict:  # type: ignore[type-arg]
    __tracebackhide__ = True
    obj = cluster.kube.get(flux.API[ref.kind], ref.kind, ref.name, ref.namespace)
    if obj is None:
        pytest.fail(f"{ref} does not exist on {cluster.env}")
    status = status_of(obj, commit)
    if status.verdict != "ready":
        pytest.fail(f"{ref} on {cluster.env} is not Ready{' at ' + commit[:12] if commit else ''}: {status.describe()}")
    return obj


def test_flux_controllers_run_with_the_lockdown_flags(cluster: ClusterHandle) -> None:
    live = flux.controller_args(cluster.kube)
    assert set(LOCKDOWN_FLAGS) <= set(live), f"controllers missing: {set(LOCKDOWN_FLAGS) - set(live)}"
    problems = {name: lockdown_problems(name, args) for name, args in live.items()}
    assert not any(problems.values()), f"live controllers break the lockdown: {problems}; args: {live}"


def test_bootstrap_found_what_it_writes_published(fleet: Fleet, cluster: ClusterHandle) -> None:
    """The fleet was published with the manifests `flux bootstrap` writes (flux.bootstrap_files),
    so this cluster's bootstrap committed nothing, and the bootstraps ran at once instead of
    taking turns. A Flux release that writes other bytes fails here, naming its commits."""
    if fleet.config.use_up:
        pytest.skip(f"this run attached to the {cluster.env} cluster `make up` left: it bootstrapped nothing")
    assert cluster.env in fleet.bootstrap_commits, f"the bring-up recorded no bootstrap of {cluster.env}"
    commits = fleet.bootstrap_commits[cluster.env]
    assert commits == [], (f"flux bootstrap of {cluster.env} committed {commits}: it writes other manifests "
                           "than flux.bootstrap_files published (compare them in the fleet repo's history)")


def test_platform_layers_are_ready_at_the_pushed_fleet_revision(fleet: Fleet, cluster: ClusterHandle) -> None:
    head = publish.head(fleet.server, FLEET_REPO)
    for name in platform_order(cluster.env, fleet.topology.root):
        assert_ready(cluster, Ref("Kustomization", "flux-system", name), head)
    # The fleet orders itself: the policies' layer is healthy only once every policy is
    # enforced, and tenants depends on it; the harness never waited for the policies itself.
    engine = fleet.engine
    applied = engine.policies()
    assert sorted(applied) == sorted(applied_policy_names()), (engine.name, applied)
    if engine.name == "kyverno":
        live = {p["metadata"]["name"] for p in cluster.kube.list(API["ValidatingPolicy"], "ValidatingPolicy")}
        assert set(applied) <= live, f"policies the fleet applies: {applied}; live: {sorted(live)}"
    assert engine.not_enforced(cluster.kube) == {}, "tenants is Ready while policies are not enforced"
    sync = assert_ready(cluster, Ref("Kustomization", "flux-system", "flux-system"), head)
    assert sync["spec"]["serviceAccountName"] == "kustomize-controller"
    if engine.release is not None:
        assert_ready(cluster, engine.release)


def test_tenant_is_ready_at_its_pushed_revision(fleet: Fleet, cluster: ClusterHandle, team: Tenant) -> None:
    commit = publish.head(fleet.server, team.repo)
    assert_ready(cluster, source_ref(team), commit)
    sync = assert_ready(cluster, sync_ref(team), commit)
    assert sync["spec"]["path"] == f"./{cluster.env}"
    assert sync["spec"]["serviceAccountName"] == team.account
    for name in team.releases:  # those its repository ships
        assert_ready(cluster, Ref("HelmRelease", team.namespace, name))


def test_podinfo_follows_the_environment_overlay(fleet: Fleet, cluster: ClusterHandle, team: Tenant) -> None:
    overlay = yamlio.load((REPO_ROOT / str(team.local_dir) / cluster.env / "podinfo-values.yaml").read_text())
    chart_range = overlay["spec"]["chart"]["spec"]["version"]
    release = assert_ready(cluster, Ref("HelmRelease", team.namespace, "podinfo"))
    assert release["spec"]["chart"]["spec"]["version"] == chart_range
    # Which chart the range must resolve to, from what the chart repository serves.
    index = yamlio.load((fleet.kit.chart_repos["podinfo"] / "index.yaml").read_text())
    served = [str(e["version"]) for e in index["entries"]["podinfo"]]
    expected = highest(served, chart_range)
    assert release["status"]["lastAttemptedRevision"] == expected, (chart_range, served)
    if fleet.kit.source == "build":
        # The kit serves a pre-release beside the stable chart: an overlay whose range admits
        # pre-releases (staging's, ">=6.0.0-0") must take it, a stable-only one must not.
        want_prerelease = "-" in chart_range
        assert ("-" in str(expected)) is want_prerelease, (cluster.env, chart_range, expected, served)
    deployment = cluster.kube.get("apps/v1", "Deployment", "podinfo", team.namespace)
    assert deployment is not None, "podinfo Deployment missing"
    expected = overlay["spec"]["values"]["replicaCount"]
    assert deployment["spec"]["replicas"] == expected
    assert deployment["status"].get("readyReplicas") == expected, deployment["status"]


def test_podinfo_answers_over_http(fleet: Fleet, cluster: ClusterHandle, team: Tenant) -> None:
    log = cluster.workdir / "port-forward-podinfo.log"
    kubectl = fleet.kit.binary("kubectl")
    with port_forward(kubectl, cluster.kubeconfig, team.namespace, "svc/podinfo", 9898, log) as port:
        body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read())
    assert body["version"] == fleet.kit.versions.podinfo
    assert body["message"] == cluster.env  # the overlay's ui.message
