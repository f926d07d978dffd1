"""The fleet's topology, read from the repo rather than written into the harness: its
environments (the folders of `clusters/`), its tenants (the folders of `tenants/base/`: namespace,
reconciler account, repository, allowlist entry, and the folder of this tree that holds the
repository's content, if any) and its admission policies (the policies folder).

A fork adds an environment or a tenant by adding folders; everything that loops over
environments or tenants (the offline checks, the e2e parametrization, the repos the e2e serves)
reads them from here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core import yamlio
from harness.core.errors import ConfigError
from harness.core.repo import API, NATIVE_POLICIES_DIR, POLICIES_DIR, SOURCE_ALLOWLIST, TENANT_LABEL
from harness.core.versions import REPO_ROOT

# Where the fleet's repositories live as written (a placeholder host); the e2e serves each
# repository under this prefix from its local Git server, at the same path.
GIT_HOST = "https://git.example.com/"
# Top-level folders holding a tenant's repository content in this tree start with this.
TENANT_REPO_PREFIX = "tenant-repo-"


@dataclass(frozen=True)
class Tenant:
    """A tenant as `tenants/base/<name>/` declares it."""

    name: str
    namespace: str
    account: str  # the service account Flux reconciles the tenant's repository as
    source: str  # the GitRepository registering its repository (in its namespace)
    sync: str  # the Flux Kustomization applying it
    repo_url: str  # the GitRepository's URL, as the fleet writes it
    branch: str
    allowlist: tuple[str, ...]  # its entry in the source allowlist policy
    local_dir: str | None = None  # the folder of this tree that holds its repository
    releases: tuple[str, ...] = ()  # the HelmReleases that repository ships

    @property
    def user(self) -> str:
        """The API server's name for the reconciler account (what impersonation asks for)."""
        return f"system:serviceaccount:{self.namespace}:{self.account}"

    @property
    def repo(self) -> str:
        """The repository's path on the Git host (`dev-team/apps`), or "" when it lives elsewhere."""
        if not self.repo_url.startswith(GIT_HOST):
            return ""
        path = self.repo_url[len(GIT_HOST):]
        return path.removesuffix(".git")


@dataclass(frozen=True)
class Policy:
    name: str
    kind: str
    file: str  # repo-relative


@dataclass(frozen=True)
class Topology:
    root: Path
    environments: tuple[str, ...]
    tenants: tuple[Tenant, ...]
    policies: tuple[Policy, ...] = field(default=())

    def tenant(self, name: str) -> Tenant:
        for tenant in self.tenants:
            if tenant.name == name:
                return tenant
        raise ConfigError(f"no tenant {name!r} in {self.root}/tenants/base (tenants: "
                          f"{', '.join(t.name for t in self.tenants) or 'none'})")

    @property
    def served(self) -> tuple[Tenant, ...]:
        """The tenants whose repository this tree holds: the ones the e2e can serve and run as."""
        return tuple(t for t in self.tenants if t.local_dir is not None)

    def served_tenants(self) -> tuple[Tenant, ...]:
        """`served`, refusing a tenant the e2e cannot bring up (its repository is neither in this
        tree nor on the placeholder Git host), with the fix."""
        for tenant in self.tenants:
            if tenant.local_dir is None or not tenant.repo:
                where = (f"its repository {tenant.repo_url} is not under {GIT_HOST}" if not tenant.repo else
                         f"no {TENANT_REPO_PREFIX}* folder of {self.root} holds its repository (a folder "
                         f"whose kustomizations set `namespace: {tenant.namespace}`)")
                raise ConfigError(f"tenants/base/{tenant.name}: the e2e cannot serve tenant {tenant.name}: {where}. "
                                  f"Add its repository's content as {TENANT_REPO_PREFIX}{tenant.name}/ "
                                  f"(base/ and one folder per environment: {', '.join(self.environments)}) "
                                  f"and point its GitRepository at {GIT_HOST}<owner>/<repo>.git")
        if not self.tenants:
            raise ConfigError(f"{self.root}/tenants/base holds no tenant: the e2e needs one to act as "
                              "(python -m harness tenant add)")
        return self.served


