"""Builds Go commands from modules in the module cache, through a generated wrapper module.

A wrapper module requires the upstream module at its pinned version and carries over the
upstream `replace` directives that point at other modules (forks, pins). Replaces that point at
local folders (`./api`, `./staging/...`) cannot work outside upstream's checkout: the module is
then taken at the version upstream requires, or, when upstream requires it at v0.0.0 (Kubernetes'
staging modules), at the version the recipe maps it to.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core import commands
from harness.core.errors import CommandError, KitError
from harness.core.progress import step
from harness.kit import cache

DOWNLOAD_TIMEOUT_S = 1800.0
BUILD_TIMEOUT_S = 5400.0


@dataclass(frozen=True)
class GoModule:
    """A module as downloaded into the module cache."""

    path: str
    version: str
    dir: Path
    gomod: Path


@dataclass(frozen=True)
class GoBuild:
    """Recipe: which packages of which module to compile, and how."""

    name: str
    module: str
    version: str
    packages: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    cgo: bool = False
    # For upstream local replaces of modules required at v0.0.0: module path -> version.
    local_replace_versions: tuple[tuple[str, str], ...] = ()
    extra_requires: tuple[tuple[str, str], ...] = ()
    binaries: tuple[str, ...] = field(default=())
    # Build inside a writable copy of the module instead of a wrapper module: needed when the
    # build must add files upstream generates (the flux CLI's embedded manifests).
    in_module_copy: bool = False
    # The module's h1: hash when the checksum database does not know it (version-set checksums).
    # Not in repr: it checks the download and does not change the build, so not the cache key.
    checksum: str = field(default="", repr=False)

    @property
    def source(self) -> str:
        return f"{self.module}@{self.version}"


def go_env() -> dict[str, str]:
    """Environment for every go invocation: no VCS stamping, local toolchain only."""
    return {"GOFLAGS": "-mod=mod -buildvcs=false", "GOTOOLCHAIN": "local"}


def download(path: str, version: str, checksum: str = "") -> GoModule:
    """Download a module into the module cache; explain clearly if the proxy lacks it.

    With `checksum`, the checksum database is not asked about this module (it does not know
    it); the download's hash must equal the pinned one instead.
    """
    env = go_env()
    if checksum:
        env["GONOSUMDB"] = path
    try:
        with step(f"downloading Go module {path}@{version}", quiet=True):
            result = commands.run(
                ["go", "mod", "download", "-json", f"{path}@{version}"],
                timeout_s=DOWNLOAD_TIMEOUT_S,
                env=env,
            )
        info = json.loads(result.stdout)
    except CommandError as exc:
        detail = exc.stderr.strip() or str(exc)
        try:
            info = json.loads(detail)
            detail = info.get("Error", detail)
        except json.JSONDecodeError:
            pass
        raise KitError(
            f"{path}@{version}: the Go module proxy could not provide it ({detail.strip()[:400]}). "
            f"List what it has with `go list -m -versions {path}` and pin one of those in "
            "versions.yaml."
        ) from exc
    if "Error" in info:
        raise KitError(f"{path}@{version}: {info['Error']}; pin another version in versions.yaml")
    if checksum and info.get("Sum") != checksum:
        raise KitError(f"{path}@{version}: the proxy's download has hash {info.get('Sum')}, the "
                       f"version set pins {checksum} in checksums; the module changed upstream or "
                       "the pin is wrong: do not build from it until you know which")
    return GoModule(path, info["Version"], Path(info["Dir"]), Path(info["GoMod"]))


def read_gomod(gomod: Path) -> dict[str, Any]:
    """go.mod as JSON (`go mod edit -json`), so directives are parsed by Go itself."""
    result = commands.run(["go", "mod", "edit", "-json", str(gomod)], timeout_s=60.0)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def local_go_version() -> tuple[int, ...]:
    out = commands.run(["go", "env", "GOVERSION"], timeout_s=60.0).stdout.strip()
    return _version_tuple(out.removeprefix("go"))


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_toolchain(recipe_name: str, module: GoModule, gomod: dict[str, Any]) -> None:
    """Fail with the fix when the module needs a newer Go than the one installed."""
    needed = gomod.get("Go") or "1.0"
    have = local_go_version()
    if _version_tuple(needed) > have:
        raise KitError(
            f"{recipe_name}: {module.path}@{module.version} needs Go {needed}, but the installed "
            f"toolchain is Go {'.'.join(map(str, have))}. Install Go >= {needed} (or pin an older "
            "version in versions.yaml)."
        )


def wrapper_gomod(recipe: GoBuild, upstream: dict[str, Any]) -> str:
    """Text of the wrapper go.mod for a recipe, given upstream's parsed go.mod."""
    required_zero = {
        req["Path"] for req in upstream.get("Require") or [] if req["Version"] == "v0.0.0"
    }
    mapped = dict(recipe.local_replace_versions)
    lines = [
        f"module fleetkit.local/build/{recipe.name}",
        "",
        f"go {upstream.get('Go', '1.22')}",
        "",
        f"require {recipe.module} {recipe.version}",
    ]
    for path, version in recipe.extra_requires:
        lines.append(f"require {path} {version}")
    for rep in upstream.get("Replace") or []:
        old, new = rep["Old"], rep["New"]
        old_spec = old["Path"] + (f" {old['Version']}" if old.get("Version") else "")
        if new["Path"].startswith("."):
            if old["Path"] in required_zero:
                if old["Path"] not in mapped:
                    raise KitError(
                        f"{recipe.name}: upstream replaces {old['Path']} with local folder "
                        f"{new['Path']} and requires it at v0.0.0; the recipe must map it to a "
                        "published version"
                    )
                lines.append(f"replace {old_spec} => {old['Path']} {mapped[old['Path']]}")
            continue
        lines.append(f"replace {old_spec} => {new['Path']} {new.get('Version', '')}".rstrip())
    return "\n".join(lines) + "\n"


