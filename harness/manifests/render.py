"""Renders the repos the way Flux will: kustomize with kustomize-controller's options.

The fleet is rendered from each cluster's entry point (`clusters/<env>`, as bootstrapped), then
every path its Flux Kustomizations apply, then each tenant Kustomization's path in the tenant's
own repo where that repo is in this tree. Every other folder with a kustomization.yaml is built
too, so nothing unused rots. Renders run on a scratch copy: folders Flux would build without a
kustomization.yaml get one generated the way kustomize-controller does, and the files
`flux bootstrap` adds (gotk-components.yaml, gotk-sync.yaml) are produced with the kit's flux CLI.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core import commands, yamlio
from harness.core.errors import CommandError
from harness.core.repo import FLEET_DIRS, TENANT_LABEL
from harness.core.toolpaths import Tools
from harness.core.topology import tenant_repo_dirs
from harness.manifests import reuse
from harness.manifests.findings import ORIGIN_ANNOTATION, Finding

KUSTOMIZE_TIMEOUT_S = 120.0
# Tenant repos that live in this tree, by tenant name, for rendering tenant Kustomizations.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# What the bootstrap placeholders point at when validating offline.
PLACEHOLDER_FLEET_URL = "https://git.example.com/platform/fleet.git"


@dataclass(frozen=True)
class RenderedObject:
    obj: dict[str, Any]
    file: str  # repo-relative source file


@dataclass
class Render:
    """The output of one kustomize build."""

    path: str  # repo-relative folder that was built
    why: str  # which Flux object applies it, or "kustomization.yaml"
    objects: list[RenderedObject] = field(default_factory=list)
    tenant: str | None = None  # set when a tenant's reconciler applies this output


def has_kustomization(folder: Path) -> bool:
    return any((folder / name).is_file() for name in KUSTOMIZATION_FILES)


def generate_kustomization(folder: Path) -> None:
    """Write the kustomization.yaml kustomize-controller generates for a plain folder.

    Sub-folders with their own kustomization are included whole; other sub-folders are walked;
    YAML files are included when they hold Kubernetes objects.
    """
    resources: list[str] = []

    def walk(current: Path) -> None:
        for entry in sorted(current.iterdir()):
            if entry.is_dir():
                if has_kustomization(entry):
                    resources.append(os.path.relpath(entry, folder))
                else:
                    walk(entry)
            elif entry.suffix in (".yaml", ".yml"):
                docs = [d for d in yamlio.load_all(entry.read_text()) if d]
                if docs and all(isinstance(d, dict) and "apiVersion" in d for d in docs):
                    resources.append(os.path.relpath(entry, folder))

    walk(folder)
    (folder / "kustomization.yaml").write_text(
        yamlio.dump(
            {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
             "resources": resources}
        )
    )


def _is_empty(path: Path) -> bool:
    return not path.exists() or not path.read_text().strip()


@functools.lru_cache(maxsize=16)
def flux_export(flux: Path, *args: str) -> str:
    """Output of `flux ... --export` (pure generation, so cached per process)."""
    return commands.run([str(flux), *args, "--export"], timeout_s=60.0).stdout


def materialize_bootstrap(workspace: Path, flux: Path) -> None:
    """Add what `flux bootstrap` writes beside each cluster's flux-system/kustomization.yaml."""
    for kfile in sorted(workspace.glob("clusters/*/flux-system/kustomization.yaml")):
        folder = kfile.parent
        env_path = f"./{folder.parent.relative_to(workspace).as_posix()}"
        # Committed empty, as Flux's docs for customizing bootstrap ask; bootstrap fills them.
        if _is_empty(folder / "gotk-components.yaml"):
            (folder / "gotk-components.yaml").write_text(flux_export(flux, "install"))
        if _is_empty(folder / "gotk-sync.yaml"):
            source = flux_export(flux, "create", "source", "git", "flux-system",
                                 f"--url={PLACEHOLDER_FLEET_URL}", "--branch=main", "--interval=1m")
            sync = flux_export(flux, "create", "kustomization", "flux-system",
                               "--source=GitRepository/flux-system", f"--path={env_path}",
                               "--prune=true", "--interval=10m")
            (folder / "gotk-sync.yaml").write_text(source + "---\n" + sync)


@contextmanager
def workspace(repo: Path, tools: Tools) -> Iterator[Path]:
    """A scratch copy of the repo's manifests, bootstrapped as a cluster would see them."""
    with tempfile.TemporaryDirectory(prefix="fleet-validate-") as tmp:
        root = Path(tmp)
        for name in (*FLEET_DIRS, *tenant_repo_dirs(repo)):
            if (repo / name).is_dir():
                shutil.copytree(repo / name, root / name)
        materialize_bootstrap(root, tools.flux)
        yield root


def _origin_file(obj: dict[str, Any], built: str) -> str:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    origin = annotations.pop(ORIGIN_ANNOTATION, None)
    if not annotations:
        meta.pop("annotations", None)
    if not origin:
        return built
    path = (yamlio.load(origin) or {}).get("path")
    if not path:
        return built
    return os.path.normpath(os.path.join(built, path))


def build(ws: Path, rel: str, why: str, tools: Tools) -> tuple[Render, list[Finding]]:
    """kustomize build of one folder of the workspace, with origins for each object."""
    folder = ws / rel
    render = Render(path=rel, why=why)
    if not folder.is_dir():
        return render, [Finding("build", rel, "", "", f"path does not exist (applied by {why})")]
    if not has_kustomization(folder):
        generate_kustomization(folder)
    kfile = next(folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file())
    kustomization = yamlio.load(kfile.read_text()) or {}
    kustomization.setdefault("buildMetadata", [])
    if "originAnnotations" not in kustomization["buildMetadata"]:
        kustomization["buildMetadata"].append("originAnnotations")
    kfile.write_text(yamlio.dump(kustomization))
    try:
        result = reuse.run(
            # kustomize-controller builds with no load restrictions and no plugins.
            [str(tools.kustomize), "build", "--load-restrictor", "LoadRestrictionsNone", str(folder)],
            root=ws, files=reuse.readable_files([folder], lambda f: f.name in KUSTOMIZATION_FILES),
            timeout_s=KUSTOMIZE_TIMEOUT_S,
        )
    except CommandError as exc:
        reason = exc.stderr.strip().replace(str(ws) + "/", "") or str(exc)
        return render, [Finding("build", rel, "", "", f"kustomize build failed: {reason}")]
    for doc in yamlio.load_all(result.stdout):
        if isinstance(doc, dict):
            render.objects.append(RenderedObject(doc, _origin_file(doc, rel)))
    return render, []


def tenant_namespaces(renders: Iterable[Render]) -> dict[str, str]:
    """Namespace name -> tenant, from rendered Namespaces carrying the tenant label."""
    found = {}
    for render in renders:
        for item in render.objects:
            labels = (item.obj.get("metadata") or {}).get("labels") or {}
            if item.obj.get("kind") == "Namespace" and TENANT_LABEL in labels:
                found[item.obj["metadata"]["name"]] = labels[TENANT_LABEL]
    return found
