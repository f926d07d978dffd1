"""The isolation probe: while something changes the platform (an upgrade), threads on each
cluster try, every period, a policy-violating tenant object (it must be refused), a compliant
one (it should be admitted) and podinfo over HTTP (it should answer), and record each answer
with its time. Phases cut that record into the rows of the report."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from harness.access.kube import Kube, KubeError
from harness.core.progress import format_duration, say
from harness.core.repo import API
from harness.e2e import tenancy
from harness.e2e.handles import ClusterHandle

PERIOD_S = 2.0
PROBE_LOG = "upgrade-probe.jsonl"  # in the artifacts folder
Check = Literal["violating", "compliant", "podinfo"]


@dataclass(frozen=True)
class Case:
    """One kind of tenant escape: a violating object its policy refuses, and the compliant twin
    that goes through the same admission path."""

    policy: str
    reason: str
    violating: Callable[[str], dict[str, Any]]
    compliant: Callable[[str], dict[str, Any]]


def cases(image: str, own_repository: str) -> tuple[Case, ...]:
    """A case per tenant policy that a tenant can trip through the API with one create;
    `own_repository` is the tenant repo's URL as the clusters reach it (on its allowlist)."""
    return (
        Case("flux-tenant-service-account", "spec.serviceAccountName is required",
             lambda n: tenancy.kustomization(n, account=None, suspend=True),
             lambda n: tenancy.kustomization(n, suspend=True)),
        Case("flux-tenant-source-ref", "cross-namespace source references are not allowed",
             lambda n: tenancy.helm_release(n, repository_namespace="flux-system", suspend=True),
             lambda n: tenancy.helm_release(n, suspend=True)),
        Case("flux-tenant-target-namespace", "spec.targetNamespace kube-system is not allowed",
             lambda n: tenancy.kustomization(n, suspend=True, targetNamespace="kube-system"),
             lambda n: tenancy.kustomization(n, suspend=True, targetNamespace=tenancy.TENANT_NAMESPACE)),
        Case("flux-tenant-no-kubeconfig", "spec.kubeConfig is not allowed",
             lambda n: tenancy.helm_release(n, suspend=True, kubeConfig={"secretRef": {"name": "admin-kubeconfig"}}),
             lambda n: tenancy.helm_release(n, suspend=True)),
        Case("flux-tenant-source-allowlist", "is not on the allowlist of tenant dev-team",
             lambda n: tenancy.source("GitRepository", n, "https://github.com/attacker/x"),
             lambda n: tenancy.source("GitRepository", n, own_repository)),
        Case("flux-tenant-reconciler-account", "service account dev-team is the tenant reconciler account",
             lambda n: tenancy.pod(n, tenancy.TENANT_NAME, image),
             lambda n: tenancy.pod(n, None, image)),
        Case("flux-tenant-reconciler-token", "a token Secret for the tenant reconciler account dev-team",
             lambda n: tenancy.token_secret(n, tenancy.TENANT_NAME),
             lambda n: tenancy.token_secret(n, "default")),
    )


@dataclass(frozen=True)
class Event:
    at: float  # epoch seconds
    env: str
    check: Check
    ok: bool
    detail: str


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float


@dataclass
class Record:
    """Every probe answer, and the phases of the window they were taken in."""

    events: list[Event] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.time()
        say(f"upgrade phase: {name} ...")
        try:
            yield
        finally:
            ended = time.time()
            self.phases.append(Phase(name, started, ended))
            say(f"upgrade phase: {name} took {format_duration(ended - started)}")

    def within(self, start: float, end: float) -> list[Event]:
        with self.lock:
            return [e for e in self.events if start <= e.at < end]

    def write(self, path: Path) -> Path:
        """Every answer, one JSON object a line (time, cluster, check, verdict, detail)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            lines = [json.dumps(asdict(e)) for e in sorted(self.events, key=lambda e: e.at)]
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def admissions(self) -> list[Event]:
        """Violating objects that were admitted: each one is an isolation failure."""
        with self.lock:
            return [e for e in self.events if e.check == "violating" and not e.ok]


def assert_none_admitted(record: Record) -> None:
    """The probe's verdict: fails naming every violating object that was admitted, and when."""
    __tracebackhide__ = True
    admitted = record.admissions()
    if admitted:
        raise AssertionError(f"{len(admitted)} policy-violating tenant object(s) admitted:\n  "
                             + "\n  ".join(e.detail for e in admitted))


