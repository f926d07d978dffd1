"""Helm chart repositories for the e2e: podinfo and Kyverno, packaged from their modules.

Each repository is a folder with the packaged chart and an index.yaml, served over HTTP in
place of https://stefanprodan.github.io/podinfo and https://kyverno.github.io/kyverno/.

Kyverno's chart declares three remote dependencies. Two are off by default (openreports,
reports-server) and are dropped. The third, kyverno-api, carries the policies.kyverno.io CRDs;
it is replaced by a local subchart of the same name holding those CRDs from the pinned Kyverno
module, installed under the same condition (crds.install).
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from harness.core import yamlio
from harness.core.errors import KitError
from harness.core.versions import Versions
from harness.kit import cache, gomod

REMOTE_KYVERNO_DEPENDENCIES = ("kyverno-api", "openreports", "reports-server")
# Bumped when packaging changes what a chart holds, so cached charts are packaged again.
PACKAGING = "helmignore"


def _helmignore(chart_dir: Path) -> list[tuple[bool, bool, str]]:
    """The chart's .helmignore rules as (negated, directories only, pattern)."""
    ignore = chart_dir / ".helmignore"
    rules = []
    for line in (ignore.read_text().splitlines() if ignore.is_file() else []):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!")
        rules.append((negated, pattern.endswith("/"), pattern.strip("/")))
    return rules


def ignored(relative: str, is_dir: bool, rules: list[tuple[bool, bool, str]]) -> bool:
    """Whether Helm's loader leaves this path out, as its ignore rules decide: a pattern with a
    slash matches the path from the chart root, one without matches the base name; the first
    rule that decides wins (a negated rule decides for paths it does not match)."""
    for negated, dirs_only, pattern in rules:
        target = relative if "/" in pattern else relative.rsplit("/", 1)[-1]
        if negated:
            if (dirs_only and not is_dir) or not fnmatch.fnmatchcase(target, pattern):
                return True
            continue
        if dirs_only and not is_dir:
            continue
        if fnmatch.fnmatchcase(target, pattern):
            return True
    return False


def package(chart_dir: Path, out: Path) -> Path:
    """`helm package`: a gzipped tar of the chart under a folder named after it, without what
    its .helmignore leaves out (upstream keeps its release Secret under Kubernetes' 1 MiB that
    way: Kyverno's 3.8 chart tree holds a stray tmpcharts-*/ folder and large READMEs)."""
    meta = yamlio.load((chart_dir / "Chart.yaml").read_text())
    target = out / f"{meta['name']}-{meta['version']}.tgz"
    rules = _helmignore(chart_dir)
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(chart_dir.rglob("*")):
            relative = path.relative_to(chart_dir)
            if path.is_file() and not any(
                    ignored(part.as_posix(), part != relative or path.is_dir(), rules)
                    for part in [*reversed(relative.parents[:-1]), relative]):
                tar.add(path, arcname=f"{meta['name']}/{relative.as_posix()}")
    return target


