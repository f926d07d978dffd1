"""Runs the Kyverno CLI's offline policy tests (tests/policies/*/kyverno-test.yaml)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core import yamlio
from harness.core.errors import CommandError
from harness.core.repo import POLICY_TESTS_DIR, TENANT_LABEL
from harness.manifests import reuse
from harness.manifests.findings import Finding, describe
from harness.manifests.render import Render, RenderedObject

POLICY_TESTS = Path(POLICY_TESTS_DIR)
KYVERNO_TEST_TIMEOUT_S = 180.0


LIVE_TESTS = Path("tests") / "e2e"


def _policy_docs(repo: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Policy name -> (repo-relative file, the policy), for every Kyverno policy in infrastructure/."""
    found = {}
    for path in sorted((repo / "infrastructure").rglob("*.yaml")):
        for doc in yamlio.load_all(path.read_text()):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(
                ("kyverno.io/", "policies.kyverno.io/")
            ):
                found[doc["metadata"]["name"]] = (path.relative_to(repo).as_posix(), doc)
    return found


def on_subresources_only(policy: dict[str, Any]) -> bool:
    """Does the policy match subresource requests only (status writes, token requests)?"""
    rules = ((policy.get("spec") or {}).get("matchConstraints") or {}).get("resourceRules") or []
    resources = [r for rule in rules for r in rule.get("resources") or []]
    return bool(resources) and all("/" in r for r in resources)


def tested_outcomes(repo: Path) -> dict[str, set[str]]:
    """Policy name -> the results its tests expect (pass, fail, skip...)."""
    outcomes: dict[str, set[str]] = {}
    for test in sorted((repo / POLICY_TESTS).rglob("kyverno-test.yaml")):
        data = yamlio.load(test.read_text()) or {}
        for result in data.get("results") or []:
            outcomes.setdefault(result["policy"], set()).add(result["result"])
    return outcomes


@dataclass(frozen=True)
class Example:
    """A resource an offline test expects `policy` to pass or fail when anyone creates it."""

    policy: str
    result: str  # pass or fail
    resource: dict[str, Any]
    test: str  # repo-relative kyverno-test.yaml


def create_examples(repo: Path) -> list[Example]:
    """Every resource of the offline tests that judge a CREATE by anyone, in the tests' order.
    A test with a `userinfo` judges one identity, and a result with another operation judges an
    UPDATE or DELETE: neither says how a plain create by a tenant is answered."""
    examples = []
    for test in sorted((repo / POLICY_TESTS).rglob("kyverno-test.yaml")):
        data = yamlio.load(test.read_text()) or {}
        if data.get("userinfo"):
            continue
        docs = [doc for file in data.get("resources") or []
                for doc in yamlio.load_all((test.parent / file).read_text()) if isinstance(doc, dict)]
        for result in data.get("results") or []:
            if result.get("operation", "CREATE") != "CREATE" or result.get("result") not in ("pass", "fail"):
                continue
            for name in result.get("resources") or []:
                examples += [Example(result["policy"], result["result"], doc, test.relative_to(repo).as_posix())
                             for doc in docs
                             if doc.get("kind") == result.get("kind") and (doc.get("metadata") or {}).get("name") == name][:1]
    return examples


def check_coverage(repo: Path) -> list[Finding]:
    """Every policy has a test with a resource it admits and one it rejects. The Kyverno CLI
    evaluates no subresource request (its processor passes none to the engine), so a policy on
    subresources only must be proven by a live test in tests/e2e that names it instead."""
    findings = []
    outcomes = tested_outcomes(repo)
    live = "\n".join(p.read_text() for p in sorted((repo / LIVE_TESTS).glob("test_*.py")))
    for name, (file, doc) in _policy_docs(repo).items():
        if on_subresources_only(doc):
            if f'by_policy("{name}")' not in live:
                findings.append(Finding("policy-tests", file, f"policy {name}", "",
                                        "matches subresources only, which the Kyverno CLI cannot simulate; "
                                        f"prove it with a live test under {LIVE_TESTS}/ "
                                        f'(tenancy.by_policy("{name}"))'))
            continue
        missing = {"pass", "fail"} - outcomes.get(name, set())
        if missing:
            findings.append(
                Finding("policy-tests", file, f"policy {name}", "",
                        f"no offline test expecting {' and '.join(sorted(missing))}; add one "
                        f"under {POLICY_TESTS}/")
            )
    return findings


def run_policy_tests(repo: Path, kyverno: Path) -> list[Finding]:
    """`kyverno test` over tests/policies; a failing run becomes a finding with its report."""
    folder = repo / POLICY_TESTS
    try:
        reuse.run(
            [str(kyverno), "test", str(folder), "--remove-color"], root=repo,
            files=reuse.readable_files([folder], lambda f: f.name == "kyverno-test.yaml"),
            timeout_s=KYVERNO_TEST_TIMEOUT_S,
        )
    except CommandError as exc:
        failed = [line for line in exc.stdout.splitlines() if "Fail" in line or "Loading test" in line]
        report = "\n".join(failed[-40:]) or exc.stderr.strip()
        return [Finding("policy-tests", POLICY_TESTS.as_posix(), "", "",
                        f"kyverno test failed:\n{report}")]
    return []


