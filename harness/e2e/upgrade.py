"""Upgrading a running fleet in place, the way a platform team does it through Git: the repos'
manifests migrated with the new CLI's `flux migrate -f .`, Flux by a commit of its regenerated
components (or the new CLI's `flux bootstrap`), then the fleet moved to the working tree (the
Kyverno chart bump among its changes); and the checks that tell a finished upgrade from a
half-done one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.access.kube import Kube
from harness.core import commands
from harness.core.errors import CommandError, HarnessError
from harness.core.history import Start
from harness.core.progress import step
from harness.core.repo import API
from harness.core.topology import Tenant
from harness.core.versions import Versions
from harness.core.waits import wait_for
from harness.e2e import flux, probe, publish
from harness.e2e.converge import platform_ready, policies_not_ready
from harness.e2e.flux import Ref
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.kyverno import KYVERNO_NAMESPACE, lease_holder
from harness.e2e.repos import FLEET_REPO
from harness.kit.build import Kit
from harness.kit.images import flux_tag

MIGRATE_TIMEOUT_S = 300.0
# How long every generated admission policy and binding must stay unchanged, under the new
# Kyverno's leader, before the upgrade window closes.
SETTLE_S = 20.0
ADMISSION = "admissionregistration.k8s.io/v1"
KYVERNO_RELEASE = Ref("HelmRelease", "flux-system", "kyverno")
# The API groups whose CRDs the upgrade replaces.
UPGRADED_GROUPS = ("toolkit.fluxcd.io", "kyverno.io")


def tenant_release(team: Tenant) -> Ref:
    """The release of the example tenant repository (podinfo), in `team`'s namespace."""
    return Ref("HelmRelease", team.namespace, "podinfo")


class UpgradeError(HarnessError):
    """A step of the in-place upgrade failed."""


@dataclass
class UpgradeRun:
    """An upgrade run: the kits of the set it starts at and the set it upgrades to, what the
    probe saw, and what the checks after it compare with."""

    start: Kit
    target: Kit
    origin: Start  # where the run started (a commit, or a version-set file) and why
    start_root: Path  # the tree the start's repos were published from
    record: probe.Record = field(default_factory=probe.Record)
    # Objects of the start state left at the new API version, and why (apiversions).
    kept: list[str] = field(default_factory=list)
    # env -> (Helm revision, digest) of the tenant's release before the upgrade.
    tenant_releases: dict[str, tuple[int, str]] = field(default_factory=dict)
    done: bool = False


def _run_flux(argv: list[str], log: Path, what: str, cwd: Path | None = None) -> None:
    try:
        with step(f"{what} (log: {log})"):
            commands.run(argv, timeout_s=MIGRATE_TIMEOUT_S, log=log, cwd=cwd)
    except CommandError as exc:
        raise UpgradeError(f"{what} failed (log: {log})\n{exc}") from exc


def migrate_manifests(fleet: Fleet, repo: str, flux_cli: str, log: Path) -> str | None:
    """`flux migrate -f .` on a served repo (the fleet's, or a tenant's as its owner would run
    it): its manifests move to the newest API versions the new Flux serves; the change is
    committed (None when there was nothing to migrate)."""
    def edit(work: Path) -> None:
        _run_flux([flux_cli, "migrate", "-f", ".", "--yes"], log, f"flux migrate -f . ({repo})", cwd=work)

    return publish.commit_change(fleet.server, repo, edit, "Migrate Flux manifests to the new API versions")


def migrate_cluster(handle: ClusterHandle, flux_cli: str) -> None:
    """`flux migrate` in cluster mode: every stored Flux object rewritten at its CRD's storage
    version and storedVersions trimmed, which Flux requires before a minor upgrade."""
    log = handle.workdir / "flux-migrate.log"
    _run_flux([flux_cli, "migrate", "--kubeconfig", str(handle.kubeconfig)], log, f"{handle.env}: flux migrate")


def upgrade_flux(fleet: Fleet, handle: ClusterHandle, target: Versions, flux_cli: str) -> None:
    """`flux migrate`, then the same `flux bootstrap git` users run, with the new CLI: it commits
    the new components to clusters/<env>/flux-system; then every controller at the new image."""
    migrate_cluster(handle, flux_cli)
    flux.bootstrap(flux_cli, handle.kubeconfig, fleet.server, FLEET_REPO, f"clusters/{handle.env}",
                   handle.workdir / "bootstrap-upgrade.log")
    wait_images(fleet, handle, target, "Flux", stale_flux)


COMPONENTS = "clusters/{env}/" + flux.COMPONENTS_FILE


