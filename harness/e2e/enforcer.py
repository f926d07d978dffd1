"""The NetworkPolicy enforcer of the kit's kind clusters: kube-router's firewall, installed right
after a cluster is created and before Flux.

The node image's bridge CNI enforces no NetworkPolicy, and kindnetd's engine needs nftables'
queue, which these kernels lack. kube-router's firewall works with iptables and ipset, which they
have, beside any CNI. Its manifest is upstream's firewall-only DaemonSet at the pinned version,
read from the module cache, with what only fits a cluster where kube-router is also the CNI taken
out (the init container writing its CNI config, the node's kubeconfig) and upstream's own RBAC for
an in-cluster account put in. Clusters the harness did not create bring their own enforcer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.access.kube import Kube
from harness.core.errors import HarnessError
from harness.core.versions import Versions
from harness.core.waits import wait_for
from harness.kit import gomod
from harness.kit.images import kube_router_tag

MODULE = "github.com/cloudnativelabs/kube-router/v2"
FIREWALL = "daemonset/kube-router-firewall-daemonset.yaml"
RBAC = "daemonset/generic-kuberouter.yaml"
NAMESPACE = "kube-system"
NAME = "kube-router"
READY_TIMEOUT_S = 180.0
# What upstream's firewall DaemonSet carries for kube-router as the CNI or for a node kubeconfig.
KUBECONFIG_ARG = "--kubeconfig=/var/lib/kube-router/kubeconfig"
DROPPED_ENV = {"KUBE_ROUTER_CNI_CONF_FILE"}
DROPPED_VOLUMES = {"cni-conf-dir", "kube-router-cfg", "kubeconfig", "host-opt"}


class EnforcerError(HarnessError):
    """The NetworkPolicy enforcer could not be installed or did not start."""


def _docs(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise EnforcerError(f"{path} is missing from the kube-router module; the manifest is read from it")
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _changed(what: str) -> EnforcerError:
    return EnforcerError(f"kube-router's {FIREWALL} no longer has {what}: upstream changed its manifest; "
                         "update harness/e2e/enforcer.py to the new shape")


def manifest(v: Versions) -> list[dict[str, Any]]:
    """Upstream's firewall DaemonSet and RBAC at the pinned version, adapted as the module says."""
    module = gomod.download(MODULE, v.kube_router)
    rbac = [d for d in _docs(module.dir / RBAC) if d.get("kind") in ("ServiceAccount", "ClusterRole",
                                                                      "ClusterRoleBinding")]
    if sorted(d["kind"] for d in rbac) != ["ClusterRole", "ClusterRoleBinding", "ServiceAccount"]:
        raise EnforcerError(f"kube-router's {RBAC} no longer holds one ServiceAccount, ClusterRole and "
                            "ClusterRoleBinding; update harness/e2e/enforcer.py")
    for doc in rbac:
        if doc["kind"] == "ClusterRole":
            doc["metadata"].pop("namespace", None)  # cluster-scoped; upstream's file names one
    daemonsets = [d for d in _docs(module.dir / FIREWALL) if d.get("kind") == "DaemonSet"]
    if len(daemonsets) != 1:
        raise _changed("exactly one DaemonSet")
    ds = daemonsets[0]
    spec = ds["spec"]["template"]["spec"]
    if not spec.pop("initContainers", None):
        raise _changed("the init container that installs its CNI config")
    (container,) = spec["containers"]
    if KUBECONFIG_ARG not in container.get("args", []):
        raise _changed(f"the argument {KUBECONFIG_ARG}")
    if "--run-firewall=true" not in container["args"]:
        raise _changed("--run-firewall=true")
    container["args"].remove(KUBECONFIG_ARG)
    container["image"] = kube_router_tag(v)
    container["env"] = [e for e in container.get("env", []) if e["name"] not in DROPPED_ENV]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] not in DROPPED_VOLUMES]
    spec["volumes"] = [vol for vol in spec["volumes"] if vol["name"] not in DROPPED_VOLUMES]
    account = next(d for d in rbac if d["kind"] == "ServiceAccount")["metadata"]["name"]
    spec["serviceAccountName"] = account
    return [*rbac, ds]


def start(kube: Kube, v: Versions) -> None:
    """Create the enforcer's account, RBAC and DaemonSet (upstream's, adapted)."""
    for doc in manifest(v):
        kube.create(doc)


def wait_running(kube: Kube, v: Versions, cluster: str) -> None:
    """Wait until the enforcer's pod runs on every node."""
    wait_for(f"{cluster}: NetworkPolicy enforcer (kube-router {v.kube_router}, firewall only) on every node",
             lambda: _ready(kube), timeout_s=READY_TIMEOUT_S)


def install(kube: Kube, v: Versions, cluster: str) -> None:
    start(kube, v)
    wait_running(kube, v, cluster)


def _ready(kube: Kube) -> tuple[bool, None, str]:
    ds = kube.get("apps/v1", "DaemonSet", NAME, NAMESPACE) or {}
    status = ds.get("status", {})
    desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
    return bool(desired) and ready == desired, None, f"{ready}/{desired} ready"
