"""The Git server: anonymous clone and fetch, authenticated push, static chart files."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.gitserver import GitServer, serve


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


def test_chart_files_are_served_and_traversal_is_not(git_server: GitServer) -> None:
    with urllib.request.urlopen(git_server.charts_url("demo") + "/index.yaml", timeout=5) as response:
        assert b"entries" in response.read()
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(git_server.charts_url("demo") + "/../../git/x", timeout=5)
    assert error.value.code == 404
