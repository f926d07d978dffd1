"""The fleet's topology is read from its folders: a new environment or tenant folder is picked
up (by the model, by the e2e's parametrization) with no change to the harness, and a folder the
e2e cannot use is refused with the fix."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core import topology
from harness.core.errors import ConfigError
from harness.manifests.tenants import add_tenant

# What `grow` adds: a third environment and a second tenant with a repository of its own.
NEW_ENV, NEW_TENANT, NEW_NAMESPACE = "qa", "ops-team", "ops"
NEW_REPO_DIR = f"{topology.TENANT_REPO_PREFIX}ops"
# The tree a scratch copy needs to run the harness and its tests (no .git, venv or artifacts).
TREE = ("clusters", "infrastructure", "tenants", "tenant-repo-example", "harness", "tests",
        "versions.yaml", "versions.previous.yaml", "pyproject.toml", "Makefile", "README.md")


def _copy_overlay(src: Path, dest: Path, old: str, new: str) -> None:
    """A copy of one environment's folder with its own name written where the folder names it."""
    shutil.copytree(src, dest)
    for path in dest.rglob("*.yaml"):
        text = path.read_text()
        text = re.sub(rf"(\./(tenants/)?){old}\b", rf"\g<1>{new}", text)
        text = re.sub(rf"(message: ){old}\b", rf"\g<1>{new}", text)
        path.write_text(text)


def grow(root: Path, source: str = "staging") -> None:
    """Adds NEW_ENV (a copy of `source`: its cluster folder, its tenant overlays, its folder in
    each tenant repository) and NEW_TENANT (onboarded with `tenant add`, with the example's
    allowlist entries and a copy of the example's repository deploying into its namespace) to
    the fleet at `root`, by adding folders only."""
    _copy_overlay(root / "clusters" / source, root / "clusters" / NEW_ENV, source, NEW_ENV)
    _copy_overlay(root / "tenants" / source, root / "tenants" / NEW_ENV, source, NEW_ENV)
    for name in topology.tenant_repo_dirs(root):
        _copy_overlay(root / name / source, root / name / NEW_ENV, source, NEW_ENV)
    example = topology.read(root).tenants[0]
    url = f"{topology.GIT_HOST}{NEW_TENANT}/apps.git"
    add_tenant(root, NEW_TENANT, NEW_NAMESPACE, url, allow=tuple(a for a in example.allowlist if a != example.repo_url))
    shutil.copytree(root / str(example.local_dir), root / NEW_REPO_DIR)
    for path in (root / NEW_REPO_DIR).rglob("*.yaml"):  # the copy deploys into its own namespace, as its account
        text = path.read_text().replace(f"namespace: {example.namespace}\n", f"namespace: {NEW_NAMESPACE}\n")
        path.write_text(text.replace(f"serviceAccountName: {example.account}\n", f"serviceAccountName: {NEW_TENANT}\n"))


