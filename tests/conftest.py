"""Shared fixtures for every test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.versions import REPO_ROOT, Versions, load_versions

pytest_plugins = ["harness.entry.plugin"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout under test."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def versions() -> Versions:
    """The pinned versions (versions.yaml)."""
    return load_versions()
