"""The isolation probe: while something changes the platform (an upgrade), a thread per cluster
tries every case of every tenant policy on every tick (`cases.py`: the violating request and its
compliant twin, as server-side dry runs), another checks podinfo over HTTP, and a watcher notes
every admission policy and binding that disappears or comes back. Each answer is recorded with
its time and classified; phases cut the record into the rows of the report.

An answer to a violating request is one of: refused by its own policy (HTTP 422 naming the
policy's ValidatingAdmissionPolicy), refused otherwise (any other refusal: RBAC, a webhook, an
error), admitted, or no answer (the API server did not reply in time). The verdict fails on an
admission, on a policy that went longer than GAP_LIMIT_S without its own refusal while the API
server answered, on a refused compliant twin, and on podinfo unavailable longer than
PODINFO_LIMIT_S at a stretch.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from kubernetes.client.exceptions import ApiException

from harness.access.kube import Kube, KubeError, refusal_message
from harness.core.progress import format_duration, say
from harness.core.topology import Tenant
from harness.core.waits import wait_for
from harness.e2e import tenancy
from harness.e2e.cases import Actors, Case, Request
from harness.e2e.handles import ClusterHandle

PERIOD_S = 2.0
# A policy that answers "no" to its violating request by anything but its own admission policy
# for longer than this, while the API server answers, fails the run (a tick is PERIOD_S, so two
# missed ticks are allowed; three are not).
GAP_LIMIT_S = 5.0
# podinfo does not depend on Flux or Kyverno running: an upgrade of either must not take it down.
# This much unavailability at a stretch is allowed for a node busy with the upgrade; more fails.
PODINFO_LIMIT_S = 10.0
WATCH_PERIOD_S = 1.0
# How long the watches may take for their first view (a list of each kind on each cluster).
WATCH_FIRST_VIEW_S = 60.0
# Each probe request's deadline: a request unanswered this long is "no answer".
REQUEST_TIMEOUT_S = 5.0
# Threads per cluster sharing the cases: one thread took 2 s for a round of 34 cases (68 dry
# runs) at the median and up to 5 s under the upgrade's load on two cores; two halve a round.
CASE_THREADS = 2
PROBE_LOG = "upgrade-probe.jsonl"  # in the artifacts folder
# How much of a refusal's text an answer keeps (the whole request and answer go nowhere else).
DETAIL_LIMIT = 320
Check = Literal["violating", "compliant", "podinfo"]
Answer = Literal["own", "other", "admitted", "none", "up", "down"]
ADMISSION = "admissionregistration.k8s.io/v1"


@dataclass(frozen=True)
class Event:
    at: float  # epoch seconds, when the request was made
    env: str
    check: Check
    case: str  # the case's name ("" for podinfo)
    answer: Answer
    detail: str

    @property
    def ok(self) -> bool:
        """What the check wants: the own policy's refusal, the twin admitted, podinfo up."""
        return self.answer == {"violating": "own", "compliant": "admitted", "podinfo": "up"}[self.check]


@dataclass(frozen=True)
class Change:
    """An admission policy or binding that disappeared, appeared, or was replaced."""

    at: float
    env: str
    kind: str
    name: str
    what: Literal["deleted", "created", "recreated"]

    def __str__(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.gmtime(self.at))
        return f"{self.env} {stamp} UTC: {self.kind} {self.name} {self.what}"


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float


