"""Tenant onboarding: writes a complete tenant, refuses bad input and leaves the tree untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from harness.core.repo import SOURCE_ALLOWLIST
from harness.core.versions import load_versions
from harness.entry.cli import main
from harness.manifests.tenants import (
    PLAIN_URL,
    Quota,
    TenantError,
    add_tenant,
    allowlists,
    quantity,
    with_allowlist,
)


@pytest.fixture
def fleet(tmp_path: Path, repo_root: Path) -> Path:
    """A scratch copy of the fleet's environments, tenants tree and policies."""
    shutil.copytree(repo_root / "clusters", tmp_path / "clusters")
    shutil.copytree(repo_root / "tenants", tmp_path / "tenants")
    shutil.copytree(repo_root / "infrastructure", tmp_path / "infrastructure")
    return tmp_path


def policy_variables(path: Path) -> dict[str, str]:
    policy = yaml.safe_load(path.read_text())
    return {v["name"]: v["expression"] for v in policy["spec"]["variables"]}


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def docs(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_add_tenant_writes_base_and_registers_it_in_both_overlays(fleet: Path) -> None:
    add_tenant(fleet, "web-team", "web", "https://git.example.com/web-team/apps.git")

    base = fleet / "tenants" / "base" / "web-team"
    kinds = {(d["kind"], d["metadata"].get("namespace"))
             for f in ("rbac.yaml", "sync.yaml") for d in docs(base / f)}
    assert kinds == {("Namespace", None), ("ServiceAccount", "web"), ("RoleBinding", "web"),
                     ("GitRepository", "web"), ("Kustomization", "web")}
    labels = {d["metadata"]["labels"]["toolkit.fluxcd.io/tenant"]
              for f in ("rbac.yaml", "sync.yaml") for d in docs(base / f)}
    assert labels == {"web-team"}
    sync = {d["kind"]: d for d in docs(base / "sync.yaml")}
    assert sync["Kustomization"]["spec"]["serviceAccountName"] == "web-team"
    assert sync["GitRepository"]["spec"]["url"] == "https://git.example.com/web-team/apps.git"
    for env in ("staging", "production"):
        overlay = yaml.safe_load((fleet / "tenants" / env / "kustomization.yaml").read_text())
        assert "../base/web-team" in overlay["resources"]
        patch = yaml.safe_load((fleet / "tenants" / env / "web-team-patch.yaml").read_text())
        assert patch["spec"]["path"] == f"./{env}"


def test_generated_tenant_matches_the_committed_example(fleet: Path, repo_root: Path) -> None:
    """The committed dev-team is exactly what onboarding writes, so docs and tool agree."""
    shutil.rmtree(fleet / "tenants" / "base" / "dev-team")
    for env in ("staging", "production"):
        (fleet / "tenants" / env / "dev-team-patch.yaml").unlink()
        kfile = fleet / "tenants" / env / "kustomization.yaml"
        kfile.write_text(yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                         "kind": "Kustomization", "resources": []}))
    policy = fleet / SOURCE_ALLOWLIST
    match, current = allowlists(policy.read_text())
    dev_team = current.pop("dev-team")
    policy.write_text(policy.read_text().replace(match.group(2), "        {}\n"))
    add_tenant(fleet, "dev-team", "apps", "https://git.example.com/dev-team/apps.git", allow=tuple(dev_team[1:]))
    assert policy.read_text() == (repo_root / SOURCE_ALLOWLIST).read_text()
    for name in ("rbac.yaml", "quota.yaml", "network.yaml", "sync.yaml", "kustomization.yaml"):
        assert docs(fleet / "tenants/base/dev-team" / name) == docs(repo_root / "tenants/base/dev-team" / name)
    for env in ("staging", "production"):
        assert docs(fleet / f"tenants/{env}/dev-team-patch.yaml") == docs(
            repo_root / f"tenants/{env}/dev-team-patch.yaml"
        )


@pytest.mark.parametrize(
    ("name", "namespace", "url", "expected"),
    [
        pytest.param("Dev_Team", "web", "https://git.example.com/x", "invalid tenant name", id="bad-name"),
        pytest.param("dev-team", "web", "https://git.example.com/x", "already exists", id="existing-tenant"),
        pytest.param("web-team", "apps", "https://git.example.com/x", "already owned by tenant 'dev-team'",
                     id="namespace-owned"),
        pytest.param("web-team", "flux-system", "https://git.example.com/x", "belongs to the platform",
                     id="platform-namespace"),
        pytest.param("web-team", "web", "git.example.com/x", "invalid --git-url", id="bad-url"),
        pytest.param("web-team", "web", "https://git.example.com/web-team/../dev-team/apps.git",
                     "invalid --git-url", id="dot-segments"),
        pytest.param("web-team", "web", "ssh://git@git.example.com/web-team/apps.git", "invalid --git-url",
                     id="userinfo"),
    ],
)
def test_add_tenant_refuses_bad_input_and_leaves_tree_untouched(
    fleet: Path, name: str, namespace: str, url: str, expected: str
) -> None:
    before = snapshot(fleet)
    with pytest.raises(TenantError, match=expected):
        add_tenant(fleet, name, namespace, url)
    assert snapshot(fleet) == before


def test_add_tenant_refuses_a_bad_allow_prefix_and_leaves_tree_untouched(fleet: Path) -> None:
    before = snapshot(fleet)
    with pytest.raises(TenantError, match="invalid --allow 'https://charts.example.org/%2e%2e'"):
        add_tenant(fleet, "web-team", "web", "https://git.example.com/web-team/apps.git",
                   allow=("https://charts.example.org/%2e%2e",))
    assert snapshot(fleet) == before


