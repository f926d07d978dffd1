"""The e2e's settings: one frozen object, built once (CLI > environment > ini > default)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import ConfigError
from harness.versions import REPO_ROOT

Environment = Literal["staging", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("staging", "production")


@dataclass(frozen=True)
class E2EConfig:
    environments: tuple[Environment, ...]
    keep_clusters: bool
    artifacts: Path
    timeout_scale: float
    # Environments run against an existing cluster (kubeconfig) instead of a new kind cluster.
    existing: tuple[tuple[Environment, Path], ...] = ()

    def existing_kubeconfig(self, env: Environment) -> Path | None:
        return dict(self.existing).get(env)

    def timeout(self, seconds: float) -> float:
        """A deadline scaled for slower machines (FLEET_E2E_TIMEOUT_SCALE)."""
        return seconds * self.timeout_scale


def _pick(cli: str | None, env: str, ini: str | None, default: str) -> str:
    if cli not in (None, ""):
        return str(cli)
    if os.environ.get(env):
        return os.environ[env]
    if ini not in (None, ""):
        return str(ini)
    return default


def parse_existing(values: list[str]) -> tuple[tuple[Environment, Path], ...]:
    """ENV=KUBECONFIG pairs (--e2e-kubeconfig, repeatable)."""
    pairs = []
    for value in values:
        env, sep, path = value.partition("=")
        if not sep or env not in ENVIRONMENTS or not path:
            raise ConfigError(f"--e2e-kubeconfig: {value!r} is invalid; use ENV=PATH with ENV one of "
                              f"{', '.join(ENVIRONMENTS)}, e.g. staging=$HOME/.kube/staging.yaml")
        if not Path(path).is_file():
            raise ConfigError(f"--e2e-kubeconfig: {path!r} (for {env}) is not a readable file")
        pairs.append((env, Path(path).resolve()))
    return tuple(pairs)


def build_config(cli_envs: str | None, cli_keep: bool, cli_artifacts: str | None,
                 ini_envs: str | None = None, ini_artifacts: str | None = None,
                 cli_existing: list[str] | None = None) -> E2EConfig:
    """Validate every setting; errors name the option and echo the bad value."""
    envs_text = _pick(cli_envs, "FLEET_E2E_ENVIRONMENTS", ini_envs, ",".join(ENVIRONMENTS))
    chosen = tuple(e.strip() for e in envs_text.split(",") if e.strip())
    bad = [e for e in chosen if e not in ENVIRONMENTS]
    if bad or not chosen:
        raise ConfigError(f"--e2e-environments / FLEET_E2E_ENVIRONMENTS: {envs_text!r} is invalid; "
                          f"use a comma-separated subset of {', '.join(ENVIRONMENTS)}")
    keep_text = os.environ.get("FLEET_E2E_KEEP_CLUSTERS", "")
    if keep_text not in ("", "0", "1", "true", "false"):
        raise ConfigError(f"FLEET_E2E_KEEP_CLUSTERS: {keep_text!r} is invalid; use 1/0 or true/false")
    keep = cli_keep or keep_text in ("1", "true")
    artifacts = Path(_pick(cli_artifacts, "FLEET_E2E_ARTIFACTS", ini_artifacts, str(REPO_ROOT / "artifacts")))
    scale_text = os.environ.get("FLEET_E2E_TIMEOUT_SCALE", "1")
    try:
        scale = float(scale_text)
    except ValueError:
        scale = 0.0
    if scale <= 0:
        raise ConfigError(f"FLEET_E2E_TIMEOUT_SCALE: {scale_text!r} is invalid; use a positive number like 2")
    existing = [v for v in os.environ.get("FLEET_E2E_KUBECONFIGS", "").split(",") if v]
    return E2EConfig(tuple(chosen), keep, artifacts.resolve(), scale,  # type: ignore[arg-type]
                     parse_existing(list(cli_existing or []) or existing))
