"""Connections made from inside a pod: what a workload can reach on the cluster's network.

A probe pod runs podinfo's image under Pod Security `restricted` (it serves podinfo on 9898, so it
is a target too) and each check runs its `podcli check tcp|http` through `kubectl exec`: one
attempt, no retry, a short timeout. The outcome keeps podcli's own words, so a test can tell a
connection refused by a NetworkPolicy (kube-router rejects the packet: "connection refused") from
a name that did not resolve or a timeout, and a failure names the connection that got through.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.access.kube import Kube
from harness.core import commands
from harness.core.errors import CommandError, HarnessError
from harness.core.waits import SOON_S, wait_for
from harness.e2e import tenancy

PODINFO_PORT = 9898
CHECK_TIMEOUT_S = 2
START_TIMEOUT_S = 120.0
REFUSED = "connection refused"


@dataclass(frozen=True)
class Outcome:
    """One connection attempt: whether it was made, and podcli's log of it."""

    source: str  # namespace/pod
    target: str
    connected: bool
    detail: str

    @property
    def refused(self) -> bool:
        """Refused at connect: what a NetworkPolicy enforcer that rejects (kube-router) answers."""
        return not self.connected and REFUSED in self.detail

    def __str__(self) -> str:
        verdict = "connected" if self.connected else "not connected"
        return f"{self.source} -> {self.target}: {verdict} ({self.detail})"


@dataclass(frozen=True)
class Prober:
    """A running probe pod and how to exec into it."""

    kubectl: str
    kubeconfig: Path
    namespace: str
    name: str
    ip: str

    @property
    def source(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _check(self, kind: str, target: str) -> Outcome:
        argv = [self.kubectl, "--kubeconfig", str(self.kubeconfig), "exec", "-n", self.namespace, self.name,
                "--", "podcli", "check", kind, target, "--retry", "0", "--delay", "0s",
                "--timeout", f"{CHECK_TIMEOUT_S}s"]
        try:
            out = commands.run(argv, timeout_s=30.0)
            return Outcome(self.source, target, True, _last_log(out.stdout + out.stderr))
        except CommandError as exc:
            if exc.exit_code != 1:  # podcli exits 1 on a failed check; anything else is the exec
                raise HarnessError(f"exec into {self.source} failed: {exc}") from exc
            return Outcome(self.source, target, False, _last_log(exc.stdout + exc.stderr))

    def http(self, url: str) -> Outcome:
        return self._check("http", url)

    def tcp(self, address: str) -> Outcome:
        return self._check("tcp", address)


def at_once(*checks: Callable[[], Outcome]) -> list[Outcome]:
    """Independent checks made at once (each is a `kubectl exec` that mostly waits on the API
    server), their outcomes in the order given."""
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        return list(pool.map(lambda check: check(), checks))


def _last_log(text: str) -> str:
    """podcli's last JSON log line as `msg: error` (or the raw text when it printed none)."""
    for line in reversed(text.strip().splitlines()):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        return f"{entry.get('msg', '')}: {entry.get('error') or entry.get('status code') or entry.get('address')}"
    return text.strip()[-300:]


def create_prober(kube: Kube, namespace: str, name: str, image: str) -> None:
    """Create a probe pod in `namespace` (labelled app=<name>); `ready_prober` waits for it."""
    pod = tenancy.pod(name, None, image, namespace)
    pod["metadata"]["labels"] = {"app": name}
    pod["spec"]["restartPolicy"] = "Always"
    pod["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": PODINFO_PORT}, "periodSeconds": 1}
    kube.create(pod)


def ready_prober(kube: Kube, kubectl: str, kubeconfig: Path, namespace: str, name: str) -> Prober:
    """The probe pod, once it is ready."""

    def ready() -> tuple[bool, str, str]:
        status = (kube.get("v1", "Pod", name, namespace) or {}).get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        return (conditions.get("Ready") == "True", str(status.get("podIP")),
                f"phase {status.get('phase')}, conditions {conditions}")

    ip = wait_for(f"probe pod {namespace}/{name} ready", ready, timeout_s=START_TIMEOUT_S, interval_s=1.0,
                  first_s=SOON_S)
    return Prober(kubectl, kubeconfig, namespace, name, ip)


def start_prober(kube: Kube, kubectl: str, kubeconfig: Path, namespace: str, name: str, image: str) -> Prober:
    """A probe pod in `namespace` (labelled app=<name>), running and ready."""
    create_prober(kube, namespace, name, image)
    return ready_prober(kube, kubectl, kubeconfig, namespace, name)


def wait_refused(prober: Prober, kind: str, target: str, settle_s: float) -> Outcome:
    """The first refusal of prober -> target within `settle_s`: a new pod's rules are programmed
    by the enforcer shortly after it starts. A connection still made at the end fails, named."""

    def attempt() -> tuple[bool, Outcome, str]:
        outcome = prober.http(target) if kind == "http" else prober.tcp(target)
        return not outcome.connected, outcome, str(outcome)

    return wait_for(f"{prober.source} -> {target} to be refused by the network policies", attempt,
                    timeout_s=settle_s, interval_s=1.0)


def running_pod(kube: Kube, namespace: str, label: str, value: str) -> dict[str, Any]:
    """A pod of `namespace` labelled label=value that has an address; fails naming what is missing."""
    for pod in kube.list("v1", "Pod", namespace):
        if (pod["metadata"].get("labels") or {}).get(label) == value and (pod.get("status") or {}).get("podIP"):
            return pod
    raise HarnessError(f"no running pod labelled {label}={value} in {namespace}")


def prober_of(kubectl: str, kubeconfig: Path, pod: dict[str, Any]) -> Prober:
    """A pod that already runs podinfo's image (podcli on its PATH), as a prober."""
    meta = pod["metadata"]
    return Prober(kubectl, kubeconfig, meta["namespace"], meta["name"], str(pod["status"]["podIP"]))
