"""The workload plane, through the API as the tenant's account: what a tenant's pods, Services,
quota and role bindings may do (threat-model rows 16-19, the Multi-Tenancy Benchmarks' level 1).
Every refusal is asserted by its reason (Pod Security's, the API server's, a policy's) and has a
twin that the same call admits."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from harness.access.kube import Kube, refusal, refusal_message
from harness.core.repo import API
from harness.core.topology import Tenant
from harness.core.waits import SOON_S, wait_for
from harness.e2e import tenancy
from harness.e2e.handles import ClusterHandle, Fleet
from harness.kit.images import podinfo_tag

pytestmark = [pytest.mark.e2e, pytest.mark.admission]

FORBIDDEN = 403  # Pod Security, RBAC and ResourceQuota refuse with 403 Forbidden


@pytest.fixture
def image(fleet: Fleet) -> str:
    return podinfo_tag(fleet.kit.versions)


@pytest.fixture
def pod_security(fleet: Fleet) -> str:
    """How Pod Security Admission names the level a tenant namespace enforces."""
    return f'violates PodSecurity "restricted:{fleet.kit.versions.kubernetes_minor}"'


@pytest.fixture
def cleanup(fleet: Fleet, cluster: ClusterHandle, team: Tenant) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Registers objects a test created (or tried to) for removal by the admin afterwards. Starts
    once the pods earlier tests deleted are gone: a terminating pod still counts against the
    namespace's quota, and this test's pod must not be refused for the room it holds."""
    wait_for(f"earlier tests' pods gone from {team.namespace}",
             lambda: (not (left := tenancy.terminating_pods(cluster.kube, team.namespace)), left,
                      f"terminating: {left}"), fleet.config.timeout(60), first_s=SOON_S)
    created: list[dict[str, Any]] = []
    yield created.append
    for obj in reversed(created):
        meta = obj["metadata"]
        cluster.kube.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


# Row 16: a pod that reaches its node. Each variant changes one field of a pod `restricted`
# admits, so each refusal is for that field alone.

def _variant(team: Tenant, name: str, image: str, how: str) -> dict[str, Any]:
    pod = tenancy.pod(name, None, image, team.namespace)
    spec, box = pod["spec"], pod["spec"]["containers"][0]
    security = box["securityContext"]
    if how == "privileged":
        tenancy.make_privileged(box)
    elif how == "added-capability":
        security["capabilities"]["add"] = ["NET_ADMIN"]
    elif how == "privilege-escalation":
        security["allowPrivilegeEscalation"] = True
    elif how == "root-user":
        spec["securityContext"].update(runAsUser=0, runAsNonRoot=False)
    elif how in ("host-pid", "host-ipc", "host-network"):
        spec[{"host-pid": "hostPID", "host-ipc": "hostIPC", "host-network": "hostNetwork"}[how]] = True
    elif how == "host-path":
        spec["volumes"] = [{"name": "host", "hostPath": {"path": "/"}}]
        box["volumeMounts"] = [{"name": "host", "mountPath": "/host"}]
    elif how == "host-port":
        box["ports"] = [{"containerPort": 9898, "hostPort": 9898}]
    else:
        raise ValueError(how)
    return pod


# Pod Security's own words for each check (k8s.io/pod-security-admission/policy).
ESCAPES = {
    "privileged": "privileged (container \"probe\" must not set securityContext.privileged=true)",
    "added-capability": "must not include \"NET_ADMIN\" in securityContext.capabilities.add",
    "privilege-escalation": "allowPrivilegeEscalation != false",
    "root-user": "runAsUser=0",
    "host-pid": "host namespaces (hostPID=true)",
    "host-ipc": "host namespaces (hostIPC=true)",
    "host-network": "host namespaces (hostNetwork=true)",
    "host-path": 'restricted volume types (volume "host" uses restricted volume type "hostPath")',
    "host-port": "hostPort (container \"probe\" uses hostPort 9898)",
}


