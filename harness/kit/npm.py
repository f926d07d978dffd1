"""Tools from the npm registry, installed into the kit cache by version (npm's own client)."""

from __future__ import annotations

from pathlib import Path

from harness.core import commands
from harness.core.errors import CommandError, KitError
from harness.core.progress import step
from harness.kit import cache

INSTALL_TIMEOUT_S = 1800.0


def package(name: str, version: str, log_dir: Path) -> cache.Artifact:
    """`npm install name@version` into its own folder; binaries under node_modules/.bin."""
    if commands.which("npm") is None:
        raise KitError(f"{name}: npm is missing; install Node.js and npm (Debian: apt-get install npm)")
    key = cache.recipe_key(("npm", name, version))
    log = log_dir / f"npm-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)

    def produce(out: Path) -> None:
        with step(f"installing {name}@{version} from the npm registry (log: {log})"):
            try:
                commands.run(["npm", "install", "--prefix", str(out), "--no-audit", "--no-fund",
                              "--loglevel=error", f"{name}@{version}"], timeout_s=INSTALL_TIMEOUT_S, log=log)
            except CommandError as exc:
                raise KitError(f"{name}@{version}: npm could not install it (log: {log}); check the "
                               f"version exists (npm view {name} versions) and fix versions.yaml\n{exc}") from exc

    return cache.build_once("npm", name, version, key, f"npm:{name}@{version}", produce)
