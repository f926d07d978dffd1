"""Where an upgrade run starts (history) and the start state's repos at the API versions the
upgrade drops (apiversions): on scratch Git repositories and the kit's real Flux CRDs' shapes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.core import commands, yamlio
from harness.core.errors import ConfigError
from harness.core.history import AUTO, is_older, last_older_commit, materialize, resolve
from harness.core.versions import PREVIOUS_VERSIONS_FILE, VERSIONS_FILE, load_versions
from harness.e2e.apiversions import (
    dropped_versions,
    unknown_fields,
    version_key,
    write_at_dropped_versions,
)

CURRENT = yamlio.load(VERSIONS_FILE.read_text())
PREVIOUS = yamlio.load(PREVIOUS_VERSIONS_FILE.read_text())


def _git(root: Path, *args: str) -> str:
    return commands.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                        timeout_s=30, cwd=root).stdout.strip()


def _commit(root: Path, message: str, versions: dict[str, Any] | None = None, extra: str = "") -> str:
    if versions is not None:
        (root / "versions.yaml").write_text(yamlio.dump(versions) + extra)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "--allow-empty", "-m", message)
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)
    root = tmp_path / "repo"
    (root / "clusters" / "staging").mkdir(parents=True)
    (root / "clusters" / "staging" / "tenants.yaml").write_text("old fleet\n")
    shutil.copy(PREVIOUS_VERSIONS_FILE, root / "versions.previous.yaml")
    _git(tmp_path, "init", "-q", "--initial-branch=main", str(root))
    return root


def test_an_older_set_is_one_an_upgrade_moves_forward() -> None:
    assert is_older(PREVIOUS, CURRENT)
    assert not is_older(CURRENT, PREVIOUS)
    assert not is_older(CURRENT, CURRENT)
    mixed = yamlio.load(VERSIONS_FILE.read_text())
    mixed["kyverno"]["app"] = "v9.0.0"  # Flux older, Kyverno newer: not an upgrade
    assert not is_older({**PREVIOUS, "kyverno": mixed["kyverno"]}, CURRENT)


def test_the_newest_commit_with_an_older_set_is_found(scratch: Path) -> None:
    old = _commit(scratch, "fleet at the previous set", PREVIOUS)
    (scratch / "clusters" / "staging" / "tenants.yaml").write_text("new fleet\n")
    _commit(scratch, "bump", CURRENT)
    _commit(scratch, "a comment in versions.yaml", CURRENT, extra="# a note\n")
    assert last_older_commit(CURRENT, scratch) == old
    start = resolve(AUTO, scratch)
    assert (start.ref, start.versions_file) == (old, scratch / "versions.yaml")
    # The working tree's bump, not committed yet: HEAD holds the older set.
    (scratch / "versions.yaml").write_text(yamlio.dump({**CURRENT, "flux": {**CURRENT["flux"], "cli": "v9.0.0"}}))
    assert last_older_commit(yamlio.load((scratch / "versions.yaml").read_text()), scratch) == _git(
        scratch, "rev-parse", "HEAD")


def test_without_an_older_set_in_history_the_previous_file_is_the_start(scratch: Path) -> None:
    _commit(scratch, "only the current set", CURRENT)
    start = resolve(AUTO, scratch)
    assert (start.ref, start.versions_file.name) == (None, PREVIOUS_VERSIONS_FILE.name)
    assert "no commit holds an older version set" in start.why


def test_a_pull_request_starts_from_its_base(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _commit(scratch, "base", CURRENT)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    with pytest.raises(ConfigError, match="origin/main is not in the clone.*fetch-depth: 0"):
        resolve(AUTO, scratch)
    _git(scratch, "update-ref", "refs/remotes/origin/main", base)
    _commit(scratch, "the pull request's change")
    assert resolve(AUTO, scratch).ref == base


def test_bad_starts_are_named(scratch: Path) -> None:
    _commit(scratch, "one", CURRENT)
    with pytest.raises(ConfigError, match="'nope' is not a commit of this repository"):
        resolve("git:nope", scratch)
    with pytest.raises(ConfigError, match="no such file"):
        resolve(str(scratch / "typo.yaml"), scratch)


def test_a_commit_is_materialized_with_its_repos_and_set(scratch: Path, tmp_path: Path) -> None:
    trimmed = {k: v for k, v in PREVIOUS.items() if k not in ("kube-router", "checksums")}
    old = _commit(scratch, "old", trimmed)
    (scratch / "clusters" / "staging" / "tenants.yaml").write_text("new fleet\n")
    _commit(scratch, "bump", CURRENT)
    start = materialize(resolve(f"git:{old}", scratch), tmp_path / "start", scratch)
    assert (tmp_path / "start" / "clusters" / "staging" / "tenants.yaml").read_text() == "old fleet\n"
    written = load_versions(start.versions_file)
    assert written.flux.cli == PREVIOUS["flux"]["cli"]
    # A pin the commit's set lacks comes from the working tree's set (a tool added since).
    assert written.kube_router == CURRENT["kube-router"]


def _crd(kind: str, versions: list[tuple[str, bool, bool, dict[str, Any]]]) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {"group": "helm.toolkit.fluxcd.io", "names": {"kind": kind}, "versions": [
                {"name": n, "served": served, "storage": storage,
                 "schema": {"openAPIV3Schema": {"properties": {"spec": schema}}}}
                for n, served, storage, schema in versions]}}


SPEC_OLD = {"properties": {"interval": {}, "values": {"x-kubernetes-preserve-unknown-fields": True}}}
SPEC_NEW = {"properties": {"interval": {}, "values": {"x-kubernetes-preserve-unknown-fields": True},
                           "newField": {}}}


def test_versions_the_upgrade_drops_are_written_where_their_schema_fits(tmp_path: Path) -> None:
    previous = yamlio.dump(_crd("HelmRelease", [("v2", True, True, SPEC_NEW), ("v2beta2", True, False, SPEC_OLD),
                                                ("v2beta1", False, False, SPEC_OLD)]))
    current = yamlio.dump(_crd("HelmRelease", [("v2", True, True, SPEC_NEW)]))
    dropped = dropped_versions(previous, current)
    assert [(d.kind, d.version, d.current) for d in dropped.values()] == [("HelmRelease", "v2beta2", "v2")]
    assert sorted(["v1", "v2beta2", "v2", "v1alpha1", "v2beta10"], key=version_key) == [
        "v1alpha1", "v2beta2", "v2beta10", "v1", "v2"]
    assert unknown_fields({"spec": {"interval": "1m", "values": {"any": 1}, "newField": 1}},
                          dropped[("helm.toolkit.fluxcd.io", "HelmRelease")].schema) == [".spec.newField"]
    (tmp_path / "release.yaml").write_text(
        "# a comment\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: fits\n"
        "spec:\n  interval: 1m\n  values:\n    a: 1\n---\n"
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: newer\nspec:\n  newField: 1\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n")
    hits, kept = write_at_dropped_versions(tmp_path, dropped)
    docs = yamlio.load_all((tmp_path / "release.yaml").read_text())
    assert [d["apiVersion"] for d in docs] == ["helm.toolkit.fluxcd.io/v2beta2", "helm.toolkit.fluxcd.io/v2", "v1"]
    assert [str(h) for h in hits] == [("release.yaml: apiVersion: helm.toolkit.fluxcd.io/v2 -> "
                                       "apiVersion: helm.toolkit.fluxcd.io/v2beta2 (1x)")]
    assert kept == ["release.yaml: HelmRelease newer kept at v2: v2beta2 has no .spec.newField"]
    assert (tmp_path / "release.yaml").read_text().startswith("# a comment\n")
