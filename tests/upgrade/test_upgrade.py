"""`make upgrade`: the fleet comes up at its start (an older commit's repos and version set, or
versions.previous.yaml with the working tree's repos at the API versions the upgrade drops),
isolation is proven there, the repos are migrated and Flux and Kyverno upgraded in place through
Git while a probe tries every tenant policy's cases and podinfo every 2 s on both clusters, and
the upgraded clusters are checked for what half-done upgrades leave behind. The isolation suite
then runs on them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial

import pytest

from harness.access.kube import Kube
from harness.core.lockdown import LOCKDOWN_FLAGS, lockdown_problems
from harness.core.parallel import run_together
from harness.core.repo import API
from harness.core.teardown import best_effort
from harness.e2e import flux, probe, publish
from harness.e2e.cases import Case, of_fleet
from harness.e2e.converge import FLEET_SOURCE, applied_policy_names, tenant_ready_everywhere
from harness.e2e.handles import Fleet
from harness.e2e.repos import FLEET_REPO, sync_to_working_tree
from harness.e2e.upgrade import (
    SETTLE_S,
    UpgradeRun,
    commit_components,
    helm_release_revision,
    migrate_cluster,
    migrate_manifests,
    release_chart,
    stale_images,
    stored_version_problems,
    tenant_release,
    upgrade_flux,
    upgrade_flux_gitops,
    wait_kyverno,
    wait_settled,
)

pytestmark = [pytest.mark.e2e, pytest.mark.upgrade]


PREFIX = f"upgrade-probe-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def probe_cases(fleet: Fleet, upgrade: UpgradeRun) -> tuple[Case, ...]:
    """The cases of every policy the start state applies (a policy the upgrade adds is judged by
    the isolation suite after it): the written ones, and for a policy they do not cover, the
    first case derived from the start's offline tests that holds on the first cluster."""
    team = fleet.tenants[0]  # the probe acts as the first served tenant (the example)
    written, candidates = of_fleet(fleet, team, PREFIX, upgrade.start_root)
    found, problems = probe.with_derived(next(iter(fleet.clusters.values())), team, written, candidates,
                                         applied_policy_names(upgrade.start_root))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return found


def test_fleet_starts_at_the_previous_set(fleet: Fleet, upgrade: UpgradeRun) -> None:
    start = upgrade.start.versions
    for env, handle in fleet.clusters.items():
        assert stale_images(handle.kube, start) == {}, f"{env}: not at {start.name}'s images"
        assert release_chart(handle.kube) == start.kyverno_chart, f"{env}: Kyverno release not at {start.kyverno_chart}"


def _applied_versions(kube: Kube) -> dict[str, str]:
    """Every Flux object each Kustomization applied, with the API version it applied it at
    (its inventory: `<namespace>_<name>_<group>_<kind>` -> version)."""
    return {entry["id"]: entry["v"]
            for k in kube.list(API["Kustomization"], "Kustomization")
            for entry in ((k.get("status") or {}).get("inventory") or {}).get("entries") or []
            if ".toolkit.fluxcd.io_" in entry["id"]}


def test_start_state_holds_objects_at_the_versions_the_upgrade_drops(fleet: Fleet, upgrade: UpgradeRun) -> None:
    """From a commit, the repos are that commit's as they are. From a version-set file, they are
    the working tree's written at the API versions the new Flux no longer serves (HelmRelease
    v2beta2, Kustomization v1beta2): Flux applied them there (the platform's and the tenant's),
    so `flux migrate -f .` has work to do and skipping it breaks the upgrade."""
    rewritten = {h.rewrite.new.removeprefix("apiVersion: ") for h in fleet.rewrites
                 if h.rewrite.new.startswith("apiVersion:")}
    if upgrade.origin.ref is not None:
        # A commit's repos are published as that commit holds them: URLs rewritten, nothing else.
        assert not rewritten, f"the start commit's repos were rewritten to {sorted(rewritten)}"
        return
    assert rewritten, f"no object of the start state is at an API version the upgrade drops: {fleet.rewrites}"
    for env, handle in fleet.clusters.items():
        applied = _applied_versions(handle.kube)
        seen = {f"{entry.split('_')[2]}/{version}" for entry, version in applied.items()}
        assert rewritten <= seen, f"{env}: Flux applied nothing at {sorted(rewritten - seen)}: {applied}"
        tenant_release = applied.get("apps_podinfo_helm.toolkit.fluxcd.io_HelmRelease", "")
        assert f"helm.toolkit.fluxcd.io/{tenant_release}" in rewritten, (
            f"{env}: the tenant's HelmRelease was applied at {tenant_release or 'no version'}")


