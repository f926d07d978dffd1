"""Best-effort teardown: a step that fails is said and skipped, never raised over the test's
own outcome (or over the teardown steps after it)."""

from __future__ import annotations

from collections.abc import Callable

from harness.core.progress import say


def best_effort(what: str, action: Callable[..., object], *args: object) -> None:
    """Run one teardown step; on failure say what could not be done, and carry on."""
    try:
        action(*args)
    except Exception as exc:  # noqa: BLE001 - any failure here must not hide the real one
        say(f"teardown: could not {what}: {exc}")
