"""Prepares a Linux host to run kind: Docker running, privileged containers working, limits raised.

Idempotent: each step checks first and says what it changes. Used by `make kit` and `.ci/run`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from harness.core import commands
from harness.core.errors import CommandError, KitError
from harness.core.progress import say, step
from harness.core.waits import wait_for
from harness.kit import requirements
from harness.kit.requirements import docker_works

DAEMON_JSON = Path("/etc/docker/daemon.json")
CAPFIX = Path("/usr/local/libexec/fleet-kit/runc-capfix")
CAPFIX_RUNTIME = "fleet-kit-capfix"
DOCKERD_LOG = Path("/var/log/fleet-kit-dockerd.log")
SYSCTLS = {"fs.inotify.max_user_instances": 512, "fs.inotify.max_user_watches": 524288}


@dataclass(frozen=True)
class HostReport:
    changes: tuple[str, ...]


def capfix_script() -> str:
    return resources.files("harness.kit").joinpath("files/runc-capfix").read_text()


def bounding_set_is_reduced() -> bool:
    """True when some capability the kernel knows is missing from our bounding set."""
    status = Path("/proc/self/status").read_text()
    bounding = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapBnd")), 16)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return bounding != (1 << (last + 1)) - 1


def _apt_install(packages: list[requirements.Package], changes: list[str]) -> None:
    if not packages:
        return
    names = [p.name for p in packages]
    if not shutil.which("apt-get"):
        raise KitError(f"this host needs the Debian packages {', '.join(names)} (or the programs they "
                       f"provide: {', '.join(x for p in packages for x in p.programs)}); there is no "
                       "apt-get here, so install them with this system's package manager")
    try:
        with step(f"installing Debian packages: {' '.join(names)}"):
            commands.run(["apt-get", "update", "-q"], timeout_s=600.0)
            commands.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *names],
                         timeout_s=1200.0, env={"DEBIAN_FRONTEND": "noninteractive"})
    except CommandError as exc:
        raise KitError(f"could not install {', '.join(names)} with apt-get: {exc}") from exc
    still = [p.name for p in requirements.missing_packages_of(packages)]
    if still:
        raise KitError(f"apt-get finished but dpkg does not report {', '.join(still)} as installed")
    changes.append(f"installed {' '.join(names)}")


def _install_capfix(changes: list[str]) -> bool:
    """Register the capability-filtering runtime as docker's default; True if config changed."""
    script = capfix_script()
    if not CAPFIX.exists() or CAPFIX.read_text() != script:
        CAPFIX.parent.mkdir(parents=True, exist_ok=True)
        CAPFIX.write_text(script)
        CAPFIX.chmod(0o755)
        changes.append(f"installed {CAPFIX}")
    config = json.loads(DAEMON_JSON.read_text()) if DAEMON_JSON.exists() else {}
    wanted = dict(config)
    wanted.setdefault("runtimes", {})[CAPFIX_RUNTIME] = {"path": str(CAPFIX)}
    wanted["default-runtime"] = CAPFIX_RUNTIME
    if wanted == config:
        return False
    DAEMON_JSON.parent.mkdir(parents=True, exist_ok=True)
    DAEMON_JSON.write_text(json.dumps(wanted, indent=2) + "\n")
    changes.append(f"made {CAPFIX_RUNTIME} docker's default runtime in {DAEMON_JSON}")
    return True


def _start_dockerd(changes: list[str]) -> None:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise KitError("dockerd is not installed; on Debian: apt-get install docker.io")
    say(f"starting dockerd (log: {DOCKERD_LOG})")
    commands.spawn([dockerd], log=DOCKERD_LOG)

    def probe() -> tuple[bool, None, str]:
        return docker_works(), None, f"docker info fails; see {DOCKERD_LOG}"

    wait_for("dockerd to answer", probe, timeout_s=90.0, interval_s=1.0,
             hint=f"dockerd log: {DOCKERD_LOG}")
    changes.append("started dockerd")


def _reload_dockerd(changes: list[str]) -> None:
    """SIGHUP makes dockerd re-read runtimes and default-runtime from daemon.json."""
    pid = commands.run(["pidof", "dockerd"], timeout_s=10.0).stdout.split()
    for p in pid:
        os.kill(int(p), 1)
    changes.append("reloaded dockerd configuration")


def _raise_limits(changes: list[str]) -> None:
    for key, value in SYSCTLS.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        if int(path.read_text()) < value:
            path.write_text(str(value))
            changes.append(f"set {key}={value}")
    modules = Path("/lib/modules")
    if not modules.exists():
        modules.mkdir(parents=True)
        changes.append("created /lib/modules (kind bind-mounts it)")


def prepare_host(purpose: requirements.Purpose = "e2e") -> HostReport:
    """Make this host ready for `purpose`: install and configure what the project may, then
    check the rest (root, Go, disk) and fail naming each fix. Returns what was changed."""
    problems = requirements.problems(purpose, installable=True)
    if problems:
        raise requirements.RequirementError(
            f"this host cannot run the {purpose} yet:\n  - " + "\n  - ".join(problems))
    changes: list[str] = []
    _apt_install(requirements.missing_packages(purpose), changes)
    if purpose != "validate":
        running = docker_works()
        config_changed = bounding_set_is_reduced() and _install_capfix(changes)
        if not running:
            _start_dockerd(changes)
        elif config_changed:
            _reload_dockerd(changes)
        _raise_limits(changes)
    for change in changes:
        say(f"host: {change}")
    if not changes:
        say(f"host: ready for the {purpose}, nothing changed")
    return HostReport(tuple(changes))