def commit_components(fleet: Fleet, flux_cli: str, envs: list[str], log: Path, what: str) -> str | None:
    """The Flux bump as a pull request brings it: the new CLI's components (`flux install
    --export`, the manifests `flux bootstrap` writes) committed over each cluster's
    gotk-components.yaml, for Flux to apply to itself. None when they equal the committed
    ones (the start runs the same Flux)."""
    def edit(work: Path) -> None:
        components = flux.install_export(flux_cli)
        log.write_text(components)
        for env in envs:
            path = work / COMPONENTS.format(env=env)
            if not path.is_file():
                raise UpgradeError(f"{COMPONENTS.format(env=env)} is missing from the fleet repo: was the "
                                   "cluster bootstrapped from it?")
            path.write_text(components)

    return publish.commit_change(fleet.server, FLEET_REPO, edit, what)


def upgrade_flux_gitops(fleet: Fleet, handle: ClusterHandle, target: Versions, commit: str) -> None:
    """Flux applied the components commit to itself: flux-system Ready at it, every controller
    at the new image."""
    platform_ready(fleet, handle, commit)
    wait_images(fleet, handle, target, "Flux", stale_flux)


def _deployments(kube: Kube, namespace: str) -> list[dict[str, Any]]:
    return kube.list("apps/v1", "Deployment", namespace)


def _images(deployment: dict[str, Any]) -> list[str]:
    spec = deployment["spec"]["template"]["spec"]
    return [c["image"] for c in (spec.get("initContainers") or []) + spec["containers"]]


