"""Readiness of Flux objects, as pure functions on the objects' dicts (unit-tested)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["ready", "pending", "failed"]



@dataclass(frozen=True)
class Status:
    verdict: Verdict
    reason: str
    message: str
    revision: str
    terminal: bool = False  # Stalled: the controller gave up, waiting longer cannot help

    def describe(self) -> str:
        text = f"{self.verdict}: reason={self.reason or '-'}"
        if self.revision:
            text += f" revision={self.revision}"
        return text + (f": {self.message}" if self.message else "")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of the given type, if any."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_current(obj: dict[str, Any]) -> bool:
    """The controller has seen the latest spec (observedGeneration == generation)."""
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is not None and observed == generation


def applied_revision(obj: dict[str, Any]) -> str:
    """What the object last applied: Kustomization lastAppliedRevision, source artifact revision,
    HelmRelease lastAttemptedRevision."""
    status = obj.get("status") or {}
    return str(status.get("lastAppliedRevision") or (status.get("artifact") or {}).get("revision")
               or status.get("lastAttemptedRevision") or "")


def has_revision(revision: str, commit: str) -> bool:
    """Flux revisions look like `main@sha1:<full sha>`; match the commit the harness pushed."""
    return bool(commit) and revision.rsplit(":", 1)[-1] == commit


def is_condition_current(obj: dict[str, Any], cond: dict[str, Any]) -> bool:
    """The condition speaks of the latest spec: its own observedGeneration (Flux sets one on
    every condition) equals the object's generation. Flux leaves status.observedGeneration
    behind on an object that has never succeeded, so the condition's own field is what tells
    a first failure; without one, the object's observedGeneration decides."""
    if cond.get("observedGeneration") is None:
        return is_current(obj)
    return bool(cond["observedGeneration"] == (obj.get("metadata") or {}).get("generation"))


def status_of(obj: dict[str, Any], commit: str | None = None) -> Status:
    """Where a Flux object stands, optionally requiring it to have applied `commit`.

    Ready means: Ready=True, observedGeneration current, and (if asked) the pushed commit is the
    applied revision. Failed means a Ready=False (or Stalled=True, terminal) condition about the
    current generation, also on an object that never succeeded; conditions about an older
    generation only mean the controller has not caught up yet.
    """
    ready = condition(obj, "Ready")
    revision = applied_revision(obj)
    if ready is None:
        return Status("pending", "", "no Ready condition yet", revision)
    reason, message = str(ready.get("reason", "")), str(ready.get("message", ""))
    stalled = condition(obj, "Stalled")
    if stalled is not None and stalled.get("status") == "True" and is_condition_current(obj, stalled):
        # Stalled says that the controller gave up; Ready usually says why.
        detail = f"{stalled.get('message', '')} (Ready={ready.get('status')} {reason}: {message})"
        return Status("failed", str(stalled.get("reason", reason)), detail, revision, terminal=True)
    if ready.get("status") == "True":
        if not is_current(obj):
            return Status("pending", reason, "controller has not observed the latest generation yet", revision)
        if commit is not None and not has_revision(revision, commit):
            return Status("pending", reason, f"ready at another revision, waiting for {commit[:12]}", revision)
        return Status("ready", reason, message, revision)
    if ready.get("status") == "Unknown" or not is_condition_current(obj, ready):
        return Status("pending", reason, message or "controller has not observed the latest generation yet",
                      revision)
    return Status("failed", reason, message, revision)
