"""`make lint` keeps the harness' layers: an upward import breaks the import-linter contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


def _lint_copy(repo_root: Path, tmp_path: Path, inject: str | None) -> subprocess.CompletedProcess[str]:
    """import-linter with the repo's contract, over a copy of the harness (one line added)."""
    shutil.copytree(repo_root / "harness", tmp_path / "harness")
    if inject:
        module, line = inject.split(":", 1)
        with (tmp_path / "harness" / module).open("a") as f:
            f.write(f"\n{line}  # noqa\n")
    config = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = config["contracts"][0]
    (tmp_path / ".importlinter").write_text("\n".join([
        "[importlinter]", f"root_package = {config['root_package']}", "",
        "[importlinter:contract:layers]", f"name = {contract['name']}", f"type = {contract['type']}",
        "layers =", *(f"    {layer}" for layer in contract["layers"]), ""]))
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--config", ".importlinter"],
                          cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_harness_keeps_its_layers(repo_root: Path, tmp_path: Path) -> None:
    result = _lint_copy(repo_root, tmp_path, None)
    assert result.returncode == 0 and "KEPT" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("inject", [
    "core/progress.py:from harness.e2e import fleet",
    "access/kube.py:from harness.kit import build",
    "kit/tools.py:from harness.manifests import render",  # side by side: neither imports the other
], ids=["core-imports-e2e", "access-imports-kit", "kit-imports-manifests"])
def test_an_upward_or_sideways_import_breaks_the_contract(repo_root: Path, tmp_path: Path, inject: str) -> None:
    result = _lint_copy(repo_root, tmp_path, inject)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and "is not allowed to import" in result.stdout, result.stdout
