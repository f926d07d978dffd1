"""`kubectl port-forward` as a context manager that waits until the port answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.core import commands
from harness.core.waits import wait_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def port_forward(kubectl: str, kubeconfig: Path, namespace: str, target: str, remote_port: int,
                 log: Path, timeout_s: float = 60.0) -> Iterator[int]:
    """Forward a local port to target (e.g. svc/podinfo) and yield the local port."""
    port = _free_port()
    daemon = commands.spawn([kubectl, "--kubeconfig", str(kubeconfig), "-n", namespace, "port-forward",
                          target, f"{port}:{remote_port}"], log=log)
    try:
        wait_for(f"port-forward to {namespace}/{target}:{remote_port}",
                 lambda: (_answers(port), None, log.read_text()[-300:] if log.exists() else ""),
                 timeout_s=timeout_s, interval_s=0.5)
        yield port
    finally:
        daemon.stop()
