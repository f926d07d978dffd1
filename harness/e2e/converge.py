"""Waiting for a fleet to converge: every layer Ready at the pushed revision, in the order the
fleet's own dependsOn gives, the policies enforced, every tenant reconciled."""

from __future__ import annotations

from pathlib import Path

from harness.access.kube import Kube
from harness.core import yamlio
from harness.core.repo import API, POLICIES_DIR, platform_order
from harness.core.topology import Tenant
from harness.core.versions import REPO_ROOT
from harness.e2e import flux, publish
from harness.e2e.flux import Ref
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.repos import FLEET_REPO


def applied_policy_names(root: Path = REPO_ROOT) -> list[str]:
    """The ValidatingPolicies the fleet of `root` applies (those its policies kustomization lists)."""
    folder = root / POLICIES_DIR
    names = []
    for resource in yamlio.load((folder / "kustomization.yaml").read_text())["resources"]:
        if (folder / resource).is_file():
            names += [d["metadata"]["name"] for d in yamlio.load_all((folder / resource).read_text())
                      if d and d.get("kind") == "ValidatingPolicy"]
    return names


def policies_not_ready(kube: Kube) -> dict[str, object]:
    """The applied ValidatingPolicies Kyverno reports neither as generated into a
    ValidatingAdmissionPolicy nor as ready in its webhook, with its message; empty when every
    one is enforced (the same test as the fleet's health check)."""
    states = {}
    for name in applied_policy_names():
        status = (kube.get(API["ValidatingPolicy"], "ValidatingPolicy", name) or {}).get("status") or {}
        condition_status = status.get("conditionStatus") or {}
        if status.get("generated") is not True and condition_status.get("ready") is not True:
            states[name] = condition_status.get("message") or "not enforced yet"
    return states


def platform_ready(fleet: Fleet, handle: ClusterHandle, commit: str) -> None:
    """Every platform layer of one cluster reconciled again and Ready at fleet `commit`, in the
    fleet's dependsOn order (after a change to the fleet, or a disturbance of its parts)."""
    source = Ref("GitRepository", "flux-system", "flux-system")
    token = flux.request_reconcile(handle.kube, source)
    flux.wait_ready(handle.kube, source, commit, fleet.config.timeout(120), handled=token)
    for name in platform_order(handle.env):
        ref = Ref("Kustomization", "flux-system", name)
        token = flux.request_reconcile(handle.kube, ref)
        flux.wait_ready(handle.kube, ref, commit, fleet.config.timeout(300), handled=token)


def source_ref(tenant: Tenant) -> Ref:
    return Ref("GitRepository", tenant.namespace, tenant.source)


def sync_ref(tenant: Tenant) -> Ref:
    return Ref("Kustomization", tenant.namespace, tenant.sync)


def releases_ready(kube: Kube, tenant: Tenant, timeout_s: float, diagnostics: str = "") -> None:
    """Every HelmRelease in the tenant's namespace released (its repository's charts)."""
    for release in kube.list(API["HelmRelease"], "HelmRelease", tenant.namespace):
        ref = Ref("HelmRelease", tenant.namespace, release["metadata"]["name"])
        flux.wait_ready(kube, ref, None, timeout_s, diagnostics)


def tenant_ready_everywhere(fleet: Fleet, tenant: Tenant, commit: str) -> None:
    """On every cluster, the tenant's Kustomization applied `commit` and its releases are released."""
    for handle in fleet.clusters.values():
        flux.request_reconcile(handle.kube, source_ref(tenant))
        flux.wait_ready(handle.kube, sync_ref(tenant), commit, fleet.config.timeout(240))
        releases_ready(handle.kube, tenant, fleet.config.timeout(240))


def wait_fleet(fleet: Fleet, handle: ClusterHandle) -> None:
    """Every layer Ready at the revision pushed, in the dependsOn order of clusters/<env>."""
    cfg, kube = fleet.config, handle.kube
    diag = str(fleet.diagnostics_dir("setup") / handle.env)
    head = publish.head(fleet.server, FLEET_REPO)
    order = platform_order(handle.env)
    with fleet.timings.measure(f"{handle.env}: {', '.join(order)} Ready at fleet HEAD"):
        source = Ref("GitRepository", "flux-system", "flux-system")
        flux.request_reconcile(kube, source)
        flux.wait_ready(kube, source, head, cfg.timeout(120), diag)
        for name in order:
            ref = Ref("Kustomization", "flux-system", name)
            if kube.get(API["Kustomization"], "Kustomization", name, "flux-system") is not None:
                flux.request_reconcile(kube, ref)
            flux.wait_ready(kube, ref, head, cfg.timeout(600), diag)
        flux.wait_ready(kube, Ref("HelmRelease", "flux-system", "kyverno"), None, cfg.timeout(60), diag)
    for tenant in fleet.tenants:
        commit = fleet.tenant_commits[tenant.name]
        with fleet.timings.measure(f"{handle.env}: tenant {tenant.name} Ready at its commit, its releases released"):
            flux.wait_ready(kube, source_ref(tenant), commit, cfg.timeout(180), diag)
            flux.wait_ready(kube, sync_ref(tenant), commit, cfg.timeout(300), diag)
            releases_ready(kube, tenant, cfg.timeout(300), diag)
