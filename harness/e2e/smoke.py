"""`make kit-check`: a throwaway kind cluster proves the kit works, then leaves nothing behind.

Creates a cluster from the kit's node image with the registry mirror, checks the reported
Kubernetes version, runs a pod whose image only the mirror has, runs a privileged pod, starts
the NetworkPolicy enforcer and proves a deny policy refuses a connection that worked without it,
runs `flux check --pre`, deletes the cluster and verifies no container, volume, network or process
of it remains.
"""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from harness.access import registry
from harness.access.kube import Kube
from harness.core import commands
from harness.core.errors import CommandError, HarnessError
from harness.core.progress import say
from harness.core.runs import Run
from harness.core.teardown import best_effort
from harness.core.versions import Versions
from harness.core.waits import wait_for
from harness.e2e import enforcer
from harness.e2e.clusters import KitCluster, node_containers
from harness.e2e.sweep import inventory_of_run
from harness.kit.build import Kit
from harness.kit.images import kube_router_tag


class SmokeError(HarnessError):
    """The kit's smoke check failed."""


def leftovers(run: Run, cluster: str) -> list[str]:
    """Containers, volumes, networks and processes that still belong to the smoke run."""
    found = [str(f) for f in inventory_of_run(run)]
    found += [f"container {c}" for c in node_containers(cluster)]
    volumes = commands.run(["docker", "volume", "ls", "-q", "--filter", "dangling=true"], timeout_s=30.0).stdout.split()
    found += [f"dangling volume {v}" for v in volumes]
    processes = commands.run(["ps", "-eo", "pid,args"], timeout_s=30.0).stdout.splitlines()
    found += [f"process {p.strip()}" for p in processes if cluster in p and "ps -eo" not in p]
    return found


