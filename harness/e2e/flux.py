"""Flux on a cluster: bootstrap from the Git server, reconcile on demand, wait on revisions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.access.kube import Kube
from harness.access.readiness import Status, status_of
from harness.core import commands
from harness.core.errors import CommandError, HarnessError, Secret
from harness.core.progress import format_duration, say, step
from harness.core.repo import API
from harness.core.waits import SOON_S, WaitTimeoutError, wait_for
from harness.e2e.gitserver import GitServer

BOOTSTRAP_TIMEOUT_S = 600.0
# The least a wait's API request is given near its deadline (a last look, not a hang).
MIN_REQUEST_S = 2.0
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


class FluxError(HarnessError):
    """Flux did not reach the expected state; the message carries Flux's reason and message."""


@dataclass(frozen=True)
class Ref:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


# What `flux bootstrap git` prints once it has pushed everything it will push (the sync
# manifests come last; the line follows a push and an up-to-date commit alike).
LAST_PUSH_DONE = "applying sync manifests"


def bootstrap(flux: str, kubeconfig: Path, server: GitServer, repo: str, path: str, log: Path,
              pushed: Callable[[], None] | None = None) -> None:
    """`flux bootstrap git` against the local server, so clusters/<env>/flux-system is what runs.

    `pushed` is called once, as soon as the bootstrap will push nothing more (at the latest when
    it ends, also when it fails).
    """
    done = threading.Event()

    def announce() -> None:
        if pushed is not None and not done.is_set():
            done.set()
            pushed()

    def watch(line: str) -> None:
        if LAST_PUSH_DONE in line:
            announce()

    try:
        argv = [flux, "bootstrap", "git", "--kubeconfig", str(kubeconfig), "--silent",
                f"--url={server.repo_url(repo)}", "--allow-insecure-http", "--branch=main",
                f"--path={path}", "--token-auth", f"--username={server.username}", "--timeout=5m"]
        with step(f"flux bootstrap git --path={path} (log: {log})"):
            # The password from the environment (flux reads GIT_PASSWORD), not the command line.
            commands.run(argv, timeout_s=BOOTSTRAP_TIMEOUT_S, log=log, on_line=watch,
                         env={"GIT_PASSWORD": Secret(server.token)})
    except CommandError as exc:
        raise FluxError(f"flux bootstrap of {path} failed (log: {log})\n{exc}") from exc
    finally:
        announce()


def controller_args(kube: Kube) -> dict[str, list[str]]:
    """The live args of every Flux controller Deployment."""
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0].get("args", [])
        for d in kube.list("apps/v1", "Deployment", "flux-system")
    }


def request_reconcile(kube: Kube, ref: Ref) -> str:
    """Ask Flux to reconcile now instead of waiting out the interval (as `flux reconcile` does);
    returns the request's token, which Flux echoes in status.lastHandledReconcileAt."""
    token = str(time.time_ns())
    kube.annotate(API[ref.kind], ref.kind, ref.name, ref.namespace, {REQUESTED_AT: token})
    return token


def wait_ready(kube: Kube, ref: Ref, commit: str | None, timeout_s: float, diagnostics: str = "",
               handled: str | None = None) -> dict[str, Any]:
    """Wait until ref is Ready (at `commit` if given, and after handling the reconcile request
    `handled` if given: a Ready status from before the request does not count); fail fast on
    terminal states, but only on states that answer the request and `commit` (a failure from
    before the request, or of an older revision, is what the request is meant to replace). Each
    API request gets at most what is left of the deadline."""
    started = time.monotonic()
    deadline = started + timeout_s

    def probe() -> tuple[bool, dict[str, Any], str]:
        left = max(MIN_REQUEST_S, deadline - time.monotonic())
        obj = kube.get(API[ref.kind], ref.kind, ref.name, ref.namespace, timeout_s=left)
        if obj is None:
            return False, {}, "does not exist yet"
        status = status_of(obj, commit)
        seen = (obj.get("status") or {}).get("lastHandledReconcileAt")
        if handled is not None and seen != handled:
            return False, obj, (f"reconcile request {handled} not handled yet (last handled: {seen}); "
                                f"until then: {status.describe()}")
        attempted = str((obj.get("status") or {}).get("lastAttemptedRevision") or "")
        stale = commit is not None and attempted != "" and not attempted.endswith(commit)
        if status.verdict == "failed" and (status.terminal or status.reason in TERMINAL_REASONS) and not stale:
            raise FluxError(f"{ref} failed: reason={status.reason}: {status.message}"
                            + (f" (diagnostics: {diagnostics})" if diagnostics else ""))
        return status.verdict == "ready", obj, status.describe()

    target = f" at {commit[:12]}" if commit else ""
    try:
        obj = wait_for(f"{ref} to be Ready{target}", probe, timeout_s=timeout_s, interval_s=2.0,
                       hint=f"diagnostics: {diagnostics}" if diagnostics else "", first_s=SOON_S)
    except WaitTimeoutError as exc:
        raise FluxError(str(exc)) from None
    say(f"  {ref} Ready{target} after {format_duration(time.monotonic() - started)}")
    return obj


def wait_failed(kube: Kube, ref: Ref, commit: str | None, timeout_s: float, mentioning: str = "",
                handled: str | None = None) -> Status:
    """Wait until ref has tried `commit` and failed (with a message `mentioning` this, when
    given: a controller may first report a passing failure, e.g. its chart not pulled yet);
    return its status (reason, message). An object without a revision of its own (a
    HelmRelease) names none: its failure must then come after the reconcile request `handled`,
    so a failure from before the request does not count."""
    if commit is None and handled is None:
        raise ValueError(f"{ref}: wait for a failure at a commit or after a reconcile request")

    def probe() -> tuple[bool, Status, str]:
        obj = kube.get(API[ref.kind], ref.kind, ref.name, ref.namespace) or {}
        status = status_of(obj)
        attempted = str((obj.get("status") or {}).get("lastAttemptedRevision", ""))
        seen = (obj.get("status") or {}).get("lastHandledReconcileAt")
        done = (status.verdict == "failed" and (commit is None or attempted.endswith(commit))
                and (handled is None or seen == handled)
                and mentioning.lower() in status.message.lower())
        return done, status, f"{status.describe()} lastAttemptedRevision={attempted} lastHandledReconcileAt={seen}"

    after = f" at {commit[:12]}" if commit else f" after reconcile request {handled}"
    what = f"{ref} to fail{after}" + (f" mentioning {mentioning!r}" if mentioning else "")
    return wait_for(what, probe, timeout_s=timeout_s, first_s=SOON_S)


# Reasons Flux reports when waiting longer cannot help.
TERMINAL_REASONS = {"InvalidChartReference", "AccessDenied", "InvalidPath"}
