"""The fleet repo's layout, defined once: its folders, the tenant label, the API versions of the
objects the harness reads, and the order in which each cluster's platform Kustomizations
reconcile, read from `clusters/<env>/*.yaml` (their dependsOn). What the folders hold (which
environments, which tenants) is the topology's (topology.py)."""

from __future__ import annotations

from pathlib import Path

from harness.core import yamlio
from harness.core.errors import ConfigError
from harness.core.versions import REPO_ROOT

FLEET_DIRS = ("clusters", "infrastructure", "tenants")
TENANT_LABEL = "toolkit.fluxcd.io/tenant"
# Tenant namespaces run under Kubernetes' own Pod Security Admission at this level, each mode
# pinned to the clusters' Kubernetes minor (a Kubernetes bump moves the labels with it).
POD_SECURITY_LEVEL = "restricted"
POD_SECURITY_MODES = ("enforce", "audit", "warn")
POLICIES_DIR = "infrastructure/kyverno-policies"
# The same policies as native ValidatingAdmissionPolicies, in the fleet's variant without a
# policy engine (harness/manifests/native.py writes it from POLICIES_DIR).
NATIVE_POLICIES_DIR = "infrastructure/admission-policies"
# The policies' offline tests (`kyverno test`), which also give the upgrade probe its examples.
POLICY_TESTS_DIR = "tests/policies"
# The per-tenant source allowlist (a JSON map in the policy's `allowlists` variable).
SOURCE_ALLOWLIST = f"{POLICIES_DIR}/tenant-source-allowlist.yaml"
BOOTSTRAP_KUSTOMIZATION = "flux-system"  # written by `flux bootstrap`, first of every cluster
API = {
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
    "GitRepository": "source.toolkit.fluxcd.io/v1",
    "HelmRepository": "source.toolkit.fluxcd.io/v1",
    "OCIRepository": "source.toolkit.fluxcd.io/v1",
    "Bucket": "source.toolkit.fluxcd.io/v1",
    "HelmChart": "source.toolkit.fluxcd.io/v1",
    "ValidatingPolicy": "policies.kyverno.io/v1",
}


def pod_security_labels(kubernetes_minor: str) -> dict[str, str]:
    """The labels of a tenant namespace that put its pods under POD_SECURITY_LEVEL."""
    labels = {}
    for mode in POD_SECURITY_MODES:
        labels[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = kubernetes_minor
    return labels


def platform_order(env: str, root: Path = REPO_ROOT) -> list[str]:
    """The cluster's Flux Kustomizations in flux-system, in the order dependsOn imposes
    (bootstrap's own first; among equals, the order of the files)."""
    declared: dict[str, list[str]] = {}
    for path in sorted((root / "clusters" / env).glob("*.yaml")):
        for doc in yamlio.load_all(path.read_text()):
            if (doc and doc.get("kind") == "Kustomization" and doc.get("apiVersion") == API["Kustomization"]
                    and doc["metadata"].get("namespace") == "flux-system"):
                needs = [d["name"] for d in (doc["spec"].get("dependsOn") or [])]
                declared[doc["metadata"]["name"]] = needs
    order = [BOOTSTRAP_KUSTOMIZATION]
    pending = dict(declared)
    while pending:
        ready = [name for name, needs in pending.items() if all(n in order for n in needs)]
        if not ready:
            raise ConfigError(f"clusters/{env}: dependsOn cannot be satisfied (a cycle or an unknown "
                              f"name) among {sorted(pending)}: {pending}")
        order += ready
        for name in ready:
            del pending[name]
    return order


def tree_engine(root: Path) -> str:
    """The policy engine the fleet at `root` deploys: `native` once it holds the native
    variant's folder, else `kyverno`."""
    return "native" if (root / NATIVE_POLICIES_DIR).is_dir() else "kyverno"
