"""Independent steps run at once, one thread each (each cluster's bring-up, for example); each
thread's progress lines name its step.

The first failure makes the others give up at their next wait (see waits.abandoned_when); the
call returns only when every thread has ended, so nothing a step creates can appear after the
caller has started to clean up, and then raises the first failure, naming the others. An
interrupt (Ctrl-C) is raised at once: the other steps stop at their next wait, and the commands
they run got the same signal from the terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from harness.core.errors import Abandoned
from harness.core.progress import labelled
from harness.core.waits import abandoned_when

JOIN_POLL_S = 0.5


def run_together(tasks: Mapping[str, Callable[[], None]]) -> None:
    """Run every task in a thread of its own; raise the first failure once all have ended."""
    abort = threading.Event()
    failures: list[tuple[str, BaseException]] = []
    lock = threading.Lock()

    def worker(name: str, task: Callable[[], None]) -> None:
        try:
            with labelled(name), abandoned_when(abort):
                task()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread below
            with lock:
                failures.append((name, exc))
            abort.set()

    threads = [threading.Thread(target=worker, args=(name, task), name=name, daemon=True)
               for name, task in tasks.items()]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(JOIN_POLL_S)
    except BaseException:
        abort.set()  # Ctrl-C: the others stop at their next wait; the caller cleans up
        raise
    if not failures:
        return
    causes = [(name, exc) for name, exc in failures if not isinstance(exc, Abandoned)] or failures
    name, first = causes[0]
    first.add_note(f"(in step {name!r}, run beside {', '.join(n for n in tasks if n != name) or 'nothing'})")
    for other, exc in causes[1:]:
        first.add_note(f"step {other!r} failed too: {exc}")
    raise first
