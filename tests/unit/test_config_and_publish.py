"""E2E configuration validation and URL rewriting when publishing."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core import config
from harness.core.config import OPTIONS, build_config
from harness.core.errors import ConfigError
from harness.core.repo import NATIVE_POLICIES_DIR
from harness.e2e.publish import Rewrite, apply_rewrites


@pytest.fixture(autouse=True)
def no_e2e_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the FLEET_E2E_* variables it is about; the caller's are ignored."""
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)


def test_config_defaults() -> None:
    config = build_config()
    assert config.environments == ("production", "staging")  # the folders of clusters/, by name
    assert (config.kit_source, config.use_up, config.timeout_scale) == ("build", False, 1.0)


def test_cli_beats_environment_beats_ini(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_E2E_ENVIRONMENTS", "production")
    assert build_config({"environments": "staging"}).environments == ("staging",)
    assert build_config().environments == ("production",)
    monkeypatch.delenv("FLEET_E2E_ENVIRONMENTS")
    assert build_config(ini={"environments": "staging"}).environments == ("staging",)


def test_every_option_has_one_name_in_three_spellings() -> None:
    for option in OPTIONS:
        stem = option.name.replace("-", "_")
        assert (option.cli, option.env, option.ini) == (
            f"--e2e-{option.name}", f"FLEET_E2E_{stem.upper()}", f"e2e_{stem}")


def documented_options(readme: str) -> dict[str, str]:
    """The README's options table: `--e2e-NAME` -> `FLEET_E2E_NAME`, from rows whose first two
    cells are exactly those (a mention elsewhere, or a longer option's prefix, is no row)."""
    table = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `--e2e-") and len(cells) >= 3:
            table[cells[0].strip("`")] = cells[1].strip("`")
    return table


def test_every_option_is_documented_in_the_readme(repo_root: Path) -> None:
    table = documented_options((repo_root / "README.md").read_text())
    undocumented = [o.cli for o in OPTIONS if table.get(o.cli) != o.env]
    assert not undocumented, f"README's options table has no row for {undocumented}"
    assert set(table) == {o.cli for o in OPTIONS}, f"README documents options that do not exist: {set(table) - {o.cli for o in OPTIONS}}"


def test_an_option_mentioned_only_in_prose_is_undocumented() -> None:
    readme = ("Run with `--e2e-versions` and FLEET_E2E_VERSIONS.\n\n| Option | Environment | Meaning |\n"
              "|---|---|---|\n| `--e2e-versions-extra` | `FLEET_E2E_VERSIONS_EXTRA` | a longer name |\n")
    assert "--e2e-versions" not in documented_options(readme)


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("FLEET_E2E_ENVIRONMENTS", "staging,qa", "--e2e-environments / FLEET_E2E_ENVIRONMENTS: 'staging,qa' is invalid"),
    ("FLEET_E2E_TIMEOUT_SCALE", "fast", "FLEET_E2E_TIMEOUT_SCALE: 'fast' is invalid"),
    ("FLEET_E2E_TIMEOUT_SCALE", "-1", "FLEET_E2E_TIMEOUT_SCALE: '-1' is invalid"),
    ("FLEET_E2E_TIMEOUT_SCALE", "nan", "FLEET_E2E_TIMEOUT_SCALE: 'nan' is invalid"),
    ("FLEET_E2E_KIT_SOURCE", "mirror", "--e2e-kit-source / FLEET_E2E_KIT_SOURCE: 'mirror' is invalid"),
    ("FLEET_E2E_UP", "yes please", "FLEET_E2E_UP: 'yes please' is invalid"),
])
def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message):
        build_config()


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
    config = build_config({"kubeconfigs": f"staging={kubeconfig}"})
    assert config.existing_kubeconfig("staging") == kubeconfig
    assert config.existing_kubeconfig("production") is None
    with pytest.raises(ConfigError, match="'qa=x' is invalid"):
        build_config({"kubeconfigs": "qa=x"})
    with pytest.raises(ConfigError, match="is not a readable file"):
        build_config({"kubeconfigs": f"staging={tmp_path / 'missing'}"})


def test_the_kit_commands_read_only_the_kit_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.core.config import kit_source

    monkeypatch.setenv("FLEET_E2E_TIMEOUT_SCALE", "fast")  # bad, but not the kit's business
    monkeypatch.setenv("FLEET_E2E_KIT_SOURCE", "upstream")
    assert kit_source() == "upstream"
    assert kit_source("build") == "build"
    monkeypatch.setenv("FLEET_E2E_KIT_SOURCE", "mirror")
    with pytest.raises(ConfigError, match="--e2e-kit-source / FLEET_E2E_KIT_SOURCE: 'mirror' is invalid"):
        kit_source()


def test_the_engine_defaults_to_what_the_fleet_deploys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fork that committed the native variant runs natively with no setting, and cannot ask
    for the Kyverno it no longer deploys."""
    assert build_config().policy_engine == "kyverno"
    assert build_config({"policy-engine": "native"}).policy_engine == "native"
    for folder in (NATIVE_POLICIES_DIR, "clusters/production", "clusters/staging"):
        (tmp_path / folder).mkdir(parents=True)
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    assert build_config().policy_engine == "native"
    with pytest.raises(ConfigError, match="deploys the native variant .* and no Kyverno"):
        build_config({"policy-engine": "kyverno"})