class Smoke:
    """One smoke run; every step raises SmokeError naming what failed."""

    def __init__(self, v: Versions, kit: Kit, workdir: Path, run: Run) -> None:
        self.v, self.kit, self.workdir = v, kit, workdir
        self.name = run.name("smoke")
        self.kind = kit.binary("kind")
        self.kubectl = kit.binary("kubectl")
        self.cluster = KitCluster(self.name, workdir, self.kind, self.kubectl, kit.node_image, run.network)
        self.kubeconfig = self.cluster.kubeconfig_path

    def kubectl_run(self, *args: str, timeout_s: float = 60.0, stdin: str | None = None) -> str:
        return commands.run([self.kubectl, "--kubeconfig", str(self.kubeconfig), *args],
                            timeout_s=timeout_s, stdin=stdin).stdout

    def create(self, reg: registry.Registry) -> None:
        self.cluster.create_with_mirror(reg)

    def check_version(self) -> None:
        version = json.loads(self.kubectl_run("version", "-o", "json"))["serverVersion"]["gitVersion"]
        if version != self.kit.node_kubernetes:
            raise SmokeError(f"API server reports {version}, expected {self.kit.node_kubernetes}")
        say(f"smoke: API server reports {version}")

    def wait_default_account(self) -> None:
        """Pods need the namespace's default ServiceAccount, which the controller-manager adds."""
        wait_for("ServiceAccount default/default to exist",
                 lambda: (commands.succeeds([self.kubectl, "--kubeconfig", str(self.kubeconfig), "get",
                                             "serviceaccount", "default", "-n", "default"], timeout_s=30.0),
                          None, "not created yet"),
                 timeout_s=120.0)

    def run_pod(self, name: str, image: str, privileged: bool, command: tuple[str, ...] = ()) -> None:
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"smoke": name}},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                **({"command": list(command)} if command else {}),
                # Listing iptables rules needs NET_ADMIN: it only works privileged.
                **({"command": ["/bin/sh", "-c", "iptables -L >/dev/null && sleep 3600"],
                    "securityContext": {"privileged": True}} if privileged else {}),
            }]},
        }
        self.kubectl_run("apply", "-f", "-", stdin=json.dumps(pod))

        def probe() -> tuple[bool, None, str]:
            status = json.loads(self.kubectl_run("get", "pod", name, "-o", "json")).get("status", {})
            waiting = [c.get("state", {}).get("waiting", {}) for c in status.get("containerStatuses", [])]
            reasons = {w.get("reason") for w in waiting if w}
            if reasons & {"ErrImagePull", "ImagePullBackOff", "CreateContainerError", "RunContainerError"}:
                raise SmokeError(f"pod {name} ({image}) cannot start: {waiting}")
            if status.get("phase") in ("Failed", "Succeeded"):
                terminated = [c.get("state", {}).get("terminated") for c in status.get("containerStatuses", [])]
                raise SmokeError(f"pod {name} ({image}) exited: {terminated}")
            return status.get("phase") == "Running", None, f"phase={status.get('phase')} waiting={waiting}"

        wait_for(f"pod {name} ({image}) to run", probe, timeout_s=180.0)
        say(f"smoke: pod {name} is running ({image}{', privileged' if privileged else ''})")

    def pod_ip(self, name: str) -> str:
        return str(json.loads(self.kubectl_run("get", "pod", name, "-o", "json"))["status"]["podIP"])

    def connect(self, client: str, url: str) -> tuple[int | None, str]:
        """curl from the client pod: (curl's exit code, what it printed)."""
        try:
            out = self.kubectl_run("exec", client, "--", "curl", "-sS", "-m", "3", "-o", "/dev/null",
                                   "-w", "%{http_code}", url, timeout_s=30.0)
            return 0, out
        except CommandError as exc:
            return exc.exit_code, (exc.stdout + exc.stderr).strip()

    def prove_network_policy(self, server_image: str, client_image: str) -> None:
        """The enforcer starts, a connection between two pods works, and a NetworkPolicy that
        denies the server's ingress refuses it."""
        enforcer.install(Kube(self.kubeconfig), self.v, self.name)
        self.run_pod("np-server", server_image, privileged=False)
        self.run_pod("np-client", client_image, privileged=False, command=("sleep", "3600"))
        url = f"http://{self.pod_ip('np-server')}:9898/healthz"

        def answered() -> tuple[bool, None, str]:
            code, out = self.connect("np-client", url)
            return code == 0 and out == "200", None, f"curl exit {code}: {out}"

        wait_for(f"np-client to reach {url} without a NetworkPolicy", answered, timeout_s=60.0)
        deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "deny-np-server", "namespace": "default"},
                "spec": {"podSelector": {"matchLabels": {"smoke": "np-server"}}, "policyTypes": ["Ingress"]}}
        self.kubectl_run("apply", "-f", "-", stdin=json.dumps(deny))

        def refused() -> tuple[bool, str, str]:
            code, out = self.connect("np-client", url)
            if code == 0:
                return False, "", f"still answered {out}"
            # kube-router rejects (curl 7, connection refused) or the packet is dropped (28).
            if code not in (7, 28):
                raise SmokeError(f"np-client -> {url} failed for another reason (curl exit {code}): {out}")
            reason = next((line for line in out.splitlines() if line.startswith("curl:")), out)
            return True, reason, out

        how = wait_for(f"the NetworkPolicy deny-np-server to refuse np-client -> {url}", refused, timeout_s=60.0)
        say(f"smoke: NetworkPolicy enforced (kube-router {self.v.kube_router}): np-client -> np-server "
            f"answered 200 without a policy, then was refused: {how}")

    def flux_check_pre(self) -> None:
        out = commands.run([self.kit.binary("flux"), "check", "--pre", "--kubeconfig", str(self.kubeconfig)],
                           timeout_s=120.0)
        say("smoke: flux check --pre passed: " + " ".join((out.stdout + out.stderr).split())[:200])

    def delete(self) -> None:
        self.cluster.delete()


def run_smoke(v: Versions, kit: Kit) -> float:
    """The whole smoke check; returns its wall time."""
    started = time.monotonic()
    run = Run.new()
    with tempfile.TemporaryDirectory(prefix=f"{run.name()}-smoke-") as tmp:
        smoke = Smoke(v, kit, Path(tmp), run)
        with ExitStack() as stack:
            reg = registry.start_on(stack, kit.registry_image, kit.registry_storage, run)
            stack.callback(best_effort, f"delete cluster {smoke.name}", smoke.delete)
            smoke.create(reg)
            smoke.check_version()
            smoke.wait_default_account()
            podinfo = next(t for t in kit.upstream_tags if "/podinfo:" in t)
            smoke.run_pod("from-mirror", podinfo, privileged=False)
            proxy = next(t for t in kit.upstream_tags if "/kube-proxy:" in t)
            smoke.run_pod("privileged", proxy, privileged=True)
            smoke.prove_network_policy(podinfo, kube_router_tag(v))
            smoke.flux_check_pre()
        left = leftovers(run, smoke.name)
        if left:
            raise SmokeError(f"left behind after deleting {smoke.name}: {left}")
    return time.monotonic() - started
