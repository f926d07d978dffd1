"""Publishes the working tree's fleet repo and tenant repo to the Git server, as they are.

URLs that point outside (the tenant repo's host, chart repositories) are rewritten to the local
servers. Every rewrite is reported, so nothing is substituted silently.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.core import commands
from harness.core.errors import HarnessError, Secret
from harness.e2e.gitserver import GitServer

GIT_TIMEOUT_S = 120.0
AUTHOR = ["-c", "user.name=fleet-e2e", "-c", "user.email=fleet-e2e@example.com"]


@dataclass(frozen=True)
class Rewrite:
    old: str
    new: str


@dataclass(frozen=True)
class RewriteHit:
    file: str
    rewrite: Rewrite
    count: int

    def __str__(self) -> str:
        return f"{self.file}: {self.rewrite.old} -> {self.rewrite.new} ({self.count}x)"


def git(*args: str, cwd: Path) -> str:
    return commands.run(["git", *AUTHOR, *args], timeout_s=GIT_TIMEOUT_S, cwd=cwd).stdout.strip()


def apply_rewrites(root: Path, rewrites: Iterable[Rewrite]) -> list[RewriteHit]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        changed = text
        for rewrite in rewrites:
            count = changed.count(rewrite.old)
            if count:
                changed = changed.replace(rewrite.old, rewrite.new)
                hits.append(RewriteHit(path.relative_to(root).as_posix(), rewrite, count))
        if changed != text:
            path.write_text(changed)
    return hits


def push(server: GitServer, repo: str, work: Path) -> None:
    """Push main to the server. The credentials travel in git's environment (an Authorization
    header from GIT_CONFIG_*), never in its command line or the URL, which end up in process
    listings and error messages."""
    header = base64.b64encode(f"{server.username}:{server.token}".encode()).decode()
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
           "GIT_CONFIG_VALUE_0": Secret(f"Authorization: Basic {header}")}
    commands.run(["git", *AUTHOR, "push", "-q", server.repo_url(repo), "main"], timeout_s=GIT_TIMEOUT_S,
                 cwd=work, env=env)


Transform = Callable[[Path], list[RewriteHit]]  # edits a tree in place, reports what it changed


def publish(server: GitServer, repo: str, sources: dict[str, Path], rewrites: Iterable[Rewrite],
            message: str, transform: Transform | None = None, files: dict[str, str] | None = None
            ) -> tuple[str, list[RewriteHit]]:
    """Create `repo` on the server holding `sources` (name in repo -> folder), rewritten, then
    transformed, then with `files` (path in repo -> text) written over it as they are; return
    the commit and every change made."""
    server.create_repo(repo)
    with tempfile.TemporaryDirectory(prefix="fleet-publish-") as tmp:
        work = Path(tmp)
        git("init", "-q", "--initial-branch=main", str(work), cwd=work)
        for name, folder in sources.items():
            shutil.copytree(folder, work / name if name else work, dirs_exist_ok=True)
        hits = apply_rewrites(work, list(rewrites))
        if transform is not None:
            hits += transform(work)
        for name, text in (files or {}).items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", message, cwd=work)
        push(server, repo, work)
        return git("rev-parse", "HEAD", cwd=work), hits


@contextmanager
def checkout(server: GitServer, repo: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fleet-checkout-") as tmp:
        work = Path(tmp) / "repo"
        commands.run(["git", "clone", "-q", server.repo_url(repo), str(work)], timeout_s=GIT_TIMEOUT_S)
        yield work


def commit_change(server: GitServer, repo: str, edit: Callable[[Path], None], message: str) -> str | None:
    """Clone, edit, commit and push; return the new commit, or None if the edit changed nothing."""
    with checkout(server, repo) as work:
        edit(work)
        git("add", "-A", cwd=work)
        if not git("status", "--porcelain", cwd=work):
            return None
        git("commit", "-q", "-m", message, cwd=work)
        push(server, repo, work)
        return git("rev-parse", "HEAD", cwd=work)


def _tracked_files(work: Path) -> list[Path]:
    return [p for p in work.rglob("*") if p.is_file() and ".git" not in p.parts]


def snapshot(server: GitServer, repo: str) -> dict[Path, bytes]:
    """The repo's files at main, to put back later with restore()."""
    with checkout(server, repo) as work:
        return {p.relative_to(work): p.read_bytes() for p in _tracked_files(work)}


def restore(server: GitServer, repo: str, files: dict[Path, bytes], message: str) -> str | None:
    """Commit whatever makes main hold exactly `files`; None if it already does."""

    def write(work: Path) -> None:
        for path in _tracked_files(work):
            path.unlink()
        for rel, data in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_bytes(data)

    return commit_change(server, repo, write, message)


class UnchangedError(HarnessError):
    """A change meant to be committed left the repository as it was."""


@contextmanager
def committed(server: GitServer, repo: str, edit: Callable[[Path], None], message: str,
              converge: Callable[[str], object]) -> Iterator[str]:
    """A change to `repo`'s main for the duration of the block, converged (`converge(commit)`)
    before it; afterwards main holds exactly its files from before again, converged too. The
    repository is put back also when the change never converges or the block fails."""
    original = snapshot(server, repo)
    try:
        commit = commit_change(server, repo, edit, message)
        if commit is None:
            raise UnchangedError(f"{message}: the change left {repo} as it was")
        converge(commit)
        yield commit
    finally:
        restored = restore(server, repo, original, f"revert: {message}")
        if restored is not None:
            converge(restored)


def head(server: GitServer, repo: str) -> str:
    """The commit main points at on the server."""
    out = commands.run(["git", "ls-remote", server.repo_url(repo), "refs/heads/main"], timeout_s=GIT_TIMEOUT_S)
    return out.stdout.split()[0]


def sync(server: GitServer, repo: str, sources: dict[str, Path], rewrites: Iterable[Rewrite], message: str,
         keep: Callable[[str], bool] = lambda _: False) -> str | None:
    """Commit whatever makes main hold `sources` as publish() writes them, except the files
    `keep` names (by path in the repo), which stay as they are on main; None if nothing changed."""
    def edit(work: Path) -> None:
        for path in _tracked_files(work):
            if not keep(path.relative_to(work).as_posix()):
                path.unlink()
        with tempfile.TemporaryDirectory(prefix="fleet-sync-") as tmp:
            staged = Path(tmp)
            for name, folder in sources.items():
                shutil.copytree(folder, staged / name if name else staged, dirs_exist_ok=True)
            apply_rewrites(staged, list(rewrites))
            for path in _tracked_files(staged):
                rel = path.relative_to(staged).as_posix()
                if not keep(rel):
                    (work / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, work / rel)

    return commit_change(server, repo, edit, message)