@pytest.fixture
def grown(repo_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    for name in TREE:
        if (repo_root / name).is_dir():
            shutil.copytree(repo_root / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif (repo_root / name).is_file():
            shutil.copy2(repo_root / name, root / name)
    grow(root)
    return root


def test_the_example_fleet_reads_as_its_folders_declare(repo_root: Path) -> None:
    tree = topology.read(repo_root)
    assert tree.environments == ("production", "staging")
    [dev] = tree.tenants
    assert (dev.name, dev.namespace, dev.account, dev.source, dev.sync) == ("dev-team", "apps", "dev-team",
                                                                            "dev-team", "dev-team")
    assert (dev.repo, dev.local_dir, dev.user) == ("dev-team/apps", "tenant-repo-example",
                                                   "system:serviceaccount:apps:dev-team")
    assert dev.repo_url in dev.allowlist and len(dev.allowlist) > 1, dev.allowlist
    assert tree.served_tenants() == (dev,)
    policies = {p.name for p in tree.policies}
    assert "flux-tenant-source-allowlist" in policies and len(policies) >= 18, sorted(policies)


def test_a_new_environment_and_tenant_are_folders(grown: Path) -> None:
    tree = topology.read(grown)
    assert tree.environments == ("production", NEW_ENV, "staging")
    ops = tree.tenant(NEW_TENANT)
    assert (ops.namespace, ops.account, ops.repo, ops.local_dir) == (NEW_NAMESPACE, NEW_TENANT,
                                                                     f"{NEW_TENANT}/apps", NEW_REPO_DIR)
    assert [t.name for t in tree.served_tenants()] == ["dev-team", NEW_TENANT]
    assert "https://stefanprodan.github.io/podinfo" in ops.allowlist
    release = (grown / NEW_REPO_DIR / "base" / "podinfo-release.yaml").read_text()
    assert f"serviceAccountName: {NEW_TENANT}" in release and f"namespace: {NEW_NAMESPACE}" in release, release
    overlay = (grown / "tenants" / NEW_ENV / f"{NEW_TENANT}-patch.yaml").read_text()
    assert f"path: ./{NEW_ENV}" in overlay, overlay
    assert "path: ./tenants/qa" in (grown / "clusters" / NEW_ENV / "tenants.yaml").read_text()


def test_the_e2e_runs_for_every_environment_and_tenant_folder(grown: Path) -> None:
    """Collected in the scratch tree with its own copy of the harness: the e2e tests run on the
    new environment's cluster and as the new tenant, with nothing in the harness changed."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "e2e",
         "tests/e2e/test_reconciliation.py", "tests/e2e/test_isolation_admission.py"],
        cwd=grown, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    ids = [line for line in result.stdout.splitlines() if "::" in line]
    assert f"tests/e2e/test_reconciliation.py::test_tenant_is_ready_at_its_pushed_revision[{NEW_ENV}-{NEW_TENANT}]" in ids, ids
    assert "tests/e2e/test_reconciliation.py::test_tenant_is_ready_at_its_pushed_revision[staging-dev-team]" in ids, ids
    assert any(f"[{NEW_ENV}]" in i for i in ids), "no test runs on the new environment alone"
    # The admission tests run on one cluster (production by default), as each tenant.
    admission = [i for i in ids if "test_isolation_admission.py::test_tenant_bucket_source_is_refused" in i]
    assert sorted(admission) == sorted(f"tests/e2e/test_isolation_admission.py::test_tenant_bucket_source_is_refused"
                                       f"[{env}-{t}]" for env in ("production",) for t in ("dev-team", NEW_TENANT))


def test_a_tenant_folder_without_its_namespace_is_refused(grown: Path) -> None:
    (grown / "tenants" / "base" / NEW_TENANT / "rbac.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n"
                                                                       "metadata: {name: x}\n")
    with pytest.raises(ConfigError, match=rf"tenants/base/{NEW_TENANT}: a tenant folder declares one Namespace"):
        topology.read(grown)


def test_a_tenant_repository_deploying_into_two_namespaces_is_refused(grown: Path) -> None:
    overlay = grown / NEW_REPO_DIR / NEW_ENV / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + "namespace: apps\n")
    with pytest.raises(ConfigError, match=rf"{NEW_REPO_DIR}/: a tenant repository's kustomizations set one "
                                          r"namespace, its tenant's; found \['apps', 'ops'\]"):
        topology.read(grown)


def test_a_tenant_the_e2e_cannot_serve_is_refused_with_the_fix(grown: Path) -> None:
    shutil.rmtree(grown / NEW_REPO_DIR)
    tree = topology.read(grown)
    assert tree.tenant(NEW_TENANT).local_dir is None
    assert [t.name for t in tree.served] == ["dev-team"]  # the offline checks still read it
    with pytest.raises(ConfigError, match=rf"the e2e cannot serve tenant {NEW_TENANT}: no tenant-repo-\* folder .* "
                                          rf"`namespace: {NEW_NAMESPACE}`.*Add its repository's content as "
                                          rf"tenant-repo-{NEW_TENANT}/"):
        tree.served_tenants()