def test_isolation_holds_at_the_previous_set(fleet: Fleet, upgrade: UpgradeRun, probe_cases: tuple[Case, ...]) -> None:
    """The baseline: every probe case once, before the window, on each cluster: each violating
    request refused by its own policy, each compliant twin admitted (a case failing here is a
    wrong case, not an upgrade problem). The UPDATE cases' objects are created here."""
    problems = []
    for handle in fleet.clusters.values():
        probe.create_fixtures(handle, fleet.tenants[0], probe_cases)
        problems += probe.baseline_problems(handle, fleet.tenants[0], probe_cases)
    assert not problems, "\n".join(problems)


def test_in_place_upgrade_admits_no_violating_object(
    fleet: Fleet, upgrade: UpgradeRun, probe_cases: tuple[Case, ...],
    record_testsuite_property: Callable[[str, object], None]
) -> None:
    start, target = upgrade.start.versions, upgrade.target.versions
    flux_cli = upgrade.target.binary("flux")
    record = upgrade.record
    handles = list(fleet.clusters.values())
    try:
        with probe.running(handles, fleet.tenants[0], probe_cases, record, PREFIX):
            # The tenants move first, as their owners would on the platform's notice: each repo
            # migrated by the new CLI, then at the working tree's content. The example's release
            # is compared after the platform's upgrade from here on.
            with record.phase("tenant repos: flux migrate -f ., then the working tree's"):
                for team in fleet.tenants:
                    migrate_manifests(fleet, team.repo, flux_cli, handles[0].workdir / f"flux-migrate-{team.name}.log")
                    sync_to_working_tree(fleet.server, target, team.repo, f"{team.name}: the working tree's")
                    tenant_ready_everywhere(fleet, team, publish.head(fleet.server, team.repo))
                for handle in handles:
                    upgrade.tenant_releases[handle.env] = helm_release_revision(
                        handle.kube, tenant_release(fleet.tenants[0]))
            with record.phase("flux migrate -f . (fleet repo)"):
                migrate_manifests(fleet, FLEET_REPO, flux_cli, handles[0].workdir / "flux-migrate-fleet.log")
            if fleet.config.upgrade_path == "bootstrap":
                for handle in handles:
                    with record.phase(f"{handle.env}: Flux {start.flux.cli} -> {target.flux.cli} (flux bootstrap)"):
                        upgrade_flux(fleet, handle, target, flux_cli)
            else:
                with record.phase(f"flux migrate, Flux {start.flux.cli} -> {target.flux.cli} committed"):
                    for handle in handles:
                        migrate_cluster(handle, flux_cli)
                    commit = commit_components(fleet, flux_cli, [h.env for h in handles],
                                               handles[0].workdir / "gotk-components-new.yaml",
                                               f"Flux {start.flux.cli} -> {target.flux.cli}: regenerated components")
                # Each cluster is asked to reconcile and waited on in a thread of its own, so
                # the clusters apply the commit side by side, as they would in a fleet.
                head = commit or publish.head(fleet.server, FLEET_REPO)
                with record.phase(f"Flux applies {target.flux.cli} to itself ({', '.join(h.env for h in handles)})"):
                    run_together({h.env: partial(upgrade_flux_gitops, fleet, h, target, head) for h in handles})
            # Every cluster fetches the Kyverno bump at once, as a fleet's clusters would (each
            # within its source's interval), and is then waited on, one after the other: most of
            # a Helm upgrade of Kyverno is waiting (Leases, the preStop sleep, the migration job).
            with record.phase(f"fleet at the working tree (Kyverno chart {start.kyverno_chart} -> "
                              f"{target.kyverno_chart})"):
                commit = sync_to_working_tree(fleet.server, target, FLEET_REPO, "fleet: the working tree's")
                for handle in handles:
                    flux.request_reconcile(handle.kube, FLEET_SOURCE)
                for handle in handles:
                    wait_kyverno(fleet, handle, commit or publish.head(fleet.server, FLEET_REPO), target)
            with record.phase(f"Kyverno settled (new leader, admission policies unchanged {SETTLE_S:.0f} s)"):
                wait_settled(fleet, handles, target)
            with record.phase("tenants reconciled after the upgrade"):
                for team in fleet.tenants:
                    tenant_ready_everywhere(fleet, team, publish.head(fleet.server, team.repo))
        fleet.kit = upgrade.target
        upgrade.done = True
    finally:
        for handle in handles:
            best_effort(f"remove the probe's objects on {handle.env}", probe.remove_fixtures, handle, probe_cases)
        for row in probe.rows(record):
            record_testsuite_property(f"upgrade.{row.phase}", f"{row.seconds:.1f}s, violating admitted "
                                      f"{row.violations_admitted}, refused otherwise {row.refused_otherwise}, "
                                      f"no answer {row.no_answer}, compliant refused {row.compliant_refused}, "
                                      f"podinfo unavailable {row.podinfo_unavailable_s:.0f}s")
        for case_row in probe.case_rows(record):
            record_testsuite_property(f"upgrade.case.{case_row.env}.{case_row.case}",
                                      f"own {case_row.own}, otherwise {case_row.other}, admitted {case_row.admitted}, "
                                      f"no answer {case_row.none}, compliant refused {case_row.compliant_refused}, "
                                      f"longest gap {case_row.gap_s:.1f}s")
        for change in record.changes:
            record_testsuite_property("upgrade.admission-policy-change", str(change))
        record_testsuite_property("upgrade.summary", probe.summary_line(probe.rows(record)))
        record_testsuite_property("upgrade.probe-largest-gap", f"{probe.largest_gap(record):.1f}s")
        record_testsuite_property("upgrade.probe-log", str(record.write(fleet.config.artifacts / probe.PROBE_LOG)))
    probe.assert_held(record)
    for env in fleet.clusters:
        answered = [e for e in record.all() if e.env == env and e.check == "podinfo"]
        assert any(e.ok for e in answered), f"{env}: the probe never reached podinfo: {answered[-1:]}"
        tried = {e.case for e in record.all() if e.env == env and e.check == "violating"}
        assert tried == {c.name for c in probe_cases}, f"{env}: cases never tried: {tried ^ {c.name for c in probe_cases}}"


