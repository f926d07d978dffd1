"""The forkers' CI configuration checks fail on broken copies: actionlint, Renovate's validator,
and a pin in versions.yaml without a Renovate rule. That the repo's own files pass is checked once,
by `make lint` (`python -m harness lint-ci`), which CI runs before the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.core.versions import Versions
from harness.kit.tools import CIConfigTools, ci_config_tools
from harness.manifests import ci

pytestmark = pytest.mark.kit


@pytest.fixture(scope="session")
def ci_tools(versions: Versions) -> CIConfigTools:
    """actionlint and Renovate's validator from the kit cache (built or installed on first use)."""
    return ci_config_tools(versions)


@pytest.fixture
def repo_copy(tmp_path: Path, repo_root: Path) -> Path:
    """The CI configuration files of this repo, in a scratch folder."""
    shutil.copytree(repo_root / ".github", tmp_path / ".github")
    for name in (ci.RENOVATE, ci.VERSIONS):
        shutil.copy(repo_root / name, tmp_path / name)
    return tmp_path


def test_actionlint_rejects_a_broken_workflow(ci_tools: CIConfigTools, repo_copy: Path) -> None:
    workflow = repo_copy / ci.WORKFLOWS / "e2e.yaml"
    workflow.write_text(workflow.read_text().replace(
        "steps.kit-cache.outputs.cache-hit", "steps.no-such-step.outputs.cache-hit"))
    findings = ci.actionlint(ci_tools.actionlint, repo_copy)
    # Only the broken line is named: the rest of the copy, the repo's own files, passes.
    assert findings and all("no-such-step" in f.reason for f in findings), findings


def test_renovates_validator_rejects_a_broken_config(ci_tools: CIConfigTools, repo_copy: Path) -> None:
    config = repo_copy / ci.RENOVATE
    config.write_text(config.read_text().replace('"packageRules"', '"packageRulez"'))
    findings = ci.renovate_validator(ci_tools.renovate_validator, repo_copy)
    assert findings and all("packageRulez" in f.reason for f in findings), findings


def test_a_pin_without_a_renovate_rule_is_named(repo_copy: Path) -> None:
    versions = repo_copy / ci.VERSIONS
    versions.write_text(versions.read_text().replace(
        "  # renovate: datasource=go depName=github.com/fluxcd/helm-controller\n", ""))
    findings = ci.renovate_coverage(repo_copy)
    assert [f.field for f in findings] == ["flux.helm-controller"], findings


def test_every_pin_has_a_renovate_rule(repo_root: Path) -> None:
    findings = ci.renovate_coverage(repo_root)
    assert findings == [], "\n".join(map(str, findings))
    assert len(ci.pins(__import__("yaml").safe_load((repo_root / ci.VERSIONS).read_text()))) >= 20
