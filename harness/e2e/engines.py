"""The policy engine seam: what the harness asks of whatever enforces the tenant policies.

Two implementations. Kyverno (the fleet as it is): ValidatingPolicies that Kyverno, installed by
Flux, turns into ValidatingAdmissionPolicies named `vpol-<policy>`. Native (the fleet's variant
from harness/manifests/native.py): the same rules as ValidatingAdmissionPolicies named after
the policy, no engine installed. Either way the API server refuses a request with HTTP 422
naming the admission policy; what differs is that name, how enforcement is judged, whether
there is an engine release to converge, taking the engine down for a test (and back), the
offline checks (`make validate` runs the fleet's engine's), and what the kit builds for it. The
engine of a fleet is read from its folders. Both engines' rules are written once, as the Kyverno
policies: the Kyverno CLI's offline tests judge them under either engine, and the native
variant's checks prove its admission policies are what those policies generate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.access.kube import Kube
from harness.core.errors import HarnessError
from harness.core.repo import API, POLICIES_DIR, tree_engine
from harness.core.topology import applied
from harness.core.versions import REPO_ROOT
from harness.core.waits import SOON_S, wait_for
from harness.e2e import kyverno
from harness.e2e.flux import Ref
from harness.kit.images import KYVERNO_PART
from harness.manifests import policies
from harness.manifests.findings import Finding
from harness.manifests.native import ADMISSION_API, NATIVE_DIR, applied_policies, check_variant
from harness.manifests.render import Render, RenderedObject


class EngineError(HarnessError):
    """Something was asked of a policy engine that it does not have."""


class PolicyEngine(Protocol):
    @property
    def name(self) -> str: ...

    def policies(self) -> list[str]:
        """The tenant policies the fleet applies, by name."""

    def admission_policy(self, policy: str) -> str:
        """The ValidatingAdmissionPolicy that enforces `policy` (its binding is `binding()`)."""

    def binding(self, policy: str) -> str: ...

    def not_enforced(self, kube: Kube) -> dict[str, object]:
        """The policies not enforced yet on the cluster, with why; empty when all are."""

    @property
    def release(self) -> Ref | None:
        """The engine's own release, which converges with the platform (None: no engine)."""

    def take_down(self, kube: Kube, timeout_s: float) -> Callable[[float], None]:
        """Take the engine away (its own admission gone), leaving what the API server enforces
        alone; returns what brings it back within a deadline, waiting until every policy is
        enforced again. An engine that cannot go down refuses."""

    def offline_checks(self, renders: list[Render], kyverno: Path) -> list[Finding]:
        """The offline checks of what the fleet's clusters enforce (make validate), given the
        rendered fleet and the Kyverno CLI."""

    @property
    def kit_parts(self) -> tuple[str, ...]:
        """What the kit builds for this engine beyond Flux and the clusters (kit.images.ENGINE_PARTS)."""


def _listed(folder: Path, kind: str) -> list[str]:
    return [doc["metadata"]["name"] for _, doc in applied(folder, kind)]


def _admission_missing(kube: Kube, engine: PolicyEngine) -> dict[str, object]:
    """Each policy whose admission policy or binding is missing, or whose expressions the API
    server could not type-check."""
    states: dict[str, object] = {}
    for name in engine.policies():
        vap = kube.get(ADMISSION_API, "ValidatingAdmissionPolicy", engine.admission_policy(name))
        binding = kube.get(ADMISSION_API, "ValidatingAdmissionPolicyBinding", engine.binding(name))
        warnings = (((vap or {}).get("status") or {}).get("typeChecking") or {}).get("expressionWarnings")
        if vap is None or binding is None:
            states[name] = f"no ValidatingAdmissionPolicy {engine.admission_policy(name)} and binding yet"
        elif warnings:
            states[name] = f"type-checking warnings: {warnings}"
    return states


