"""Version sets: the previous set beside versions.yaml, how a run chooses one, what the kit
checks for modules the checksum database does not know, and how the fleet is published for a
set other than the one it pins."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from harness.core.config import OPTIONS, build_config, versions_file
from harness.core.errors import ConfigError, KitError
from harness.core.semver import satisfies
from harness.core.versions import PREVIOUS_VERSIONS_FILE, VERSIONS_FILE, Versions, load_versions
from harness.e2e.gitserver import GitServer
from harness.e2e.publish import apply_rewrites
from harness.e2e.repos import rewrites_for
from harness.kit import charts, gomod
from harness.kit.flux import FLUX_MODULE, cli_recipe


@pytest.fixture(autouse=True)
def no_e2e_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)


@pytest.fixture
def previous() -> Versions:
    return load_versions(PREVIOUS_VERSIONS_FILE)


def test_previous_set_differs_only_in_flux_and_kyverno(versions: Versions, previous: Versions) -> None:
    """Same format (it loads), same shared parts: the two kits share everything else."""
    assert previous.name == "versions.previous.yaml" and versions.name == "versions.yaml"
    for field in ("kubernetes", "kind", "node", "kustomize", "podinfo", "podinfo_module"):
        assert getattr(previous, field) == getattr(versions, field), field
    older = [(previous.flux.cli, versions.flux.cli), (previous.kyverno, versions.kyverno),
             (previous.kyverno_chart, versions.kyverno_chart)]
    older += [(version, versions.flux.controllers()[name]) for name, version in previous.flux.controllers().items()]
    for old, new in older:
        assert satisfies(old, f"<{new.removeprefix('v')}"), f"{old} is not older than {new}: nothing to upgrade"


def _with_pin(tmp_path: Path, previous: Versions, digest: str) -> Path:
    """The previous set with the flux module's hash pinned (a module the checksum database
    does not know)."""
    pinned = tmp_path / "set.yaml"
    pinned.write_text(PREVIOUS_VERSIONS_FILE.read_text()
                      + f'checksums:\n  {FLUX_MODULE}@{previous.flux.cli}: "{digest}"\n')
    return pinned


def test_a_pinned_hash_reaches_the_module_download(tmp_path: Path, previous: Versions) -> None:
    assert previous.checksum(FLUX_MODULE, previous.flux.cli) == ""  # the database knows it
    pinned = load_versions(_with_pin(tmp_path, previous, "h1:qYOsmoPT/r6qjX08+FMMdbOB/7xOMh2j2FpOX8mAg+M="))
    assert pinned.checksum(FLUX_MODULE, pinned.flux.cli).startswith("h1:")
    assert cli_recipe(pinned).checksum == pinned.checksum(FLUX_MODULE, pinned.flux.cli)
    # Not part of the cache key: pinning a hash does not rebuild anything.
    assert "h1:" not in repr(cli_recipe(pinned))
    assert repr(cli_recipe(pinned)) == repr(cli_recipe(previous))


def test_bad_checksums_are_refused(tmp_path: Path, previous: Versions) -> None:
    with pytest.raises(ConfigError, match="checksums"):
        load_versions(_with_pin(tmp_path, previous, "sha256:qYOsmoPT"))


def test_missing_set_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_versions(tmp_path / "nope.yaml")


def test_runs_choose_a_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert build_config().versions_file == VERSIONS_FILE
    assert build_config().upgrade_from is None
    monkeypatch.setenv("FLEET_E2E_VERSIONS", str(PREVIOUS_VERSIONS_FILE))
    assert build_config().versions_file == PREVIOUS_VERSIONS_FILE
    assert versions_file() == PREVIOUS_VERSIONS_FILE
    monkeypatch.setenv("FLEET_E2E_VERSIONS", str(tmp_path / "typo.yaml"))
    with pytest.raises(ConfigError, match="--e2e-versions / FLEET_E2E_VERSIONS: .*typo.yaml.*no such file"):
        build_config()


def test_upgrade_runs_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    config = build_config({"upgrade-from": str(PREVIOUS_VERSIONS_FILE)})
    assert (config.upgrade_from, config.versions_file) == (str(PREVIOUS_VERSIONS_FILE), VERSIONS_FILE)
    assert build_config({"upgrade-from": "auto"}).upgrade_from == "auto"
    assert build_config({"upgrade-from": "git:main"}).upgrade_from == "git:main"
    with pytest.raises(ConfigError, match="name a ref after git:"):
        build_config({"upgrade-from": "git:"})
    with pytest.raises(ConfigError, match="it is the set the run upgrades to"):
        build_config({"upgrade-from": str(VERSIONS_FILE)})
    with pytest.raises(ConfigError, match="creates its own clusters"):
        build_config({"upgrade-from": str(PREVIOUS_VERSIONS_FILE), "up": True})


def test_fleet_is_published_with_the_sets_chart(tmp_path: Path, repo_root: Path, versions: Versions,
                                                previous: Versions) -> None:
    server = GitServer("http://192.0.2.1:1234", "u", "t", tmp_path / "git", tmp_path / "charts")
    shutil.copytree(repo_root / "infrastructure", tmp_path / "tree" / "infrastructure")
    assert apply_rewrites(tmp_path / "tree", rewrites_for(server, versions)) != []
    release = tmp_path / "tree" / "infrastructure/kyverno/release.yaml"
    assert f'version: "{versions.kyverno_chart}"' in release.read_text()
    hits = apply_rewrites(tmp_path / "tree", rewrites_for(server, previous))
    assert [h.file for h in hits if previous.kyverno_chart in h.rewrite.new] == ["infrastructure/kyverno/release.yaml"]
    assert f'version: "{previous.kyverno_chart}"' in release.read_text()


def test_merged_chart_repositories_serve_both_sets(tmp_path: Path) -> None:
    sets = []
    for version in ("3.8.2", "3.9.1"):
        chart = tmp_path / f"src-{version}" / "kyverno"
        chart.mkdir(parents=True)
        (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: kyverno\nversion: {version}\n")
        out = tmp_path / f"repo-{version}"
        out.mkdir()
        charts.package(chart, out)
        sets.append({"kyverno": out})
    merged = charts.merged_repos(tmp_path / "merged", *sets)
    index = (merged["kyverno"] / "index.yaml").read_text()
    assert "version: 3.8.2" in index and "version: 3.9.1" in index


@pytest.mark.kit
def test_a_download_that_differs_from_the_pinned_hash_is_refused(previous: Versions) -> None:
    with pytest.raises(KitError, match="the version set pins h1:AAAA"):
        gomod.download(FLUX_MODULE, previous.flux.cli, "h1:AAAA=")
    module = gomod.download(FLUX_MODULE, previous.flux.cli, previous.checksum(FLUX_MODULE, previous.flux.cli))
    assert module.version == previous.flux.cli


def test_charts_are_packaged_without_what_helmignore_leaves_out(tmp_path: Path) -> None:
    chart = tmp_path / "src" / "kyverno"
    for name in ("Chart.yaml", "README.md", "templates/a.yaml", "tmpcharts-1/x.tgz", "ci/values.yaml",
                 "charts/crds/README.md", "charts/crds/templates/crd.yaml", "keep/README.md.gotmpl.txt"):
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text("apiVersion: v2\nname: kyverno\nversion: 1.0.0\n" if name == "Chart.yaml" else "x")
    (chart / ".helmignore").write_text("# upstream's\n.helmignore\nci/\ntmpcharts-*/\nREADME.md\n")
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(charts.package(chart, out)) as tar:
        names = sorted(tar.getnames())
    assert names == ["kyverno/Chart.yaml", "kyverno/charts/crds/templates/crd.yaml",
                     "kyverno/keep/README.md.gotmpl.txt", "kyverno/templates/a.yaml"]