def test_restricted_pod_is_admitted_and_runs(cluster: ClusterHandle, tenant: Kube, probe_name: str, image: str,
                                             cleanup: Callable[[dict[str, Any]], None], fleet: Fleet, team: Tenant) -> None:
    """The twin of every pod refusal below: the same create, with nothing changed, runs."""
    pod = tenancy.pod(probe_name, None, image, team.namespace)
    cleanup(pod)
    tenant.create(pod)

    def running() -> tuple[bool, str, str]:
        phase = ((cluster.kube.get("v1", "Pod", probe_name, team.namespace) or {}).get("status") or {}).get("phase", "")
        return phase == "Running", phase, f"phase {phase or '(none)'}"

    wait_for(f"pod {team.namespace}/{probe_name} to run", running, fleet.config.timeout(90), first_s=SOON_S)


@pytest.mark.parametrize("how", list(ESCAPES))
def test_pod_that_reaches_its_node_is_refused(tenant: Kube, probe_name: str, image: str, pod_security: str,
                                              how: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, _variant(team, probe_name, image, how), FORBIDDEN, pod_security, ESCAPES[how])


def _workload(team: Tenant, kind: str, name: str, pod: dict[str, Any]) -> dict[str, Any]:
    """`pod`'s spec as the template of a workload of `kind`, asking for one pod."""
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": {**pod["spec"], "restartPolicy": "Always"}}
    if kind == "Job":
        template["spec"]["restartPolicy"] = "Never"
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": team.namespace},
                "spec": {"backoffLimit": 0, "template": template}}
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template}
    if kind != "DaemonSet":
        spec["replicas"] = 1
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": team.namespace}, "spec": spec}


def _pods_of(team: Tenant, kube: Kube, name: str) -> list[str]:
    return [p["metadata"]["name"] for p in kube.list("v1", "Pod", team.namespace)
            if (p["metadata"].get("labels") or {}).get("app") == name]


WORKLOADS = ["Deployment", "StatefulSet", "DaemonSet", "Job"]


@pytest.mark.parametrize("kind", WORKLOADS)
def test_workload_with_a_restricted_template_gets_its_pod(fleet: Fleet, cluster: ClusterHandle, tenant: Kube,
                                                          probe_name: str, image: str, kind: str,
                                                          cleanup: Callable[[dict[str, Any]], None], team: Tenant) -> None:
    """The twin: the workload's controller creates the pod the template describes."""
    workload = _workload(team, kind, probe_name, tenancy.pod(probe_name, None, image, team.namespace))
    cleanup(workload)
    tenant.create(workload)

    def created() -> tuple[bool, list[str], str]:
        pods = _pods_of(team, cluster.kube, probe_name)
        return bool(pods), pods, "no pod yet"

    wait_for(f"{kind} {team.namespace}/{probe_name} to create its pod", created, fleet.config.timeout(60), first_s=SOON_S)


@pytest.mark.parametrize("kind", WORKLOADS)
def test_workload_whose_template_is_refused_never_gets_a_pod(fleet: Fleet, cluster: ClusterHandle, tenant: Kube,
                                                             probe_name: str, image: str, pod_security: str,
                                                             kind: str,
                                                             cleanup: Callable[[dict[str, Any]], None], team: Tenant) -> None:
    """Pod Security only warns about templates; the pods the controller then asks for are refused,
    and the controller says so in an event."""
    workload = _workload(team, kind, probe_name, _variant(team, probe_name, image, "privileged"))
    cleanup(workload)
    tenant.create(workload)

    def refused() -> tuple[bool, str, str]:
        for event in cluster.kube.list("v1", "Event", team.namespace):
            involved = event.get("involvedObject") or {}
            if (event.get("reason") == "FailedCreate" and involved.get("name", "").startswith(probe_name)
                    and pod_security in (event.get("message") or "")):
                return True, str(event["message"]), ""
        return False, "", "no FailedCreate event naming Pod Security yet"

    message = wait_for(f"{kind} {team.namespace}/{probe_name}'s pod to be refused", refused, fleet.config.timeout(60), first_s=SOON_S)
    assert ESCAPES["privileged"] in message, message
    assert _pods_of(team, cluster.kube, probe_name) == [], f"{kind} {probe_name} got a pod"