def unavailable_seconds(events: list[Event]) -> float:
    """Seconds podinfo did not answer: from each failed check to the cluster's next check."""
    total = 0.0
    for env in {e.env for e in events}:
        checks = sorted((e for e in events if e.env == env and e.check == "podinfo"), key=lambda e: e.at)
        for current, following in itertools.pairwise(checks):
            if not current.ok:
                total += following.at - current.at
        if checks and not checks[-1].ok:
            total += PERIOD_S
    return total


@dataclass(frozen=True)
class Row:
    phase: str
    seconds: float
    violations_admitted: int
    compliant_refused: int
    podinfo_unavailable_s: float


def rows(record: Record) -> list[Row]:
    """One row per phase, then the whole window."""
    spans = [(p.name, p.start, p.end, record.within(p.start, p.end)) for p in record.phases]
    if record.phases:
        # The total counts every answer, also one recorded after the last phase (sweep_objects).
        spans.append(("total", record.phases[0].start, record.phases[-1].end, record.within(0.0, float("inf"))))
    result = []
    for name, start, end, events in spans:
        result.append(Row(name, end - start,
                          sum(1 for e in events if e.check == "violating" and not e.ok),
                          sum(1 for e in events if e.check == "compliant" and not e.ok),
                          unavailable_seconds(events)))
    return result


def table(result: list[Row]) -> str:
    header = ("phase", "duration", "violating objects admitted", "compliant objects refused",
              "podinfo unavailable")
    lines = [header] + [(r.phase, format_duration(r.seconds), str(r.violations_admitted),
                         str(r.compliant_refused), f"{r.podinfo_unavailable_s:.0f} s") for r in result]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def summary_line(result: list[Row]) -> str:
    """The last line of an upgrade run, for scripts."""
    total = next((r for r in result if r.phase == "total"), Row("total", 0.0, 0, 0, 0.0))
    return (f"upgrade summary: violations admitted {total.violations_admitted}, compliant refused "
            f"{total.compliant_refused}, podinfo unavailable {total.podinfo_unavailable_s:.0f} s")