@dataclass
class Record:
    """Every probe answer and admission-policy change, and the phases of the window."""

    events: list[Event] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def note(self, change: Change) -> None:
        with self.lock:
            self.changes.append(change)

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

    def all(self) -> list[Event]:
        return self.within(0.0, float("inf"))

    def write(self, path: Path) -> Path:
        """Every answer and change, one JSON object a line, in time order."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            items = [{"type": "answer", **asdict(e)} for e in self.events]
            items += [{"type": "change", **asdict(c)} for c in self.changes]
        items.sort(key=lambda item: float(item["at"]))
        path.write_text("".join(json.dumps(item) + "\n" for item in items))
        return path

    def admissions(self) -> list[Event]:
        """Violating requests that were admitted: each one is an isolation failure."""
        return [e for e in self.all() if e.check == "violating" and e.answer == "admitted"]


def classify(policy: str, request: Request, actors: Actors, name: str) -> tuple[Answer, str]:
    """Make one request and say how it was answered."""
    try:
        request(actors, name)
    except ApiException as exc:
        message = refusal_message(exc)
        if exc.status == tenancy.DENIED and tenancy.by_policy(policy) in message:
            return "own", f"HTTP {exc.status}"
        return "other", clipped(f"HTTP {exc.status} {message}")
    except KubeError as exc:
        return "none", clipped(str(exc))
    return "admitted", ""


def clipped(detail: str, limit: int = DETAIL_LIMIT) -> str:
    """A refusal's text short enough for a table and a verdict line, keeping both ends: the
    start names who refused (a webhook, a policy), the end why ("connection refused", "no
    endpoints", a timeout), and a cut at the end alone loses the why."""
    if len(detail) <= limit:
        return detail
    head = limit // 3
    return f"{detail[:head]} ... {detail[-(limit - head - 5):]}"


def longest_gap(events: list[Event]) -> tuple[float, float]:
    """For one case's violating answers on one cluster: the longest time from one refusal by its
    own policy to the next (or past the last answer), and the longest such time in which the API
    server answered (something other than the own refusal, rather than only silence)."""
    longest = longest_answered = 0.0
    ordered = sorted(events, key=lambda e: e.at)
    start: float | None = ordered[0].at if ordered else None  # of the current stretch
    answered = False
    for event in ordered:
        if event.answer == "own":
            if start is not None and (event.at > start or answered):
                longest = max(longest, event.at - start)
                if answered:
                    longest_answered = max(longest_answered, event.at - start)
            start, answered = event.at, False
        elif event.answer in ("other", "admitted"):
            answered = True
    if ordered and start is not None and answered:
        # Still without its own refusal at the end: the stretch runs one period past the last answer.
        gap = ordered[-1].at + PERIOD_S - start
        longest, longest_answered = max(longest, gap), max(longest_answered, gap)
    return longest, longest_answered


def unavailable_stretches(events: list[Event]) -> list[tuple[str, float, float]]:
    """(env, start, seconds) of each stretch podinfo did not answer: from the first failed
    check to the next answered one (one period when it was still down at the end)."""
    stretches = []
    for env in sorted({e.env for e in events}):
        checks = sorted((e for e in events if e.env == env and e.check == "podinfo"), key=lambda e: e.at)
        start: float | None = None
        for event in checks:
            if event.answer == "down" and start is None:
                start = event.at
            elif event.answer == "up" and start is not None:
                stretches.append((env, start, event.at - start))
                start = None
        if start is not None:
            stretches.append((env, start, checks[-1].at + PERIOD_S - start))
    return stretches


@dataclass(frozen=True)
class Row:
    phase: str
    seconds: float
    violations_admitted: int
    refused_otherwise: int
    no_answer: int
    compliant_refused: int
    podinfo_unavailable_s: float


def rows(record: Record) -> list[Row]:
    """One row per phase, then the whole window."""
    spans = [(p.name, p.start, p.end, record.within(p.start, p.end)) for p in record.phases]
    if record.phases:
        # The total counts every answer, also one recorded after the last phase.
        spans.append(("total", record.phases[0].start, record.phases[-1].end, record.all()))
    result = []
    for name, start, end, events in spans:
        violating = [e for e in events if e.check == "violating"]
        result.append(Row(name, end - start,
                          sum(1 for e in violating if e.answer == "admitted"),
                          sum(1 for e in violating if e.answer == "other"),
                          sum(1 for e in events if e.answer == "none"),
                          sum(1 for e in events if e.check == "compliant" and e.answer in ("own", "other")),
                          sum(s for _, _, s in unavailable_stretches(events))))
    return result


def _render(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    lines = [header, *body]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def table(result: list[Row]) -> str:
    header = ("phase", "duration", "violating admitted", "violating refused otherwise", "no answer",
              "compliant refused", "podinfo unavailable")
    return _render(header, [(r.phase, format_duration(r.seconds), str(r.violations_admitted), str(r.refused_otherwise),
                             str(r.no_answer), str(r.compliant_refused), f"{r.podinfo_unavailable_s:.0f} s")
                            for r in result])


@dataclass(frozen=True)
class CaseRow:
    env: str
    case: str
    own: int
    other: int
    admitted: int
    none: int
    compliant_refused: int
    gap_s: float
    answered_gap_s: float


def case_rows(record: Record) -> list[CaseRow]:
    """Per cluster and case: how each violating answer was classified, the twin's refusals, the
    longest gap between two refusals by the case's own policy."""
    events = record.all()
    result = []
    for env, case in sorted({(e.env, e.case) for e in events if e.check != "podinfo"}):
        mine = [e for e in events if (e.env, e.case) == (env, case)]
        violating = [e for e in mine if e.check == "violating"]
        gap, answered = longest_gap(violating)
        counts = {a: sum(1 for e in violating if e.answer == a) for a in ("own", "other", "admitted", "none")}
        refused = sum(1 for e in mine if e.check == "compliant" and e.answer in ("own", "other"))
        result.append(CaseRow(env, case, counts["own"], counts["other"], counts["admitted"], counts["none"],
                              refused, gap, answered))
    return result


def case_table(result: list[CaseRow]) -> str:
    header = ("cluster", "case", "refused by its policy", "refused otherwise", "admitted", "no answer",
              "compliant refused", "longest gap", "longest gap, API answering")
    return _render(header, [(r.env, r.case, str(r.own), str(r.other), str(r.admitted), str(r.none),
                             str(r.compliant_refused), f"{r.gap_s:.1f} s", f"{r.answered_gap_s:.1f} s")
                            for r in result])


def summary_line(result: list[Row]) -> str:
    """The last line of an upgrade run, for scripts."""
    total = next((r for r in result if r.phase == "total"), Row("total", 0.0, 0, 0, 0, 0, 0.0))
    return (f"upgrade summary: violations admitted {total.violations_admitted}, compliant refused "
            f"{total.compliant_refused}, podinfo unavailable {total.podinfo_unavailable_s:.0f} s")


def failures(record: Record) -> list[str]:
    """Everything that fails the probe's verdict, each naming what, where and when."""
    found = []
    for event in record.admissions():
        stamp = time.strftime("%H:%M:%S", time.gmtime(event.at))
        found.append(f"{event.case}: violating request ADMITTED on {event.env} at {stamp} UTC")
    for row in case_rows(record):
        if row.answered_gap_s > GAP_LIMIT_S:
            found.append(f"{row.case}: no refusal by its own policy for {row.answered_gap_s:.1f} s on {row.env} while the "
                         f"API server answered (limit {GAP_LIMIT_S:.0f} s)")
    for event in record.all():
        if event.check == "compliant" and event.answer in ("own", "other"):
            stamp = time.strftime("%H:%M:%S", time.gmtime(event.at))
            found.append(f"{event.case}: compliant twin refused on {event.env} at {stamp} UTC: {event.detail}")
    for env, start, seconds in unavailable_stretches(record.all()):
        if seconds > PODINFO_LIMIT_S:
            stamp = time.strftime("%H:%M:%S", time.gmtime(start))
            found.append(f"podinfo unavailable on {env} for {seconds:.0f} s from {stamp} UTC "
                         f"(limit {PODINFO_LIMIT_S:.0f} s)")
    return found


def assert_held(record: Record) -> None:
    """The probe's verdict: fails listing every failure."""
    __tracebackhide__ = True
    found = failures(record)
    if found:
        raise AssertionError(f"{len(found)} isolation probe failure(s):\n  " + "\n  ".join(found))


class Worker:
    """A thread of its own (the kubernetes client is not shared across threads) that runs
    `once` every PERIOD_S until stopped; `running` starts and stops the workers."""

    def __init__(self, name: str) -> None:
        self.stop = threading.Event()
        self.error: Exception | None = None
        self.name = name
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def once(self, number: int) -> None:
        raise NotImplementedError

    period_s = PERIOD_S

    def _run(self) -> None:
        started = time.monotonic()
        number = 0
        try:
            while not self.stop.is_set():
                self.once(number)
                number += 1
                # Sampling period, not a wait for a condition: the next round starts on its tick
                # (at once when this one took longer than the period).
                self.stop.wait(max(0.0, started + number * self.period_s - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - reported by `running`: a dead probe must not pass silently
            self.error = exc


class CaseProbe(Worker):
    """Every case, violating then compliant, on every tick, on one cluster."""

    def __init__(self, handle: ClusterHandle, team: Tenant, probe_cases: tuple[Case, ...], record: Record,
                 prefix: str, part: int = 0) -> None:
        super().__init__(f"probe-{handle.env}-cases-{part}")
        self.env, self.cases, self.record, self.prefix = handle.env, probe_cases, record, prefix
        self.actors = Actors.of(Kube(handle.kubeconfig, timeout_s=REQUEST_TIMEOUT_S), team.user)

    def once(self, number: int) -> None:
        for index, case in enumerate(self.cases):
            name = f"{self.prefix}-{number}-{self.name.rsplit('-', 1)[1]}-{index}"
            for check, request in (("violating", case.violating), ("compliant", case.compliant)):
                at = time.time()
                answer, detail = classify(case.policy, request, self.actors, name)
                self.record.add(Event(at, self.env, check, case.name, answer, detail))  # type: ignore[arg-type]


class PodinfoProbe(Worker):
    def __init__(self, handle: ClusterHandle, namespace: str, record: Record) -> None:
        super().__init__(f"probe-{handle.env}-podinfo")
        self.env, self.record, self.admin = handle.env, record, Kube(handle.kubeconfig, timeout_s=REQUEST_TIMEOUT_S)
        self.namespace = namespace

    def once(self, number: int) -> None:
        at = time.time()
        try:
            body = json.loads(self.admin.service_get(self.namespace, "podinfo", 9898, "version"))
            self.record.add(Event(at, self.env, "podinfo", "", "up" if "version" in body else "down",
                                  json.dumps(body)[:200]))
        except (ApiException, KubeError, ValueError) as exc:
            self.record.add(Event(at, self.env, "podinfo", "", "down", str(exc)[:300]))


class PolicyWatch(Worker):
    """Notes each ValidatingAdmissionPolicy and binding that is deleted, created or replaced."""

    period_s = WATCH_PERIOD_S

    def __init__(self, handle: ClusterHandle, record: Record) -> None:
        super().__init__(f"probe-{handle.env}-watch")
        self.env, self.record, self.admin = handle.env, record, Kube(handle.kubeconfig, timeout_s=REQUEST_TIMEOUT_S)
        self.seen: dict[tuple[str, str], str] | None = None
        self.looked = threading.Event()  # set once `seen` holds a first view to compare with

    def once(self, number: int) -> None:
        try:
            now = {(kind, o["metadata"]["name"]): o["metadata"]["uid"]
                   for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
                   for o in self.admin.list(ADMISSION, kind)}
        except (ApiException, KubeError):
            return  # the API server is away: the case probe records that
        at = time.time()
        if self.seen is not None:
            for key in self.seen.keys() - now.keys():
                self.record.note(Change(at, self.env, key[0], key[1], "deleted"))
            for key in now.keys() - self.seen.keys():
                self.record.note(Change(at, self.env, key[0], key[1], "created"))
            for key in now.keys() & self.seen.keys():
                if now[key] != self.seen[key]:
                    self.record.note(Change(at, self.env, key[0], key[1], "recreated"))
        self.seen = now
        self.looked.set()


@contextmanager
def running(handles: list[ClusterHandle], team: Tenant, probe_cases: tuple[Case, ...], record: Record,
            prefix: str, period_s: float = PERIOD_S) -> Iterator[list[Worker]]:
    """Every case, podinfo and the policy watch on every cluster for the duration of the block;
    a worker that died fails it. `period_s` 0 runs the cases back to back, to catch a gap
    shorter than a tick (a few cases only: each round is as many requests as it has cases)."""
    workers: list[Worker] = []
    for handle in handles:
        # A thread only for a part that has cases: an empty one would spin, back to back.
        workers += [CaseProbe(handle, team, probe_cases[part::CASE_THREADS], record, prefix, part)
                    for part in range(min(CASE_THREADS, len(probe_cases)))]
        workers += [PodinfoProbe(handle, team.namespace, record), PolicyWatch(handle, record)]
    for worker in workers:
        if isinstance(worker, CaseProbe):
            worker.period_s = period_s
        worker.thread.start()
    count = f"{len(probe_cases)} case" + ("" if len(probe_cases) == 1 else "s")
    pace = f"every {period_s:.0f}s" if period_s else "back to back"
    say(f"isolation probe running on {', '.join(h.env for h in handles)}: {count}, each violating request and "
        f"its twin {pace}")
    try:
        # A change is a difference from the watch's previous view: until each watch has its
        # first, a policy deleted and created again would show only as "created".
        watches = [w for w in workers if isinstance(w, PolicyWatch)]

        def looked() -> tuple[bool, None, str]:
            waiting = [w.env for w in watches if not w.looked.is_set()]
            return not waiting, None, f"no first view yet on {', '.join(waiting)}"

        wait_for("the admission policy watch's first view of each cluster", looked, WATCH_FIRST_VIEW_S,
                 interval_s=WATCH_PERIOD_S / 4)
        yield workers
    finally:
        for worker in workers:
            worker.stop.set()
        for worker in workers:
            worker.thread.join(timeout=120)
    for worker in workers:
        if worker.error is not None:
            raise RuntimeError(f"{worker.name} died: {worker.error!r}") from worker.error
        if worker.thread.is_alive():
            raise RuntimeError(f"{worker.name} did not stop within 120 s")


def largest_gap(record: Record) -> float:
    """The longest time between two consecutive answers of one check of one case on one cluster
    (a slow API server delays the next tick past the period)."""
    events = record.all()
    gaps = [0.0]
    for key in {(e.env, e.check, e.case) for e in events}:
        times = sorted(e.at for e in events if (e.env, e.check, e.case) == key)
        gaps += [b - a for a, b in itertools.pairwise(times)]
    return max(gaps)


def try_intervals(record: Record) -> list[float]:
    """Every time between two consecutive tries of one case's violating request on one cluster,
    sorted: how close the probe came to "every case every tick"."""
    events = [e for e in record.all() if e.check == "violating"]
    intervals: list[float] = []
    for key in {(e.env, e.case) for e in events}:
        times = sorted(e.at for e in events if (e.env, e.case) == key)
        intervals += [b - a for a, b in itertools.pairwise(times)]
    return sorted(intervals)


def interval_summary(record: Record) -> str:
    intervals = try_intervals(record)
    if not intervals:
        return "no case was tried twice"
    median, p90 = (intervals[min(len(intervals) - 1, int(q * len(intervals)))] for q in (0.5, 0.9))
    return (f"each case tried every {median:.1f}s (median), {p90:.1f}s (90th percentile), "
            f"{intervals[-1]:.1f}s at most")


def create_fixtures(handle: ClusterHandle, team: Tenant, probe_cases: tuple[Case, ...]) -> None:
    """The compliant objects the UPDATE cases turn violating (dry run), created by the tenant."""
    tenant = handle.kube.as_user(team.user)
    for case in probe_cases:
        meta = (case.fixture or {}).get("metadata") or {}
        if case.fixture and handle.kube.get(case.fixture["apiVersion"], case.fixture["kind"], meta["name"],
                                            meta.get("namespace")) is None:
            tenant.create(case.fixture)


def remove_fixtures(handle: ClusterHandle, probe_cases: tuple[Case, ...]) -> None:
    for case in probe_cases:
        if case.fixture:
            meta = case.fixture["metadata"]
            handle.kube.delete(case.fixture["apiVersion"], case.fixture["kind"], meta["name"], meta.get("namespace"))


def _misjudged(case: Case, actors: Actors, name: str) -> list[str]:
    """What the cluster got wrong about one case tried once: its violating request not refused by
    its own policy, its twin not admitted."""
    bad = classify(case.policy, case.violating, actors, f"{name}-bad")
    good = classify(case.policy, case.compliant, actors, f"{name}-ok")
    return ([f"violating request {bad[0]} {bad[1]}"] if bad[0] != "own" else []) + (
        [f"compliant twin {good[0]} {good[1]}"] if good[0] != "admitted" else [])


def baseline_problems(handle: ClusterHandle, team: Tenant, probe_cases: tuple[Case, ...]) -> list[str]:
    """Each case once, outside any window: its violating request refused by its own policy and
    its twin admitted. A case that fails here is a wrong case, not an upgrade problem."""
    actors = Actors.of(Kube(handle.kubeconfig), team.user)
    return [f"{handle.env} {case.name}: {problem}"
            for index, case in enumerate(probe_cases) for problem in _misjudged(case, actors, f"baseline-{index}")]


def calibrated(handle: ClusterHandle, team: Tenant, candidates: list[Case]) -> tuple[Case | None, list[str]]:
    """The first candidate the cluster judges as its offline test says (violating refused by its
    own policy, twin admitted), and what the ones before it got wrong."""
    actors = Actors.of(Kube(handle.kubeconfig), team.user)
    wrong: list[str] = []
    for index, case in enumerate(candidates):
        problems = _misjudged(case, actors, f"calibrate-{index}")
        if not problems:
            return case, wrong
        wrong += [f"{case.origin}: {problem}" for problem in problems]
    return None, wrong


def with_derived(handle: ClusterHandle, team: Tenant, written: tuple[Case, ...], candidates: dict[str, list[Case]],
                 policies: list[str]) -> tuple[tuple[Case, ...], list[str]]:
    """The probe's cases for `policies`: the written ones, and for each policy none of them
    covers, its first derived candidate that holds on the cluster. A policy left with no case
    is a problem, named with what its candidates got wrong."""
    chosen = [c for c in written if c.policy in policies]
    problems = []
    for policy in policies:
        if any(c.policy == policy for c in chosen):
            continue
        case, wrong = calibrated(handle, team, candidates.get(policy, []))
        if case is None:
            problems.append(f"policy {policy} has no probe case: no case in harness/e2e/cases.py, and none of its "
                            f"{len(candidates.get(policy, []))} offline CREATE examples holds on {handle.env}"
                            + "".join(f"\n  {w}" for w in wrong[:6]))
        else:
            chosen.append(case)
    return tuple(chosen), problems