def seed_gosum(module: GoModule, workdir: Path) -> None:
    """Start the wrapper's go.sum from upstream's: its dependencies' hashes come verified with
    the module itself, so a dependency the checksum database does not know (a pseudo-version
    it never saw) is still checked, against the hash upstream recorded."""
    upstream_sum = module.dir / "go.sum"
    if upstream_sum.is_file():
        (workdir / "go.sum").write_text(upstream_sum.read_text())


def copy_module(module: GoModule, dest: Path) -> None:
    """Writable copy of a module's read-only source tree."""
    shutil.copytree(module.dir, dest, symlinks=True)
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def build(
    recipe: GoBuild,
    log_dir: Path,
    prepare: Callable[[Path], None] | None = None,
    inputs: str = "",
) -> cache.Artifact:
    """Build (or take from the cache) the recipe's binaries into <artifact>/bin.

    `prepare(workdir)` may add files before compiling; `inputs` names whatever it adds (for
    example another artifact's cache folder) so that a change there invalidates this build.
    """

    def produce(out: Path) -> None:
        module = download(recipe.module, recipe.version, recipe.checksum)
        upstream = read_gomod(module.gomod)
        check_toolchain(recipe.name, module, upstream)
        log = log_dir / f"go-build-{recipe.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"fleetkit-{recipe.name}-") as work:
            workdir = Path(work) / "src"
            if recipe.in_module_copy:
                copy_module(module, workdir)
            else:
                workdir.mkdir()
                (workdir / "go.mod").write_text(wrapper_gomod(recipe, upstream))
                seed_gosum(module, workdir)
            if prepare is not None:
                prepare(workdir)
            env = {**go_env(), "CGO_ENABLED": "1" if recipe.cgo else "0"}
            argv = ["go", "build", "-trimpath", "-o", str(out / "bin") + "/"]
            if recipe.tags:
                argv += ["-tags", ",".join(recipe.tags)]
            if recipe.ldflags:
                argv += ["-ldflags", " ".join(recipe.ldflags)]
            (out / "bin").mkdir()
            with step(f"compiling {recipe.name} {recipe.version} (log: {log})"):
                try:
                    commands.run(
                        argv + list(recipe.packages),
                        timeout_s=BUILD_TIMEOUT_S,
                        env=env,
                        cwd=workdir,
                        log=log,
                    )
                except CommandError as exc:
                    raise KitError(
                        f"{recipe.name} {recipe.version}: go build failed (full log: {log})\n{exc}"
                    ) from exc
        for binary in recipe.binaries:
            if not (out / "bin" / binary).is_file():
                raise KitError(f"{recipe.name}: go build produced no {binary} in {out / 'bin'}")

    return cache.build_once(
        "go", recipe.name, recipe.version, cache.recipe_key((recipe, inputs)), recipe.source, produce
    )

