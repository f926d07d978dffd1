"""`make validate`: every offline check of the fleet and tenant repos, in one report."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.core import yamlio
from harness.core.repo import FLEET_DIRS
from harness.core.toolpaths import SchemaSources, Tools
from harness.core.topology import tenant_repo_dirs
from harness.core.versions import Versions
from harness.manifests import checks, plan
from harness.manifests.findings import Finding
from harness.manifests.render import Render, workspace
from harness.manifests.schemas import (
    SchemaIndex,
    crd_schemas,
    kubernetes_lifecycle,
    kubernetes_schemas,
)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    renders: int
    objects: int
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.findings


def roots(repo: Path) -> tuple[str, ...]:
    return (*FLEET_DIRS, *tenant_repo_dirs(repo))


def check_yaml_parses(repo: Path) -> list[Finding]:
    findings = []
    for root in roots(repo):
        for path in sorted((repo / root).rglob("*.y*ml")):
            try:
                yamlio.load_all(path.read_text())
            except yaml.YAMLError as exc:
                findings.append(Finding("yaml", path.relative_to(repo).as_posix(), "", "",
                                        f"does not parse: {exc}"))
    return findings


@functools.lru_cache(maxsize=4)
def schema_index(sources: SchemaSources, versions: Versions) -> SchemaIndex:
    """Built once per process: converting the OpenAPI and CRDs is the slowest step."""
    lifecycle = kubernetes_lifecycle(sources.api_module, versions.kubernetes)
    definitions, builtin = kubernetes_schemas(sources.swagger, lifecycle)
    return SchemaIndex(definitions, [*builtin, *crd_schemas(sources.crd_files)])


# The policy engine's offline checks of the rendered fleet, given the Kyverno CLI (the engine
# seam's `offline_checks`, harness/e2e/engines.py).
PolicyChecks = Callable[[list[Render], Path], list[Finding]]


def validate(repo: Path, tools: Tools, sources: SchemaSources, versions: Versions, policy_checks: PolicyChecks) -> Report:
    """Run every check; findings are sorted and de-duplicated (overlays share their bases)."""
    started = time.monotonic()
    findings = check_yaml_parses(repo)
    if findings:
        return Report(tuple(findings), 0, 0, time.monotonic() - started)
    findings += checks.check_remote_bases(repo, roots(repo))
    with workspace(repo, tools) as ws:
        renders, build_findings = plan.render_everything(ws, tools)
    findings += build_findings
    index = schema_index(sources, versions)
    findings += checks.check_schemas(renders, index)
    findings += checks.check_tenancy(renders)
    findings += checks.check_tenant_namespaces(renders, versions)
    findings += checks.check_lockdown(renders)
    findings += checks.check_pins(renders, versions)
    findings += policy_checks(renders, tools.kyverno)
    objects = sum(len(r.objects) for r in renders)
    return Report(tuple(sorted(set(findings))), len(renders), objects, time.monotonic() - started)
