"""The local OCI registry that stands in for ghcr.io, registry.k8s.io, docker.io and Kyverno's.

A real registry (Debian's docker-registry, i.e. distribution) in a container on the run's Docker
network, named after the run: kind nodes reach it as http://fleet-<run>-registry:5000 through
containerd mirror configuration, and the host pushes to it on a loopback port Docker picks.
Its storage lives in the kit cache, so what was pushed once is served again by every run. Images keep their upstream paths with
the registry host dropped (ghcr.io/fluxcd/x:v1 is served as fluxcd/x:v1).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from harness.access import networks
from harness.core import commands
from harness.core.errors import CommandError, KitError
from harness.core.progress import say
from harness.core.runs import Run
from harness.core.teardown import best_effort
from harness.core.waits import wait_for

MIRRORED = ("ghcr.io", "registry.k8s.io", "docker.io", "reg.kyverno.io")


@dataclass(frozen=True)
class Registry:
    """A running registry: where the host pushes and where nodes pull."""

    container: str
    host_endpoint: str  # 127.0.0.1:<port Docker picked>

    @property
    def node_endpoint(self) -> str:
        return f"http://{self.container}:5000"

    def local_name(self, upstream: str) -> str:
        """The host-side name of an upstream image reference."""
        return f"{self.host_endpoint}/{strip_registry(upstream)}"


def strip_registry(reference: str) -> str:
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first):
        return rest
    return reference


def _healthy(endpoint: str) -> Callable[[], tuple[bool, None, str]]:
    def probe() -> tuple[bool, None, str]:
        try:
            with urllib.request.urlopen(f"http://{endpoint}/v2/", timeout=3) as response:
                return response.status == 200, None, f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            return False, None, str(exc)

    return probe


def start(image: str, storage: Path, run: Run) -> Registry:
    """Start the run's registry container (from `image`, serving `storage`) on the run's
    network, which must exist."""
    container = run.name("registry")
    storage.mkdir(parents=True, exist_ok=True)
    commands.run(["docker", "run", "-d", "--name", container, "--network", run.network,
                  *run.label_args(), "--label", "dev.fleet-e2e.role=registry",
                  "-p", "127.0.0.1::5000", "-v", f"{storage}:/var/lib/registry", image],
                 timeout_s=120.0)
    port = commands.run(["docker", "port", container, "5000/tcp"], timeout_s=30.0).stdout.split()
    endpoint = next((p for p in port if p.startswith("127.0.0.1:")), "")
    if not endpoint:
        stop_container(container)
        raise KitError(f"registry {container}: Docker published no loopback port ({port})")
    say(f"registry {container} started (host {endpoint}, storage {storage})")
    reg = Registry(container, endpoint)
    try:
        wait_for("the local registry to answer", _healthy(endpoint), timeout_s=60.0, interval_s=0.5,
                 hint=f"docker logs {container}")
    except BaseException:
        stop(reg)
        raise
    return reg


def start_on(stack: ExitStack, image: str, storage: Path, run: Run) -> Registry:
    """The run's network and registry container, their removal registered on `stack`
    (best-effort: a teardown failure never replaces the block's own). The kit's registry fill,
    the smoke check and the fleet all start theirs this way; `make up` keeps them by popping
    the stack."""
    networks.ensure(run)
    stack.callback(best_effort, f"remove network {run.network}", networks.remove, run)
    reg = start(image, storage, run)
    stack.callback(best_effort, f"remove registry {reg.container}", stop, reg)
    return reg


def stop(registry: Registry) -> None:
    """Remove the registry container (its storage stays in the cache)."""
    stop_container(registry.container)


def stop_container(name: str) -> None:
    commands.run(["docker", "rm", "-f", name], timeout_s=60.0)


def has_image(registry: Registry, upstream: str, image_id: str) -> bool:
    """True if the registry holds this exact image (config digest equals the local image id)."""
    path = strip_registry(upstream)
    name, _, tag = path.rpartition(":")
    request = urllib.request.Request(
        f"http://{registry.host_endpoint}/v2/{name}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            manifest = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return bool(manifest.get("config", {}).get("digest") == image_id)


def push(registry: Registry, upstream_tags: list[str]) -> list[str]:
    """Push images (by their upstream tags) unless the registry already has them; return pushed."""
    pushed: list[str] = []
    if not upstream_tags:
        return pushed
    # One Docker call for every image's ID (in the order asked).
    ids = commands.run(["docker", "image", "inspect", "--format", "{{.Id}}", *upstream_tags],
                       timeout_s=60.0).stdout.split()
    for tag, image_id in zip(upstream_tags, ids, strict=True):
        if has_image(registry, tag, image_id):
            continue
        local = registry.local_name(tag)
        try:
            commands.run(["docker", "tag", tag, local], timeout_s=60.0)
            commands.run(["docker", "push", local], timeout_s=1800.0)
        except CommandError as exc:
            raise KitError(f"pushing {tag} to the local registry failed: {exc}") from exc
        finally:
            commands.succeeds(["docker", "rmi", local], timeout_s=60.0)
        pushed.append(tag)
    return pushed


def mirror_config(registry: Registry, target: Path) -> Path:
    """containerd hosts.toml files that send every mirrored registry to the local one."""
    shutil.rmtree(target, ignore_errors=True)
    for upstream in MIRRORED:
        server = "https://registry-1.docker.io" if upstream == "docker.io" else f"https://{upstream}"
        folder = target / upstream
        folder.mkdir(parents=True)
        (folder / "hosts.toml").write_text(
            f'server = "{server}"\n\n[host."{registry.node_endpoint}"]\n  capabilities = ["pull", "resolve"]\n'
        )
    return target
