"""What decides a cluster's admission answers, read live, so that clusters can be compared.

The tests marked `admission` run on one cluster because every cluster is meant to admit alike:
the same policies (and the admission policies Kyverno generates from them), the same Kyverno
release, Flux's NetworkPolicies, and in each tenant namespace the same labels (Pod Security),
RBAC, quota, limits and NetworkPolicies. This reads exactly those, keyed by kind and name, and
only the fields that decide admission (spec, rules, subjects), not what differs between any
two clusters anyway (uids, timestamps, status).
"""

from __future__ import annotations

from typing import Any

from harness.access.kube import Kube
from harness.core.repo import API, TENANT_LABEL

Inputs = dict[str, Any]

# Cluster-wide objects that decide admission, compared whole (spec).
_CLUSTER_SCOPED = (
    (API["ValidatingPolicy"], "ValidatingPolicy"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"),
)
# Objects in each tenant namespace that decide what the tenant may do there.
_IN_TENANT_NAMESPACES = (
    ("rbac.authorization.k8s.io/v1", "Role", ("rules",)),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", ("roleRef", "subjects")),
    ("v1", "ServiceAccount", ()),
    ("v1", "ResourceQuota", ("spec",)),
    ("v1", "LimitRange", ("spec",)),
    ("networking.k8s.io/v1", "NetworkPolicy", ("spec",)),
)


def admission_inputs(kube: Kube) -> Inputs:
    found: Inputs = {}
    for api_version, kind in _CLUSTER_SCOPED:
        for obj in kube.list(api_version, kind):
            found[f"{kind} {obj['metadata']['name']}"] = obj.get("spec")
    tenants = [ns for ns in kube.list("v1", "Namespace") if TENANT_LABEL in (ns["metadata"].get("labels") or {})]
    for ns in tenants:
        name = ns["metadata"]["name"]
        found[f"Namespace {name}"] = {"labels": ns["metadata"].get("labels")}
        for api_version, kind, fields in _IN_TENANT_NAMESPACES:
            for obj in kube.list(api_version, kind, name):
                if kind == "ServiceAccount" and obj["metadata"]["name"] == "default":
                    continue
                found[f"{kind} {name}/{obj['metadata']['name']}"] = {f: obj.get(f) for f in fields}
    # Flux's own NetworkPolicies decide what tenant pods reach of its controllers.
    for obj in kube.list("networking.k8s.io/v1", "NetworkPolicy", "flux-system"):
        found[f"NetworkPolicy flux-system/{obj['metadata']['name']}"] = obj.get("spec")
    release = kube.get(API["HelmRelease"], "HelmRelease", "kyverno", "flux-system") or {}
    spec = release.get("spec") or {}
    found["HelmRelease flux-system/kyverno"] = {
        "chart": ((spec.get("chart") or {}).get("spec") or {}).get("version"),
        "values": spec.get("values"),
    }
    return found


def differences(reference: Inputs, other: Inputs) -> list[str]:
    """What `other` lacks, adds or holds differently, one line each, sorted."""
    lines = []
    for key in sorted(reference.keys() | other.keys()):
        if key not in other:
            lines.append(f"{key}: missing")
        elif key not in reference:
            lines.append(f"{key}: only here")
        elif reference[key] != other[key]:
            lines.append(f"{key}: differs")
    return lines
