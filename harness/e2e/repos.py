"""The repositories the e2e serves: the fleet and each tenant's, published from the working tree
(or, for an upgrade run, from its start: a commit's files, or the working tree at older API
versions) with the URLs that point outside rewritten to the local Git server and chart
repositories; and moved to the working tree's content, as a merged pull request moves them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from harness.core import commands, topology
from harness.core.errors import CommandError, HarnessError
from harness.core.history import Start
from harness.core.progress import say
from harness.core.repo import FLEET_DIRS, POLICY_TESTS_DIR
from harness.core.versions import REPO_ROOT, Versions, load_versions
from harness.e2e import apiversions, publish
from harness.e2e.gitserver import GitServer
from harness.manifests import native

FLEET_REPO = "platform/fleet"
EXPORT_TIMEOUT_S = 60.0


def rewrites_for(server: GitServer, versions: Versions) -> list[publish.Rewrite]:
    """Where the repos point outside, and the local stand-ins; for a version set other than
    versions.yaml, also the Kyverno chart the fleet pins (it pins versions.yaml's)."""
    rewrites = [
        publish.Rewrite(topology.GIT_HOST, f"{server.url}/git/"),
        publish.Rewrite("https://stefanprodan.github.io/podinfo", server.charts_url("podinfo")),
        publish.Rewrite("https://kyverno.github.io/kyverno/", server.charts_url("kyverno") + "/"),
    ]
    pinned = load_versions().kyverno_chart
    if versions.kyverno_chart != pinned:
        rewrites.append(publish.Rewrite(f'version: "{pinned}"', f'version: "{versions.kyverno_chart}"'))
    return rewrites


@dataclass(frozen=True)
class RepoSource:
    """Where the published repos come from: a tree holding the fleet's folders and the tenant
    repos (the working tree, or a commit's files), optionally transformed (an upgrade's start
    written at older API versions)."""

    root: Path = REPO_ROOT
    label: str = "working tree"
    transform: publish.Transform | None = None


WORKING_TREE = RepoSource()


def publish_repos(server: GitServer, versions: Versions, source: RepoSource = WORKING_TREE,
                  bootstrap_files: dict[str, str] | None = None
                  ) -> tuple[str, dict[str, str], list[publish.RewriteHit]]:
    """The fleet and every tenant repository of the source's topology, published, the fleet with
    `bootstrap_files` (what `flux bootstrap` will write, flux.bootstrap_files) in place of the
    placeholders; returns the fleet's commit, each tenant's commit by tenant name, and the
    rewrites made."""
    rewrites = rewrites_for(server, versions)
    tenant_commits, hits = {}, []
    for tenant in topology.read(source.root).served_tenants():
        commit, tenant_hits = publish.publish(
            server, tenant.repo, {"": source.root / str(tenant.local_dir)}, rewrites,
            f"{tenant.name}: {tenant.repo} (from {tenant.local_dir}, {source.label})", source.transform)
        tenant_commits[tenant.name] = commit
        hits += tenant_hits
    fleet_commit, fleet_hits = publish.publish(
        server, FLEET_REPO, fleet_sources(source.root), rewrites,
        f"fleet ({source.label})", source.transform, bootstrap_files)
    hits = [*fleet_hits, *hits]
    for hit in hits:
        say(f"rewrite: {hit}")
    return fleet_commit, tenant_commits, hits


def _bootstrap_owned(path: str) -> bool:
    """What `flux bootstrap` writes into the fleet repo (the working tree holds placeholders)."""
    return fnmatch(path, "clusters/*/flux-system/gotk-*.yaml")


def fleet_sources(root: Path = REPO_ROOT) -> dict[str, Path]:
    return {d: root / d for d in FLEET_DIRS if (root / d).is_dir()}


def sync_to_working_tree(server: GitServer, versions: Versions, repo: str, message: str) -> str | None:
    """A served repo moved to the working tree's content, as a merged pull request would move it
    (the fleet's bootstrap-written files stay); the new commit, or None if it held that already."""
    rewrites = rewrites_for(server, versions)
    for tenant in topology.read(REPO_ROOT).served:
        if repo == tenant.repo:
            return publish.sync(server, repo, {"": REPO_ROOT / str(tenant.local_dir)}, rewrites, message)
    return publish.sync(server, repo, fleet_sources(), rewrites, message, keep=_bootstrap_owned)


def native_source(dest: Path, root: Path = REPO_ROOT) -> RepoSource:
    """The working tree's native variant (harness/manifests/native.py), written under `dest`:
    the fleet's folders and tenant repositories, with native admission policies and no engine,
    and the offline policy tests the upgrade probe's cases are derived from."""
    for name in (*FLEET_DIRS, *topology.tenant_repo_dirs(root), POLICY_TESTS_DIR):  # its offline tests too
        if (root / name).is_dir():
            shutil.copytree(root / name, dest / name)
    native.write_variant(dest)
    return RepoSource(dest, "the working tree's native variant (native admission policies, no policy engine)")


def start_source(start: Start, previous_flux: str, target_flux: str) -> tuple[RepoSource, list[str]]:
    """The repos an upgrade run starts with: the start commit's files as they were; or, from a
    version-set file, the working tree's written at the API versions the start set's Flux serves
    and the target's drops (apiversions). Also the objects kept at their version, and why."""
    if start.ref is not None:
        return RepoSource(start.versions_file.parent, f"commit {start.ref[:12]}"), []
    exports = []
    for cli in (previous_flux, target_flux):
        try:
            exports.append(commands.run([cli, "install", "--export"], timeout_s=EXPORT_TIMEOUT_S).stdout)
        except CommandError as exc:
            raise HarnessError(f"reading the Flux CRDs of {cli} failed\n{exc}") from exc
    dropped = apiversions.dropped_versions(*exports)
    kept: list[str] = []

    def transform(work: Path) -> list[publish.RewriteHit]:
        hits, why = apiversions.write_at_dropped_versions(work, dropped)
        kept.extend(why)
        return hits

    versions = ", ".join(f"{d.kind} {d.version}" for d in dropped.values())
    return RepoSource(REPO_ROOT, f"working tree at the API versions the new Flux drops: {versions or 'none'}",
                      transform), kept
