"""pytest plugin: e2e options, session fixtures for the fleet, per-test diagnostics on failure."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Generator, Iterator

import pytest

from harness.config import E2EConfig, build_config
from harness.errors import HarnessError
from harness.fleet import ClusterHandle, Fleet, collect_diagnostics, fleet_up
from harness.kit.build import Kit, build_kit
from harness.kit.host import prepare_host
from harness.versions import Versions

FLEET_KEY = pytest.StashKey[Fleet]()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # CI systems cancel with SIGTERM: treat it like Ctrl-C so fixtures tear down (clusters,
    # registry, Git server) instead of the process dying with everything left running.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fleet-e2e", "multi-tenant fleet end-to-end tests")
    group.addoption("--e2e-environments", default=None,
                    help="comma-separated clusters to test: staging,production (default: both)")
    group.addoption("--e2e-artifacts", default=None,
                    help="folder for diagnostics and reports (default: ./artifacts)")
    group.addoption("--e2e-kubeconfig", action="append", default=[], metavar="ENV=PATH",
                    help="run ENV against an existing cluster instead of creating a kind cluster "
                         "(it must reach this host's address on kind's network and pull the images)")
    parser.addini("e2e_environments", "default for --e2e-environments", default="")
    parser.addini("e2e_artifacts", "default for --e2e-artifacts", default="")
    # --keep-cluster comes from pytest-kind and keeps the e2e clusters too.


def _config(config: pytest.Config) -> E2EConfig:
    return build_config(
        config.getoption("e2e_environments"), bool(config.getoption("keep_cluster", False)),
        config.getoption("e2e_artifacts"), str(config.getini("e2e_environments")),
        str(config.getini("e2e_artifacts")), config.getoption("e2e_kubeconfig"),
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Cluster-free tests first: their answer comes in seconds, before any cluster is created."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests taking `env` run once per configured cluster (deselect with --e2e-environments)."""
    if "env" in metafunc.fixturenames:
        environments = _config(metafunc.config).environments
        metafunc.parametrize("env", environments, ids=list(environments), scope="session")


@pytest.fixture(scope="session")
def e2e_config(pytestconfig: pytest.Config) -> E2EConfig:
    """The e2e's validated settings."""
    return _config(pytestconfig)


@pytest.fixture(scope="session")
def kit(versions: Versions) -> Kit:
    """The offline kit (host prepared, every tool and image built or cached, registry filled)."""
    try:
        prepare_host()
        return build_kit(versions)
    except HarnessError as exc:
        pytest.fail(f"the e2e needs the kit and a working Docker: {exc}\n"
                    "(run `make kit` to see the full build, or deselect with -m 'not e2e')", pytrace=False)


@pytest.fixture(scope="session")
def fleet(request: pytest.FixtureRequest, e2e_config: E2EConfig, kit: Kit,
          tmp_path_factory: pytest.TempPathFactory,
          record_testsuite_property: Callable[[str, object], None]) -> Iterator[Fleet]:
    """Clusters created, Flux bootstrapped from the local Git server, everything Ready."""
    v = kit.versions
    for key, value in (("kubernetes", v.kubernetes), ("flux", v.flux.cli), ("kyverno", v.kyverno),
                       ("kind", v.kind), ("podinfo", v.podinfo)):
        record_testsuite_property(f"version.{key}", value)
    with fleet_up(e2e_config, kit, tmp_path_factory.mktemp("e2e")) as fleet:
        request.session.stash[FLEET_KEY] = fleet
        for name, seconds in fleet.timings.steps:
            record_testsuite_property(f"time.{name}", f"{seconds:.1f}s")
        for hit in fleet.rewrites:
            record_testsuite_property("rewrite", str(hit))
        yield fleet


@pytest.fixture
def cluster(fleet: Fleet, env: str) -> ClusterHandle:
    """The cluster of the environment this test runs for."""
    return fleet.clusters[env]  # type: ignore[index]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    fleet = item.session.stash.get(FLEET_KEY, None)
    if report.failed and call.when in ("setup", "call") and fleet is not None:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
        folder = collect_diagnostics(fleet, name)
        report.sections.append(("diagnostics", f"diagnostics for this failure: {folder}"))

