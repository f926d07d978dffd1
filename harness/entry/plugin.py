"""pytest plugin: e2e options, session fixtures for the fleet, per-test diagnostics on failure."""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_kind import KindCluster

from harness.core import history
from harness.core.config import EVERY, OPTIONS, E2EConfig, build_config
from harness.core.errors import HarnessError
from harness.core.progress import Sink, current_sink, say, set_sink
from harness.core.repo import tree_engine
from harness.core.topology import Topology, environments, read
from harness.core.versions import REPO_ROOT, load_versions
from harness.e2e import engines
from harness.e2e.clusters import KitCluster
from harness.e2e.environment import e2e_fleet
from harness.e2e.fleet import NODE_LOGS, collect_diagnostics, export_node_logs
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.probe import (
    PERIOD_S,
    PROBE_LOG,
    case_rows,
    case_table,
    interval_summary,
    rows,
    summary_line,
    table,
)
from harness.e2e.repos import WORKING_TREE, native_source, start_source
from harness.e2e.upgrade import UpgradeRun
from harness.kit.build import Kit, build_kit
from harness.kit.charts import merged_repos
from harness.kit.host import prepare_host
from harness.kit.requirements import check as check_requirements

FLEET_KEY = pytest.StashKey[Fleet]()
CONFIG_KEY = pytest.StashKey["E2EConfig | HarnessError"]()
SINK_KEY = pytest.StashKey[Sink]()
UPGRADE_KEY = pytest.StashKey[UpgradeRun]()
START_KEY = pytest.StashKey[history.Start]()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # CI systems cancel with SIGTERM: treat it like Ctrl-C so fixtures tear down (clusters,
    # registry, Git server) instead of the process dying with everything left running.
    signal.signal(signal.SIGTERM, _interrupt)
    config.stash[SINK_KEY] = current_sink()
    set_sink(_live_sink(config))
    # How refusals name their policy is known from the settings, before the test modules
    # (whose parameters name policies) are imported; the fleet's own engine replaces it later.
    try:
        engines.use(engines.named(_config(config).policy_engine))
    except HarnessError:
        engines.use(engines.named("kyverno"))  # the bad setting is reported when the e2e starts


def pytest_unconfigure(config: pytest.Config) -> None:
    # Back to what was there before: a session run inside another (pytester) hands it back.
    set_sink(config.stash.get(SINK_KEY, None))
    run = config.stash.get(UPGRADE_KEY, None)
    if run is not None and run.record.phases:
        # The last line of the run, after pytest's own summary, for scripts.
        print(summary_line(rows(run.record)), flush=True)


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


