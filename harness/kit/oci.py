"""Container images assembled from files and root filesystems, imported into Docker.

No Dockerfile and no registry: the image's single layer is a tarball written here and loaded
with `docker import`, which works offline. An image is rebuilt only when its key (what goes
into it) changes; the key is stored as an image label.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.core import commands
from harness.core.errors import CommandError, KitError
from harness.core.progress import step

KEY_LABEL = "dev.fleet-kit.key"
DEFAULT_ENV = (("PATH", "/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin"),)
IMPORT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class File:
    """A file in an image: from a host path, literal content, or a symbolic link."""

    path: str  # absolute path inside the image
    source: Path | None = None
    mode: int = 0o644
    content: bytes | None = None
    link: str | None = None  # the link's target

    def fingerprint(self) -> str:
        if self.link is not None:
            return f"{self.path}->{self.link}"
        if self.source is not None:
            stat = self.source.stat()
            return f"{self.path}:{self.source}:{stat.st_size}:{stat.st_mtime_ns}:{self.mode:o}"
        return f"{self.path}:{hashlib.sha256(self.content or b'').hexdigest()}:{self.mode:o}"


@dataclass(frozen=True)
class ImageSpec:
    """What an image holds and how it starts."""

    tags: tuple[str, ...]
    files: tuple[File, ...] = ()
    base: Path | None = None  # a root filesystem tarball to start from
    dirs: tuple[tuple[str, int], ...] = ()  # empty directories and their modes
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = DEFAULT_ENV
    user: str = ""
    workdir: str = ""

    def key(self) -> str:
        parts = [repr((self.tags, self.dirs, self.entrypoint, self.cmd, self.env, self.user,
                       self.workdir))]
        parts += [f.fingerprint() for f in self.files]
        if self.base is not None:
            stat = self.base.stat()
            parts.append(f"base:{self.base}:{stat.st_size}:{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    built: bool
    seconds: float
    size_bytes: int


def image_key(tag: str) -> str | None:
    """The kit key label of a local image, or None if Docker does not have it."""
    return image_key_and_size(tag)[0]


def image_key_and_size(tag: str) -> tuple[str | None, int]:
    """The key label and the size of a local image in one call (a kit load asks it of every
    image: each Docker call costs about a tenth of a second); (None, 0) if Docker does not have
    the image."""
    try:
        out = commands.run(["docker", "image", "inspect", "--format", "{{.Size}} {{json .Config.Labels}}", tag],
                           timeout_s=30.0).stdout
    except CommandError:
        return None, 0
    size, _, labels = out.strip().partition(" ")
    return (json.loads(labels or "null") or {}).get(KEY_LABEL), int(size)


def image_size(tag: str) -> int:
    out = commands.run(["docker", "image", "inspect", "--format", "{{.Size}}", tag], timeout_s=30.0)
    return int(out.stdout.strip())


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def write_layer(spec: ImageSpec, target: Path) -> None:
    """The image's single layer: the base filesystem (if any) overlaid with the spec's files."""
    override = {f.path.strip("/") for f in spec.files}
    with tarfile.open(target, "w") as out:
        seen: set[str] = set()
        if spec.base is not None:
            with tarfile.open(spec.base) as base:
                for member in base:
                    name = member.name.removeprefix("./").strip("/")
                    if not name or name in override:
                        continue
                    member.name = name
                    seen.add(name)
                    out.addfile(member, base.extractfile(member) if member.isfile() else None)
        for directory, mode in spec.dirs:
            name = directory.strip("/")
            if name not in seen:
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
                out.addfile(info)
                seen.add(name)
        for f in spec.files:
            for parent in _parents(f.path):
                if parent not in seen:
                    info = tarfile.TarInfo(parent)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                    out.addfile(info)
                    seen.add(parent)
            info = tarfile.TarInfo(f.path.strip("/"))
            if f.link is not None:
                info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, f.link, 0o777, int(time.time())
                out.addfile(info)
                continue
            data = f.content if f.content is not None else f.source.read_bytes()  # type: ignore[union-attr]
            info.size, info.mode, info.mtime = len(data), f.mode, int(time.time())
            out.addfile(info, io.BytesIO(data))


def changes(spec: ImageSpec, key: str) -> list[str]:
    result = [f"LABEL {KEY_LABEL}={key}"]
    result += [f"ENV {name}={value}" for name, value in spec.env]
    if spec.entrypoint:
        result.append(f"ENTRYPOINT {json.dumps(list(spec.entrypoint))}")
    if spec.cmd:
        result.append(f"CMD {json.dumps(list(spec.cmd))}")
    if spec.user:
        result.append(f"USER {spec.user}")
    if spec.workdir:
        result.append(f"WORKDIR {spec.workdir}")
    return result


def cached_image(spec: ImageSpec, key: str) -> BuiltImage | None:
    """The image if its first tag holds the build with this key; a further tag that another
    build took over since is pointed back at it. Two version sets share an alias (Kyverno's
    readiness-checker is also tagged `latest`), and rebuilding for the alias alone would give
    the same content a new image ID, so the kit's fingerprint would change with every switch
    between the sets (and `make kit-check IF_CHANGED=1` would rerun for nothing)."""
    first_key, size = image_key_and_size(spec.tags[0])
    if first_key != key:
        return None
    for tag in spec.tags[1:]:
        if image_key(tag) != key:
            try:
                commands.run(["docker", "tag", spec.tags[0], tag], timeout_s=60.0)
            except CommandError as exc:
                raise KitError(f"image {spec.tags[0]}: docker tag {tag} failed: {exc}") from exc
    return BuiltImage(spec.tags[0], False, 0.0, size)


def import_layer(spec: ImageSpec, key: str, layer: Path) -> None:
    """docker import of a layer tarball, with the spec's config and the key label, then tags."""
    argv = ["docker", "import"]
    for change in changes(spec, key):
        argv += ["--change", change]
    try:
        commands.run([*argv, str(layer), spec.tags[0]], timeout_s=IMPORT_TIMEOUT_S)
        for tag in spec.tags[1:]:
            commands.run(["docker", "tag", spec.tags[0], tag], timeout_s=60.0)
    except CommandError as exc:
        raise KitError(f"image {spec.tags[0]}: docker import failed: {exc}") from exc


def build_image(spec: ImageSpec) -> BuiltImage:
    """Import the image into Docker unless its first tag already holds this exact build (its
    other tags then pointed at it)."""
    key = spec.key()
    hit = cached_image(spec, key)
    if hit is not None:
        return hit
    started = time.monotonic()
    with step(f"building image {spec.tags[0]}"), tempfile.TemporaryDirectory(prefix="fleetkit-img-") as tmp:
        layer = Path(tmp) / "layer.tar"
        write_layer(spec, layer)
        import_layer(spec, key, layer)
    return BuiltImage(spec.tags[0], True, time.monotonic() - started, image_size(spec.tags[0]))
