"""The upgrade probe's cases are derived from the policies' offline tests where no case is
written for a policy: a new policy with offline tests is probed with no code change, and one
with neither is named."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.core import topology, yamlio
from harness.core.repo import POLICIES_DIR, POLICY_TESTS_DIR
from harness.e2e.cases import Actors, Case, cases, derived
from harness.e2e.converge import applied_policy_names
from harness.e2e.publish import Rewrite
from harness.manifests.policies import create_examples

SERVER = "http://10.0.0.1:8080/git/"


class Recorder:
    """Stands in for the API as a case's requests see it: keeps what would be created."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create(self, obj: dict[str, Any], dry_run: bool = False) -> None:
        assert dry_run, "a probe request must be a dry run"
        self.created.append(obj)


def _written(root: Path) -> tuple[Any, ...]:
    return cases(topology.read(root).tenants[0], "podinfo:1", f"{SERVER}dev-team/apps.git", "p")


def uncovered(written: tuple[Case, ...], candidates: dict[str, list[Case]], policies: list[str]) -> list[str]:
    """The policies the probe would have no case for: none written, none derived (which
    derived case holds is for the live cluster: probe.with_derived)."""
    return sorted(set(policies) - {c.policy for c in written} - set(candidates))


def _candidates(root: Path, team: topology.Tenant | None = None) -> dict[str, Any]:
    tree = topology.read(root)
    return derived(create_examples(root), tree.tenants, team or tree.tenants[0], [Rewrite(topology.GIT_HOST, SERVER)])


def test_examples_are_the_creates_by_anyone_the_offline_tests_judge(repo_root: Path) -> None:
    examples = create_examples(repo_root)
    services = {(e.result, e.resource["metadata"]["name"]) for e in examples if e.policy == "flux-tenant-services"}
    assert services == {("pass", "cluster-ip"), ("pass", "headless"), ("pass", "external-name"),
                        ("fail", "node-port"), ("fail", "load-balancer"), ("fail", "external-ips")}
    # Tests with a userinfo (one identity) or an UPDATE judge something else than a create by anyone.
    assert not {e.policy for e in examples} & {"flux-tenant-onboarding", "flux-tenant-helm-charts"}
    assert {e.result for e in examples} == {"pass", "fail"}


def test_derived_cases_act_in_the_namespace_of_the_tenant_they_are_made_for(repo_root: Path) -> None:
    dev = topology.read(repo_root).tenants[0]
    ops = replace(dev, name="ops-team", namespace="ops", account="ops-team",
                  repo_url=f"{topology.GIT_HOST}ops-team/apps.git")
    found = _candidates(repo_root, ops)
    recorder = Recorder()
    actors = Actors(recorder, recorder, recorder)  # type: ignore[arg-type]
    for policy, candidates in found.items():
        for index, case in enumerate(candidates):
            case.violating(actors, f"bad-{index}")
            case.compliant(actors, f"good-{index}")
        assert all(c.name == f"{policy.removeprefix('flux-tenant-')}/derived" for c in candidates)
    assert recorder.created
    for obj in recorder.created:
        text = yamlio.dump(obj)
        assert obj["metadata"]["namespace"] == "ops" and obj["metadata"]["name"].startswith(("bad-", "good-")), text
        assert ": apps\n" not in text and ": dev-team\n" not in text, text
        assert topology.GIT_HOST not in text, text
    sources = [o for o in recorder.created if o["kind"] == "GitRepository" and o["metadata"]["name"].startswith("good-")]
    assert any(o["spec"]["url"].startswith(f"{SERVER}ops-team/apps") for o in sources), sources


def test_every_policy_the_fleet_applies_has_a_written_case_or_derived_ones(repo_root: Path) -> None:
    """A policy with neither would be left out of the upgrade probe (the live cluster decides
    which derived case holds: tests/e2e/test_probe_cases.py)."""
    applied = applied_policy_names(repo_root)
    assert applied
    assert uncovered(_written(repo_root), _candidates(repo_root), applied) == []