def write_index(repo: Path) -> None:
    """index.yaml listing every packaged chart in the folder, as `helm repo index` writes it."""
    entries: dict[str, list[dict[str, object]]] = {}
    for archive in sorted(repo.glob("*.tgz")):
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml"))
            extracted = tar.extractfile(member)
            assert extracted is not None
            meta = yamlio.load(extracted.read().decode())
        meta.pop("dependencies", None)
        meta["urls"] = [archive.name]
        meta["digest"] = hashlib.sha256(archive.read_bytes()).hexdigest()
        meta["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(archive.stat().st_mtime))
        entries.setdefault(meta["name"], []).append(meta)
    index = {"apiVersion": "v1", "entries": entries, "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    (repo / "index.yaml").write_text(yamlio.dump(index))


def podinfo_prerelease(v: Versions) -> str:
    """The pre-release chart version the kit serves beside the stable one: the next patch, rc.1."""
    major, minor, patch = v.podinfo.split("-")[0].split(".")
    return f"{major}.{minor}.{int(patch) + 1}-rc.1"


def podinfo_repo(v: Versions) -> cache.Artifact:
    """The pinned podinfo chart, plus the same chart as a pre-release (same app and image), so
    that staging's range (pre-releases allowed) and production's (stable only) resolve to
    different charts and the e2e can tell them apart."""
    module_path = "github.com/stefanprodan/podinfo"
    prerelease = podinfo_prerelease(v)

    def produce(out: Path) -> None:
        module = gomod.download(module_path, v.podinfo_module)
        chart = yamlio.load((module.dir / "charts/podinfo/Chart.yaml").read_text())
        if str(chart["version"]) != v.podinfo:
            raise KitError(f"podinfo chart in {module_path}@{v.podinfo_module} is {chart['version']}, "
                           f"versions.yaml says {v.podinfo}; fix podinfo.app or podinfo.module")
        package(module.dir / "charts/podinfo", out)
        with tempfile.TemporaryDirectory(prefix="fleetkit-podinfo-rc-") as tmp:
            copy = Path(tmp) / "podinfo"
            shutil.copytree(module.dir / "charts/podinfo", copy)
            (copy / "Chart.yaml").chmod(0o644)
            (copy / "Chart.yaml").write_text(yamlio.dump({**chart, "version": prerelease}))
            package(copy, out)
        write_index(out)

    return cache.build_once("charts", "podinfo", v.podinfo,
                            cache.recipe_key(("podinfo", v.podinfo_module, prerelease, PACKAGING)),
                            f"{module_path}@{v.podinfo_module}", produce)


def _kyverno_api_subchart(module_dir: Path, target: Path, version: str) -> None:
    (target / "templates").mkdir(parents=True)
    (target / "Chart.yaml").write_text(yamlio.dump({
        "apiVersion": "v2", "name": "kyverno-api", "version": version,
        "description": "policies.kyverno.io CRDs from the Kyverno module (local stand-in)",
    }))
    for crd in sorted((module_dir / "config/crds/policies.kyverno.io").glob("*.yaml")):
        shutil.copyfile(crd, target / "templates" / crd.name)


def kyverno_repo(v: Versions) -> cache.Artifact:
    module_path = "github.com/kyverno/kyverno"

    def produce(out: Path) -> None:
        module = gomod.download(module_path, v.kyverno)
        with tempfile.TemporaryDirectory(prefix="fleetkit-kyverno-chart-") as tmp:
            chart_dir = Path(tmp) / "kyverno"
            shutil.copytree(module.dir / "charts/kyverno", chart_dir)
            for path in [chart_dir, *chart_dir.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
            meta = yamlio.load((chart_dir / "Chart.yaml").read_text())
            if str(meta["version"]) != v.kyverno_chart:
                raise KitError(f"Kyverno chart in {module_path}@{v.kyverno} is {meta['version']}, "
                               f"versions.yaml says {v.kyverno_chart}")
            api = next(d for d in meta["dependencies"] if d["name"] == "kyverno-api")
            _kyverno_api_subchart(module.dir, chart_dir / "charts" / "kyverno-api", str(api["version"]))
            for dep in meta["dependencies"]:
                if dep["name"] in REMOTE_KYVERNO_DEPENDENCIES:
                    dep.pop("repository", None)
            meta["dependencies"] = [d for d in meta["dependencies"]
                                    if d["name"] not in ("openreports", "reports-server")]
            (chart_dir / "Chart.yaml").write_text(yamlio.dump(meta))
            (chart_dir / "Chart.lock").unlink(missing_ok=True)
            package(chart_dir, out)
        write_index(out)

    return cache.build_once("charts", "kyverno", v.kyverno_chart, cache.recipe_key(("kyverno", v.kyverno, PACKAGING)),
                            f"{module_path}@{v.kyverno}", produce)



def merged_repos(out: Path, *sets: dict[str, Path]) -> dict[str, Path]:
    """One repository per name holding the charts of every set (the previous and the new
    version set's, so that a chart bump in Git finds its chart), with a fresh index."""
    merged: dict[str, Path] = {}
    for repos in sets:
        for name, folder in repos.items():
            target = out / name
            target.mkdir(parents=True, exist_ok=True)
            for archive in folder.glob("*.tgz"):
                shutil.copyfile(archive, target / archive.name)
            merged[name] = target
    for target in merged.values():
        write_index(target)
    return merged
