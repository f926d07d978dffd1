"""Run isolation: run ids in names and labels, liveness, what sweep removes, locks between runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.core import locks, progress
from harness.core.runs import Run, is_alive, process_start, run_id_of
from harness.e2e.sweep import Found, plan


def test_every_name_carries_the_run_id() -> None:
    run = Run.new()
    for name in (run.name("staging"), run.name("registry"), run.network):
        assert run_id_of(name) == run.id
    assert run.labels()["dev.fleet-e2e.run"] == run.id
    assert Run.new().id != run.id


@pytest.mark.parametrize("name", ["kind", "fleet-e2e-staging", "fleet-kit-registry", "fleet-XYZ123-a", "myfleet-a1b2c3-x"])
def test_names_of_others_have_no_run_id(name: str) -> None:
    assert run_id_of(name) is None


def test_a_process_is_alive_only_with_its_own_start_time() -> None:
    me = os.getpid()
    assert is_alive(me, process_start(me))
    assert not is_alive(me, "1")  # same pid, another start time: a reused pid
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start(child.pid)
    child.wait()
    assert not is_alive(child.pid, start)


def test_sweep_removes_dead_runs_keeps_live_ones_clusters_first() -> None:
    found = [
        Found("docker network", "fleet-aaaaaa", "aaaaaa", owner_alive=False),
        Found("container", "fleet-aaaaaa-registry", "aaaaaa", owner_alive=False),
        Found("kind cluster", "fleet-aaaaaa-staging", "aaaaaa"),
        Found("docker network", "fleet-bbbbbb", "bbbbbb", owner_alive=True),
        Found("kind cluster", "fleet-bbbbbb-staging", "bbbbbb"),
        Found("kind cluster", "fleet-cccccc-production", "cccccc"),  # `make up`: its server lives
        Found("docker network", "fleet-cccccc", "cccccc", owner_alive=False),
    ]
    remove, keep = plan(found, extra_live={"cccccc"})
    assert [f.name for f in remove] == ["fleet-aaaaaa-staging", "fleet-aaaaaa-registry", "fleet-aaaaaa"]
    assert {f.run for f in keep} == {"bbbbbb", "cccccc"}


def test_a_second_holder_waits_and_says_for_whom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    previous = progress.current_sink()
    progress.set_sink(lines.append)
    first_in, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with locks.hold(tmp_path, "e2e", "the e2e of run aaaaaa", "one at a time", timeout_s=10):
            order.append("first")
            first_in.set()
            release.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        first_in.wait(5)
        threading.Timer(0.5, release.set).start()
        with locks.hold(tmp_path, "e2e", "the e2e of run bbbbbb", "one at a time", timeout_s=10):
            order.append("second")
    finally:
        thread.join()
        progress.set_sink(previous)
    assert order == ["first", "second"]
    waiting = [line for line in lines if "waiting for the e2e of run aaaaaa" in line]
    assert waiting and "one at a time" in waiting[0] and str(tmp_path) in waiting[0], lines


def test_pytest_kinds_options_are_offered_beside_the_harness_options(repo_root: Path) -> None:
    """pytest-kind is the kind driver: its options are offered (tests/unit/test_pytest_kind.py
    shows what each means here), next to the harness' own."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=repo_root, capture_output=True,
                         text=True, check=True).stdout
    assert "--e2e-environments" in out and "--e2e-admission-cluster" in out
    assert "--cluster-name" in out and "--keep-cluster" in out


def _holding(tmp_path: Path, count: int, what: str, entered: threading.Event, release: threading.Event) -> threading.Thread:
    def hold() -> None:
        with locks.hold_slots(tmp_path, "e2e", count, 2, what, "two clusters at a time", timeout_s=10):
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_two_runs_of_one_cluster_hold_their_slots_at_once(tmp_path: Path) -> None:
    entered, release = threading.Event(), threading.Event()
    first = _holding(tmp_path, 1, "the e2e of run aaaaaa", entered, release)
    try:
        assert entered.wait(5)
        started = time.monotonic()
        with locks.hold_slots(tmp_path, "e2e", 1, 2, "the e2e of run bbbbbb", "two clusters at a time", timeout_s=10):
            assert time.monotonic() - started < 1.0, "the second one-cluster run waited for a free slot"
    finally:
        release.set()
        first.join()


@pytest.mark.parametrize(("held", "wanted"), [(1, 2), (2, 1)], ids=["two-wait-for-one", "one-waits-for-two"])
def test_a_run_waits_for_the_slots_it_needs_and_says_for_whom(tmp_path: Path, held: int, wanted: int) -> None:
    lines: list[str] = []
    previous = progress.current_sink()
    progress.set_sink(lines.append)
    entered, release = threading.Event(), threading.Event()
    first = _holding(tmp_path, held, "the e2e of run aaaaaa", entered, release)
    order: list[str] = []
    try:
        assert entered.wait(5)
        threading.Timer(0.5, lambda: (order.append("first out"), release.set())).start()
        with locks.hold_slots(tmp_path, "e2e", wanted, 2, "the e2e of run bbbbbb", "two clusters at a time",
                              timeout_s=10):
            order.append("second in")
    finally:
        release.set()
        first.join()
        progress.set_sink(previous)
    assert order == ["first out", "second in"]
    waiting = [line for line in lines if "waiting for the e2e of run aaaaaa" in line]
    assert waiting and "two clusters at a time" in waiting[0], lines