def _ephemeral(image: str, privileged: bool) -> dict[str, Any]:
    box = tenancy.container("debugger", image)
    if privileged:
        tenancy.make_privileged(box)
    return {"spec": {"ephemeralContainers": [box]}}


@pytest.fixture
def running_pod(tenant: Kube, probe_name: str, image: str, cleanup: Callable[[dict[str, Any]], None], team: Tenant) -> str:
    """A pod of the tenant's, to add containers to."""
    pod = tenancy.pod(probe_name, None, image, team.namespace)
    cleanup(pod)
    tenant.create(pod)
    return probe_name


def test_tenant_cannot_add_containers_to_running_pods(tenant: Kube, running_pod: str, image: str, team: Tenant) -> None:
    """`admin` grants no write on pods/ephemeralcontainers: RBAC refuses even a restricted one."""
    with pytest.raises(ApiException) as refused:
        tenant.patch_subresource("v1", "Pod", running_pod, team.namespace, "ephemeralcontainers", _ephemeral(image, False))
    message = refusal_message(refused.value)
    assert refused.value.status == FORBIDDEN, refusal(refused.value)
    assert f'User "{team.user}" cannot patch resource "pods/ephemeralcontainers"' in message, message


@pytest.fixture
def debugger(cluster: ClusterHandle, probe_name: str, team: Tenant) -> Iterator[Kube]:
    """The tenant's account, granted what a platform that lets tenants debug would grant:
    patching pods/ephemeralcontainers in its namespace."""
    kube = cluster.kube
    rbac = "rbac.authorization.k8s.io/v1"
    kube.create({"apiVersion": rbac, "kind": "Role", "metadata": {"name": probe_name, "namespace": team.namespace},
                 "rules": [{"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"]}]})
    try:
        kube.create({"apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": probe_name, "namespace": team.namespace},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": probe_name},
                     "subjects": [{"kind": "ServiceAccount", "name": team.account, "namespace": team.namespace}]})
        yield kube.as_user(team.user)
    finally:
        kube.delete(rbac, "RoleBinding", probe_name, team.namespace)
        kube.delete(rbac, "Role", probe_name, team.namespace)


def test_restricted_container_can_be_added_where_debugging_is_granted(debugger: Kube, running_pod: str,
                                                                      image: str, team: Tenant) -> None:
    """The twin of the refusal below: the same patch, with a container that complies."""
    patched = debugger.patch_subresource("v1", "Pod", running_pod, team.namespace, "ephemeralcontainers", _ephemeral(image, False))
    assert [c["name"] for c in patched["spec"]["ephemeralContainers"]] == ["debugger"]


def test_privileged_container_added_to_a_running_pod_is_refused(debugger: Kube, running_pod: str, image: str,
                                                                pod_security: str, team: Tenant) -> None:
    """Pod Security checks containers added to a running pod too, should a platform let tenants
    add them."""
    with pytest.raises(ApiException) as refused:
        debugger.patch_subresource("v1", "Pod", running_pod, team.namespace, "ephemeralcontainers", _ephemeral(image, True))
    message = refusal_message(refused.value)
    assert refused.value.status == FORBIDDEN and pod_security in message, refusal(refused.value)
    assert 'container "debugger" must not set securityContext.privileged=true' in message, refusal(refused.value)


def test_container_that_may_run_a_cached_image_is_refused(tenant: Kube, probe_name: str, image: str, team: Tenant) -> None:
    """MTB "always pull images": the twin is every admitted pod above (imagePullPolicy Always)."""
    pod = tenancy.pod(probe_name, None, image, team.namespace)
    pod["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    tenancy.assert_refused(tenant, pod, tenancy.DENIED, tenancy.by_policy("flux-tenant-image-pull"),
                           "containers probe must set imagePullPolicy: Always")


# Row 17: Services that capture traffic that is not theirs, or open every node.

