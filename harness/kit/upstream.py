"""The kit's other source: for machines with internet, fill the same local registry and chart
repositories from upstream (docker pull, chart downloads) instead of building them."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from harness.core import commands, yamlio
from harness.core.errors import CommandError, KitError
from harness.core.progress import step
from harness.kit import cache, charts
from harness.kit.oci import BuiltImage, image_size

CHART_REPOSITORIES = {
    "podinfo": "https://stefanprodan.github.io/podinfo",
    "kyverno": "https://kyverno.github.io/kyverno",
}
DOWNLOAD_TIMEOUT_S = 60.0


def pull(tag: str) -> BuiltImage:
    """docker pull of an upstream image, with the fix named when it fails."""
    try:
        with step(f"pulling {tag}"):
            commands.run(["docker", "pull", tag], timeout_s=1800.0)
    except CommandError as exc:
        raise KitError(f"cannot pull {tag} from upstream ({exc.stderr.strip()[:300]}); without "
                       "internet access build it instead: make kit (source: build)") from exc
    return BuiltImage(tag, True, 0.0, image_size(tag))


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            return bytes(response.read())
    except (urllib.error.URLError, OSError) as exc:
        raise KitError(f"cannot download {url} ({exc}); without internet access build the charts "
                       "instead: make kit (source: build)") from exc


def chart_repo(name: str, version: str) -> cache.Artifact:
    """One chart version from its upstream Helm repository, re-indexed locally."""
    base = CHART_REPOSITORIES[name]

    def produce(out: Path) -> None:
        index = yamlio.load(_fetch(f"{base}/index.yaml").decode())
        entry = next((e for e in index.get("entries", {}).get(name, []) if str(e["version"]) == version), None)
        if entry is None:
            raise KitError(f"{base} has no {name} chart {version}; fix versions.yaml")
        url = entry["urls"][0]
        url = url if "://" in url else f"{base}/{url}"
        archive = _fetch(url)
        if entry.get("digest") and hashlib.sha256(archive).hexdigest() != entry["digest"]:
            raise KitError(f"{url}: digest mismatch with {base}/index.yaml")
        (out / f"{name}-{version}.tgz").write_bytes(archive)
        charts.write_index(out)

    return cache.build_once("charts-upstream", name, version, cache.recipe_key((base, version)), base, produce)
