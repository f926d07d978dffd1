"""Steps run side by side (each cluster's bring-up): at once, the first failure raised with the
others named, the rest stopped at their next wait; and the line that tells fleet_up a bootstrap
has pushed its last commit, in the Flux of each version set."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from harness.core import progress
from harness.core.parallel import run_together
from harness.core.versions import PREVIOUS_VERSIONS_FILE, VERSIONS_FILE, load_versions
from harness.core.waits import wait_for
from harness.e2e.flux import LAST_PUSH_DONE
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
