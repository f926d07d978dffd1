"""`make down` removes what `make up` left, its folder included (the Git server's repositories,
kubeconfigs and logs), and only once every part is gone, so it can be run again after a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.access import networks, registry
from harness.core.errors import HarnessError
from harness.core.versions import REPO_ROOT
from harness.e2e import environment


@pytest.fixture
def left_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A record of `make up` for this checkout, its folder in the cache, and no real parts to
    remove (each part's removal is a no-op here; the e2e covers them)."""
    monkeypatch.setenv("FLEET_KIT_CACHE", str(tmp_path))
    workdir = environment.up_root() / "abc123"
    (workdir / "git-server" / "git").mkdir(parents=True)
    (workdir / "staging").mkdir()
    (workdir / "staging" / "kubeconfig").write_text("apiVersion: v1\n")
    environment.records_dir().mkdir(parents=True)
    (environment.records_dir() / "abc123.json").write_text(json.dumps({
        "run": "abc123", "checkout": str(REPO_ROOT), "workdir": str(workdir), "network": "fleet-abc123",
        "registry_container": "fleet-abc123-registry", "registry_endpoint": "127.0.0.1:1",
        "server_url": "http://127.0.0.1:1", "server_token": "t", "server_pid": 0, "server_pid_start": "",
        "kubeconfigs": {"staging": str(workdir / "staging" / "kubeconfig")}}))
    monkeypatch.setattr(environment, "remove", lambda found, kind: None)
    monkeypatch.setattr(registry, "stop_container", lambda name: None)
    monkeypatch.setattr(networks, "remove", lambda run: None)
    return workdir


def test_down_removes_the_environments_folder_and_record(left_up: Path) -> None:
    removed = environment.down("kind")
    assert "docker network fleet-abc123" in removed
    assert not left_up.exists()
    assert environment.all_records() == []


def test_a_failed_part_keeps_the_folder_and_record_for_the_next_down(left_up: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def still_in_use(run: object) -> None:
        raise HarnessError("network has active endpoints")

    monkeypatch.setattr(networks, "remove", still_in_use)
    with pytest.raises(environment.UpEnvironmentError, match="network has active endpoints"):
        environment.down("kind")
    assert (left_up / "staging" / "kubeconfig").exists()
    assert [r.run for r in environment.all_records()] == ["abc123"]


def test_a_folder_outside_the_up_cache_is_never_removed(left_up: Path, tmp_path: Path) -> None:
    """A record naming some other folder (edited by hand, or from another layout) loses only the
    record: down removes no folder it did not make."""
    elsewhere = tmp_path / "someones-work"
    elsewhere.mkdir()
    path = environment.records_dir() / "abc123.json"
    path.write_text(path.read_text().replace(str(left_up), str(elsewhere)))
    environment.down("kind")
    assert elsewhere.is_dir()
    assert environment.all_records() == []
