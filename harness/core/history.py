"""Where an upgrade run starts, read from this repository's Git history, and that state's files.

`make upgrade` upgrades a fleet the way a bump pull request does: from the fleet, the tenant
repo and the version set of an older commit to the working tree. The start is, first match:
a ref named (`git:REF`); a pull request's base (GITHUB_BASE_REF, as GitHub Actions sets it);
the newest commit whose version set is older than the working tree's; and where history holds
no older set, versions.previous.yaml with the working tree's manifests.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core import commands, yamlio
from harness.core.errors import CommandError, ConfigError
from harness.core.repo import FLEET_DIRS, POLICY_TESTS_DIR
from harness.core.semver import Version
from harness.core.topology import TENANT_REPO_PREFIX
from harness.core.versions import PREVIOUS_VERSIONS_FILE, REPO_ROOT, VERSIONS_FILE

GIT_TIMEOUT_S = 30.0
AUTO = "auto"
GIT_PREFIX = "git:"
# What an upgrade moves: the pins compared to tell an older set from a newer one.
UPGRADED = (("flux", None), ("kyverno", "app"), ("kyverno", "chart"))


@dataclass(frozen=True)
class Start:
    """The state an upgrade run brings the fleet up at."""

    versions_file: Path  # the version set (for a ref: its versions.yaml, written out by materialize)
    ref: str | None  # the commit whose fleet and tenant repo are published; None: the working tree's
    why: str  # how it was chosen, for the run's report


def _git(*args: str, root: Path) -> str:
    # Plain output whatever the user's Git configuration says (the command may run on a
    # terminal); the checkout may belong to another user (CI runs the e2e as root).
    return commands.run(["git", "--no-pager", "-c", "color.ui=never", "-c", f"safe.directory={root}", *args],
                        timeout_s=GIT_TIMEOUT_S, cwd=root).stdout


def _set_at(ref: str, root: Path) -> dict[str, Any] | None:
    try:
        data = yamlio.load(_git("show", f"{ref}:{VERSIONS_FILE.name}", root=root))
    except CommandError:
        return None
    return data if isinstance(data, dict) else None


def upgraded_pins(data: dict[str, Any]) -> dict[str, str]:
    """The pins an upgrade moves (Flux's CLI and controllers, Kyverno and its chart), by path."""
    pins = {}
    for section, key in UPGRADED:
        block = data.get(section) or {}
        for name, value in block.items():
            if key is None or name == key:
                pins[f"{section}.{name}"] = str(value)
    return pins


def is_older(start: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether `start` is a set an upgrade to `target` moves forward: no pin newer, one older."""
    old, new = upgraded_pins(start), upgraded_pins(target)
    if set(old) != set(new):
        return False
    try:
        pairs = [(Version.parse(old[k]), Version.parse(new[k])) for k in new]
    except ConfigError:
        return False
    return all(not n < o for o, n in pairs) and any(o < n for o, n in pairs)


def last_older_commit(target: dict[str, Any], root: Path = REPO_ROOT) -> str | None:
    """The newest commit on the first-parent line of HEAD whose version set is older than
    `target`. Each commit that changed versions.yaml ends a stretch of history holding the set
    before it; the newest commit of that stretch is its parent."""
    try:
        changes = _git("log", "--first-parent", "--format=%H", "--", VERSIONS_FILE.name, root=root).split()
    except CommandError:
        return None
    at_head = _set_at("HEAD", root)
    if at_head is not None and is_older(at_head, target):  # the working tree bumps it, uncommitted
        return _git("rev-parse", "HEAD", root=root).strip()
    for commit in changes:
        before = _set_at(f"{commit}^", root)
        if before is not None and is_older(before, target):
            return _git("rev-parse", f"{commit}^", root=root).strip()
    return None


def pull_request_base(root: Path = REPO_ROOT) -> str | None:
    """Where a pull request forks from its base branch, as GitHub Actions names the base."""
    base = os.environ.get("GITHUB_BASE_REF", "")
    if not base:
        return None
    try:
        return _git("merge-base", "HEAD", f"origin/{base}", root=root).strip()
    except CommandError as exc:
        raise ConfigError(f"this run is a pull request into {base!r}, but origin/{base} is not in the clone, so "
                          "the upgrade cannot start from it: fetch the base (actions/checkout with fetch-depth: 0) "
                          f"or name a start with UPGRADE_FROM=git:REF or a version-set file\n{exc}") from exc


def resolve(spec: str, root: Path = REPO_ROOT) -> Start:
    """The start an UPGRADE_FROM value names: `auto`, `git:REF` or a version-set file."""
    if spec.startswith(GIT_PREFIX):
        ref = spec.removeprefix(GIT_PREFIX)
        try:
            commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}", root=root).strip()
        except CommandError as exc:
            raise ConfigError(f"UPGRADE_FROM={spec}: {ref!r} is not a commit of this repository; name a branch, "
                              f"tag or commit (git log shows them)\n{exc}") from exc
        return Start(root / VERSIONS_FILE.name, commit, f"{ref} ({commit[:12]}), as named")
    if spec != AUTO:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"UPGRADE_FROM={spec}: no such file; name a version set like "
                              f"{PREVIOUS_VERSIONS_FILE.name}, a ref as git:REF, or {AUTO}")
        return Start(path.resolve(), None, f"{path.name}, as named, with the working tree's manifests")
    base = pull_request_base(root)
    if base is not None:
        return Start(root / VERSIONS_FILE.name, base, f"the pull request's base ({base[:12]})")
    target = yamlio.load((root / VERSIONS_FILE.name).read_text())
    older = last_older_commit(target, root)
    if older is not None:
        return Start(root / VERSIONS_FILE.name, older, f"{older[:12]}, the newest commit with an older version set")
    try:
        _git("rev-parse", "HEAD", root=root)
        history = "no commit holds an older version set"
    except CommandError:
        history = "no Git history here"
    return Start(root / PREVIOUS_VERSIONS_FILE.name, None,
                 f"{PREVIOUS_VERSIONS_FILE.name} ({history}), with the working tree's manifests at the API "
                 "versions that set serves and the new one drops")


def materialize(start: Start, dest: Path, root: Path = REPO_ROOT) -> Start:
    """The ref's fleet folders, tenant repo and version set, written under `dest`; the Start
    returned names the version set written there. Pins the ref's set lacks (tools the harness
    added since) are the working tree's, so today's harness can bring that state up."""
    if start.ref is None:
        return start
    top = _git("ls-tree", "--name-only", start.ref, root=root).split()
    paths = [p for p in top if p in FLEET_DIRS or p.startswith(TENANT_REPO_PREFIX)]
    # Its offline policy tests too: the upgrade probe derives cases from them.
    paths += _git("ls-tree", "-d", "--name-only", start.ref, POLICY_TESTS_DIR, root=root).split()
    if "clusters" not in paths:
        raise ConfigError(f"{start.why}: that commit has no clusters/ folder, so there is no fleet to start from; "
                          "name a later start with UPGRADE_FROM")
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "start.tar"
    _git("archive", "--format=tar", f"--output={archive}", start.ref, *paths, root=root)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    at_ref = _set_at(start.ref, root)
    if at_ref is None:
        raise ConfigError(f"{start.why}: that commit has no readable {VERSIONS_FILE.name}")
    merged = {**yamlio.load((root / VERSIONS_FILE.name).read_text()), **at_ref}
    versions_file = dest / VERSIONS_FILE.name
    versions_file.write_text(yamlio.dump(merged))
    return Start(versions_file, start.ref, start.why)