def _tenant_objects(renders: list[Render]) -> tuple[dict[str, dict[str, str]], list[RenderedObject]]:
    """Labels of every rendered namespace, and the objects that land in tenant namespaces."""
    labels: dict[str, dict[str, str]] = {}
    for render in renders:
        for item in render.objects:
            meta = item.obj.get("metadata") or {}
            if item.obj.get("kind") == "Namespace":
                labels[meta["name"]] = dict(meta.get("labels") or {})
    tenant_ns = {ns for ns, lbl in labels.items() if TENANT_LABEL in lbl}
    seen: dict[tuple[str, str, str, str], RenderedObject] = {}
    for render in renders:
        for item in render.objects:
            meta = item.obj.get("metadata") or {}
            if meta.get("namespace") in tenant_ns:
                key = (item.obj["apiVersion"], item.obj["kind"], meta["namespace"], meta["name"])
                seen.setdefault(key, item)
    return labels, list(seen.values())


def applied_policies(renders: list[Render]) -> list[RenderedObject]:
    """The Kyverno policies Flux applies to the clusters (not optional ones left out), once each."""
    found: dict[str, RenderedObject] = {}
    for render in renders:
        if render.why == "kustomization.yaml":
            continue  # built for checking only; no cluster applies it
        for item in render.objects:
            if str(item.obj.get("apiVersion", "")).startswith(("kyverno.io/", "policies.kyverno.io/")):
                found.setdefault(item.obj["metadata"]["name"], item)
    return list(found.values())


def check_enforcement(applied: list[RenderedObject]) -> list[Finding]:
    """Every applied ValidatingPolicy is enforced by the API server itself (Kyverno generates a
    ValidatingAdmissionPolicy from it) and fails closed: Kyverno deletes its own webhooks when its
    admission controller is scaled to zero, so a webhook-only policy would fail open then."""
    findings = []
    for item in applied:
        obj = item.obj
        if obj.get("kind") != "ValidatingPolicy":
            continue
        spec = obj.get("spec") or {}
        autogen = spec.get("autogen") or {}
        where = describe(obj)
        if ((autogen.get("validatingAdmissionPolicy") or {}).get("enabled")) is not True:
            findings.append(Finding("enforcement", item.file, where, "spec.autogen.validatingAdmissionPolicy.enabled",
                                    "must be true: without it only Kyverno's webhook enforces the policy, and "
                                    "Kyverno removes that webhook when scaled to zero"))
        if spec.get("failurePolicy", "Fail") != "Fail":
            findings.append(Finding("enforcement", item.file, where, "spec.failurePolicy",
                                    "must be Fail: a policy that cannot be evaluated must refuse, not admit"))
        rules = (spec.get("matchConstraints") or {}).get("resourceRules") or []
        matches_pods = any("pods" in (r.get("resources") or []) for r in rules)
        controllers = (autogen.get("podControllers") or {}).get("controllers")
        if matches_pods and controllers != []:
            findings.append(Finding("enforcement", item.file, where, "spec.autogen.podControllers.controllers",
                                    "must be [] for a policy on pods: Kyverno's pod-controller autogen stops "
                                    "the ValidatingAdmissionPolicy from being generated"))
    return findings


def check_admission(renders: list[Render], applied: list[RenderedObject], kyverno: Path) -> list[Finding]:
    """Would the cluster's admission policies (`applied`) accept what the tenants' reconcilers apply?"""
    labels, objects = _tenant_objects(renders)
    if not objects or not applied:
        return []
    by_key = {
        (o.obj["kind"], o.obj["metadata"]["namespace"], o.obj["metadata"]["name"]): o
        for o in objects
    }
    values = {
        "apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Value",
        "metadata": {"name": "rendered-namespaces"},
        "namespaceSelector": [{"name": ns, "labels": lbl} for ns, lbl in sorted(labels.items())],
        # Whole namespaces too: the policies read the tenant from `namespaceObject`.
        "namespaces": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": lbl}}
                       for ns, lbl in sorted(labels.items())],
    }
    with tempfile.TemporaryDirectory(prefix="fleet-admission-") as tmp:
        resources = Path(tmp) / "resources.yaml"
        resources.write_text(yamlio.dump_all([o.obj for o in objects]))
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yamlio.dump(values))
        policy_file = Path(tmp) / "policies.yaml"
        policy_file.write_text(yamlio.dump_all([item.obj for item in applied]))
        argv = [str(kyverno), "apply", str(policy_file),
                "-r", str(resources), "-f", str(values_file), "-p", "--output-format", "json",
                "--remove-color"]
        try:
            output = reuse.run(argv, root=Path(tmp), files=[resources, values_file, policy_file],
                               timeout_s=KYVERNO_TEST_TIMEOUT_S).stdout
        except CommandError as exc:
            output = exc.stdout
        try:
            report: dict[str, Any] = json.loads(output[output.index("{"):])
        except ValueError as exc:
            raise CommandError(argv, None, output, "kyverno apply printed no report") from exc
    findings = []
    for result in report.get("results") or []:
        if result.get("result") not in ("fail", "error"):
            continue
        for res in result.get("resources") or []:
            item = by_key.get((res.get("kind"), res.get("namespace"), res.get("name")))
            file = item.file if item else ""
            obj = describe(item.obj) if item else f"{res.get('kind')} {res.get('namespace')}/{res.get('name')}"
            findings.append(Finding("admission", file, obj, "",
                                    f"denied by policy {result['policy']}: {result.get('message')}"))
    return findings


def judged(repo: Path, renders: list[Render], applied: list[RenderedObject], kyverno: Path) -> list[Finding]:
    """The offline checks of the Kyverno policies `applied` (what the clusters enforce, or the
    source it is generated from): each tested with a resource it admits and one it refuses,
    the tests passing, each enforced by the API server and failing closed, and what the
    tenants' reconcilers apply admitted by them."""
    return [*check_coverage(repo), *run_policy_tests(repo, kyverno), *check_enforcement(applied),
            *check_admission(renders, applied, kyverno)]