def _service(team: Tenant, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": team.namespace},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 9898}], **spec}}


def test_tenant_cluster_ip_service_is_admitted(cluster: ClusterHandle, tenant: Kube, probe_name: str, team: Tenant) -> None:
    tenancy.assert_admitted(tenant, cluster.kube, _service(team, probe_name))


@pytest.mark.parametrize(("case", "spec", "reason"), [
    pytest.param("external-ips", {"externalIPs": ["10.96.0.1"]}, "spec.externalIPs is not allowed", id="external-ips"),
    pytest.param("node-port", {"type": "NodePort"}, "spec.type NodePort is not allowed", id="node-port"),
    pytest.param("load-balancer", {"type": "LoadBalancer"}, "spec.type LoadBalancer is not allowed",
                 id="load-balancer"),
])
def test_tenant_service_beyond_its_namespace_is_refused(tenant: Kube, probe_name: str, case: str,
                                                        spec: dict[str, Any], reason: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, _service(team, probe_name, **spec), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-services"), reason)


# Row 18: quotas. The namespace's LimitRange fills in what a container leaves out; its
# ResourceQuota refuses what goes beyond; neither is the tenant's to change.

def test_container_without_resources_gets_the_namespace_defaults(cluster: ClusterHandle, tenant: Kube,
                                                                 probe_name: str, image: str, team: Tenant,
                                                                 cleanup: Callable[[dict[str, Any]], None]) -> None:
    pod = tenancy.pod(probe_name, None, image, team.namespace)
    cleanup(pod)
    created = tenant.create(pod)
    limits = cluster.kube.get("v1", "LimitRange", team.name, team.namespace)
    assert limits is not None, f"no LimitRange {team.namespace}/{team.name}"
    defaults = limits["spec"]["limits"][0]
    assert created["spec"]["containers"][0]["resources"] == {
        "requests": defaults["defaultRequest"], "limits": defaults["default"]}, created["spec"]["containers"][0]


def test_pod_beyond_the_quota_is_refused(cluster: ClusterHandle, tenant: Kube, probe_name: str, image: str, team: Tenant) -> None:
    quota = cluster.kube.get("v1", "ResourceQuota", team.name, team.namespace)
    assert quota is not None, f"no ResourceQuota {team.namespace}/{team.name}"
    pod = tenancy.pod(probe_name, None, image, team.namespace)
    # Two containers of the whole quota each: either alone would fit, together they cannot.
    whole = quota["spec"]["hard"]["requests.cpu"]
    pod["spec"]["containers"] = [
        {**copy.deepcopy(pod["spec"]["containers"][0]), "name": name,
         "resources": {"requests": {"cpu": whole}, "limits": {"cpu": whole}}} for name in ("one", "two")]
    tenancy.assert_refused(tenant, pod, FORBIDDEN, f"exceeded quota: {team.name}", "requests.cpu")


def test_objects_beyond_the_quota_are_refused(cluster: ClusterHandle, tenant: Kube, probe_name: str, team: Tenant) -> None:
    """MTB "configure namespace object quotas": the tenant creates ConfigMaps until the quota
    refuses one (those before are the twin), and never holds more than its quota."""
    quota = cluster.kube.get("v1", "ResourceQuota", team.name, team.namespace)
    assert quota is not None, f"no ResourceQuota {team.namespace}/{team.name}"
    hard = int(quota["spec"]["hard"]["configmaps"])

    def settled() -> tuple[bool, None, str]:
        # A deletion in the namespace (an earlier test's pod still terminating) makes the quota
        # controller recount every resource from its cache; a recount during the burst below
        # that misses the newest ConfigMaps lets one more in (kubernetes/kubernetes#123434).
        # Start when nothing is being deleted and the quota's counts match the namespace.
        used = ((cluster.kube.get("v1", "ResourceQuota", team.name, team.namespace) or {}).get("status") or {}).get("used") or {}
        pods = cluster.kube.list("v1", "Pod", team.namespace)
        leaving = [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp")]
        counts = {"configmaps": len(cluster.kube.list("v1", "ConfigMap", team.namespace)),
                  "pods": sum(1 for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))}
        quota_counts = {k: int(used.get(k, -1)) for k in counts}
        return (not leaving and quota_counts == counts, None,
                f"terminating {leaving}; quota counts {quota_counts}, the namespace holds {counts}")

    wait_for(f"the quota of {team.namespace} to count its ConfigMaps", settled, timeout_s=60.0, first_s=SOON_S)
    created: list[str] = []
    try:
        for i in range(hard + 1):
            name = f"{probe_name}-{i}"
            try:
                tenant.create(tenancy.config_map(name, team.namespace))
            except ApiException as exc:
                message = refusal_message(exc)
                assert exc.status == FORBIDDEN and f"exceeded quota: {team.name}" in message, refusal(exc)
                assert "requested: configmaps=1" in message, refusal(exc)
                break
            created.append(name)
        else:
            pytest.fail(f"{hard + 1} ConfigMaps admitted in {team.namespace}, over its quota of {hard}")
        assert created, "no ConfigMap admitted at all: the twin failed"
        # Never more than the quota (fewer when the quota still counts objects just deleted).
        held = len(cluster.kube.list("v1", "ConfigMap", team.namespace))
        assert held <= hard, f"{team.namespace} holds {held} ConfigMaps, over its quota of {hard}"
    finally:
        for name in created:
            cluster.kube.delete("v1", "ConfigMap", name, team.namespace)


@pytest.mark.parametrize("kind", ["ResourceQuota", "LimitRange"])
def test_tenant_cannot_change_its_quota(cluster: ClusterHandle, tenant: Kube, kind: str, team: Tenant) -> None:
    """MTB "block modification of resource quotas": RBAC refuses it (the onboarding policy would
    too). The twin: the tenant can read them."""
    before = tenant.get("v1", kind, team.name, team.namespace)
    assert before is not None, f"{team.user} cannot read {kind} {team.namespace}/{team.name}"
    for change in (lambda: tenant.patch("v1", kind, team.name, team.namespace, {"metadata": {"labels": {"x": "y"}}}),
                   lambda: tenant.delete("v1", kind, team.name, team.namespace)):
        with pytest.raises(ApiException) as refused:
            change()
        assert refused.value.status == FORBIDDEN and team.user in refusal_message(refused.value), refusal(refused.value)
    after = cluster.kube.get("v1", kind, team.name, team.namespace)
    assert after is not None and after["spec"] == before["spec"], f"{kind} changed"
    another = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "e2e-more", "namespace": team.namespace},
               "spec": {"hard": {"pods": "100"}} if kind == "ResourceQuota" else {
                   "limits": [{"type": "Container", "default": {"cpu": "64"}}]}}
    tenancy.assert_refused(tenant, another, FORBIDDEN, team.user, "cannot create resource")