def _docs(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(folder.rglob("*.yaml")):
        for doc in yamlio.load_all(path.read_text()):
            if isinstance(doc, dict):
                found.append((path, doc))
    return found


def environments(root: Path = REPO_ROOT) -> tuple[str, ...]:
    """The fleet's environments: the folders of `clusters/`, by name."""
    clusters = root / "clusters"
    if not clusters.is_dir():
        raise ConfigError(f"{root}: no clusters/ folder, so no environment (is it a fleet repo?)")
    envs = tuple(sorted(p.name for p in clusters.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not envs:
        raise ConfigError(f"{clusters}: no environment folder (clusters/<env>/)")
    return envs


def _allowlists(root: Path) -> dict[str, list[str]]:
    """The allowlist policy's JSON map (tenant -> URL prefixes), from the Kyverno policy or its
    native variant; {} when the fleet has neither."""
    path = root / NATIVE_POLICIES_DIR / Path(SOURCE_ALLOWLIST).name  # what a native fleet deploys
    if not path.is_file():
        path = root / SOURCE_ALLOWLIST
    if not path.is_file():
        return {}
    for doc in yamlio.load_all(path.read_text()):
        for variable in ((doc or {}).get("spec") or {}).get("variables") or []:
            if variable.get("name") == "allowlists":
                try:
                    return dict(json.loads(variable["expression"]))
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"{SOURCE_ALLOWLIST}: the allowlists are not a JSON map ({exc})") from exc
    return {}


def _repo_namespaces(folder: Path) -> set[str]:
    """The namespaces a tenant repository's kustomizations set (its owner's namespace)."""
    found = set()
    for path in folder.rglob("kustomization.yaml"):
        doc = yamlio.load(path.read_text()) or {}
        if isinstance(doc, dict) and doc.get("namespace"):
            found.add(str(doc["namespace"]))
    return found


def local_repos(root: Path = REPO_ROOT) -> dict[str, str]:
    """Namespace -> the tenant-repo-* folder whose content deploys into it (a tenant repository
    names its tenant's namespace in its kustomizations, as flux2-multi-tenancy's do)."""
    owners: dict[str, str] = {}
    for name in tenant_repo_dirs(root):
        folder = root / name
        namespaces = _repo_namespaces(folder)
        if len(namespaces) != 1:
            raise ConfigError(f"{folder.name}/: a tenant repository's kustomizations set one namespace, its "
                              f"tenant's; found {sorted(namespaces) or 'none'}")
        namespace = namespaces.pop()
        if namespace in owners:
            raise ConfigError(f"{owners[namespace]}/ and {folder.name}/ both deploy into namespace {namespace}: "
                              "one repository per tenant")
        owners[namespace] = folder.name
    return owners


def _tenant(root: Path, folder: Path, allowlists: dict[str, list[str]], repos: dict[str, str]) -> Tenant:
    where = f"tenants/base/{folder.name}"
    docs = [doc for _, doc in _docs(folder)]
    namespaces = [d for d in docs if d.get("kind") == "Namespace" and TENANT_LABEL in (d["metadata"].get("labels") or {})]
    if len(namespaces) != 1:
        raise ConfigError(f"{where}: a tenant folder declares one Namespace labelled {TENANT_LABEL}; "
                          f"found {len(namespaces)}")
    namespace = namespaces[0]["metadata"]["name"]
    name = namespaces[0]["metadata"]["labels"][TENANT_LABEL]
    sources = [d for d in docs if d.get("kind") == "GitRepository" and d.get("apiVersion") == API["GitRepository"]]
    syncs = [d for d in docs if d.get("kind") == "Kustomization" and d.get("apiVersion") == API["Kustomization"]]
    if len(sources) != 1 or len(syncs) != 1:
        raise ConfigError(f"{where}: a tenant folder registers its repository with one GitRepository and one "
                          f"Flux Kustomization; found {len(sources)} and {len(syncs)}")
    account = syncs[0]["spec"].get("serviceAccountName")
    if not account:
        raise ConfigError(f"{where}: the tenant's Kustomization names no serviceAccountName, so Flux would "
                          "reconcile it as itself; set the tenant's account")
    spec = sources[0]["spec"]
    local = repos.get(namespace)
    releases = sorted({d["metadata"]["name"] for _, d in _docs(root / local) if d.get("kind") == "HelmRelease"}
                      if local else set())
    return Tenant(name=name, namespace=namespace, account=account, source=sources[0]["metadata"]["name"],
                  sync=syncs[0]["metadata"]["name"], repo_url=spec["url"],
                  branch=(spec.get("ref") or {}).get("branch", "main"),
                  allowlist=tuple(allowlists.get(name, ())), local_dir=local, releases=tuple(releases))


def applied(folder: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(file, object) for every object of `kind` in the files the folder's kustomization lists:
    what Flux applies from it (a file beside them that it does not list is not applied)."""
    found = []
    for resource in yamlio.load((folder / "kustomization.yaml").read_text())["resources"]:
        if (folder / resource).is_file():
            found += [(resource, d) for d in yamlio.load_all((folder / resource).read_text())
                      if isinstance(d, dict) and d.get("kind") == kind]
    return found


def _policies(root: Path) -> tuple[Policy, ...]:
    """The tenant policies the fleet applies: the native variant's when it deploys it (its
    Kyverno policies are then only their source), else Kyverno's."""
    for folder, kind in ((NATIVE_POLICIES_DIR, "ValidatingAdmissionPolicy"), (POLICIES_DIR, "ValidatingPolicy")):
        if (root / folder).is_dir():
            return tuple(Policy(d["metadata"]["name"], kind, f"{folder}/{file}") for file, d in applied(root / folder, kind))
    return ()


def tenant_repo_dirs(root: Path = REPO_ROOT) -> tuple[str, ...]:
    """The folders of this tree that hold tenant repositories' content."""
    return tuple(sorted(p.name for p in root.glob(f"{TENANT_REPO_PREFIX}*") if p.is_dir()))


def read(root: Path = REPO_ROOT) -> Topology:
    """The topology of the fleet at `root` (a few dozen small files: callers that ask often keep
    the answer)."""
    allowlists, repos = _allowlists(root), local_repos(root)
    base = root / "tenants" / "base"
    folders = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    return Topology(root=root, environments=environments(root),
                    tenants=tuple(_tenant(root, f, allowlists, repos) for f in folders),
                    policies=_policies(root))
