"""Flux's install manifests, regenerated from the controllers' modules, and the flux CLI.

Upstream's CLI embeds `cmd/flux/manifests/*.yaml`, produced at release time by kustomize from
each controller's `config/crd` and `config/manager` (published as release assets) bundled
through flux2's `manifests/bases`. The module zips hold all the inputs but not the outputs, so
the kit reproduces that bundling locally, pointing the bases at the controllers' own config
instead of release downloads, with the controller versions pinned in versions.yaml.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.core import commands, yamlio
from harness.core.errors import KitError
from harness.core.progress import step
from harness.core.versions import Versions
from harness.kit import cache, gomod
from harness.kit.gomod import GoBuild

FLUX_MODULE = "github.com/fluxcd/flux2/v2"
IMAGE_REGISTRY = "ghcr.io/fluxcd"
KUSTOMIZE_TIMEOUT_S = 300.0


def _write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yamlio.dump(data))


def _point_base_at_local_config(base: Path, controller: str) -> None:
    """Replace a base's release-asset URLs with the locally staged controller config."""
    kfile = base / "kustomization.yaml"
    data = yamlio.load(kfile.read_text())
    resources = []
    for res in data.get("resources", []):
        if res.endswith(f"{controller}.crds.yaml"):
            resources.append(f"../../../controllers/{controller}/release/crds")
        elif res.endswith(f"{controller}.deployment.yaml"):
            resources.append(f"../../../controllers/{controller}/release/deployment")
        elif "://" in res:
            raise KitError(
                f"flux manifests: base {controller} references {res}, which the kit does not "
                "know how to reproduce offline; update harness/kit/flux.py for this Flux version"
            )
        else:
            resources.append(res)
    data["resources"] = resources
    _write_yaml(kfile, data)


def _stage(workspace: Path, v: Versions) -> None:
    flux2 = gomod.download(FLUX_MODULE, v.flux.cli, v.checksum(FLUX_MODULE, v.flux.cli))
    shutil.copytree(flux2.dir / "manifests", workspace / "manifests")
    controllers = v.flux.controllers()
    for base in (workspace / "manifests" / "bases").iterdir():
        if base.name not in controllers:
            # Optional components (image automation, source-watcher) are not in the kit.
            shutil.rmtree(base)
    for name, version in controllers.items():
        module = gomod.download(f"github.com/fluxcd/{name}", version)
        root = workspace / "controllers" / name
        shutil.copytree(module.dir / "config", root / "config")
        _write_yaml(
            root / "release" / "crds" / "kustomization.yaml",
            {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
             "resources": ["../../config/crd"]},
        )
        _write_yaml(
            root / "release" / "deployment" / "kustomization.yaml",
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["../../config/manager"],
                "images": [
                    {"name": f"fluxcd/{name}", "newName": f"{IMAGE_REGISTRY}/{name}",
                     "newTag": version}
                ],
            },
        )
        _point_base_at_local_config(workspace / "manifests" / "bases" / name, name)
    for path in [workspace, *workspace.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def manifests(v: Versions, kustomize: Path) -> cache.Artifact:
    """The files the flux CLI embeds: one per controller, plus rbac.yaml and policies.yaml."""
    key = cache.recipe_key(("flux-manifests", v.flux, str(kustomize)))

    def produce(out: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="fleetkit-flux-manifests-") as tmp:
            workspace = Path(tmp)
            _stage(workspace, v)
            targets = {f"{c}.yaml": f"bases/{c}" for c in v.flux.controllers()}
            targets |= {"rbac.yaml": "rbac", "policies.yaml": "policies"}
            with step("bundling Flux install manifests"):
                for filename, path in targets.items():
                    rendered = commands.run(
                        [str(kustomize), "build", str(workspace / "manifests" / path)],
                        timeout_s=KUSTOMIZE_TIMEOUT_S,
                    )
                    (out / filename).write_text(rendered.stdout)

    return cache.build_once(
        "generated", "flux-manifests", v.flux.cli, key, f"{FLUX_MODULE}@{v.flux.cli}", produce
    )


def cli_recipe(v: Versions) -> GoBuild:
    return GoBuild(
        name="flux",
        module=FLUX_MODULE,
        version=v.flux.cli,
        packages=("./cmd/flux",),
        ldflags=("-s", "-w", f"-X main.VERSION={v.flux.cli.removeprefix('v')}"),
        binaries=("flux",),
        in_module_copy=True,
        checksum=v.checksum(FLUX_MODULE, v.flux.cli),
    )


def cli(v: Versions, bundle: cache.Artifact, log_dir: Path) -> cache.Artifact:
    """The flux CLI with the regenerated manifests embedded."""

    def embed(workdir: Path) -> None:
        target = workdir / "cmd" / "flux" / "manifests"
        target.mkdir(parents=True, exist_ok=True)
        for manifest in bundle.path.glob("*.yaml"):
            shutil.copy(manifest, target / manifest.name)

    return gomod.build(cli_recipe(v), log_dir, prepare=embed, inputs=str(bundle.path))
