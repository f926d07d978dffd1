"""The Git server's token never reaches a terminal or a report: a push and a bootstrap take it
from their environment (never the command line or a URL), and a failed command's error chains
no exception that quotes a command line."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core.versions import load_versions
from harness.e2e import publish
from harness.e2e.gitserver import GitServer, serve
from harness.kit.tools import validation_kit

pytest_plugins = ["pytester"]


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    with serve("127.0.0.1", tmp_path / "srv", {}) as server:
        yield server


def _commit(work: Path) -> None:
    for argv in (["init", "-q", "--initial-branch=main", str(work)], ["add", "."],
                 ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "add"]):
        if argv[0] == "add":
            (work / "hello.txt").write_text("hello\n")
        subprocess.run(["git", *argv], cwd=work, check=True, capture_output=True, timeout=60)


def test_a_push_with_the_token_in_the_environment_arrives(git_server: GitServer, tmp_path: Path) -> None:
    """The positive twin: credentials from the environment are accepted."""
    git_server.create_repo("team/apps")
    (tmp_path / "work").mkdir()
    _commit(tmp_path / "work")
    publish.push(git_server, "team/apps", tmp_path / "work")
    clone = subprocess.run(["git", "clone", "-q", git_server.repo_url("team/apps"), str(tmp_path / "clone")],
                           capture_output=True, text=True, timeout=60, check=False)
    assert clone.returncode == 0, clone.stderr
    assert (tmp_path / "clone" / "hello.txt").read_text() == "hello\n"


INNER = '''
import os
import subprocess
from pathlib import Path

import pytest

from harness.e2e import flux, publish
from harness.e2e.gitserver import serve


@pytest.fixture
def server(tmp_path):
    with serve("127.0.0.1", tmp_path / "srv", {}) as server:
        with open(os.environ["TOKENS"], "a") as tokens:
            tokens.write(server.token + "\\n")
        yield server


def test_failed_push(server, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("a")
    for argv in (["init", "-q", "--initial-branch=main"], ["add", "."],
                 ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "a"]):
        subprocess.run(["git", *argv], cwd=work, check=True, capture_output=True)
    publish.push(server, "nobody/missing", work)  # no such repository: refused


def test_failed_bootstrap(server, tmp_path):
    flux.bootstrap(os.environ["FLUX"], tmp_path / "no-such-kubeconfig", server, "platform/fleet",
                   "clusters/staging", tmp_path / "bootstrap.log")
'''


@pytest.fixture(scope="session")
def flux_cli() -> Path:
    """The kit's flux, found before pytester points HOME (and so the kit cache) elsewhere."""
    return validation_kit(load_versions()).tools.flux


@pytest.mark.kit
def test_failed_push_and_bootstrap_show_no_token(pytester: pytest.Pytester, tmp_path: Path, flux_cli: Path) -> None:
    tokens = tmp_path / "tokens"
    pytester.makeconftest('pytest_plugins = ["harness.entry.plugin"]\n')
    pytester.makepyfile(test_inner=INNER)
    junit = tmp_path / "junit.xml"
    pytester._monkeypatch.setenv("TOKENS", str(tokens))
    pytester._monkeypatch.setenv("FLUX", str(flux_cli))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--junitxml={junit}")
    result.assert_outcomes(failed=2)
    shown = result.stdout.str() + result.stderr.str()
    report = ET.parse(junit).getroot()
    failures = "".join(f.get("message", "") + (f.text or "") for f in report.iter("failure"))
    # The failures are there to read (so the check below looked at real error output).
    assert "flux bootstrap of clusters/staging failed" in shown and "git" in failures
    assert "push" in failures and "nobody/missing" in failures
    secrets = tokens.read_text().split()
    assert len(secrets) == 2
    for secret in secrets:
        assert secret not in shown, "a token reached the terminal"
        assert secret not in junit.read_text(), "a token reached the JUnit report"
