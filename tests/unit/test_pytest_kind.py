"""pytest-kind is the kind driver: KitCluster is its KindCluster with the kit's binaries, and
its `kind_cluster` fixture is a cluster of the session. Where it falls short here (a folder in
the working directory, re-use of any cluster of the name), the wrapper is shown to close the
gap; its options that the harness replaces stop the run and name the replacement."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_kind import KindCluster

from harness.core.config import build_config
from harness.core.runs import Run
from harness.e2e.clusters import PYTEST_KIND_DIR, ClusterError, ExistingCluster, KitCluster
from harness.e2e.fleet import kept_cluster, provide

pytest_plugins = ["pytester"]


def _fake_kind(folder: Path, clusters: list[str]) -> Path:
    """A kind that knows `clusters` and records every other call (no Docker needed)."""
    script = folder / "kind"
    calls = folder / "calls"
    names = " ".join(clusters)
    script.write_text("#!/bin/sh\n"
                      f"if [ \"$1\" = get ]; then for n in {names}; do echo $n; done; exit 0; fi\n"
                      f"echo \"$@\" >> {calls}\n")
    script.chmod(0o755)
    return script


def test_pytest_kinds_constructor_leaves_a_folder_and_the_wrapper_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    KindCluster("plain", tmp_path / "kc", kind_path=tmp_path / "kind", kubectl_path=tmp_path / "kubectl")
    assert (tmp_path / PYTEST_KIND_DIR / "plain").is_dir()  # the gap
    (tmp_path / PYTEST_KIND_DIR / "plain").rmdir()
    (tmp_path / PYTEST_KIND_DIR).rmdir()
    cluster = KitCluster("fleet-abc-staging", tmp_path / "work", str(tmp_path / "kind"),
                         str(tmp_path / "kubectl"), "node:v1", "net")
    assert not (tmp_path / PYTEST_KIND_DIR).exists()
    assert isinstance(cluster.kind, KindCluster)
    assert (cluster.kind.kind_path, cluster.kind.kubectl_path) == (tmp_path / "kind", tmp_path / "kubectl")
    assert cluster.kubeconfig_path == tmp_path / "work" / "kubeconfig"


def test_pytest_kind_reuses_a_cluster_of_the_name_and_the_wrapper_refuses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    kind = _fake_kind(tmp_path, ["fleet-abc-staging"])
    kubeconfig = tmp_path / "work" / "kubeconfig"
    kubeconfig.parent.mkdir()
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: other\n"
        "clusters: [{name: other, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: other, context: {cluster: other, user: other}}]\nusers: [{name: other, user: {}}]\n")
    theirs = KindCluster("fleet-abc-staging", kubeconfig, kind_path=kind, kubectl_path=tmp_path / "kubectl")
    theirs.create()  # the gap: another run's cluster is taken over without a word
    assert not (tmp_path / "calls").exists(), "pytest-kind ran kind create for an existing cluster"
    ours = KitCluster("fleet-abc-staging", tmp_path / "work", str(kind), str(tmp_path / "kubectl"), "node:v1", "net")
    with pytest.raises(ClusterError, match="already exists: this run did not create it"):
        ours.create()
    assert not (tmp_path / "calls").exists()


def test_kind_cluster_is_a_cluster_of_the_session(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeconftest(f'''
import pytest
from pathlib import Path
from harness.e2e.clusters import KitCluster
from harness.e2e.handles import ClusterHandle

pytest_plugins = ["harness.entry.plugin"]

class FakeFleet:
    def __init__(self):
        self.clusters = {{env: ClusterHandle(env, KitCluster(f"fleet-x-{{env}}", Path({str(tmp_path)!r}) / env,
                                                             "/bin/true", "/bin/true", "node:v1", "net"),
                                             None, Path({str(tmp_path)!r}))
                         for env in ("staging", "production")}}

@pytest.fixture(scope="session")
def fleet():
    return FakeFleet()
''')
    pytester.makepyfile(test_inner='''
def test_default(kind_cluster):
    assert kind_cluster.name == "fleet-x-staging"
''')
    pytester.makepyfile(test_named='''
def test_named(kind_cluster):
    assert kind_cluster.name == "fleet-x-production"
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_inner.py").assert_outcomes(passed=1)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_named.py",
                                  "--cluster-name=production").assert_outcomes(passed=1)
    unknown = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_inner.py", "--cluster-name=qa")
    unknown.assert_outcomes(errors=1)
    unknown.stdout.fnmatch_lines(["*--cluster-name=qa: name one of this session's clusters (staging, production)*"])


def test_pytest_kind_options_the_harness_replaces_name_the_replacement(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["harness.entry.plugin"]\n')
    pytester.makepyfile(test_inner='''
import pytest
pytestmark = pytest.mark.e2e
def test_needs_clusters():
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--keep-cluster")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*--keep-cluster (pytest-kind's option) is not used by this harness: `make up`*"])


class _Kit:
    """What fleet.provide and the attach read of a kit: the binaries and the node image."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.node_image = folder, "node:v1"

    def binary(self, name: str) -> str:
        return str(self.folder / name)


def test_each_environments_provider_comes_from_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    kubeconfig = tmp_path / "theirs.yaml"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    config = build_config({"kubeconfigs": f"production={kubeconfig}"})
    run = Run.new()
    existing = provide(config, _Kit(tmp_path), run, "production", tmp_path / "production")  # type: ignore[arg-type]
    kind = provide(config, _Kit(tmp_path), run, "staging", tmp_path / "staging")  # type: ignore[arg-type]
    assert isinstance(existing, ExistingCluster) and existing.kubeconfig_path == kubeconfig.resolve()
    assert isinstance(kind, KitCluster) and kind.name == run.name("staging")


def test_a_kept_cluster_attaches_as_the_kind_cluster_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make up`'s clusters come back as kind clusters (their node logs export); one whose kind
    cluster is gone is reached through its kubeconfig alone."""
    monkeypatch.chdir(tmp_path)
    run = Run.new()
    _fake_kind(tmp_path, [run.name("staging")])
    kit = _Kit(tmp_path)
    kept = kept_cluster(kit, run, "staging", tmp_path / "staging" / "kubeconfig", tmp_path / "staging")  # type: ignore[arg-type]
    gone = kept_cluster(kit, run, "production", tmp_path / "production" / "kubeconfig", tmp_path / "production")  # type: ignore[arg-type]
    assert isinstance(kept, KitCluster) and kept.name == run.name("staging")
    assert isinstance(gone, ExistingCluster)
