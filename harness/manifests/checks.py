"""Checks on rendered objects: schemas, API lifecycle, multi-tenancy invariants, lockdown."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.core import yamlio
from harness.core.lockdown import (
    IMAGE_AUTOMATION,
    IMAGE_AUTOMATION_RESOURCE,
    LOCKDOWN_FLAGS,
    lockdown_problems,
)
from harness.core.repo import TENANT_LABEL, pod_security_labels
from harness.core.versions import Versions
from harness.manifests.findings import Finding, describe
from harness.manifests.policies import applied_policies
from harness.manifests.render import (
    KUSTOMIZATION_FILES,
    Render,
    RenderedObject,
    tenant_namespaces,
)
from harness.manifests.schemas import SchemaIndex

RECONCILER_KINDS = {("kustomize.toolkit.fluxcd.io", "Kustomization"),
                    ("helm.toolkit.fluxcd.io", "HelmRelease")}
CLUSTER_SCOPED_RBAC = {"ClusterRole", "ClusterRoleBinding"}
_REMOTE = re.compile(r"^(https?://|git::|ssh://|git@|github\.com/|gitlab\.com/|bitbucket\.org/)")


def _group(obj: dict[str, Any]) -> str:
    """API group of an object ("" for the core group's bare "v1")."""
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def check_schemas(renders: Iterable[Render], index: SchemaIndex) -> list[Finding]:
    findings = []
    for render in renders:
        for item in render.objects:
            obj = item.obj
            api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
            entry = index.lookup(api_version, kind)
            if entry is None:
                known = index.known_versions(kind)
                hint = f"served versions: {', '.join(known)}" if known else "unknown kind"
                findings.append(Finding("schema", item.file, describe(obj), "apiVersion",
                                        f"{api_version} {kind} is not served by the pinned "
                                        f"versions ({hint})"))
                continue
            if entry.deprecated:
                findings.append(Finding("deprecated", item.file, describe(obj), "apiVersion",
                                        f"{entry.deprecated}; use "
                                        f"{', '.join(v for v in index.known_versions(kind) if v != api_version)}"))
            for path, message in index.errors(obj):
                findings.append(Finding("schema", item.file, describe(obj), path,
                                        f"{message} (schema: {entry.source})"))
    return findings


def _source_refs(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    spec = obj.get("spec") or {}
    refs = []
    if "sourceRef" in spec:
        refs.append(("spec.sourceRef", spec["sourceRef"]))
    chart_ref = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef")
    if chart_ref:
        refs.append(("spec.chart.spec.sourceRef", chart_ref))
    if "chartRef" in spec:
        refs.append(("spec.chartRef", spec["chartRef"]))
    return refs


def _check_reconciler(item: RenderedObject, ns: str) -> list[Finding]:
    obj, findings = item.obj, []
    spec = obj.get("spec") or {}
    if not spec.get("serviceAccountName"):
        findings.append(Finding("tenancy", item.file, describe(obj), "spec.serviceAccountName",
                                "missing: a tenant reconciler must run as the tenant's service "
                                "account"))
    for field, ref in _source_refs(obj):
        if ref.get("namespace") not in (None, ns):
            findings.append(Finding("tenancy", item.file, describe(obj), f"{field}.namespace",
                                    f"cross-namespace reference to {ref.get('namespace')}; "
                                    f"tenants may only use sources in {ns}"))
    if "kubeConfig" in spec:
        findings.append(Finding("tenancy", item.file, describe(obj), "spec.kubeConfig",
                                "not allowed for tenants (it carries other credentials)"))
    return findings


def check_tenancy(renders: list[Render]) -> list[Finding]:
    """Tenant objects: labelled, namespace-scoped RBAC, own account, own sources, own namespace."""
    tenants = tenant_namespaces(renders)
    findings: list[Finding] = []
    for render in renders:
        for item in render.objects:
            obj = item.obj
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace")
            labels = meta.get("labels") or {}
            key = (_group(obj), obj.get("kind"))
            if render.tenant is not None:
                # Output of a tenant's own repo, applied by its reconciler.
                home = [n for n, t in tenants.items() if t == render.tenant]
                if obj.get("kind") in CLUSTER_SCOPED_RBAC or obj.get("kind") == "Namespace":
                    findings.append(Finding("tenancy", item.file, describe(obj), "kind",
                                            "cluster-scoped object in a tenant repo; the "
                                            "tenant's reconciler cannot and must not create it"))
                elif ns not in home:
                    findings.append(Finding("tenancy", item.file, describe(obj),
                                            "metadata.namespace",
                                            f"outside the tenant's namespace ({', '.join(home)})"))
                if key in RECONCILER_KINDS:
                    findings.extend(_check_reconciler(item, ns or ""))
                continue
            tenant = tenants.get(ns or "") or (
                tenants.get(meta.get("name", "")) if obj.get("kind") == "Namespace" else None
            )
            if tenant is not None:
                if labels.get(TENANT_LABEL) != tenant:
                    findings.append(Finding("tenancy", item.file, describe(obj),
                                            f"metadata.labels.{TENANT_LABEL}",
                                            f"tenant object must carry {TENANT_LABEL}: {tenant}"))
                if key in RECONCILER_KINDS:
                    findings.extend(_check_reconciler(item, ns or ""))
                for subject in obj.get("subjects") or []:
                    if subject.get("kind") == "ServiceAccount" and subject.get("namespace") != ns:
                        findings.append(Finding("tenancy", item.file, describe(obj), "subjects",
                                                f"binds ServiceAccount {subject.get('namespace')}/"
                                                f"{subject.get('name')} from another namespace"))
            if obj.get("kind") in CLUSTER_SCOPED_RBAC:
                if TENANT_LABEL in labels:
                    findings.append(Finding("tenancy", item.file, describe(obj), "kind",
                                            "tenant RBAC must be namespace-scoped (Role/RoleBinding)"))
                for subject in obj.get("subjects") or []:
                    if subject.get("namespace") in tenants:
                        findings.append(Finding("tenancy", item.file, describe(obj), "subjects",
                                                f"grants cluster-wide rights to tenant account "
                                                f"{subject.get('namespace')}/{subject.get('name')}"))
    return findings


def _governs_image_automation(renders: list[Render]) -> bool:
    """Some policy the clusters apply matches ImageUpdateAutomation objects."""
    for item in applied_policies(renders):
        rules = ((item.obj.get("spec") or {}).get("matchConstraints") or {}).get("resourceRules") or []
        if any(IMAGE_AUTOMATION_RESOURCE in (rule.get("resources") or []) for rule in rules):
            return True
    return False


def check_lockdown(renders: Iterable[Render]) -> list[Finding]:
    """Each cluster entry point runs every controller with the lockdown flags; image automation,
    if installed, is locked down and governed by a policy."""
    findings = []
    renders = list(renders)
    for render in renders:
        if not render.path.startswith("clusters/"):
            continue
        deployments = {
            o.obj["metadata"]["name"]: o for o in render.objects
            if o.obj.get("kind") == "Deployment" and (o.obj.get("metadata") or {}).get("namespace") == "flux-system"
        }
        for name in LOCKDOWN_FLAGS:
            if name not in deployments:
                findings.append(Finding("lockdown", render.path, f"Deployment flux-system/{name}",
                                        "", "missing from the cluster's Flux install"))
        for name, item in deployments.items():
            args = item.obj["spec"]["template"]["spec"]["containers"][0].get("args", [])
            for problem in lockdown_problems(name, args):
                findings.append(Finding("lockdown", item.file, describe(item.obj),
                                        "spec.template.spec.containers[0].args", problem))
        if IMAGE_AUTOMATION in deployments and not _governs_image_automation(renders):
            item = deployments[IMAGE_AUTOMATION]
            findings.append(Finding("lockdown", item.file, describe(item.obj), "",
                                    "image automation is installed but no policy governs "
                                    f"{IMAGE_AUTOMATION_RESOURCE} in tenant namespaces (it pushes to Git with "
                                    "the platform's credentials); add one or do not install it"))
        sync = [o for o in render.objects if o.obj.get("kind") == "Kustomization"
                and o.obj["metadata"].get("name") == "flux-system"]
        for item in sync:
            if item.obj["spec"].get("serviceAccountName") != "kustomize-controller":
                findings.append(Finding("lockdown", item.file, describe(item.obj),
                                        "spec.serviceAccountName",
                                        "must be kustomize-controller (the lockdown's default "
                                        "service account has no rights)"))
    return findings


def check_remote_bases(repo: Path, roots: Iterable[str]) -> list[Finding]:
    """kustomize-controller runs with --no-remote-bases=true: no URL in any kustomization."""
    findings = []
    for root in roots:
        for name in KUSTOMIZATION_FILES:
            for kfile in sorted((repo / root).rglob(name)):
                data = yamlio.load(kfile.read_text()) or {}
                for field in ("resources", "components", "bases"):
                    for entry in data.get(field) or []:
                        if isinstance(entry, str) and _REMOTE.match(entry):
                            findings.append(Finding("remote-base", kfile.relative_to(repo).as_posix(),
                                                    "", field,
                                                    f"remote base {entry} is refused by "
                                                    "kustomize-controller (--no-remote-bases=true)"))
    return findings


def check_pins(renders: Iterable[Render], versions: Versions) -> list[Finding]:
    """Versions written in manifests agree with versions.yaml, the one place they are pinned."""
    findings = []
    for render in renders:
        for item in render.objects:
            obj = item.obj
            if obj.get("kind") == "HelmRelease" and obj["metadata"].get("name") == "kyverno":
                chart = obj["spec"]["chart"]["spec"]
                if str(chart.get("version")) != versions.kyverno_chart:
                    findings.append(Finding("pins", item.file, describe(obj), "spec.chart.spec.version",
                                            f"{chart.get('version')} differs from kyverno.chart "
                                            f"{versions.kyverno_chart} in versions.yaml"))
    return findings


def check_tenant_namespaces(renders: list[Render], versions: Versions) -> list[Finding]:
    """Every tenant namespace runs its pods under Pod Security `restricted` at the pinned
    Kubernetes minor, and has the platform's ResourceQuota and LimitRange."""
    expected = pod_security_labels(versions.kubernetes_minor)
    namespaces: dict[str, RenderedObject] = {}
    kinds: dict[str, set[str]] = {}
    for render in renders:
        for item in render.objects:
            meta = item.obj.get("metadata") or {}
            if item.obj.get("kind") == "Namespace" and TENANT_LABEL in (meta.get("labels") or {}):
                namespaces.setdefault(meta["name"], item)
            elif render.tenant is None and meta.get("namespace"):
                kind = str(item.obj.get("kind"))
                if kind == "NetworkPolicy" and _closes_namespace(item.obj):
                    kind = "default-deny NetworkPolicy"
                kinds.setdefault(meta["namespace"], set()).add(kind)
    findings = []
    for name, item in sorted(namespaces.items()):
        labels = item.obj["metadata"].get("labels") or {}
        for key, value in expected.items():
            if labels.get(key) != value:
                findings.append(Finding("pod-security", item.file, describe(item.obj), f"metadata.labels.{key}",
                                        f"is {labels.get(key)!r}, must be {value!r}: tenant pods run under Pod "
                                        f"Security `restricted` at the clusters' Kubernetes "
                                        f"{versions.kubernetes_minor} (python -m harness tenant add writes them)"))
        for kind in ("ResourceQuota", "LimitRange"):
            if kind not in kinds.get(name, set()):
                findings.append(Finding("quota", item.file, describe(item.obj), "",
                                        f"no {kind} in tenant namespace {name}: every tenant gets one from the "
                                        "platform (quota.yaml, as python -m harness tenant add writes it)"))
        if "default-deny NetworkPolicy" not in kinds.get(name, set()):
            findings.append(Finding("network", item.file, describe(item.obj), "",
                                    f"no NetworkPolicy of the platform closes tenant namespace {name} (every pod, "
                                    "ingress and egress): every tenant gets one (network.yaml, as python -m "
                                    "harness tenant add writes it)"))
    return findings


def _closes_namespace(policy: dict[str, Any]) -> bool:
    """Does this NetworkPolicy select every pod of its namespace for both ingress and egress?"""
    spec = policy.get("spec") or {}
    return not spec.get("podSelector") and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or [])