def _upgrading(config: pytest.Config) -> bool | None:
    """Whether this is an upgrade run; None while the settings are invalid (the e2e reports
    them once, when it starts)."""
    try:
        return _config(config).upgrade_from is not None
    except HarnessError:
        return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cluster-free tests first: their answer comes in seconds, before any cluster is created.
    The upgrade tests run only in an upgrade run, and there before every other e2e test."""
    # With invalid settings the upgrade tests stay, so the e2e's start reports the bad value.
    if _upgrading(config) is False:
        deselected = [item for item in items if item.get_closest_marker("upgrade")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("upgrade")]
    _place_admission_tests(config, items)
    _keep_engine_tests(config, items)
    items.sort(key=lambda item: (item.get_closest_marker("e2e") is not None,
                                 item.get_closest_marker("upgrade") is None))


def _place_admission_tests(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `admission` run on --e2e-admission-cluster only (every cluster admits alike,
    which the test marked `admission_alike` checks live); with `every`, on each cluster, and
    the check is moot, as it is with one cluster."""
    try:
        settings = _config(config)
    except HarnessError:
        return  # reported once, when the e2e starts
    chosen = settings.admission_cluster

    def elsewhere(item: pytest.Item) -> bool:
        if chosen == EVERY or len(settings.environments) < 2:
            return item.get_closest_marker("admission_alike") is not None
        callspec = getattr(item, "callspec", None)
        env = callspec.params.get("env") if callspec is not None else None
        return item.get_closest_marker("admission") is not None and env not in (None, chosen)

    deselected = [item for item in items if elsewhere(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not elsewhere(item)]


def _keep_engine_tests(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `policy_engine(NAME)` is about that engine itself (taking Kyverno down, its
    policy kinds, its chart): it runs only when the fleet runs that engine."""
    try:
        engine = _config(config).policy_engine
    except HarnessError:
        return  # reported once, when the e2e starts

    def other(item: pytest.Item) -> bool:
        marker = item.get_closest_marker("policy_engine")
        return marker is not None and engine not in marker.args

    deselected = [item for item in items if other(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not other(item)]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Settings and host requirements are checked in the first seconds, before any build."""
    if session.config.option.collectonly:
        return
    e2e = any(item.get_closest_marker("e2e") for item in session.items)
    kit = any(item.get_closest_marker("kit") for item in session.items)
    try:
        if e2e:
            _pytest_kind_options(session.config)
            config = _config(session.config)
            _topology(session.config).served_tenants()
            if config.upgrade_from is not None:
                session.config.stash[START_KEY] = history.resolve(config.upgrade_from)
            prepare_host("e2e")
        elif kit:
            check_requirements("validate")
    except HarnessError as exc:
        pytest.exit(f"{exc}\n(deselect the e2e with -m 'not e2e' to run only the cluster-free tests)",
                    returncode=pytest.ExitCode.USAGE_ERROR)


TOPOLOGY_KEY = pytest.StashKey[Topology]()


def _topology(config: pytest.Config) -> Topology:
    """The working tree's topology, read once per session."""
    if TOPOLOGY_KEY not in config.stash:
        config.stash[TOPOLOGY_KEY] = read()
    return config.stash[TOPOLOGY_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests taking `env` run once per configured cluster (the folders of clusters/; deselect
    with --e2e-environments); tests taking `team` once per tenant whose repository this tree
    holds (the folders of tenants/base/ with a tenant-repo-* folder); marked `first_tenant`,
    as the first of them only."""
    if "env" in metafunc.fixturenames:
        try:
            chosen = _config(metafunc.config).environments
        except HarnessError:
            chosen = environments()  # reported once, when the e2e starts
        metafunc.parametrize("env", chosen, ids=list(chosen), scope="session")
    if "team" in metafunc.fixturenames:
        try:
            tenants = _topology(metafunc.config).served_tenants()
        except HarnessError:
            tenants = ()  # the e2e start stops on it with the fix, before anything runs
        if metafunc.definition.get_closest_marker("first_tenant"):
            tenants = tenants[:1]
        metafunc.parametrize("team", tenants, ids=[t.name for t in tenants], scope="session")


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


def _build(versions_file: Path, e2e_config: E2EConfig) -> Kit:
    try:
        # What the tree's engine needs: a Kyverno fleet's kit also serves its native run (make e2e runs both).
        return build_kit(load_versions(versions_file), e2e_config.kit_source, engines.engine_of(REPO_ROOT).kit_parts)
    except HarnessError as exc:
        pytest.fail(f"the e2e needs the kit of {versions_file.name} and a working Docker: {exc}\n"
                    f"(run `make kit VERSIONS={versions_file.name}` to see the full build, or deselect "
                    "with -m 'not e2e')", pytrace=False)


@pytest.fixture(scope="session")
def kit(e2e_config: E2EConfig) -> Kit:
    """The kit of the chosen version set (--e2e-versions), built or cached, from the chosen source."""
    return _build(e2e_config.versions_file, e2e_config)


@pytest.fixture(scope="session")
def fleet(request: pytest.FixtureRequest, e2e_config: E2EConfig, kit: Kit,
          tmp_path_factory: pytest.TempPathFactory,
          record_testsuite_property: Callable[[str, object], None]) -> Iterator[Fleet]:
    """Clusters created (or `make up`'s attached), Flux bootstrapped from the local Git server,
    everything Ready; one e2e at a time on a host, the run id on everything created. An upgrade
    run starts at --e2e-upgrade-from's state (a commit's repos and set, or a set with the working
    tree's repos at the API versions it serves and the new set drops), serving both sets' charts."""
    start, source = kit, WORKING_TREE
    if e2e_config.policy_engine != tree_engine(REPO_ROOT):  # the variant, written for this run
        source = native_source(tmp_path_factory.mktemp("native-fleet"))
    if e2e_config.upgrade_from is not None:
        origin = request.config.stash[START_KEY]
        try:
            origin = history.materialize(origin, tmp_path_factory.mktemp("start"))
            previous = _build(origin.versions_file, e2e_config)
            source, kept = start_source(origin, previous.binary("flux"), kit.binary("flux"))
        except HarnessError as exc:
            pytest.fail(f"the upgrade's start ({origin.why}): {exc}", pytrace=False)
        charts = merged_repos(tmp_path_factory.mktemp("charts"), previous.chart_repos, kit.chart_repos)
        start = replace(previous, chart_repos=charts)
        request.config.stash[UPGRADE_KEY] = UpgradeRun(start, replace(kit, chart_repos=charts), origin,
                                                       source.root, kept=kept)
        record_testsuite_property("upgrade-from", origin.why)
        record_testsuite_property("upgrade-from.repos", source.label)
        for key, value in (("flux", previous.versions.flux.cli), ("kyverno", previous.versions.kyverno),
                           ("kyverno-chart", previous.versions.kyverno_chart)):
            record_testsuite_property(f"upgrade-from.{key}", value)
    v = kit.versions
    record_testsuite_property("version-set", v.name)
    for key, value in (("kubernetes", start.node_kubernetes), ("flux", v.flux.cli), ("kyverno", v.kyverno),
                       ("kind", v.kind), ("podinfo", v.podinfo), ("kit-source", kit.source),
                       ("node-image", kit.node_image)):
        record_testsuite_property(f"version.{key}", value)
    with e2e_fleet(e2e_config, start, tmp_path_factory.mktemp("e2e"), source) as fleet:
        request.session.stash[FLEET_KEY] = fleet
        engines.use(fleet.engine)
        record_testsuite_property("policy-engine", fleet.engine.name)
        # What the clusters run, as their API servers say (an upgrade run never upgrades nodes).
        for env, handle in fleet.clusters.items():
            record_testsuite_property(f"version.kubernetes.{env}", handle.kube.server_version())
        for name, seconds in fleet.timings.steps:
            record_testsuite_property(f"time.{name}", f"{seconds:.1f}s")
        for hit in fleet.rewrites:
            record_testsuite_property("rewrite", str(hit))
        run = request.config.stash.get(UPGRADE_KEY, None)
        for why in run.kept if run is not None else []:
            say(f"start state: {why}")
            record_testsuite_property("upgrade-from.kept", why)
        yield fleet
        if request.session.testsfailed:
            export_node_logs(fleet)  # once, before the clusters go; each failure's folder points here


@pytest.fixture(scope="session")
def upgrade(request: pytest.FixtureRequest, fleet: Fleet) -> UpgradeRun:
    """The upgrade run's state (the fleet is up at its starting set)."""
    run = request.config.stash.get(UPGRADE_KEY, None)
    if run is None:
        pytest.fail("the upgrade tests need --e2e-upgrade-from (make upgrade)", pytrace=False)
    return run


@pytest.fixture(autouse=True)
def _after_the_upgrade(request: pytest.FixtureRequest) -> None:
    """In an upgrade run, the other e2e tests judge the upgraded fleet: they fail (not skip)
    when the upgrade did not complete."""
    node = request.node
    if not node.get_closest_marker("e2e") or node.get_closest_marker("upgrade") or not _upgrading(request.config):
        return
    run = request.config.stash.get(UPGRADE_KEY, None)
    if run is None or not run.done:
        pytest.fail("this run upgrades the fleet in place first, and the upgrade did not complete "
                    "(see tests/upgrade/test_upgrade.py's result above)", pytrace=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    run = config.stash.get(UPGRADE_KEY, None)
    if run is not None and run.record.phases:
        terminalreporter.write_sep("=", "in-place upgrade")
        terminalreporter.write_line(table(rows(run.record)))
        terminalreporter.write_line("")
        terminalreporter.write_line(case_table(case_rows(run.record)))
        for change in run.record.changes:
            terminalreporter.write_line(f"admission policy change: {change}")
        terminalreporter.write_line(
            f"probe: {len(run.record.all())} answers, a tick every {PERIOD_S:.0f}s on each cluster; "
            f"{interval_summary(run.record)}; every answer in {_config(config).artifacts / PROBE_LOG}")


@pytest.fixture
def cluster(fleet: Fleet, env: str) -> ClusterHandle:
    """The cluster of the environment this test runs for."""
    return fleet.clusters[env]


PYTEST_KIND_DEFAULT_NAME = "pytest-kind"  # --cluster-name's default in pytest-kind
# pytest-kind's options that have a harness equivalent; set, they stop the run and name it.
PYTEST_KIND_EQUIVALENTS = {
    "keep_cluster": ("--keep-cluster", ("`make up` keeps an environment running (`make e2e UP=1` tests "
                                        "it, `make down` removes it); a run's own clusters are always removed")),
    "kubeconfig": ("--kubeconfig", "--e2e-kubeconfigs ENV=PATH runs an environment on an existing cluster"),
    "kind_image": ("--kind-image", "the clusters run the kit's node image (versions.yaml pins its Kubernetes)"),
    "kind_bin": ("--kind-bin", "the kit builds kind from the version versions.yaml pins"),
    "kind_kubectl_bin": ("--kind-kubectl-bin", "the kit builds kubectl from the version versions.yaml pins"),
}


def _pytest_kind_options(config: pytest.Config) -> None:
    for dest, (option, instead) in PYTEST_KIND_EQUIVALENTS.items():
        if config.getoption(dest, default=None):
            raise HarnessError(f"{option} (pytest-kind's option) is not used by this harness: {instead}")


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest, fleet: Fleet) -> KindCluster:
    """pytest-kind's fixture, meaning here: a cluster of this session as pytest-kind's
    KindCluster (`kubectl()`, `port_forward()`, `api`, `load_docker_image()`), made from the
    kit with the fleet up on it. `--cluster-name=ENV` picks the environment (pytest-kind's
    default name picks the first one tested, staging unless --e2e-environments says otherwise)."""
    name = request.config.getoption("cluster_name", default=PYTEST_KIND_DEFAULT_NAME)
    if name != PYTEST_KIND_DEFAULT_NAME and name not in fleet.clusters:
        pytest.fail(f"--cluster-name={name}: name one of this session's clusters ({', '.join(fleet.clusters)})",
                    pytrace=False)
    env = name if name in fleet.clusters else next(iter(fleet.clusters))
    cluster = fleet.clusters[env].cluster
    if not isinstance(cluster, KitCluster):
        pytest.fail(f"kind_cluster: {env} runs on a cluster the harness did not create ({cluster.name}), "
                    "not a kind cluster of the kit", pytrace=False)
    return cluster.kind


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    fleet = item.session.stash.get(FLEET_KEY, None)
    if report.failed and call.when in ("setup", "call") and fleet is not None:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
        folder = collect_diagnostics(fleet, name, node_logs=False)
        nodes = fleet.diagnostics_dir(NODE_LOGS)
        text = (f"diagnostics for this failure: {folder}\n"
                f"the nodes' logs: {nodes} (exported once, when the session ends)")
        report.sections.append(("diagnostics", text))

