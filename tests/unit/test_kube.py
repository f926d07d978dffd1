"""Kubernetes clients: a hung API server cannot outlast a wait's deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.access import kube


@pytest.fixture
def hung_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers, like a wedged API server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_hung_api_server_fails_the_call_within_the_request_timeout(
    hung_server: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{hung_server}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    started = time.monotonic()
    with pytest.raises(kube.KubeError, match=r"get ConfigMap default/x on the cluster of .* failed.*has 1s"):
        kube.Kube(kubeconfig, timeout_s=1.0).get("v1", "ConfigMap", "x", "default")
    assert time.monotonic() - started < 5.0
