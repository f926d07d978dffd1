"""Convergence, one engine for every wait on the fleet (bring-up, attach, re-convergence after
a disruptive test, the upgrade): a plan of Flux objects in the order the fleet's own dependsOn
gives, each with its kind's deadline; each object is asked to reconcile and waited for at its
revision after that request (so nothing from before the request, Ready or failed, counts), and
each API attempt is bounded by what is left of its deadline."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from harness.access.kube import Kube
from harness.access.readiness import Status
from harness.core.parallel import run_together
from harness.core.repo import API, platform_order
from harness.core.topology import Tenant
from harness.core.versions import REPO_ROOT
from harness.core.waits import SOON_S, wait_for
from harness.e2e import engines, flux, publish, quotas
from harness.e2e.flux import Ref
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.repos import FLEET_REPO
from harness.manifests.native import ADMISSION_API


def applied_policy_names(root: Path = REPO_ROOT) -> list[str]:
    """The ValidatingPolicies the fleet of `root` applies (those its policies kustomization lists)."""
    return engines.Kyverno(root).policies()


def policies_not_ready(kube: Kube, root: Path = REPO_ROOT) -> dict[str, object]:
    """The tenant policies not enforced yet on the cluster, as the fleet's engine judges it
    (engines.py); empty when every one is."""
    return engines.engine_of(root).not_enforced(kube)


# How long each kind may take to reconcile once asked (scaled by --e2e-timeout-scale).
DEADLINE_S = {"GitRepository": 120.0, "HelmRepository": 120.0, "OCIRepository": 120.0,
              "Kustomization": 300.0, "HelmRelease": 300.0}
# A first install (bring-up): the platform's Kustomizations install Kyverno and wait for every
# policy to be enforced, which takes longer than a later reconcile.
FIRST_INSTALL_S = 600.0


@dataclass(frozen=True)
class Target:
    """One object of a plan: Ready at `commit` (None: whatever it applies, e.g. a HelmRelease)
    after a reconcile request, within `deadline_s` (default: its kind's)."""

    ref: Ref
    commit: str | None = None
    deadline_s: float | None = None

    @property
    def budget_s(self) -> float:
        return self.deadline_s if self.deadline_s is not None else DEADLINE_S[self.ref.kind]


# The platform's own source: the fleet repo, as `flux bootstrap` names it.
FLEET_SOURCE = Ref("GitRepository", "flux-system", "flux-system")


def platform_plan(env: str, commit: str, first_install: bool = False, root: Path = REPO_ROOT) -> list[Target]:
    """The fleet's own layers on the cluster of `env` at fleet `commit`: its source, its
    Kustomizations in dependsOn order, the policy engine's release if it has one."""
    layers = FIRST_INSTALL_S if first_install else None
    release = engines.engine_of(root).release
    return [Target(FLEET_SOURCE, commit),
            *(Target(Ref("Kustomization", "flux-system", name), commit, layers) for name in platform_order(env, root)),
            *([Target(release)] if release else [])]


def source_ref(tenant: Tenant) -> Ref:
    return Ref("GitRepository", tenant.namespace, tenant.source)


def sync_ref(tenant: Tenant) -> Ref:
    return Ref("Kustomization", tenant.namespace, tenant.sync)


def tenant_plan(tenant: Tenant, commit: str) -> list[Target]:
    """A tenant at its repository's `commit`: its source, its Kustomization, then the releases
    its repository ships (what a test adds to the repository is that test's to wait for)."""
    return [Target(source_ref(tenant), commit), Target(sync_ref(tenant), commit),
            *(Target(Ref("HelmRelease", tenant.namespace, name)) for name in tenant.releases)]


def converge(kube: Kube, plan: list[Target], scale: float = 1.0, diagnostics: str = "") -> None:
    """Each target in order: it exists, is asked to reconcile, and is Ready at its revision
    after the request, within its deadline (times `scale`); fails fast on a failure that answers
    the request (flux.wait_ready)."""
    for target in plan:
        ref = target.ref
        deadline = time.monotonic() + target.budget_s * scale

        def exists(ref: Ref = ref, deadline: float = deadline) -> tuple[bool, None, str]:
            left = max(flux.MIN_REQUEST_S, deadline - time.monotonic())
            found = kube.get(API[ref.kind], ref.kind, ref.name, ref.namespace, timeout_s=left)
            return found is not None, None, "does not exist yet"

        wait_for(f"{ref} to exist", exists, max(0.0, deadline - time.monotonic()), interval_s=flux.POLL_S,
                 first_s=SOON_S, hint=f"diagnostics: {diagnostics}" if diagnostics else "")
        token = flux.request_reconcile(kube, ref)
        flux.wait_ready(kube, ref, target.commit, max(0.0, deadline - time.monotonic()), diagnostics,
                        handled=token)


def platform_ready(fleet: Fleet, handle: ClusterHandle, commit: str) -> None:
    """Every platform layer of one cluster reconciled again and Ready at fleet `commit`, in the
    fleet's dependsOn order (after a change to the fleet, or a disturbance of its parts)."""
    converge(handle.kube, platform_plan(handle.env, commit, root=fleet.topology.root), fleet.config.timeout_scale)


def policy_regenerated(fleet: Fleet, handle: ClusterHandle, policy: str) -> None:
    """After a test changed `policy` by hand and put it back: the platform converged again at the
    fleet's head, every policy enforced, and `policy`'s admission binding generated again."""
    platform_ready(fleet, handle, publish.head(fleet.server, FLEET_REPO))
    binding = fleet.engine.binding(policy)

    def back() -> tuple[bool, object, str]:
        waiting = policies_not_ready(handle.kube)
        present = handle.kube.get(ADMISSION_API, "ValidatingAdmissionPolicyBinding", binding) is not None
        return not waiting and present, waiting, f"not enforced: {waiting}, {binding}: {present}"

    wait_for(f"every policy enforced again, {binding} among them", back, fleet.config.timeout(240), first_s=SOON_S)


def tenant_ready_everywhere(fleet: Fleet, tenant: Tenant, commit: str) -> None:
    """On every cluster, the tenant reconciled again at `commit`, its releases released; the
    clusters side by side (each waits on its own controllers, not on the other's)."""
    run_together({env: partial(converge, handle.kube, tenant_plan(tenant, commit), fleet.config.timeout_scale)
                  for env, handle in fleet.clusters.items()})


def tenant_failed_everywhere(fleet: Fleet, tenant: Tenant, commit: str) -> dict[str, Status]:
    """Every cluster asked to fetch the tenant's `commit`, then each waited on until the tenant's
    sync failed at it (the clusters fetch and apply at once); each cluster's failure status."""
    for handle in fleet.clusters.values():
        flux.request_reconcile(handle.kube, source_ref(tenant))
    return {env: flux.wait_failed(handle.kube, sync_ref(tenant), commit, fleet.config.timeout(240))
            for env, handle in fleet.clusters.items()}


def platform_ready_everywhere(fleet: Fleet, commit: str) -> None:
    """Every cluster's platform layers Ready at fleet `commit`, the clusters side by side."""
    run_together({env: partial(platform_ready, fleet, handle, commit) for env, handle in fleet.clusters.items()})


def wait_fleet(fleet: Fleet, handle: ClusterHandle) -> None:
    """A fresh or attached cluster converged: every platform layer at the fleet's HEAD, then
    every tenant at its repository's commit."""
    diag = str(fleet.diagnostics_dir("setup") / handle.env)
    head = publish.head(fleet.server, FLEET_REPO)
    plan = platform_plan(handle.env, head, first_install=True, root=fleet.topology.root)
    # A client of its own for the recount's thread.
    with quotas.recounted(Kube(handle.kube.kubeconfig), [t.namespace for t in fleet.tenants], handle.env):
        with fleet.timings.measure(f"{handle.env}: {', '.join(t.ref.name for t in plan)} Ready at fleet HEAD"):
            converge(handle.kube, plan, fleet.config.timeout_scale, diag)
        for tenant in fleet.tenants:
            with fleet.timings.measure(f"{handle.env}: tenant {tenant.name} Ready at its commit, its releases released"):
                converge(handle.kube, tenant_plan(tenant, fleet.tenant_commits[tenant.name]),
                         fleet.config.timeout_scale, diag)
