"""The kit's on-disk cache: one folder per artifact and version, complete only once sealed.

An artifact is built into a temporary sibling folder and renamed into place with its
`complete.json` already written, so an interrupted or failed build is never taken as built.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import KitError

MARKER = "complete.json"


def cache_root() -> Path:
    """Root of the kit cache: $FLEET_KIT_CACHE, else ~/.cache/fleet-kit."""
    return Path(os.environ.get("FLEET_KIT_CACHE", Path.home() / ".cache" / "fleet-kit"))


def recipe_key(recipe: Any) -> str:
    """Short stable hash of a recipe, so changing how something is built invalidates it."""
    return hashlib.sha256(repr(recipe).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Artifact:
    """A sealed artifact in the cache."""

    name: str
    version: str
    path: Path
    source: str
    built: bool
    seconds: float

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())


def artifact_dir(kind: str, name: str, version: str, key: str) -> Path:
    return cache_root() / kind / name / f"{version}-{key}"


def cached(kind: str, name: str, version: str, key: str, source: str) -> Artifact | None:
    """The sealed artifact if it exists."""
    path = artifact_dir(kind, name, version, key)
    marker = path / MARKER
    if not marker.is_file():
        return None
    meta = json.loads(marker.read_text())
    return Artifact(name, version, path, source, built=False, seconds=float(meta["seconds"]))


def build_once(
    kind: str,
    name: str,
    version: str,
    key: str,
    source: str,
    build: Callable[[Path], None],
) -> Artifact:
    """Return the cached artifact, or run build(tmp_dir) and seal its output atomically."""
    hit = cached(kind, name, version, key, source)
    if hit is not None:
        return hit
    final = artifact_dir(kind, name, version, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.monotonic()
    try:
        build(tmp)
        seconds = time.monotonic() - started
        (tmp / MARKER).write_text(
            json.dumps({"name": name, "version": version, "source": source, "seconds": seconds})
        )
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(final.parent).free // 2**20
        raise KitError(
            f"{name} {version}: could not write the cache at {final.parent} ({exc}); "
            f"{free} MiB free there. Free disk space or set FLEET_KIT_CACHE to a larger disk."
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Artifact(name, version, final, source, built=True, seconds=seconds)
