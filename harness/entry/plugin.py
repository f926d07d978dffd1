"""pytest plugin: e2e options, session fixtures for the fleet, per-test diagnostics on failure."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable, Generator, Iterator

import pytest

from harness.core.config import OPTIONS, E2EConfig, build_config
from harness.core.errors import HarnessError
from harness.core.progress import Sink, current_sink, set_sink
from harness.core.repo import ENVIRONMENTS
from harness.core.versions import Versions
from harness.e2e.environment import e2e_fleet
from harness.e2e.fleet import collect_diagnostics
from harness.e2e.handles import ClusterHandle, Fleet
from harness.kit.build import Kit, build_kit
from harness.kit.host import prepare_host
from harness.kit.requirements import check as check_requirements

FLEET_KEY = pytest.StashKey[Fleet]()
CONFIG_KEY = pytest.StashKey["E2EConfig | HarnessError"]()
SINK_KEY = pytest.StashKey[Sink]()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # CI systems cancel with SIGTERM: treat it like Ctrl-C so fixtures tear down (clusters,
    # registry, Git server) instead of the process dying with everything left running.
    signal.signal(signal.SIGTERM, _interrupt)
    config.stash[SINK_KEY] = current_sink()
    set_sink(_live_sink(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    # Back to what was there before: a session run inside another (pytester) hands it back.
    set_sink(config.stash.get(SINK_KEY, None))


def _live_sink(config: pytest.Config) -> Callable[[str], None]:
    """Progress lines past pytest's output capture, so builds and waits show as they happen.

    The plugins are looked up per line: this plugin is configured before pytest creates its
    terminal reporter.
    """
    def write(line: str) -> None:
        capture = config.pluginmanager.getplugin("capturemanager")
        terminal = config.pluginmanager.getplugin("terminalreporter")
        if capture is None or terminal is None:
            print(line, file=sys.stderr, flush=True)
            return
        # Progress also comes from the ticker thread: progress' lock serialises the calls.
        with capture.global_and_fixture_disabled():
            terminal.write_line(line)
            terminal.flush()

    return write


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fleet-e2e", "multi-tenant fleet end-to-end tests "
                            "(each option also reads FLEET_E2E_<NAME> and the ini key e2e_<name>)")
    for option in OPTIONS:
        if option.flag:
            group.addoption(option.cli, dest=option.dest, action="store_true", default=False,
                            help=f"{option.help} [{option.env}]")
        else:
            group.addoption(option.cli, dest=option.dest, default=None, metavar=option.metavar,
                            help=f"{option.help} [{option.env}]")
        parser.addini(option.ini, f"default for {option.cli}", default="")


def _config(config: pytest.Config) -> E2EConfig:
    """The settings, read once; a bad value is kept as the error, raised only where the e2e
    needs the settings, so cluster-free runs are not broken by a bad FLEET_E2E_* value."""
    cached = config.stash.get(CONFIG_KEY, None)
    if cached is None:
        try:
            cached = build_config({o.name: config.getoption(o.dest) for o in OPTIONS},
                                  {o.name: str(config.getini(o.ini)) for o in OPTIONS})
        except HarnessError as exc:
            cached = exc
        config.stash[CONFIG_KEY] = cached
    if isinstance(cached, HarnessError):
        raise cached
    return cached


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Cluster-free tests first: their answer comes in seconds, before any cluster is created."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Settings and host requirements are checked in the first seconds, before any build."""
    if session.config.option.collectonly:
        return
    e2e = any(item.get_closest_marker("e2e") for item in session.items)
    kit = any(item.get_closest_marker("kit") for item in session.items)
    try:
        if e2e:
            _config(session.config)
            prepare_host("e2e")
        elif kit:
            check_requirements("validate")
    except HarnessError as exc:
        pytest.exit(f"{exc}\n(deselect the e2e with -m 'not e2e' to run only the cluster-free tests)",
                    returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests taking `env` run once per configured cluster (deselect with --e2e-environments)."""
    if "env" in metafunc.fixturenames:
        try:
            environments = _config(metafunc.config).environments
        except HarnessError:
            environments = ENVIRONMENTS  # reported once, when the e2e starts
        metafunc.parametrize("env", environments, ids=list(environments), scope="session")


@pytest.fixture(scope="session")
def kit_source(pytestconfig: pytest.Config) -> str:
    """Where the kit's images come from; "build" while the e2e settings are invalid (the
    cluster-free tests do not depend on them, the e2e reports the bad value)."""
    try:
        return _config(pytestconfig).kit_source
    except HarnessError:
        return "build"


@pytest.fixture(scope="session")
def e2e_config(pytestconfig: pytest.Config) -> E2EConfig:
    """The e2e's validated settings."""
    return _config(pytestconfig)


@pytest.fixture(scope="session")
def kit(versions: Versions, e2e_config: E2EConfig) -> Kit:
    """The kit: every tool and image built or cached, from the chosen source."""
    try:
        return build_kit(versions, e2e_config.kit_source)
    except HarnessError as exc:
        pytest.fail(f"the e2e needs the kit and a working Docker: {exc}\n"
                    "(run `make kit` to see the full build, or deselect with -m 'not e2e')", pytrace=False)


@pytest.fixture(scope="session")
def fleet(request: pytest.FixtureRequest, e2e_config: E2EConfig, kit: Kit,
          tmp_path_factory: pytest.TempPathFactory,
          record_testsuite_property: Callable[[str, object], None]) -> Iterator[Fleet]:
    """Clusters created (or `make up`'s attached), Flux bootstrapped from the local Git server,
    everything Ready; one e2e at a time on a host, the run id on everything created."""
    v = kit.versions
    for key, value in (("kubernetes", kit.node_kubernetes), ("flux", v.flux.cli), ("kyverno", v.kyverno),
                       ("kind", v.kind), ("podinfo", v.podinfo), ("kit-source", kit.source),
                       ("node-image", kit.node_image)):
        record_testsuite_property(f"version.{key}", value)
    with e2e_fleet(e2e_config, kit, tmp_path_factory.mktemp("e2e")) as fleet:
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

