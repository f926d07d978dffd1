"""Fixtures for the offline manifest checks: the kit's tools and scratch copies of the repo."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.core.versions import Versions
from harness.e2e.engines import engine_of
from harness.kit.tools import ValidationKit, validation_kit
from harness.manifests.validate import Report, roots, validate

Edit = Callable[[Path], None]


@pytest.fixture(scope="session")
def kit(versions: Versions, kit_source: str) -> ValidationKit:
    """kustomize, flux and the Kyverno CLI from the kit cache (built on first use)."""
    return validation_kit(versions, kit_source)


@pytest.fixture
def validate_copy(
    tmp_path: Path, repo_root: Path, kit: ValidationKit, versions: Versions
) -> Callable[[Edit], Report]:
    """Validate a scratch copy of the repo after applying one edit to it."""

    def run(edit: Edit) -> Report:
        copy = tmp_path / "repo"
        for name in (*roots(repo_root), "tests/policies", "tests/e2e"):
            shutil.copytree(repo_root / name, copy / name)
        edit(copy)
        return validate(copy, kit.tools, kit.sources, versions, engine_of(copy).offline_checks)

    return run