# Row 19: rights for everyone, tokens of the reconciler, and who counts as the platform.

def _binding(team: Tenant, name: str, kind: str, subject: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": kind, "name": subject}
    if kind == "ServiceAccount":
        entry["namespace"] = team.namespace
    else:
        entry["apiGroup"] = "rbac.authorization.k8s.io"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": team.namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [entry]}


def test_tenant_can_bind_roles_and_write_network_policies(cluster: ClusterHandle, tenant: Kube,
                                                          probe_name: str, team: Tenant) -> None:
    """MTB "create role bindings" and "create network policies", in its own namespace."""
    tenancy.assert_admitted(tenant, cluster.kube, _binding(team, probe_name, "ServiceAccount", "default"))
    tenancy.assert_admitted(tenant, cluster.kube, {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": probe_name, "namespace": team.namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})


@pytest.mark.parametrize(("kind", "subject"), [
    ("User", "system:anonymous"), ("Group", "system:unauthenticated"), ("Group", "system:authenticated"),
    ("Group", "system:serviceaccounts"),
])
def test_tenant_cannot_bind_rights_to_everyone(tenant: Kube, probe_name: str, kind: str, subject: str, team: Tenant) -> None:
    tenancy.assert_refused(tenant, _binding(team, probe_name, kind, subject), tenancy.DENIED,
                           tenancy.by_policy("flux-tenant-role-bindings"), f"binds {kind} {subject}",
                           "may not be granted to everyone")


def _token_request() -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}


def test_tenant_may_mint_tokens_for_its_other_accounts(tenant: Kube, team: Tenant) -> None:
    """The twin: the same TokenRequest for the namespace's `default` account."""
    token = tenant.create_subresource("v1", "ServiceAccount", "default", team.namespace, "token", _token_request())
    assert token["status"]["token"], token


def test_tenant_cannot_mint_a_token_of_its_reconciler(tenant: Kube, team: Tenant) -> None:
    with pytest.raises(ApiException) as refused:
        tenant.create_subresource("v1", "ServiceAccount", team.account, team.namespace, "token", _token_request())
    body = refusal_message(refused.value)
    assert refused.value.status == tenancy.DENIED, refusal(refused.value)
    assert tenancy.by_policy("flux-tenant-reconciler-token-request") in body, refusal(refused.value)
    assert f"a token for the tenant reconciler account {team.namespace}/{team.account}" in body, refusal(refused.value)


@pytest.fixture
def onboarding_writers(cluster: ClusterHandle, probe_name: str, team: Tenant) -> Iterator[str]:
    """A group that RBAC lets patch the tenant's onboarding GitRepository, so that only the
    onboarding policy decides who may; the GitRepository is put back afterwards."""
    kube = cluster.kube
    before = kube.get(API["GitRepository"], "GitRepository", team.source, team.namespace)
    assert before is not None
    kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": probe_name, "namespace": team.namespace},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                 "subjects": [{"kind": "Group", "name": probe_name, "apiGroup": "rbac.authorization.k8s.io"}]})
    try:
        yield probe_name
    finally:
        kube.delete("rbac.authorization.k8s.io/v1", "RoleBinding", probe_name, team.namespace)
        kube.patch(API["GitRepository"], "GitRepository", team.source, team.namespace,
                   {"metadata": {"annotations": {"e2e.fleet/probe": None}}})


def _touch_onboarding(team: Tenant, kube: Kube) -> dict[str, Any]:
    return kube.patch(API["GitRepository"], "GitRepository", team.source, team.namespace,
                      {"metadata": {"annotations": {"e2e.fleet/probe": "touched"}}})


def test_cluster_admins_are_the_platform(cluster: ClusterHandle, onboarding_writers: str, team: Tenant) -> None:
    """The twin: a cluster admin (by group) changes the onboarding through the same call."""
    admin = cluster.kube.as_user("e2e-cluster-admin", "kubeadm:cluster-admins")
    assert _touch_onboarding(team, admin)["metadata"]["annotations"]["e2e.fleet/probe"] == "touched"


@pytest.mark.parametrize("user", ["system:anonymous", "system:node:e2e-probe"])
def test_anonymous_and_other_system_users_are_not_the_platform(cluster: ClusterHandle, onboarding_writers: str,
                                                               user: str, team: Tenant) -> None:
    """RBAC lets the group through; the onboarding policy names the platform, and these are not it."""
    with pytest.raises(ApiException) as refused:
        _touch_onboarding(team, cluster.kube.as_user(user, onboarding_writers))
    body = refusal_message(refused.value)
    assert refused.value.status == tenancy.DENIED and tenancy.by_policy("flux-tenant-onboarding") in body, \
        refusal(refused.value)
    assert f"{user} may not update it" in body, refusal(refused.value)


# MTB "block access to cluster resources" and "to other tenants' resources": reads, too.

@pytest.mark.parametrize(("kind", "namespace"), [
    pytest.param("Node", None, id="nodes"), pytest.param("Namespace", None, id="namespaces"),
    pytest.param("ClusterRole", None, id="cluster-roles"),
    pytest.param("Secret", "flux-system", id="secrets-of-flux-system"),
    pytest.param("Pod", "kube-system", id="pods-of-kube-system"),
])
def test_tenant_cannot_list_beyond_its_namespace(tenant: Kube, kind: str, namespace: str | None, team: Tenant) -> None:
    api = "rbac.authorization.k8s.io/v1" if kind == "ClusterRole" else "v1"
    tenant.list("v1", kind if namespace else "Pod", team.namespace)  # the twin, in its own namespace: a 403 raises here
    with pytest.raises(ApiException) as refused:
        tenant.list(api, kind, namespace)
    assert refused.value.status == FORBIDDEN and team.user in refusal_message(refused.value), refusal(refused.value)
