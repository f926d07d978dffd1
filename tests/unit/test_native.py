"""The native variant: the tenant policies as native ValidatingAdmissionPolicies with no engine,
written from the Kyverno policies into a copy of the fleet, and read back as such."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.core import topology, yamlio
from harness.core.repo import POLICIES_DIR, platform_order
from harness.e2e import engines
from harness.e2e.converge import platform_plan
from harness.entry import cli
from harness.manifests.native import (
    NATIVE_DIR,
    VariantError,
    admission_policy,
    applied_policies,
    check_variant,
    write_variant,
)
from harness.manifests.tenants import add_tenant


@pytest.fixture
def variant(repo_root: Path, tmp_path: Path) -> Path:
    for name in ("clusters", "infrastructure", "tenants", "tenant-repo-example"):
        shutil.copytree(repo_root / name, tmp_path / name)
    write_variant(tmp_path)
    return tmp_path


def test_every_applied_policy_becomes_a_native_policy_and_binding(repo_root: Path, variant: Path) -> None:
    names = sorted(p["metadata"]["name"] for _, p in applied_policies(repo_root))
    docs = [d for path in sorted((variant / NATIVE_DIR).glob("tenant-*.yaml")) for d in yamlio.load_all(path.read_text())]
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "ValidatingAdmissionPolicy") == names
    bindings = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert bindings == {n: {"policyName": n, "validationActions": ["Deny"]} for n in names}
    assert all(d["spec"]["failurePolicy"] == "Fail" for d in docs if d["kind"] == "ValidatingAdmissionPolicy")
    assert not (variant / "infrastructure" / "kyverno").exists()
    # The Kyverno policies stay as the source, applied by no cluster.
    assert (variant / POLICIES_DIR).is_dir()
    cluster_files = "".join(p.read_text() for p in (variant / "clusters").rglob("*.yaml"))
    assert f"./{POLICIES_DIR}" not in cluster_files and "./infrastructure/kyverno\n" not in cluster_files


def test_the_variant_converges_without_an_engine(repo_root: Path, variant: Path) -> None:
    for env in topology.environments(variant):
        assert platform_order(env, variant) == ["flux-system", "admission-policies", "tenants"]
        assert "kyverno" not in [t.ref.name for t in platform_plan(env, "0" * 40, root=variant)]
    engine = engines.engine_of(variant)
    assert (engine.name, engine.release, engine.admission_policy("x")) == ("native", None, "x")
    assert engines.engine_of(variant.parent / "nowhere").name == "kyverno"
    with pytest.raises(engines.EngineError, match="no policy engine apart from the API server"):
        engine.take_down(None, 1.0)  # type: ignore[arg-type]
    tree = topology.read(variant)
    assert "https://stefanprodan.github.io/podinfo" in tree.tenants[0].allowlist  # read from the native policy
    assert len(tree.policies) == len(engine.policies()) == len(applied_policies(repo_root))


def test_a_policy_kyverno_would_not_generate_is_refused() -> None:
    policy = {"metadata": {"name": "webhook-only"}, "spec": {"validations": [{"expression": "true"}]}}
    with pytest.raises(VariantError, match="policy webhook-only is not generated into a ValidatingAdmissionPolicy"):
        admission_policy(policy)


def test_what_the_variant_writes_loads_back_as_generated(repo_root: Path, variant: Path) -> None:
    for file, policy in applied_policies(repo_root):
        assert yamlio.load_all((variant / NATIVE_DIR / file).read_text()) == list(admission_policy(policy)), file


def test_a_tenant_is_onboarded_into_the_native_variant(variant: Path) -> None:
    """`tenant add` on a fleet that deploys the variant writes the allowlist entry into the
    native policy (its CEL written as a literal block, as in the Kyverno policy)."""
    add_tenant(variant, "ops-team", "ops", "https://git.example.com/ops-team/apps.git")
    ops = topology.read(variant).tenant("ops-team")
    assert ops.allowlist == ("https://git.example.com/ops-team/apps.git",)
    assert "dev-team" in [t.name for t in topology.read(variant).tenants]
    # Into the source too: the variant is still what its source generates.
    assert check_variant(variant) == []


def test_a_committed_variant_is_checked_against_its_source(variant: Path) -> None:
    """What `make validate` proves of a fork that committed the variant: its admission policies
    are exactly what the Kyverno policies (which the offline tests judge) generate."""
    assert check_variant(variant) == []
    source = variant / POLICIES_DIR / "tenant-services.yaml"
    source.write_text(source.read_text().replace("['ClusterIP', 'ExternalName']", "['ClusterIP', 'ExternalName', 'NodePort']"))
    [finding] = check_variant(variant)
    assert finding.file == f"{NATIVE_DIR}/tenant-services.yaml" and "run `make native`" in finding.reason
    written, removed = write_variant(variant)  # regenerates in place; the clusters are left as they are
    assert f"{NATIVE_DIR}/tenant-services.yaml" in written and removed == []
    assert not [w for w in written if w.startswith("clusters/")]
    assert check_variant(variant) == []
    listing = variant / POLICIES_DIR / "kustomization.yaml"  # a policy dropped from the source
    listing.write_text(listing.read_text().replace("  - tenant-services.yaml\n", ""))
    assert {f.file for f in check_variant(variant)} == {f"{NATIVE_DIR}/kustomization.yaml", f"{NATIVE_DIR}/tenant-services.yaml"}
    assert write_variant(variant)[1] == [f"{NATIVE_DIR}/tenant-services.yaml"]
    assert check_variant(variant) == []


def test_the_command_turns_the_working_tree_into_the_variant(repo_root: Path, tmp_path: Path) -> None:
    for name in ("clusters", "infrastructure", "tenants", "tenant-repo-example"):
        shutil.copytree(repo_root / name, tmp_path / name)
    assert check_variant(tmp_path) == []  # not a variant: nothing to check
    assert cli.main(["--repo", str(tmp_path), "native", "write"]) == 0
    assert engines.engine_of(tmp_path).name == "native" and check_variant(tmp_path) == []
    assert topology.read(tmp_path).policies[0].kind == "ValidatingAdmissionPolicy"


def test_a_fleet_without_policies_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "clusters" / "staging").mkdir(parents=True)
    (tmp_path / POLICIES_DIR).mkdir(parents=True)
    (tmp_path / POLICIES_DIR / "kustomization.yaml").write_text("resources: []\n")
    assert cli.main(["--repo", str(tmp_path), "native", "write"]) == 2
    assert not (tmp_path / NATIVE_DIR).exists()
