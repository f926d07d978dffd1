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
from harness.kit.cache import cache_root

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
# Disk a cold kit fills, measured on two cores (Go build cache 13 GiB, Go module cache 8 GiB,
# kit cache 3.6 GiB, Docker 3.3 GiB), with some room; once the kit is built, a margin will do.
COLD_NEEDS_GIB = {"Go build cache": 14.0, "Go module cache": 9.0, "kit cache": 4.0, "Docker's image store": 4.0}
WARM_MARGIN_GIB = 3.0


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


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def free_gib(path: Path) -> float:
    """Free space on the file system holding path (or its nearest existing parent)."""
    return shutil.disk_usage(_existing(path)).free / 2**30


def _go_dir(name: str, fallback: Path) -> Path:
    try:
        out = commands.run(["go", "env", name], timeout_s=60.0).stdout.strip()
    except CommandError:
        return fallback
    return Path(out) if out else fallback


def kit_is_built() -> bool:
    """The kit's largest build (Kubernetes) is sealed in the cache: a warm machine."""
    return any((cache_root() / "go" / "kubernetes").glob("*/complete.json"))


def cache_places() -> dict[str, Path]:
    """Where a kit build writes, by what it is."""
    return {
        "Go build cache": _go_dir("GOCACHE", Path.home() / ".cache" / "go-build"),
        "Go module cache": _go_dir("GOMODCACHE", Path.home() / "go" / "pkg" / "mod"),
        "kit cache": cache_root(),
        "Docker's image store": Path("/var/lib/docker"),
    }


def disk_problems() -> list[str]:
    """Per file system, the space a cold kit fills there (or a margin once it is built)."""
    places = cache_places()
    warm = kit_is_built()
    by_device: dict[int, list[str]] = {}
    for what, path in places.items():
        by_device.setdefault(_existing(path).stat().st_dev, []).append(what)
    found = []
    for names in by_device.values():
        need = WARM_MARGIN_GIB if warm else sum(COLD_NEEDS_GIB[n] for n in names)
        where = places[names[0]]
        free = free_gib(where)
        if free < need:
            found.append(
                f"only {free:.1f} GiB free on the disk holding the {', '.join(names)} ({where}); "
                + (f"keep {need:.0f} GiB free" if warm else
                   f"a cold kit fills about {need:.0f} GiB there "
                   f"({', '.join(f'{n} {COLD_NEEDS_GIB[n]:.0f}' for n in names)})")
                + ": free disk space, or move the caches (FLEET_KIT_CACHE, GOCACHE, GOMODCACHE) to a larger disk")
    return found


def problems(purpose: Purpose, *, installable: bool) -> list[str]:
    """What the host lacks for `purpose`, each with its fix; empty when ready.

    With `installable`, Debian packages are left out: the caller is about to install them.
    """

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
        found += disk_problems()
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
