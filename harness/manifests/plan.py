"""Follows the fleet the way Flux does, rendering every path that will be applied."""

from __future__ import annotations

from pathlib import Path

from harness.core.toolpaths import Tools
from harness.core.topology import local_repos
from harness.manifests.findings import Finding, describe
from harness.manifests.render import (
    KUSTOMIZATION_FILES,
    Render,
    build,
    tenant_namespaces,
)

FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io"


def _flux_kustomizations(render: Render) -> list[dict]:  # type: ignore[type-arg]
    return [
        o.obj for o in render.objects
        if o.obj.get("kind") == "Kustomization"
        and str(o.obj.get("apiVersion", "")).startswith(FLUX_KUSTOMIZATION)
    ]


def render_everything(ws: Path, tools: Tools) -> tuple[list[Render], list[Finding]]:
    """All renders (entry points, what they apply, tenant repos, leftovers) and build findings."""
    renders: list[Render] = []
    findings: list[Finding] = []
    done: set[str] = set()
    repos = local_repos(ws)  # namespace -> the tenant-repo-* folder deploying into it
    all_tenants: dict[str, str] = {}  # namespace -> tenant, over every cluster

    def visit(rel: str, why: str, tenant: str | None = None) -> Render:
        render, problems = build(ws, rel, why, tools)
        render.tenant = tenant
        renders.append(render)
        findings.extend(problems)
        done.add(rel)
        return render

    for cluster in sorted(p for p in (ws / "clusters").iterdir() if p.is_dir()):
        rel = cluster.relative_to(ws).as_posix()
        entry = visit(rel, f"flux bootstrap --path={rel}")
        fleet = [entry]
        for ks in _flux_kustomizations(entry):
            ref = ks["spec"].get("sourceRef", {})
            path = ks["spec"].get("path", "./").removeprefix("./").rstrip("/") or "."
            if ref.get("name") == "flux-system" and path != rel:
                fleet.append(visit(path, f"{describe(ks)} in {rel}"))
        tenants = tenant_namespaces(fleet)
        all_tenants.update(tenants)
        for render in fleet:
            for ks in _flux_kustomizations(render):
                ns = ks["metadata"].get("namespace", "")
                if ns not in tenants:
                    continue
                repo = repos.get(ns)
                if repo is None:
                    continue
                path = ks["spec"].get("path", "./").removeprefix("./").rstrip("/")
                rel_path = f"{repo}/{path}" if path else repo
                visit(rel_path, f"{describe(ks)} in {rel}", tenant=tenants[ns])

    for kfile in sorted(p for name in KUSTOMIZATION_FILES for p in ws.rglob(name)):
        rel = kfile.parent.relative_to(ws).as_posix()
        if rel not in done and "flux-system" not in rel:
            owner = next((all_tenants.get(ns) for ns, repo in repos.items()
                          if rel == repo or rel.startswith(repo + "/")), None)
            visit(rel, "kustomization.yaml", tenant=owner)
    return renders, findings
