"""The repositories the e2e serves: the fleet and the tenant's, published from the working tree
with the URLs that point outside rewritten to the local Git server and chart repositories."""

from __future__ import annotations

from harness.core.progress import say
from harness.core.repo import FLEET_DIRS, TENANT_REPO_DIR
from harness.core.versions import REPO_ROOT, Versions, load_versions
from harness.e2e import publish
from harness.e2e.gitserver import GitServer

FLEET_REPO = "platform/fleet"
TENANT_REPO = "dev-team/apps"
TENANT_ACCOUNT = "system:serviceaccount:apps:dev-team"


def rewrites_for(server: GitServer, versions: Versions) -> list[publish.Rewrite]:
    """Where the repos point outside, and the local stand-ins; for a version set other than
    versions.yaml, also the Kyverno chart the fleet pins (it pins versions.yaml's)."""
    rewrites = [
        publish.Rewrite("https://git.example.com/", f"{server.url}/git/"),
        publish.Rewrite("https://stefanprodan.github.io/podinfo", server.charts_url("podinfo")),
        publish.Rewrite("https://kyverno.github.io/kyverno/", server.charts_url("kyverno") + "/"),
    ]
    pinned = load_versions().kyverno_chart
    if versions.kyverno_chart != pinned:
        rewrites.append(publish.Rewrite(f'version: "{pinned}"', f'version: "{versions.kyverno_chart}"'))
    return rewrites


def publish_repos(server: GitServer, versions: Versions) -> tuple[str, str, list[publish.RewriteHit]]:
    rewrites = rewrites_for(server, versions)
    tenant_commit, tenant_hits = publish.publish(
        server, TENANT_REPO, {"": REPO_ROOT / TENANT_REPO_DIR}, rewrites, "dev-team apps (from tenant-repo-example)")
    fleet_commit, fleet_hits = publish.publish(
        server, FLEET_REPO, {d: REPO_ROOT / d for d in FLEET_DIRS}, rewrites, "fleet (working tree)")
    hits = [*fleet_hits, *tenant_hits]
    for hit in hits:
        say(f"rewrite: {hit}")
    return fleet_commit, tenant_commit, hits