def _rolled_out(deployment: dict[str, Any]) -> bool:
    status, spec = deployment.get("status") or {}, deployment["spec"]
    wanted = spec.get("replicas", 1)
    return bool(status.get("observedGeneration") == deployment["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == wanted and status.get("availableReplicas", 0) == wanted
                and status.get("replicas", 0) == wanted)


def stale_flux(kube: Kube, versions: Versions) -> dict[str, list[str]]:
    """Flux controller Deployments not running, or not rolled out to, this set's images."""
    found: dict[str, list[str]] = {}
    wanted = {name: flux_tag(name, version) for name, version in versions.flux.controllers().items()}
    live = {d["metadata"]["name"]: d for d in _deployments(kube, "flux-system")}
    for name, image in wanted.items():
        if name not in live:
            found[f"flux-system/{name}"] = ["missing"]
        elif _images(live[name]) != [image] or not _rolled_out(live[name]):
            found[f"flux-system/{name}"] = _images(live[name]) + ([] if _rolled_out(live[name]) else ["(not rolled out)"])
    return found


def stale_kyverno(kube: Kube, versions: Versions) -> dict[str, list[str]]:
    """Kyverno Deployments not running, or not rolled out to, this set's Kyverno images."""
    found: dict[str, list[str]] = {}
    deployments = _deployments(kube, KYVERNO_NAMESPACE)
    if not deployments:
        return {KYVERNO_NAMESPACE: ["no Deployment"]}
    for deployment in deployments:
        images = [i for i in _images(deployment) if "/kyverno/" in i]
        if not images or any(not i.endswith(f":{versions.kyverno}") for i in images) or not _rolled_out(deployment):
            found[f"{KYVERNO_NAMESPACE}/{deployment['metadata']['name']}"] = (
                images + ([] if _rolled_out(deployment) else ["(not rolled out)"]))
    return found


def stale_images(kube: Kube, versions: Versions) -> dict[str, list[str]]:
    """Every Flux and Kyverno Deployment not at this set's images; empty when all are."""
    return {**stale_flux(kube, versions), **stale_kyverno(kube, versions)}


def wait_images(fleet: Fleet, handle: ClusterHandle, versions: Versions, what: str,
                stale: Callable[[Kube, Versions], dict[str, list[str]]]) -> None:
    def probe() -> tuple[bool, dict[str, list[str]], str]:
        found = stale(handle.kube, versions)
        return not found, found, f"not yet at the new images: {found}"

    wait_for(f"{handle.env}: {what} running {versions.name}'s images", probe, fleet.config.timeout(300))


def stored_version_problems(kube: Kube) -> dict[str, list[str]]:
    """CRDs of the upgraded groups whose status.storedVersions is not exactly their storage
    version (objects may still sit in etcd at another; the next CRD that stops serving it fails),
    or whose objects do not read back at it."""
    found = {}
    for crd in kube.list("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
        spec = crd["spec"]
        if not spec["group"].endswith(UPGRADED_GROUPS):
            continue
        storage = next((v["name"] for v in spec["versions"] if v.get("storage")), "")
        stored = list((crd.get("status") or {}).get("storedVersions") or [])
        problems = [] if stored == [storage] else [f"stored {stored}, storage version {storage or 'none'}"]
        if storage and not problems:
            api_version = f"{spec['group']}/{storage}"
            try:
                objects = kube.list(api_version, spec["names"]["kind"])
            except Exception as exc:  # noqa: BLE001 - any failure to read back is the finding
                problems.append(f"listing at {api_version} failed: {exc}")
            else:
                problems += [f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']} read back as "
                             f"{o.get('apiVersion')}" for o in objects if o.get("apiVersion") != api_version]
        if problems:
            found[crd["metadata"]["name"]] = problems
    return found


def release_chart(kube: Kube) -> str:
    """The chart version the Kyverno release last installed or upgraded to."""
    obj = kube.get(API["HelmRelease"], "HelmRelease", KYVERNO_RELEASE.name, KYVERNO_RELEASE.namespace) or {}
    history = (obj.get("status") or {}).get("history") or [{}]
    return str(history[0].get("chartVersion", ""))


def wait_kyverno(fleet: Fleet, handle: ClusterHandle, commit: str, versions: Versions) -> None:
    """The fleet converged at the bump commit: the release at the new chart, Kyverno's pods at
    the new images, every tenant policy enforced again."""
    platform_ready(fleet, handle, commit)

    def probe() -> tuple[bool, dict[str, object], str]:
        chart = release_chart(handle.kube)
        waiting = policies_not_ready(handle.kube)
        state: dict[str, object] = {"chart": chart, "policies not enforced": waiting}
        return chart == versions.kyverno_chart and not waiting, state, str(state)

    wait_for(f"{handle.env}: Kyverno release at chart {versions.kyverno_chart}, every policy enforced",
             probe, fleet.config.timeout(300))
    wait_images(fleet, handle, versions, "Kyverno", stale_kyverno)


def helm_release_revision(kube: Kube, ref: Ref) -> tuple[int, str]:
    """The Helm revision the release is at and the digest of what it installed
    (status.history[0]): a re-release raises the revision."""
    obj = kube.get(API["HelmRelease"], "HelmRelease", ref.name, ref.namespace) or {}
    history = (obj.get("status") or {}).get("history") or []
    if not history:
        raise UpgradeError(f"{ref}: no release in status.history")
    return int(history[0]["version"]), str(history[0].get("digest", ""))


def _leader_version(kube: Kube) -> tuple[str, str]:
    """The admission controller's leader (its Lease's holder) and the Kyverno image it runs."""
    holder, pod = lease_holder(kube)
    images = [c["image"] for c in (pod or {}).get("spec", {}).get("containers", [])]
    return holder, next((i for i in images if "/kyverno/" in i), "")


def _admission_policies(kube: Kube) -> dict[str, str]:
    """Every ValidatingAdmissionPolicy and binding, by kind and name, with its resourceVersion."""
    return {f"{kind} {o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
            for o in kube.list(ADMISSION, kind)}


def wait_settled(fleet: Fleet, handles: list[ClusterHandle], versions: Versions, settle_s: float = SETTLE_S) -> None:
    """On every cluster at once: the new Kyverno leads (its admission controller, at the new
    image, holds the leader Lease), every tenant policy is enforced, and no generated admission
    policy or binding has changed for `settle_s` under that leader. (Kyverno leaves a generated
    policy it would write identically as it is, so "rewritten by the new version" shows as
    "unchanged under it".)"""
    since = {h.env: time.monotonic() for h in handles}
    last: dict[str, dict[str, str]] = {h.env: {} for h in handles}

    def probe() -> tuple[bool, None, str]:
        states = []
        for handle in handles:
            holder, image = _leader_version(handle.kube)
            snapshot = _admission_policies(handle.kube)
            waiting = policies_not_ready(handle.kube)
            now = time.monotonic()
            if not image.endswith(f":{versions.kyverno}") or waiting or snapshot != last[handle.env]:
                since[handle.env], last[handle.env] = now, snapshot
            text = (f"{handle.env}: leader {holder or 'none'} ({image or 'no Kyverno image'}), policies not "
                    f"enforced {sorted(waiting)}, {len(snapshot)} admission policies and bindings unchanged "
                    f"for {now - since[handle.env]:.0f} s of {settle_s:.0f} s")
            states.append((now - since[handle.env] >= settle_s, text))
        return all(done for done, _ in states), None, "; ".join(text for _, text in states)

    wait_for(f"Kyverno {versions.kyverno} leading, admission policies unchanged for {settle_s:.0f} s "
             f"on {', '.join(h.env for h in handles)}", probe, fleet.config.timeout(300), interval_s=1.0)
