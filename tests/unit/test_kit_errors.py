"""The kit's errors name the artifact, the cause and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import KitError
from harness.kit import cache, gomod


def test_version_missing_from_the_proxy_names_module_and_fix() -> None:
    with pytest.raises(KitError) as error:
        gomod.download("sigs.k8s.io/kind", "v0.0.99-does-not-exist")
    message = str(error.value)
    assert "sigs.k8s.io/kind@v0.0.99-does-not-exist" in message
    assert "go list -m -versions sigs.k8s.io/kind" in message and "versions.yaml" in message


def test_too_old_go_toolchain_names_required_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gomod, "local_go_version", lambda: (1, 22, 0))
    module = gomod.GoModule("github.com/kyverno/kyverno", "v1.19.1", Path("/nonexistent"), Path("/nonexistent"))
    with pytest.raises(KitError, match=r"kyverno: github.com/kyverno/kyverno@v1.19.1 needs Go 1.26.6.*Go 1.22.0"):
        gomod.check_toolchain("kyverno", module, {"Go": "1.26.6"})


def test_full_disk_names_the_cache_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_KIT_CACHE", str(tmp_path))

    def no_space(out: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(KitError, match="Free disk space or set FLEET_KIT_CACHE"):
        cache.build_once("go", "kubernetes", "v1.34.4", "k", "src", no_space)
    assert list((tmp_path / "go" / "kubernetes").iterdir()) == []


def test_upstream_chart_source_without_internet_names_the_url_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.kit import upstream

    monkeypatch.setenv("FLEET_KIT_CACHE", str(tmp_path))
    monkeypatch.setitem(upstream.CHART_REPOSITORIES, "podinfo", "http://127.0.0.1:9/podinfo")
    with pytest.raises(KitError, match=r"cannot download http://127.0.0.1:9/podinfo/index.yaml.*source: build"):
        upstream.chart_repo("podinfo", "6.9.2")
    assert list((tmp_path / "charts-upstream" / "podinfo").iterdir()) == []


def test_command_errors_never_print_credentials() -> None:
    from harness.core.errors import CommandError

    token = "4f1d2c3b4a5968778695a4b3c2d1e0f9"
    error = CommandError(
        ["flux", "bootstrap", "git", f"--password={token}", "--username=fleet",
         f"--url=http://fleet:{token}@172.18.0.1:3000/git/platform/fleet.git"],
        1, f"fatal: could not read from http://fleet:{token}@172.18.0.1:3000/git/x.git\n", "command failed")
    assert token not in str(error)
    assert "--password=***" in str(error) and "http://fleet:***@172.18.0.1:3000" in str(error)
    assert "--username=fleet" in str(error)  # only secrets are masked
