"""E2E configuration validation and URL rewriting when publishing."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import build_config
from harness.errors import ConfigError
from harness.publish import Rewrite, apply_rewrites


def test_config_defaults_to_both_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEET_E2E_ENVIRONMENTS", raising=False)
    assert build_config(None, False, None).environments == ("staging", "production")


def test_cli_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_E2E_ENVIRONMENTS", "production")
    assert build_config("staging", False, None).environments == ("staging",)
    assert build_config(None, False, None).environments == ("production",)


@pytest.mark.parametrize(("envs", "scale", "message"), [
    ("staging,qa", "1", "'staging,qa' is invalid"),
    ("staging", "fast", "FLEET_E2E_TIMEOUT_SCALE: 'fast' is invalid"),
    ("staging", "-1", "FLEET_E2E_TIMEOUT_SCALE: '-1' is invalid"),
])
def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch, envs: str, scale: str, message: str) -> None:
    monkeypatch.setenv("FLEET_E2E_TIMEOUT_SCALE", scale)
    with pytest.raises(ConfigError, match=message):
        build_config(envs, False, None)


def test_rewrites_are_applied_and_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("url: https://git.example.com/dev-team/apps.git\n")
    (tmp_path / "b.yaml").write_text("url: https://elsewhere.example.org/\n")
    hits = apply_rewrites(tmp_path, [Rewrite("https://git.example.com/", "http://10.0.0.1:8080/git/")])
    assert (tmp_path / "a.yaml").read_text() == "url: http://10.0.0.1:8080/git/dev-team/apps.git\n"
    assert (tmp_path / "b.yaml").read_text() == "url: https://elsewhere.example.org/\n"
    assert [str(h) for h in hits] == ["a.yaml: https://git.example.com/ -> http://10.0.0.1:8080/git/ (1x)"]


def test_existing_kubeconfig_is_validated(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "staging.yaml"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    config = build_config("staging", False, None, cli_existing=[f"staging={kubeconfig}"])
    assert config.existing_kubeconfig("staging") == kubeconfig
    assert config.existing_kubeconfig("production") is None
    with pytest.raises(ConfigError, match="'qa=x' is invalid"):
        build_config(None, False, None, cli_existing=["qa=x"])
    with pytest.raises(ConfigError, match="is not a readable file"):
        build_config(None, False, None, cli_existing=[f"staging={tmp_path / 'missing'}"])
