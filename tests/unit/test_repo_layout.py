"""The dependsOn order comes from the fleet's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import ConfigError
from harness.core.repo import platform_order
from harness.core.topology import environments


@pytest.mark.parametrize("environment", environments())
def test_the_platform_order_is_read_from_the_clusters_files(environment: str) -> None:
    assert platform_order(environment) == ["flux-system", "kyverno", "kyverno-policies", "tenants"]  # type: ignore[arg-type]


def _kustomization(name: str, needs: list[str]) -> str:
    depends = "".join(f"\n    - name: {n}" for n in needs)
    return (f"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {name}\n"
            f"  namespace: flux-system\nspec:\n  dependsOn:{depends or ' []'}\n---\n")


def test_a_new_layer_takes_its_place_from_dependson(tmp_path: Path) -> None:
    folder = tmp_path / "clusters" / "staging"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text(_kustomization("apps", ["tenants"]) + _kustomization("tenants", ["policies"]))
    (folder / "b.yaml").write_text(_kustomization("policies", []))
    assert platform_order("staging", tmp_path) == ["flux-system", "policies", "tenants", "apps"]


def test_a_cycle_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "clusters" / "staging"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text(_kustomization("x", ["y"]) + _kustomization("y", ["x"]))
    with pytest.raises(ConfigError, match=r"dependsOn cannot be satisfied .*\['x', 'y'\]"):
        platform_order("staging", tmp_path)