def _upgraded(upgrade: UpgradeRun) -> None:
    if not upgrade.done:
        pytest.fail("the upgrade did not complete (test_in_place_upgrade_admits_no_violating_object)", pytrace=False)


def test_every_controller_runs_the_new_images(fleet: Fleet, upgrade: UpgradeRun) -> None:
    _upgraded(upgrade)
    for env, handle in fleet.clusters.items():
        assert stale_images(handle.kube, upgrade.target.versions) == {}, env


def test_crd_stored_versions_are_only_the_storage_version(fleet: Fleet, upgrade: UpgradeRun) -> None:
    """Every Flux and Kyverno CRD's storedVersions is exactly its storage version, and its objects
    read back at it: nothing is left in etcd at a version a later upgrade may stop serving."""
    _upgraded(upgrade)
    for env, handle in fleet.clusters.items():
        assert stored_version_problems(handle.kube) == {}, env


def test_lockdown_flags_survive_the_upgrade(fleet: Fleet, upgrade: UpgradeRun) -> None:
    _upgraded(upgrade)
    for env, handle in fleet.clusters.items():
        live = flux.controller_args(handle.kube)
        assert set(LOCKDOWN_FLAGS) <= set(live), f"{env}: controllers missing: {set(LOCKDOWN_FLAGS) - set(live)}"
        problems = {name: lockdown_problems(name, args) for name, args in live.items()}
        assert not any(problems.values()), f"{env}: the upgrade broke the lockdown: {problems}"


def test_kyverno_release_is_at_the_new_chart(fleet: Fleet, upgrade: UpgradeRun) -> None:
    _upgraded(upgrade)
    for env, handle in fleet.clusters.items():
        assert release_chart(handle.kube) == upgrade.target.versions.kyverno_chart, env


def test_tenant_release_was_not_released_again(fleet: Fleet, upgrade: UpgradeRun) -> None:
    """Upgrading the platform must not roll the tenant's app: same Helm revision, same digest."""
    _upgraded(upgrade)
    for env, handle in fleet.clusters.items():
        before = upgrade.tenant_releases.get(env)
        assert before is not None, f"{env}: no baseline revision (test_isolation_holds_at_the_previous_set)"
        assert helm_release_revision(handle.kube, tenant_release(fleet.tenants[0])) == before, env
