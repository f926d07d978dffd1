"""The Git server: anonymous clone and fetch, authenticated push, static chart files."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.e2e import publish
from harness.e2e.gitserver import GitServer, GitServerError, serve


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    """A Git server on loopback serving one chart repository."""
    charts = tmp_path / "chart-src"
    charts.mkdir()
    (charts / "index.yaml").write_text("apiVersion: v1\nentries: {}\n")
    with serve("127.0.0.1", tmp_path / "srv", {"demo": charts}) as server:
        yield server


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def commit_file(work: Path, name: str, text: str) -> None:
    git("init", "-q", "--initial-branch=main", str(work))
    (work / name).write_text(text)
    git("add", ".", cwd=work)
    git("commit", "-qm", "add", cwd=work)


def with_credentials(server: GitServer, url: str) -> str:
    return url.replace("http://", f"http://{server.username}:{server.token}@")


def test_authenticated_push_then_anonymous_clone(git_server: GitServer, tmp_path: Path) -> None:
    git_server.create_repo("team/apps")
    commit_file(tmp_path / "work", "hello.txt", "hello\n")
    pushed = git("push", with_credentials(git_server, git_server.repo_url("team/apps")), "main",
                 cwd=tmp_path / "work")
    assert pushed.returncode == 0, pushed.stderr
    cloned = git("clone", "-q", git_server.repo_url("team/apps"), str(tmp_path / "clone"))
    assert cloned.returncode == 0, cloned.stderr
    assert (tmp_path / "clone" / "hello.txt").read_text() == "hello\n"


def test_anonymous_push_is_refused(git_server: GitServer, tmp_path: Path) -> None:
    git_server.create_repo("team/apps")
    commit_file(tmp_path / "work", "hello.txt", "hello\n")
    pushed = git("push", git_server.repo_url("team/apps"), "main", cwd=tmp_path / "work")
    assert pushed.returncode != 0
    assert "401" in pushed.stderr or "Authentication failed" in pushed.stderr or "could not read Username" in pushed.stderr, pushed.stderr


def test_wrong_token_push_is_refused(git_server: GitServer, tmp_path: Path) -> None:
    git_server.create_repo("team/apps")
    commit_file(tmp_path / "work", "hello.txt", "hello\n")
    url = git_server.repo_url("team/apps").replace("http://", f"http://{git_server.username}:wrong@")
    pushed = git("push", url, "main", cwd=tmp_path / "work")
    assert pushed.returncode != 0
    # Refused for the credentials (the server's 401), not for anything else, and nothing arrived.
    assert "Authentication failed" in pushed.stderr or "401" in pushed.stderr, pushed.stderr
    heads = git("ls-remote", git_server.repo_url("team/apps"))
    assert heads.returncode == 0 and heads.stdout.strip() == "", heads.stdout + heads.stderr


def test_chart_files_are_served(git_server: GitServer) -> None:
    with urllib.request.urlopen(git_server.charts_url("demo") + "/index.yaml", timeout=5) as response:
        assert b"entries" in response.read()


@pytest.mark.parametrize("climb", ["../..", "%2e%2e/%2E%2E"], ids=["plain", "percent-encoded"])
def test_chart_paths_cannot_climb_to_a_file_outside_the_charts(git_server: GitServer, climb: str) -> None:
    git_server.create_repo("team/apps")
    outside = git_server.git_root / "team" / "apps.git" / "HEAD"
    assert outside.is_file()  # the target exists: only the guard can make this a 404
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{git_server.charts_url('demo')}/{climb}/git/team/apps.git/HEAD", timeout=5)
    assert error.value.code == 404


def test_a_push_larger_than_gits_post_buffer_arrives(git_server: GitServer, tmp_path: Path) -> None:
    """git sends it with Transfer-Encoding: chunked."""
    git_server.create_repo("team/apps")
    work = tmp_path / "work"
    git("init", "-q", "--initial-branch=main", str(work))
    (work / "blob.bin").write_bytes(os.urandom(3 * 2**20))  # incompressible, 3x the buffer
    git("add", ".", cwd=work)
    git("commit", "-qm", "big", cwd=work)
    pushed = git("-c", "http.postBuffer=1048576", "push",
                 with_credentials(git_server, git_server.repo_url("team/apps")), "main", cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    cloned = git("clone", "-q", git_server.repo_url("team/apps"), str(tmp_path / "clone"))
    assert cloned.returncode == 0, cloned.stderr
    assert (tmp_path / "clone" / "blob.bin").read_bytes() == (work / "blob.bin").read_bytes()


def _published(server: GitServer, tmp_path: Path) -> dict[Path, bytes]:
    source = tmp_path / "source"
    source.mkdir()
    (source / "kept.yaml").write_text("a: 1\n")
    publish.publish(server, "team/apps", {"": source}, [], "initial")
    return publish.snapshot(server, "team/apps")


def _probe(work: Path) -> None:
    (work / "kept.yaml").write_text("a: 2\n")
    (work / "probe.yaml").write_text("b: 1\n")


@pytest.mark.parametrize("fails", ["converging the change", "in the block"])
def test_a_temporary_commit_is_put_back_when_the_setup_or_the_test_fails(
        git_server: GitServer, tmp_path: Path, fails: str) -> None:
    """What the e2e fixtures that change a served repo (probes, web_tenant) rely on: main holds
    its files from before again, and that state is converged, whatever failed half-way."""
    before = _published(git_server, tmp_path)
    converged: list[str] = []

    def converge(commit: str) -> None:
        converged.append(commit)
        if fails == "converging the change" and len(converged) == 1:
            raise TimeoutError("the probe commit never became Ready")

    expected = TimeoutError if fails == "converging the change" else RuntimeError
    with pytest.raises(expected), publish.committed(git_server, "team/apps", _probe, "e2e: probes", converge) as commit:
        assert publish.snapshot(git_server, "team/apps") != before and commit == converged[0]
        raise RuntimeError("the test failed")
    assert publish.snapshot(git_server, "team/apps") == before
    assert len(converged) == 2 and converged[1] == publish.head(git_server, "team/apps") != converged[0]


def test_a_change_that_changes_nothing_is_refused_and_leaves_no_commit(git_server: GitServer, tmp_path: Path) -> None:
    _published(git_server, tmp_path)
    head = publish.head(git_server, "team/apps")
    with (pytest.raises(publish.UnchangedError, match="left team/apps as it was"),
          publish.committed(git_server, "team/apps", lambda work: None, "e2e: nothing", lambda c: None)):
        pass
    assert publish.head(git_server, "team/apps") == head


def test_a_removed_repository_can_be_created_again(git_server: GitServer) -> None:
    """A test's own repository goes with its session, so the next run on a server that outlives
    it (`make up`'s) creates it anew instead of failing on the name."""
    git_server.create_repo("probe/configmap")
    with pytest.raises(GitServerError, match="already exists"):
        git_server.create_repo("probe/configmap")
    git_server.remove_repo("probe/configmap")
    assert not (git_server.git_root / "probe" / "configmap.git").exists()
    git_server.create_repo("probe/configmap")
