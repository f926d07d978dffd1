"""Steps run side by side (each cluster's bring-up): at once, the first failure raised with the
others named, the rest stopped at their next wait; and the line that tells fleet_up a bootstrap
has pushed its last commit, in the Flux of each version set; the bootstraps all at once when the
first found the published fleet up to date, in turns when it pushed; what is published for them."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from harness.core import progress
from harness.core.errors import HarnessError
from harness.core.parallel import run_together
from harness.core.versions import PREVIOUS_VERSIONS_FILE, VERSIONS_FILE, load_versions
from harness.core.waits import wait_for
from harness.e2e.fleet import BootstrapTurns, delete_clusters
from harness.e2e.flux import LAST_PUSH_DONE, bootstrap_files
from harness.kit import gomod
from harness.kit.flux import FLUX_MODULE


def test_steps_run_at_the_same_time_and_their_lines_name_them() -> None:
    # Each step waits for the other to arrive: run one after the other, both would time out.
    both_here = threading.Barrier(2, timeout=10.0)
    arrived: list[str] = []
    lines: list[str] = []

    def step(name: str) -> None:
        both_here.wait()
        arrived.append(name)
        progress.say(f"arrived as {name}")

    previous = progress.current_sink()

    progress.set_sink(lines.append)
    try:
        run_together({"staging": lambda: step("staging"), "production": lambda: step("production")})
    finally:
        progress.set_sink(previous)
    assert sorted(arrived) == ["production", "staging"]
    said = sorted(line.split("] ", 1)[1] for line in lines)
    assert said == ["production: arrived as production", "staging: arrived as staging"]


def test_the_first_failure_is_raised_and_stops_the_others_at_their_next_wait() -> None:
    def fails() -> None:
        time.sleep(0.2)
        raise ValueError("kind could not create the cluster")

    def waits_long() -> None:
        wait_for("something that never holds", lambda: (False, None, "not yet"), timeout_s=60.0,
                 interval_s=0.1)

    started = time.monotonic()
    with pytest.raises(ValueError, match="kind could not create the cluster") as error:
        run_together({"staging": fails, "production": waits_long})
    assert time.monotonic() - started < 10.0, "the other step ran to its own deadline"
    notes = "\n".join(error.value.__notes__)
    assert "in step 'staging', run beside production" in notes
    assert "production" not in notes.split("run beside production", 1)[1], \
        "the abandoned step is reported as a failure of its own"


def test_every_real_failure_is_named() -> None:
    def fails(what: str) -> None:
        raise RuntimeError(what)

    with pytest.raises(RuntimeError) as error:
        run_together({"staging": lambda: fails("bootstrap of staging failed"),
                      "production": lambda: fails("bootstrap of production failed")})
    text = str(error.value) + "\n" + "\n".join(error.value.__notes__)
    assert "bootstrap of staging failed" in text and "bootstrap of production failed" in text


class _Node:
    """A cluster as delete_clusters sees it; its deletion waits for every other to start."""

    def __init__(self, name: str, started: threading.Barrier, fails: bool = False) -> None:
        self.name, self.started, self.fails, self.deleted = name, started, fails, False

    def delete(self) -> None:
        self.started.wait()
        if self.fails:
            raise HarnessError(f"kind could not delete {self.name}")
        self.deleted = True


def test_the_runs_clusters_are_deleted_at_once_and_a_failure_stops_no_other() -> None:
    # Each deletion waits for the others to begin: one after the other, the barrier times out.
    started = threading.Barrier(3, timeout=10.0)
    nodes = [_Node("fleet-a-staging", started), _Node("fleet-a-production", started, fails=True),
             _Node("fleet-a-other", started)]
    lines: list[str] = []
    previous = progress.current_sink()
    progress.set_sink(lines.append)
    try:
        delete_clusters(nodes)  # type: ignore[arg-type]
    finally:
        progress.set_sink(previous)
    assert [n.deleted for n in nodes] == [True, False, True]
    assert any("could not delete cluster fleet-a-production" in line for line in lines), lines


@pytest.mark.parametrize("set_file", [VERSIONS_FILE, PREVIOUS_VERSIONS_FILE], ids=lambda p: p.name)
def test_bootstrap_pushes_nothing_after_the_line_that_says_so(set_file: Path) -> None:
    """fleet_up starts a cluster's waits for the fleet's final HEAD once every bootstrap has
    printed this line: in each pinned Flux (both sets bring fleets up), it must follow the last
    push (the sync manifests'), or a wait could start on a HEAD that then moves."""
    versions = load_versions(set_file)
    module = gomod.download(FLUX_MODULE, versions.flux.cli)
    source = (module.dir / "pkg" / "bootstrap" / "bootstrap_plain_git.go").read_text()
    marker = source.index(f'Actionf("{LAST_PUSH_DONE}")')
    pushes = [m.start() for m in re.finditer(r"\.Push\(ctx", source)]
    assert pushes, "the pinned Flux's plain Git bootstrap pushes nowhere: the check read the wrong file"
    assert max(pushes) < marker, "flux bootstrap pushes after the line fleet_up takes as its last push"


def _bootstraps(turns: BootstrapTurns, first_commits: list[str], first_done: threading.Event,
                second_started: threading.Event) -> dict[str, Callable[[], None]]:
    """Two bring-ups through `turns`: the first reports `first_commits` at its last push, then
    runs on until `first_done`; the second records when its bootstrap begins."""
    def first() -> None:
        with turns.turn_of("staging", 10.0):
            turns.record("staging", first_commits)
            first_done.wait(10.0)

    def second() -> None:
        with turns.turn_of("production", 10.0):
            second_started.set()

    return {"staging": first, "production": second}


def test_bootstraps_run_at_once_when_the_first_pushed_nothing() -> None:
    turns = BootstrapTurns(["staging", "production"])
    first_done, second_started = threading.Event(), threading.Event()
    steps = _bootstraps(turns, [], first_done, second_started)
    # The first finishes only once the second's bootstrap has begun: in turns, it never would.
    runner = threading.Thread(target=run_together, args=(steps,))
    runner.start()
    assert second_started.wait(5.0), "the second bootstrap waited for the first although it pushed nothing"
    first_done.set()
    runner.join(10.0)
    assert turns.commits == {"staging": []}


def test_bootstraps_take_turns_when_the_first_pushed() -> None:
    turns = BootstrapTurns(["staging", "production"])
    first_done, second_started = threading.Event(), threading.Event()
    steps = _bootstraps(turns, ["✔ committed sync manifests to \"main\""], first_done, second_started)
    runner = threading.Thread(target=run_together, args=(steps,))
    runner.start()
    assert not second_started.wait(1.0), "the second bootstrap ran beside a first that pushed"
    first_done.set()
    assert second_started.wait(5.0), "the second bootstrap never got its turn"
    runner.join(10.0)


def test_a_bring_up_that_fails_before_its_bootstrap_holds_no_one_up() -> None:
    turns = BootstrapTurns(["staging", "production"])
    with pytest.raises(HarnessError, match="the bootstrap of staging did not get past its pushes"), \
            turns.turn_of("production", 0.2):
        pass
    turns.release("staging")  # what _bring_up does when its cluster could not be created
    started = time.monotonic()
    with turns.turn_of("production", 5.0):
        assert time.monotonic() - started < 1.0


def test_the_published_bootstrap_files_are_what_bootstrap_writes(tmp_path: Path) -> None:
    """Components from the CLI's own `flux install --export`; the sync manifest for the path
    and URL `flux.bootstrap` passes, in the form the fleet-repo sample of flux2-multi-tenancy has."""
    cli = tmp_path / "flux"
    cli.write_text("#!/bin/sh\n[ \"$1 $2\" = 'install --export' ] && echo '# components' || exit 3\n")
    cli.chmod(0o755)
    files = bootstrap_files(str(cli), "http://10.0.0.1:8080/git/platform/fleet.git", ["clusters/staging"])
    assert files["clusters/staging/flux-system/gotk-components.yaml"] == "# components\n"
    sync = files["clusters/staging/flux-system/gotk-sync.yaml"]
    docs = [d for d in yaml.safe_load_all(sync) if d]
    assert [d["kind"] for d in docs] == ["GitRepository", "Kustomization"]
    assert docs[0]["spec"] == {"interval": "1m0s", "ref": {"branch": "main"}, "secretRef": {"name": "flux-system"},
                               "url": "http://10.0.0.1:8080/git/platform/fleet.git"}
    assert docs[1]["spec"]["path"] == "./clusters/staging"
    assert sync.startswith("# This manifest was generated by flux. DO NOT EDIT.\n---\n")
