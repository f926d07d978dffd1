"""Collects what explains a failure: Flux objects and status, events, controller logs, kind logs.

Collection is best-effort: each item that cannot be gathered is noted in the folder's
index and the rest is still collected.
"""

from __future__ import annotations

from pathlib import Path

from harness.core import commands
from harness.core.errors import HarnessError
from harness.e2e.clusters import Cluster

FLUX_KINDS = ("gitrepositories", "helmrepositories", "helmcharts", "kustomizations", "helmreleases")
KYVERNO_KINDS = ("validatingpolicies.policies.kyverno.io", "policyreports", "clusterpolicyreports")
NAMESPACES_WITH_LOGS = ("flux-system", "kyverno")


def collect(kubectl: str, cluster: Cluster, target: Path, node_logs: bool = True) -> Path:
    """Write diagnostics for one cluster into target; return the folder. Without `node_logs`
    the provider's node logs are left for once per session (see export_node_logs)."""
    target.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    def save(name: str, argv: list[str]) -> None:
        try:
            out = commands.run(argv, timeout_s=120.0)
            (target / name).write_text(out.stdout + (("\n# stderr:\n" + out.stderr) if out.stderr else ""))
        except HarnessError as exc:
            problems.append(f"{name}: {exc}")

    k = [kubectl, "--kubeconfig", str(cluster.kubeconfig_path)]
    save("flux-objects.yaml", [*k, "get", ",".join(FLUX_KINDS), "-A", "-o", "yaml"])
    save("flux-summary.txt", [*k, "get", ",".join(FLUX_KINDS), "-A", "-o", "wide"])
    save("kyverno-policies.yaml", [*k, "get", ",".join(KYVERNO_KINDS), "-A", "-o", "yaml"])
    # What the API server enforces, whichever engine wrote it (Kyverno's vpol-*, or the native variant's).
    save("admission-policies.yaml", [*k, "get", "validatingadmissionpolicies,validatingadmissionpolicybindings",
                                     "-o", "yaml"])
    save("events.txt", [*k, "get", "events", "-A", "--sort-by=.lastTimestamp"])
    save("pods.txt", [*k, "get", "pods", "-A", "-o", "wide"])
    for namespace in NAMESPACES_WITH_LOGS:
        try:
            deployments = commands.run([*k, "get", "deploy", "-n", namespace, "-o", "name"], timeout_s=60.0).stdout.split()
        except HarnessError as exc:
            problems.append(f"deployments in {namespace}: {exc}")
            continue
        for deployment in deployments:
            name = deployment.split("/")[-1]
            save(f"logs-{namespace}-{name}.txt", [*k, "logs", "-n", namespace, deployment, "--all-containers", "--tail=2000"])
    if node_logs:
        problems += export_node_logs(cluster, target / "node-logs")
    (target / "INDEX.txt").write_text(
        "Diagnostics collected after a failure.\n"
        + "\n".join(sorted(p.name for p in target.iterdir()))
        + ("\n\nCould not collect:\n" + "\n".join(problems) if problems else "\n")
    )
    return target


def export_node_logs(cluster: Cluster, target: Path) -> list[str]:
    """The provider's own logs of the cluster (kind: every node's journal, containerd, kubelet,
    pods), which cover the whole session; what could not be exported, as one line."""
    try:
        cluster.export_logs(target)
    except HarnessError as exc:
        return [f"node logs of {cluster.name}: {exc}"]
    return []
