"""Debian root filesystems made with debootstrap, cached as tarballs keyed by their package set."""

from __future__ import annotations

import re
import tarfile
import tempfile
from pathlib import Path

from harness.core import commands
from harness.core.errors import CommandError, KitError
from harness.core.progress import step
from harness.kit import cache

SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_TIMEOUT_S = 1800.0


def mirror() -> str:
    """The Debian mirror apt already uses on this host (so debootstrap needs no other network)."""
    if SOURCES.exists():
        match = re.search(r"^URIs:\s*(\S+)", SOURCES.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    return DEFAULT_MIRROR


def rootfs(name: str, suite: str, packages: tuple[str, ...]) -> cache.Artifact:
    """A minbase root filesystem with `packages`, as rootfs.tar in the kit cache."""
    source = f"debootstrap {suite} ({mirror()})"
    key = cache.recipe_key((suite, sorted(packages), mirror()))

    def produce(out: Path) -> None:
        if commands.which("debootstrap") is None:
            raise KitError(f"{name}: debootstrap is missing; run `python -m harness host prepare`")
        with tempfile.TemporaryDirectory(prefix=f"fleetkit-{name}-") as tmp:
            target = Path(tmp) / "rootfs"
            with step(f"debootstrap {name} ({suite}, {len(packages)} packages)"):
                try:
                    commands.run(
                        ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
                         suite, str(target), mirror()],
                        timeout_s=DEBOOTSTRAP_TIMEOUT_S, log=out / "debootstrap.log",
                    )
                except CommandError as exc:
                    raise KitError(
                        f"{name}: debootstrap of {suite} failed (log: {out / 'debootstrap.log'}); "
                        "check the Debian mirror is reachable and the package names exist"
                        f"\n{exc}"
                    ) from exc
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for f in (target / leftover).glob("*.deb"):
                    f.unlink()
            with tarfile.open(out / "rootfs.tar", "w") as tar:
                tar.add(target, arcname=".")

    return cache.build_once("debian", name, suite, key, source, produce)
