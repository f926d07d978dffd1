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
from harness.manifests.native import (
    NATIVE_DIR,
    VariantError,
    admission_policy,
    applied_policies,
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
    assert not (variant / POLICIES_DIR).exists() and not (variant / "infrastructure" / "kyverno").exists()


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
