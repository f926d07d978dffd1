"""The fleet without a policy engine: the same tenant rules as native ValidatingAdmissionPolicies
and bindings, enforced by the API server alone.

Each Kyverno ValidatingPolicy the fleet applies becomes the ValidatingAdmissionPolicy and
binding Kyverno itself generates from it (`autogen.validatingAdmissionPolicy`: the policy's
match constraints, conditions, variables, validations and failure policy; the binding with its
validation actions), named after the policy instead of Kyverno's `vpol-` names. The e2e checks
this against what Kyverno generates live, so the two variants stay one set of rules.

`write_variant` turns a fleet into that variant (a copy for the e2e, or the working tree with
`python -m harness native write`, which a fork commits): `infrastructure/admission-policies/`
applied instead of `infrastructure/kyverno` and `kyverno-policies`, each cluster's Kustomizations
rewired to it (the tenants depend on it as they depended on the policies), and Kyverno's release
removed. The Kyverno policies stay as the source no cluster applies: the offline tests judge
them, and `check_variant` (make validate) proves the committed admission policies are exactly
what they generate."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from harness.core import yamlio
from harness.core.errors import HarnessError
from harness.core.repo import NATIVE_POLICIES_DIR, POLICIES_DIR, tree_engine
from harness.core.topology import applied
from harness.manifests.findings import Finding

NATIVE_DIR = NATIVE_POLICIES_DIR
ENGINE_DIR = "infrastructure/kyverno"  # Kyverno's release, which the variant does not deploy
GENERATED = "# Generated from {source} by harness/manifests/native.py: edit that file, then run `make native`.\n"
ADMISSION_API = "admissionregistration.k8s.io/v1"
# What a ValidatingAdmissionPolicy takes from a Kyverno ValidatingPolicy's spec, as Kyverno's
# autogen copies it.
POLICY_FIELDS = ("failurePolicy", "matchConstraints", "matchConditions", "variables", "validations",
                 "auditAnnotations")
# The cluster Kustomizations of the engine, and the one that replaces them.
ENGINE_LAYERS = ("kyverno", "kyverno-policies")
NATIVE_LAYER = "admission-policies"


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the policies' CEL) as literal blocks, as the policies are written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def _dump_all(docs: list[dict[str, Any]]) -> str:
    return str(yaml.dump_all(docs, Dumper=_BlockDumper, sort_keys=False, width=120))


class VariantError(HarnessError):
    """The fleet cannot be turned into its native variant as it is."""


def applied_policies(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file, ValidatingPolicy) for every policy the policies folder's kustomization applies."""
    return applied(root / POLICIES_DIR, "ValidatingPolicy")