class Probe:
    """One check on one cluster, in a thread of its own (so a slow answer to one check does not
    delay the others); `running` starts the probes and stops them when its block ends."""

    def __init__(self, handle: ClusterHandle, check: Check, tenant_user: str, probe_cases: tuple[Case, ...],
                 record: Record, prefix: str) -> None:
        self.env, self.check = handle.env, check
        # Clients of its own: the kubernetes client is not shared across threads.
        self.admin = Kube(handle.kubeconfig)
        self.tenant = self.admin.as_user(tenant_user)
        self.cases = probe_cases
        self.record = record
        self.prefix = prefix
        self.stop = threading.Event()
        self.error: Exception | None = None
        self.started = 0.0  # when the current check started
        self.thread = threading.Thread(target=self._run, name=f"probe-{self.env}-{check}", daemon=True)

    def _event(self, ok: bool, detail: str) -> None:
        # Stamped with the time the check started: that is when the request was made.
        self.record.add(Event(self.started, self.env, self.check, ok, detail))

    def _run(self) -> None:
        started = time.monotonic()
        number = 0
        try:
            while not self.stop.is_set():
                self.once(number)
                number += 1
                # Sampling period, not a wait for a condition: the next check starts on its tick
                # (at once when this one took longer than the period).
                self.stop.wait(max(0.0, started + number * PERIOD_S - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - reported by `running`: a dead probe must not pass silently
            self.error = exc

    def once(self, number: int) -> None:
        self.started = time.time()
        case = self.cases[number % len(self.cases)]
        name = f"{self.prefix}-{number}"
        if self.check == "violating":
            self._violating(case, case.violating(f"{name}-bad"))
        elif self.check == "compliant":
            self._compliant(case.compliant(f"{name}-ok"))
        else:
            self._podinfo()

    def _exists(self, obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        return self.admin.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")) is not None

    def _remove(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            self.admin.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        except (ApiException, KubeError):
            pass  # removed with the namespace's probe objects at the end (sweep_objects)

    def _violating(self, case: Case, obj: dict[str, Any]) -> None:
        what = f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']} ({case.policy})"
        try:
            self.tenant.create(obj)
        except ApiException as exc:
            self._event(True, f"{what}: HTTP {exc.status}")
            return
        except KubeError as exc:
            # No answer: the request may still have been applied. Only its absence is a refusal.
            try:
                created = self._exists(obj)
            except KubeError:
                created = False  # the API server is unreachable: nothing is being admitted either
            if not created:
                self._event(True, f"{what}: no answer ({exc})")
                return
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.started))
        self._event(False, f"{what} ADMITTED on {self.env} at {stamp} UTC")
        self._remove(obj)

    def _compliant(self, obj: dict[str, Any]) -> None:
        what = f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
        try:
            self.tenant.create(obj)
        except ApiException as exc:
            self._event(False, f"{what}: HTTP {exc.status} {str(exc.body)[:300]}")
            return
        except KubeError as exc:
            self._event(False, f"{what}: no answer ({exc})")
            return
        self._event(True, what)
        self._remove(obj)

    def _podinfo(self) -> None:
        try:
            body = json.loads(self.admin.service_get(tenancy.TENANT_NAMESPACE, "podinfo", 9898, "version"))
            self._event("version" in body, json.dumps(body)[:200])
        except (ApiException, KubeError, ValueError) as exc:
            self._event(False, str(exc)[:300])


CHECKS: tuple[Check, ...] = ("violating", "compliant", "podinfo")


@contextmanager
def running(handles: list[ClusterHandle], tenant_user: str, probe_cases: tuple[Case, ...], record: Record,
            prefix: str) -> Iterator[list[Probe]]:
    """Every check on every cluster for the duration of the block; a probe that died fails it."""
    probes = [Probe(h, check, tenant_user, probe_cases, record, prefix) for h in handles for check in CHECKS]
    for probe in probes:
        probe.thread.start()
    say(f"isolation probe running on {', '.join(h.env for h in handles)}: each check every {PERIOD_S:.0f}s")
    try:
        yield probes
    finally:
        for probe in probes:
            probe.stop.set()
        for probe in probes:
            probe.thread.join(timeout=120)
    for probe in probes:
        if probe.error is not None:
            raise RuntimeError(f"the {probe.check} probe on {probe.env} died: {probe.error!r}") from probe.error
        if probe.thread.is_alive():
            raise RuntimeError(f"the {probe.check} probe on {probe.env} did not stop within 120 s")


def largest_gap(record: Record) -> float:
    """The longest time between the starts of two consecutive checks of one kind on one
    cluster (a check waiting on a slow API server delays the next one past the period)."""
    events = record.within(0.0, float("inf"))
    gaps = [0.0]
    for key in {(e.env, e.check) for e in events}:
        times = sorted(e.at for e in events if (e.env, e.check) == key)
        gaps += [b - a for a, b in itertools.pairwise(times)]
    return max(gaps)


def sweep_objects(handle: ClusterHandle, prefix: str, record: Record | None = None) -> None:
    """Remove what the probe created and could not remove at once (the API was away). A
    violating object found here that the probe did not report (its create went unanswered
    and the API server could not say whether it existed) is an admission, recorded as such."""
    reported = {e.detail.split(" ")[1] for e in (record.admissions() if record else [])}
    for api_version, kind in (("v1", "Pod"), ("v1", "Secret"), (API["Kustomization"], "Kustomization"),
                              (API["HelmRelease"], "HelmRelease"), (API["GitRepository"], "GitRepository")):
        for obj in handle.kube.list(api_version, kind, tenancy.TENANT_NAMESPACE):
            name = obj["metadata"]["name"]
            if not name.startswith(prefix):
                continue
            where = f"{tenancy.TENANT_NAMESPACE}/{name}"
            if record is not None and name.endswith("-bad") and where not in reported:
                record.add(Event(time.time(), handle.env, "violating", False,
                                 f"{kind} {where} ADMITTED on {handle.env} (found after the window)"))
            handle.kube.delete(api_version, kind, name, tenancy.TENANT_NAMESPACE)