@dataclass(frozen=True)
class Kyverno:
    root: Path
    name: str = "kyverno"

    def policies(self) -> list[str]:
        return _listed(self.root / POLICIES_DIR, "ValidatingPolicy")

    def admission_policy(self, policy: str) -> str:
        return f"vpol-{policy}"

    def binding(self, policy: str) -> str:
        return f"vpol-{policy}-binding"

    def not_enforced(self, kube: Kube) -> dict[str, object]:
        """Kyverno's own verdict, as the fleet's health check reads it: the policy generated into
        a ValidatingAdmissionPolicy, or ready in Kyverno's webhook."""
        states = {}
        for name in self.policies():
            status = (kube.get(API["ValidatingPolicy"], "ValidatingPolicy", name) or {}).get("status") or {}
            condition_status = status.get("conditionStatus") or {}
            if status.get("generated") is not True and condition_status.get("ready") is not True:
                states[name] = condition_status.get("message") or "not enforced yet"
        return states

    @property
    def release(self) -> Ref | None:
        return Ref("HelmRelease", "flux-system", "kyverno")

    @property
    def kit_parts(self) -> tuple[str, ...]:
        return (KYVERNO_PART,)  # its controllers' images and its chart

    def offline_checks(self, renders: list[Render], kyverno: Path) -> list[Finding]:
        """The policies the clusters apply, judged by the Kyverno CLI."""
        return policies.judged(self.root, renders, policies.applied_policies(renders), kyverno)

    def take_down(self, kube: Kube, timeout_s: float) -> Callable[[float], None]:
        """Kyverno's admission controller scaled to zero, its pods and (removed by Kyverno on
        the way out) its webhook configurations gone."""
        replicas = kyverno.replicas(kube)

        def bring_back(within_s: float) -> None:
            kyverno.scale_back(kube, replicas, within_s)

            def back() -> tuple[bool, dict[str, object], str]:
                available, waiting = kyverno.available(kube), self.not_enforced(kube)
                return available >= replicas and not waiting, waiting, f"available={available} not ready={waiting}"

            wait_for(f"{kyverno.ADMISSION} back and every policy enforced", back, within_s, first_s=SOON_S)

        kyverno.scale(kube, 0)

        def gone() -> tuple[bool, list[str], str]:
            left = kyverno.admission_pods(kube) + kyverno.admission_webhooks(kube)
            return not left, left, f"left: {left}"

        try:
            wait_for(f"{kyverno.ADMISSION} pods and Kyverno's webhooks to be gone", gone, timeout_s, first_s=SOON_S)
        except BaseException:
            bring_back(timeout_s)  # not left half down
            raise
        return bring_back


@dataclass(frozen=True)
class Native:
    root: Path
    name: str = "native"

    def policies(self) -> list[str]:
        return _listed(self.root / NATIVE_DIR, "ValidatingAdmissionPolicy")

    def admission_policy(self, policy: str) -> str:
        return policy

    def binding(self, policy: str) -> str:
        return policy

    def not_enforced(self, kube: Kube) -> dict[str, object]:
        """The API server is the engine: a policy is enforced once it and its binding exist and
        its expressions type-check."""
        return _admission_missing(kube, self)

    @property
    def release(self) -> Ref | None:
        return None

    @property
    def kit_parts(self) -> tuple[str, ...]:
        return ()  # the API server is the engine

    def offline_checks(self, renders: list[Render], kyverno: Path) -> list[Finding]:
        """The admission policies are exactly what the Kyverno source generates, and that source
        is judged by the Kyverno CLI as it would be under Kyverno."""
        source = [RenderedObject(doc, f"{POLICIES_DIR}/{file}") for file, doc in applied_policies(self.root)]
        return [*check_variant(self.root), *policies.judged(self.root, renders, source, kyverno)]

    def take_down(self, kube: Kube, timeout_s: float) -> Callable[[float], None]:
        raise EngineError("the native variant has no policy engine apart from the API server: nothing to take down")


def named(name: str, root: Path = REPO_ROOT) -> PolicyEngine:
    """The engine --e2e-policy-engine names, for the fleet at `root`."""
    return Native(root) if name == "native" else Kyverno(root)


def engine_of(root: Path) -> PolicyEngine:
    """The engine the fleet at `root` is written for: native admission policies if it has
    their folder, else Kyverno's policies."""
    return Native(root) if tree_engine(root) == "native" else Kyverno(root)


_current: list[PolicyEngine] = []


def use(engine: PolicyEngine) -> None:
    """The engine of this session's fleet (the plugin sets it once the fleet is up): how a
    refusal names its policy in every assertion of the session."""
    _current[:] = [engine]


def current() -> PolicyEngine:
    if not _current:
        raise RuntimeError("no fleet is up in this session, so no policy engine is known yet")
    return _current[0]
