"""Run isolation: run ids in names and labels, liveness, what sweep removes, locks between runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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
