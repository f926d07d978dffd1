"""Every host requirement of the project, in one list, and the fast check of each.

`check(purpose)` answers in seconds and never installs; `harness.kit.host` installs what the
project may install (Debian packages, Docker's runtime wrapper, sysctls) from the same list.
A test scans the harness for every external program it runs and fails if one is not listed
here, so a new dependency cannot slip in unnoticed.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.core import commands
from harness.core.errors import CommandError, HarnessError

# What a command needs the host for: the offline checks and cluster-free tests ("validate"),
# building the kit ("kit"), or running clusters from it ("e2e", which needs the kit too).
Purpose = Literal["validate", "kit", "e2e"]
PURPOSES: dict[Purpose, frozenset[Purpose]] = {
    "validate": frozenset({"validate"}),
    "kit": frozenset({"validate", "kit"}),
    "e2e": frozenset({"validate", "kit", "e2e"}),
}

MIN_PYTHON = (3, 11)
MIN_GO = (1, 26)
# A cold kit is about 12 GiB between the kit cache, Go's caches and Docker's image store.
MIN_FREE_GIB = 15.0


class RequirementError(HarnessError):
    """The host lacks something the command needs; the message names each item and its fix."""


@dataclass(frozen=True)
class Package:
    """A Debian package the project installs itself (`python -m harness host prepare`)."""

    name: str
    programs: tuple[str, ...]  # what the project runs from it: names on PATH or absolute paths
    purposes: frozenset[Purpose]
    why: str


@dataclass(frozen=True)
class Program:
    """A program the project needs but does not install: named with its fix."""

    name: str
    purposes: frozenset[Purpose]
    fix: str


DOCKER = Package("docker.io", ("docker", "dockerd"), frozenset({"kit", "e2e"}),
                 "image builds and kind's node containers")
PACKAGES: tuple[Package, ...] = (
    DOCKER,
    Package("git", ("git", "/usr/lib/git-core/git-http-backend"), frozenset({"validate", "e2e"}),
            "publishing the repos and the local Git server (smart HTTP)"),
    Package("debootstrap", ("debootstrap",), frozenset({"kit"}), "Debian root filesystems of the images"),
    Package("docker-registry", ("/usr/bin/docker-registry",), frozenset({"kit", "e2e"}),
            "the local registry standing in for ghcr.io, registry.k8s.io, docker.io, reg.kyverno.io"),
    Package("gcc", ("gcc",), frozenset({"kit"}), "the static pause binary"),
    Package("jq", ("jq",), frozenset({"kit", "e2e"}), "the runc capability wrapper edits OCI specs with it"),
    Package("procps", ("ps", "pidof"), frozenset({"kit", "e2e"}), "finding dockerd and leftover processes"),
)
PROGRAMS: tuple[Program, ...] = (
    Program("go", frozenset({"validate", "kit"}),
            f"install Go >= {MIN_GO[0]}.{MIN_GO[1]} and put it on PATH (every tool is built from Go modules)"),
    Program("npm", frozenset({"validate"}),
            "install Node.js and npm (Debian: apt-get install npm); Renovate's config validator "
            "comes from the npm registry"),
)
# Run only to install the packages above; without them the packages must be there already.
INSTALLERS = ("apt-get", "dpkg-query")


def known_programs() -> set[str]:
    """Every program name or path the list covers (the scan test compares the code with it)."""
    return {p for pkg in PACKAGES for p in pkg.programs} | {p.name for p in PROGRAMS} | set(INSTALLERS)


def is_installed_status(abbrev: str) -> bool:
    """dpkg's `${db:Status-Abbrev}`: installed means current state `i` and no error flag.

    dpkg-query exits 0 for packages it merely knows of: `un` (not installed), `rc` (removed,
    configuration left), `pn` (purged); only the state letter tells.
    """
    return len(abbrev) >= 2 and abbrev[1] == "i" and abbrev[2:3].strip() == ""


def dpkg_installed(package: str) -> bool:
    """Whether dpkg reports `package` as installed (not merely known)."""
    try:
        out = commands.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package], timeout_s=30.0).stdout
    except CommandError:
        return False
    return is_installed_status(out)


def _present(program: str) -> bool:
    return Path(program).is_file() if program.startswith("/") else commands.which(program) is not None


def docker_works() -> bool:
    return commands.succeeds(["docker", "info", "--format", "{{.ServerVersion}}"], timeout_s=20.0)


def missing_packages_of(packages: tuple[Package, ...] | list[Package]) -> list[Package]:
    """Those of `packages` not installed (Docker counts as installed if its daemon answers)."""
    has_dpkg = commands.which("dpkg-query") is not None
    missing = []
    for pkg in packages:
        if pkg is DOCKER and docker_works():
            continue  # any Docker engine will do, whoever installed it
        installed = dpkg_installed(pkg.name) if has_dpkg else True
        if not installed or not all(_present(p) for p in pkg.programs):
            missing.append(pkg)
    return missing


def missing_packages(purpose: Purpose) -> list[Package]:
    """Packages `purpose` needs that are not installed."""
    return missing_packages_of([p for p in PACKAGES if p.purposes & PURPOSES[purpose]])


def go_version() -> tuple[int, ...] | None:
    try:
        out = commands.run(["go", "env", "GOVERSION"], timeout_s=60.0).stdout.strip()
    except CommandError:
        return None
    digits = out.removeprefix("go").split("-")[0].split(".")
    try:
        return tuple(int(d) for d in digits if d.isdigit())
    except ValueError:
        return None


def free_gib(path: Path) -> float:
    """Free space on the file system holding path (or its nearest existing parent)."""
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free / 2**30


def problems(purpose: Purpose, *, installable: bool) -> list[str]:
    """What the host lacks for `purpose`, each with its fix; empty when ready.

    With `installable`, Debian packages are left out: the caller is about to install them.
    """
    from harness.kit.cache import cache_root

    wanted = PURPOSES[purpose]
    found: list[str] = []
    if sys.version_info < MIN_PYTHON:
        found.append(f"Python {sys.version.split()[0]} is too old: use Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}")
    for program in PROGRAMS:
        if program.purposes & wanted and commands.which(program.name) is None:
            found.append(f"{program.name} is not on PATH: {program.fix}")
    go = go_version() if commands.which("go") else None
    if go is not None and go[:2] < MIN_GO:
        found.append(f"Go {'.'.join(map(str, go))} is too old: {PROGRAMS[0].fix}")
    if "kit" in wanted or "e2e" in wanted:
        if os.geteuid() != 0:
            found.append("not running as root: the kit and the e2e configure Docker, sysctls and "
                         "install packages; run as root (e.g. sudo make e2e)")
        for where in (cache_root(), Path("/var/lib/docker")):
            gib = free_gib(where)
            if gib < MIN_FREE_GIB:
                found.append(f"only {gib:.1f} GiB free at {where}; the kit needs {MIN_FREE_GIB:.0f} GiB: "
                             "free disk space, or set FLEET_KIT_CACHE to a larger disk")
    if not installable:
        for pkg in missing_packages(purpose):
            found.append(f"Debian package {pkg.name} is not installed (for {pkg.why}): "
                         f"run `python -m harness host prepare` or `apt-get install {pkg.name}`")
    return found


def check(purpose: Purpose) -> None:
    """Raise RequirementError naming everything missing for `purpose` (installs nothing)."""
    found = problems(purpose, installable=False)
    if found:
        raise RequirementError(f"this host cannot run the {purpose} yet:\n  - " + "\n  - ".join(found))
