"""The nodes' logs are exported once per session, for every cluster, into one folder; a
cluster whose logs cannot be exported is named and the others are still exported."""

from __future__ import annotations

from pathlib import Path

from harness.core import progress
from harness.core.errors import HarnessError
from harness.e2e.fleet import NODE_LOGS, export_node_logs


class FakeCluster:
    def __init__(self, name: str, fails: bool = False) -> None:
        self.name, self.fails, self.exports = name, fails, 0

    def export_logs(self, target: Path) -> None:
        self.exports += 1
        if self.fails:
            raise HarnessError("kind export logs failed")
        target.mkdir(parents=True)
        (target / "kubelet.log").write_text("journal\n")


class FakeHandle:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster


class FakeFleet:
    def __init__(self, artifacts: Path, clusters: dict[str, FakeCluster]) -> None:
        self.artifacts = artifacts
        self.clusters = {env: FakeHandle(c) for env, c in clusters.items()}

    def diagnostics_dir(self, name: str) -> Path:
        return self.artifacts / name


def test_every_clusters_node_logs_land_in_one_folder(tmp_path: Path) -> None:
    staging, production = FakeCluster("fleet-x-staging"), FakeCluster("fleet-x-production", fails=True)
    lines: list[str] = []
    previous = progress.current_sink()
    progress.set_sink(lines.append)
    try:
        folder = export_node_logs(FakeFleet(tmp_path, {"staging": staging, "production": production}))  # type: ignore[arg-type]
    finally:
        progress.set_sink(previous)
    assert folder == tmp_path / NODE_LOGS
    assert (folder / "staging" / "kubelet.log").read_text() == "journal\n"
    assert (staging.exports, production.exports) == (1, 1)
    said = "\n".join(lines)
    assert f"node logs written to {folder}" in said
    assert "could not export: node logs of fleet-x-production: kind export logs failed" in said
