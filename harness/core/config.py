"""The e2e's settings: one frozen object, built once (CLI > environment > ini > default).

Every setting has one name in three spellings: the pytest option `--e2e-NAME`, the
environment variable `FLEET_E2E_NAME` (upper case, dashes as underscores) and the ini key
`e2e_NAME`. OPTIONS lists them; the plugin registers and documents them from that list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.core.errors import ConfigError
from harness.core.history import AUTO, GIT_PREFIX
from harness.core.repo import NATIVE_POLICIES_DIR, tree_engine
from harness.core.topology import environments
from harness.core.versions import REPO_ROOT, VERSIONS_FILE

KitSource = Literal["build", "upstream"]
KIT_SOURCES: tuple[KitSource, ...] = ("build", "upstream")


@dataclass(frozen=True)
class Option:
    name: str  # e.g. "environments": --e2e-environments, FLEET_E2E_ENVIRONMENTS, e2e_environments
    help: str
    metavar: str = "VALUE"
    flag: bool = False

    @property
    def cli(self) -> str:
        return f"--e2e-{self.name}"

    @property
    def env(self) -> str:
        return "FLEET_E2E_" + self.name.upper().replace("-", "_")

    @property
    def ini(self) -> str:
        return "e2e_" + self.name.replace("-", "_")

    @property
    def dest(self) -> str:
        return self.ini


OPTIONS: tuple[Option, ...] = (
    Option("environments", "comma-separated clusters to test, named by the folders of clusters/, e.g. staging,production (default: all)", "ENVS"),
    Option("artifacts", "folder for diagnostics and reports (default: ./artifacts)", "DIR"),
    Option("kubeconfigs", "comma-separated ENV=PATH: run ENV against an existing cluster instead of "
           "creating one (it must reach this host's address on its Docker network and pull the images)",
           "ENV=PATH,..."),
    Option("up", "run against the environment `make up` left running, creating nothing", flag=True),
    Option("kit-source", "where the kit's images and charts come from: build (default) or upstream "
           "(pull and download; needs internet)", "SOURCE"),
    Option("timeout-scale", "multiply every deadline, for slower machines (default: 1)", "FACTOR"),
    Option("versions", "the version set the kit is built for and the fleet runs (default: versions.yaml; "
           "e.g. versions.previous.yaml)", "FILE"),
    Option("upgrade-from", "bring the fleet up at this start, then upgrade it in place to the working tree and "
           "--e2e-versions (make upgrade; new clusters only): auto (make upgrade's default: a pull request's "
           "base, else the newest commit with an older version set, else versions.previous.yaml), git:REF "
           "(that commit's fleet, tenant repo and version set) or a version-set FILE", "START"),
    Option("admission-cluster", "the one cluster the tests marked `admission` run on (their verdict depends "
           "only on what the API server admits: policies, RBAC, Pod Security, quotas, NetworkPolicies, which "
           "every cluster applies alike, as test_every_cluster_admits_alike checks live); every: run them on "
           "each cluster (default: production, else the first cluster tested)", "ENV|every"),
    Option("upgrade-path", "how the upgrade run moves Flux: gitops (default: a commit of the new CLI's "
           "gotk-components.yaml, applied by Flux itself) or bootstrap (the new CLI's flux bootstrap)", "PATH"),
    Option("policy-engine", "what enforces the tenant policies: kyverno or native (the variant with the same "
           "rules as native ValidatingAdmissionPolicies and no policy engine; on a Kyverno fleet, written for the "
           "run on new clusters only); default: what the fleet deploys", "ENGINE"),
)
UPGRADE_PATHS = ("gitops", "bootstrap")
POLICY_ENGINES = ("kyverno", "native")

# --e2e-admission-cluster's value that runs the admission tests on each cluster.
EVERY = "every"


@dataclass(frozen=True)
class E2EConfig:
    environments: tuple[str, ...]
    artifacts: Path
    timeout_scale: float
    kit_source: KitSource = "build"
    use_up: bool = False
    # Environments run against an existing cluster (kubeconfig) instead of a new kind cluster.
    existing: tuple[tuple[str, Path], ...] = ()
    versions_file: Path = VERSIONS_FILE
    # Where an upgrade run starts: "auto", "git:REF" or a version-set file's absolute path.
    upgrade_from: str | None = None
    upgrade_path: str = "gitops"  # how an upgrade run moves Flux (UPGRADE_PATHS)
    admission_cluster: str = "production"  # where the `admission` tests run, or EVERY
    policy_engine: str = "kyverno"  # POLICY_ENGINES: what the fleet deploys, or its native variant

    def existing_kubeconfig(self, env: str) -> Path | None:
        return dict(self.existing).get(env)

    def timeout(self, seconds: float) -> float:
        """A deadline scaled for slower machines (--e2e-timeout-scale)."""
        return seconds * self.timeout_scale


def _pick(option: Option, cli: Mapping[str, object], ini: Mapping[str, str]) -> str:
    value = cli.get(option.name)
    if value not in (None, "", False):
        return "1" if value is True else str(value)
    if os.environ.get(option.env):
        return os.environ[option.env]
    return ini.get(option.name) or ""


def _bad(option: Option, value: str, wanted: str) -> ConfigError:
    return ConfigError(f"{option.cli} / {option.env}: {value!r} is invalid; {wanted}")


def parse_existing(text: str) -> tuple[tuple[str, Path], ...]:
    """ENV=KUBECONFIG pairs, comma-separated."""
    option = next(o for o in OPTIONS if o.name == "kubeconfigs")
    known = environments(REPO_ROOT) if text.strip() else ()
    pairs = []
    for value in (v.strip() for v in text.split(",") if v.strip()):
        env, sep, path = value.partition("=")
        if not sep or env not in known or not path:
            raise _bad(option, value, f"use ENV=PATH with ENV one of {', '.join(known)}, "
                       "e.g. staging=$HOME/.kube/staging.yaml")
        if not Path(path).is_file():
            raise _bad(option, value, f"{path} (for {env}) is not a readable file")
        pairs.append((env, Path(path).resolve()))
    return tuple(pairs)


def kit_source(cli: str | None = None, ini: Mapping[str, str] | None = None) -> KitSource:
    """Only the kit source (`make kit`, `make validate`, `make kit-check` need nothing else, so
    a bad value of another FLEET_E2E_* setting does not stop them)."""
    option = next(o for o in OPTIONS if o.name == "kit-source")
    source = _pick(option, {"kit-source": cli}, ini or {}) or "build"
    if source not in KIT_SOURCES:
        raise _bad(option, source, f"use one of {', '.join(KIT_SOURCES)}")
    return source


def _set_file(name: str, cli: str | None, ini: Mapping[str, str] | None) -> Path | None:
    """The version-set file an option names (option, else environment, else ini), or None.
    It must exist: a typo is not the default set."""
    option = next(o for o in OPTIONS if o.name == name)
    text = _pick(option, {name: cli}, ini or {})
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise _bad(option, text, f"no such file; name a version set like {VERSIONS_FILE.name} "
                   "or versions.previous.yaml")
    return path.resolve()


def _upgrade_start(option: Option, text: str, target: Path) -> str | None:
    """An upgrade start as written (auto, git:REF) or a version-set file, which must exist and
    differ from the target set."""
    if not text:
        return None
    if text == AUTO:
        return text
    if text.startswith(GIT_PREFIX):
        if not text.removeprefix(GIT_PREFIX).strip():
            raise _bad(option, text, "name a ref after git:, e.g. git:main or git:v1.2.0")
        return text
    path = _set_file(option.name, text, None)
    assert path is not None
    if path == target:
        raise _bad(option, text, f"it is the set the run upgrades to ({target.name}); name the set to start "
                   f"from, e.g. versions.previous.yaml, a ref as git:REF, or {AUTO}")
    return str(path)


def versions_file(cli: str | None = None, ini: Mapping[str, str] | None = None) -> Path:
    """The version set `make kit`, `make up` and the e2e use: --versions, else
    FLEET_E2E_VERSIONS, else versions.yaml."""
    return _set_file("versions", cli, ini) or VERSIONS_FILE


def build_config(cli: Mapping[str, object] | None = None, ini: Mapping[str, str] | None = None) -> E2EConfig:
    """Validate every setting; errors name the option and echo the bad value.

    `cli` and `ini` map an option's short name (e.g. "environments") to its value.
    """
    cli, ini = cli or {}, ini or {}
    by_name = {o.name: o for o in OPTIONS}
    text = {o.name: _pick(o, cli, ini) for o in OPTIONS}

    known = environments(REPO_ROOT)
    envs_text = text["environments"] or ",".join(known)
    chosen = tuple(e.strip() for e in envs_text.split(",") if e.strip())
    if not chosen or any(e not in known for e in chosen):
        raise _bad(by_name["environments"], envs_text, f"use a comma-separated subset of {', '.join(known)} "
                   "(the folders of clusters/)")

    up_text = text["up"].lower()
    if up_text not in ("", "0", "1", "true", "false"):
        raise _bad(by_name["up"], text["up"], "use 1/0 or true/false")

    source = kit_source(str(cli.get("kit-source") or "") or None, ini)

    scale_text = text["timeout-scale"] or "1"
    try:
        scale = float(scale_text)
    except ValueError:
        scale = 0.0
    if not scale > 0:
        raise _bad(by_name["timeout-scale"], scale_text, "use a positive number like 2")

    target = versions_file(str(cli.get("versions") or "") or None, ini)
    start = _upgrade_start(by_name["upgrade-from"], text["upgrade-from"], target)
    if start is not None and (up_text in ("1", "true") or text["kubeconfigs"]):
        raise _bad(by_name["upgrade-from"], str(start), "an upgrade run creates its own clusters at the "
                       "starting set; drop --e2e-up / --e2e-kubeconfigs")

    upgrade_path = text["upgrade-path"] or UPGRADE_PATHS[0]
    if upgrade_path not in UPGRADE_PATHS:
        raise _bad(by_name["upgrade-path"], upgrade_path, f"use one of {', '.join(UPGRADE_PATHS)}")

    deployed = tree_engine(REPO_ROOT)
    engine = text["policy-engine"] or deployed
    if engine not in POLICY_ENGINES:
        raise _bad(by_name["policy-engine"], engine, f"use one of {', '.join(POLICY_ENGINES)}")
    if engine != deployed and deployed == "native":
        raise _bad(by_name["policy-engine"], engine, f"this fleet deploys the native variant ({NATIVE_POLICIES_DIR}/) "
                   "and no Kyverno; drop the setting")
    if engine != deployed and (start is not None or up_text in ("1", "true") or text["kubeconfigs"]):
        raise _bad(by_name["policy-engine"], engine, "the native variant is brought up on new clusters of its own; "
                   "drop --e2e-upgrade-from / --e2e-up / --e2e-kubeconfigs")

    admission = text["admission-cluster"] or ("production" if "production" in chosen else chosen[0])
    if admission != EVERY and admission not in chosen:
        raise _bad(by_name["admission-cluster"], admission,
                   f"use one of the clusters tested ({', '.join(chosen)}) or {EVERY}")

    artifacts = Path(text["artifacts"] or REPO_ROOT / "artifacts")
    return E2EConfig(
        environments=chosen,
        artifacts=artifacts.resolve(),
        timeout_scale=scale,
        kit_source=source,
        use_up=up_text in ("1", "true"),
        existing=parse_existing(text["kubeconfigs"]),
        versions_file=target,
        upgrade_from=start,
        upgrade_path=upgrade_path,
        admission_cluster=admission,
        policy_engine=engine,
    )
