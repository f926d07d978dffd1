"""A run's own Docker network: its kind nodes, its registry and its Git server's address.

kind puts nodes on the network named by KIND_EXPERIMENTAL_DOCKER_NETWORK; the harness creates
that network first, the way kind would, plus the run's labels, so it is the run's alone.
"""

from __future__ import annotations

from harness.core import commands
from harness.core.errors import HarnessError
from harness.core.runs import Run

KIND_NETWORK_ENV = "KIND_EXPERIMENTAL_DOCKER_NETWORK"


def ensure(run: Run) -> bool:
    """Create the run's network if it is missing; True if created here."""
    if commands.succeeds(["docker", "network", "inspect", run.network], timeout_s=30.0):
        return False
    commands.run(["docker", "network", "create", "-d=bridge", *run.label_args(),
                  "-o", "com.docker.network.bridge.enable_ip_masquerade=true",
                  "-o", "com.docker.network.driver.mtu=1500", run.network], timeout_s=60.0)
    return True


def remove(run: Run) -> None:
    """Remove the run's network (only ever the run's: the name carries its id)."""
    if commands.succeeds(["docker", "network", "inspect", run.network], timeout_s=30.0):
        commands.run(["docker", "network", "rm", run.network], timeout_s=60.0)


def gateway(run: Run) -> str:
    """The host's address on the run's network: reachable from the host, nodes and pods alike."""
    out = commands.run(["docker", "network", "inspect", run.network, "--format",
                        "{{range .IPAM.Config}}{{.Gateway}} {{end}}"], timeout_s=30.0).stdout.split()
    ipv4 = [a for a in out if ":" not in a]
    if not ipv4:
        raise HarnessError(f"docker network {run.network} has no IPv4 gateway: {out}")
    return ipv4[0]