def admission_policy(policy: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ValidatingAdmissionPolicy and binding that enforce `policy` natively."""
    name, spec = policy["metadata"]["name"], policy["spec"]
    if not ((spec.get("autogen") or {}).get("validatingAdmissionPolicy") or {}).get("enabled"):
        raise VariantError(f"policy {name} is not generated into a ValidatingAdmissionPolicy by Kyverno "
                           "(autogen.validatingAdmissionPolicy.enabled), so it may use what only Kyverno "
                           "evaluates; write its native form by hand")
    vap = {"apiVersion": ADMISSION_API, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
           "spec": {field: spec[field] for field in POLICY_FIELDS if field in spec}}
    binding = {"apiVersion": ADMISSION_API, "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
               "spec": {"policyName": name, "validationActions": list(spec.get("validationActions") or ["Deny"])}}
    return vap, binding


def _rewire(path: Path) -> None:
    """One cluster file: the engine's Kustomizations out, the native one in, dependsOn moved."""
    docs = [d for d in yamlio.load_all(path.read_text()) if d]
    kept: list[dict[str, Any]] = []
    replaced = False
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc.get("kind") == "Kustomization" and name in ENGINE_LAYERS:
            if not replaced:
                kept.append(_native_layer(doc))
                replaced = True
            continue
        needs = (doc.get("spec") or {}).get("dependsOn") or []
        if any(n.get("name") in ENGINE_LAYERS for n in needs):
            doc["spec"]["dependsOn"] = [{"name": NATIVE_LAYER}] + [n for n in needs if n.get("name") not in ENGINE_LAYERS]
        kept.append(doc)
    path.write_text(yamlio.dump_all(kept))


def _native_layer(template: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in template["spec"].items()
            if k not in ("dependsOn", "healthChecks", "healthCheckExprs", "wait", "path")}
    spec["path"] = f"./{NATIVE_DIR}"
    spec["wait"] = True  # applied means enforced: the API server evaluates them from then on
    return {"apiVersion": template["apiVersion"], "kind": "Kustomization",
            "metadata": {"name": NATIVE_LAYER, "namespace": template["metadata"]["namespace"]}, "spec": spec}


def _generated(root: Path) -> dict[str, str]:
    """The variant's files as the source policies generate them: file name -> text."""
    policies = applied_policies(root)
    if not policies:
        raise VariantError(f"{root / POLICIES_DIR}: no ValidatingPolicy to turn into native admission policies")
    files = {file: GENERATED.format(source=f"{POLICIES_DIR}/{file}") + _dump_all(list(admission_policy(policy)))
             for file, policy in policies}
    files["kustomization.yaml"] = yamlio.dump({"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                               "kind": "Kustomization", "resources": [f for f, _ in policies]})
    return files


def _stale(root: Path, files: dict[str, str]) -> list[Path]:
    """Files of the variant's folder that were generated from a policy the source no longer applies."""
    return [path for path in sorted((root / NATIVE_DIR).glob("*.yaml"))
            if path.name not in files and path.read_text().startswith(GENERATED.split("{", 1)[0])]


def write_variant(root: Path) -> tuple[list[str], list[str]]:
    """Turn the fleet at `root` into the native variant, or bring its admission policies back in
    line with the source policies when it is one; returns the files written and those removed
    (generated files whose source policy is gone, and Kyverno's release), repo-relative."""
    files = _generated(root)
    folder = root / NATIVE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written, removed = [], []
    for path in _stale(root, files):
        path.unlink()
        removed.append(path.relative_to(root).as_posix())
    for file, text in files.items():
        (folder / file).write_text(text)
        written.append(f"{NATIVE_DIR}/{file}")
    for cluster in sorted(p for p in (root / "clusters").iterdir() if p.is_dir()):
        for path in sorted(cluster.glob("*.yaml")):
            text = path.read_text()
            if any(f"name: {layer}" in text for layer in ENGINE_LAYERS):
                _rewire(path)
                written.append(path.relative_to(root).as_posix())
    if (root / ENGINE_DIR).is_dir():
        shutil.rmtree(root / ENGINE_DIR)
        removed.append(f"{ENGINE_DIR}/")
    return written, removed


def check_variant(root: Path) -> list[Finding]:
    """A fleet that deploys the native variant: its admission policies are exactly what its
    source policies generate, so what the offline tests judge is what the clusters enforce."""
    if tree_engine(root) != "native":
        return []
    try:
        files = _generated(root)
    except VariantError as exc:
        return [Finding("native-variant", POLICIES_DIR, "", "", str(exc))]
    findings = []
    for file, text in files.items():
        path = root / NATIVE_DIR / file
        if not path.is_file() or yamlio.load_all(path.read_text()) != yamlio.load_all(text):
            findings.append(Finding("native-variant", f"{NATIVE_DIR}/{file}", "", "",
                                    f"{'missing' if not path.is_file() else 'differs from'} what "
                                    f"{POLICIES_DIR} generates; run `make native` and commit the result"))
    findings += [Finding("native-variant", path.relative_to(root).as_posix(), "", "",
                         "generated from a policy the source no longer applies; run `make native`")
                 for path in _stale(root, files)]
    return findings
