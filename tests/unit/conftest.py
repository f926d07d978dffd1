"""Cluster-free tests leave the progress sink as they found it: in a session that goes on to
the e2e (`make test`), a sink left replaced would swallow every progress line of the bring-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.core import progress


@pytest.fixture(autouse=True)
def _progress_sink_restored() -> Iterator[None]:
    before = progress.current_sink()
    yield
    assert progress.current_sink() is before, "the test left the progress sink replaced: restore the previous one"