def test_add_tenant_refuses_a_tenant_that_already_has_an_allowlist(fleet: Path) -> None:
    policy = fleet / SOURCE_ALLOWLIST
    policy.write_text(with_allowlist(policy.read_text(), "web-team", ["https://git.example.com/web-team"]))
    before = snapshot(fleet)
    with pytest.raises(TenantError, match="already has an allowlist for tenant 'web-team'"):
        add_tenant(fleet, "web-team", "web", "https://git.example.com/web-team/apps.git")
    assert snapshot(fleet) == before


def test_add_tenant_refuses_an_allowlist_it_cannot_read(fleet: Path) -> None:
    policy = fleet / SOURCE_ALLOWLIST
    policy.write_text(policy.read_text().replace('"dev-team": [', "'dev-team': ["))
    before = snapshot(fleet)
    with pytest.raises(TenantError, match="not valid JSON"):
        add_tenant(fleet, "web-team", "web", "https://git.example.com/web-team/apps.git")
    assert snapshot(fleet) == before


def test_add_tenant_writes_the_tenants_allowlist(fleet: Path) -> None:
    add_tenant(fleet, "web-team", "web", "https://git.example.com/web-team/apps.git",
               allow=("oci://ghcr.io/web-team/charts/",))
    written = json.loads(policy_variables(fleet / SOURCE_ALLOWLIST)["allowlists"])
    assert written["web-team"] == ["https://git.example.com/web-team/apps.git", "oci://ghcr.io/web-team/charts"]
    assert "dev-team" in written


def test_python_url_grammar_is_the_policys(repo_root: Path) -> None:
    """tenant add refuses exactly the URLs the policy would not compare."""
    assert f"'{PLAIN_URL}'" in policy_variables(repo_root / SOURCE_ALLOWLIST)["plain"]


def test_cli_reports_refusal_with_exit_code_2(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--repo", str(fleet), "tenant", "add", "dev-team", "--namespace", "x",
                 "--git-url", "https://git.example.com/x"])
    assert code == 2
    assert "tenant 'dev-team' already exists" in capsys.readouterr().err


def test_cli_adds_tenant(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--repo", str(fleet), "tenant", "add", "web-team", "--namespace", "web",
                 "--git-url", "https://git.example.com/web-team/apps.git"])
    assert code == 0
    assert "tenants/base/web-team/sync.yaml" in capsys.readouterr().out


def test_tenant_namespace_runs_pods_under_restricted_pinned_to_the_clusters_kubernetes(fleet: Path) -> None:
    add_tenant(fleet, "web-team", "web", "https://git.example.com/web-team/apps.git")
    namespace = docs(fleet / "tenants/base/web-team/rbac.yaml")[0]
    minor = load_versions().kubernetes_minor
    assert minor.count(".") == 1 and minor.startswith("v1.")
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == minor


def test_cli_writes_the_quota_it_is_given(fleet: Path) -> None:
    code = main(["--repo", str(fleet), "tenant", "add", "web-team", "--namespace", "web",
                 "--git-url", "https://git.example.com/web-team/apps.git", "--requests-cpu", "500m",
                 "--limits-memory", "6Gi", "--pods", "10"])
    assert code == 0
    quota, limits = docs(fleet / "tenants/base/web-team/quota.yaml")
    assert (quota["kind"], limits["kind"]) == ("ResourceQuota", "LimitRange")
    hard = quota["spec"]["hard"]
    assert (hard["requests.cpu"], hard["limits.memory"], hard["pods"]) == ("500m", "6Gi", "10")
    assert (hard["requests.memory"], hard["limits.cpu"]) == (Quota.requests_memory, Quota.limits_cpu)
    assert hard["services.nodeports"] == hard["services.loadbalancers"] == "0"
    assert "quota.yaml" in yaml.safe_load((fleet / "tenants/base/web-team/kustomization.yaml").read_text())["resources"]


@pytest.mark.parametrize(("flags", "expected"), [
    pytest.param(["--requests-cpu", "two"], "--requests-cpu 'two' is not a quantity", id="not-a-quantity"),
    pytest.param(["--pods", "2.5"], "--pods '2.5' must be a whole number", id="fractional-pods"),
    pytest.param(["--requests-memory", "16Gi"], "--requests-memory 16Gi exceeds --limits-memory 8Gi",
                 id="requests-above-limits"),
    pytest.param(["--limits-memory", "128Mi", "--requests-memory", "64Mi"], "leave no room for one container",
                 id="below-the-container-defaults"),
])
def test_cli_refuses_an_unusable_quota_and_writes_nothing(fleet: Path, capsys: pytest.CaptureFixture[str],
                                                          flags: list[str], expected: str) -> None:
    before = snapshot(fleet)
    code = main(["--repo", str(fleet), "tenant", "add", "web-team", "--namespace", "web",
                 "--git-url", "https://git.example.com/web-team/apps.git", *flags])
    assert code == 2
    assert expected in capsys.readouterr().err
    assert snapshot(fleet) == before


@pytest.mark.parametrize(("text", "value"), [("500m", 0.5), ("2", 2), ("4Gi", 4 * 2**30), ("1.5k", 1500),
                                             ("256Mi", 256 * 2**20)])
def test_quantities_read_as_kubernetes_reads_them(text: str, value: float) -> None:
    assert quantity(text) == value