def test_every_written_case_names_a_policy_the_fleet_applies(repo_root: Path) -> None:
    """An upgrade run probes the cases of the policies its start applies: a case whose policy
    name matched none would be dropped from the window without a word."""
    named = {c.policy for c in _written(repo_root)}
    assert named and named <= set(applied_policy_names(repo_root)), sorted(named - set(applied_policy_names(repo_root)))


def _with_policy_copy(repo_root: Path, root: Path, tests: bool) -> str:
    """A scratch fleet with a new policy, a copy of the services policy under a new name, and
    (with `tests`) its offline tests, added as files only."""
    for name in ("clusters", "infrastructure", "tenants", "tenant-repo-example", POLICY_TESTS_DIR):
        shutil.copytree(repo_root / name, root / name)
    new = "flux-tenant-services-again"
    policy = root / POLICIES_DIR / "tenant-services-again.yaml"
    policy.write_text((root / POLICIES_DIR / "tenant-services.yaml").read_text()
                      .replace("name: flux-tenant-services\n", f"name: {new}\n"))
    listing = root / POLICIES_DIR / "kustomization.yaml"
    listing.write_text(listing.read_text().replace("  - tenant-services.yaml\n",
                                                   "  - tenant-services.yaml\n  - tenant-services-again.yaml\n"))
    if tests:
        folder = root / POLICY_TESTS_DIR / "services-again"
        shutil.copytree(root / POLICY_TESTS_DIR / "services", folder)
        test = folder / "kyverno-test.yaml"
        test.write_text(test.read_text().replace("tenant-services.yaml", "tenant-services-again.yaml")
                        .replace("flux-tenant-services\n", f"{new}\n"))
    return new


def test_a_new_policy_with_offline_tests_is_probed_with_no_code_change(repo_root: Path, tmp_path: Path) -> None:
    new = _with_policy_copy(repo_root, tmp_path, tests=True)
    assert new in applied_policy_names(tmp_path)
    assert new not in {c.policy for c in _written(tmp_path)}
    found = _candidates(tmp_path)
    assert {c.origin.split(":")[0] for c in found[new]} == {f"{POLICY_TESTS_DIR}/services-again/kyverno-test.yaml"}
    assert uncovered(_written(tmp_path), found, applied_policy_names(tmp_path)) == []


def test_a_new_policy_with_neither_is_named(repo_root: Path, tmp_path: Path) -> None:
    new = _with_policy_copy(repo_root, tmp_path, tests=False)
    assert uncovered(_written(tmp_path), _candidates(tmp_path), applied_policy_names(tmp_path)) == [new]


def test_role_binding_cases_bind_the_role_the_tenant_holds(repo_root: Path) -> None:
    """RBAC's escalation check runs before admission: a binding of any other role (`view`) can be
    refused by it while the aggregation controller is still folding an upgrade's new rules into
    the tenant's role, and the probe would count a compliant refusal the policy never made."""
    team = topology.read(repo_root).tenants[0]
    rbac = yamlio.load_all((repo_root / "tenants/base" / team.name / "rbac.yaml").read_text())
    held = {d["roleRef"]["name"] for d in rbac if d and d["kind"] == "RoleBinding"
            and {"kind": "ServiceAccount", "name": team.account, "namespace": team.namespace} in d["subjects"]}
    assert len(held) == 1, f"{team.name}'s account should be bound to one role: {held}"
    recorder = Recorder()
    actors = Actors(recorder, recorder, recorder)  # type: ignore[arg-type]
    found = [c for c in _written(repo_root) if c.policy == "flux-tenant-role-bindings"]
    assert [c.name for c in found] == ["role-bindings/create", "role-bindings/update"]
    for case in found:
        if case.fixture is not None:
            recorder.created.append(case.fixture)
        else:
            case.violating(actors, "bad")
            case.compliant(actors, "good")
    assert len(recorder.created) == 3
    bound = {obj["roleRef"]["name"] for obj in recorder.created}
    assert bound == held, (f"the probe's role-binding cases bind {bound}, the tenant holds {held}: set TENANT_ROLE "
                           "(harness/manifests/tenants.py), which `tenant add` writes and the cases bind, to it")
