"""Kubernetes API clients: one explicit object per cluster and identity, never the ambient context."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from harness.core.errors import HarnessError

REQUEST_TIMEOUT_S = 30.0


class KubeError(HarnessError):
    """A request to the API server could not be made or answered in time."""


def _with_deadline(rest: Any, timeout_s: float) -> None:
    """Every request of this client (discovery included) gets a deadline, and no silent
    retries: a hung API server must not outlast the wait that called it. The client passes
    `_request_timeout=None` (no deadline) unless told otherwise, so the default goes here."""
    request = rest.request
    rest.pool_manager.connection_pool_kw["retries"] = False

    def with_deadline(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = (timeout_s, timeout_s)
        return request(*args, **kwargs)

    rest.request = with_deadline


@dataclass
class Kube:
    """A client for one cluster (kubeconfig) acting as one identity (optionally impersonated)."""

    kubeconfig: Path
    impersonate: str | None = None
    impersonate_group: str | None = None
    # Each request's deadline: a caller that samples (the upgrade probe) takes a short one, so
    # a silent API server reads as no answer instead of holding the sampler.
    timeout_s: float = REQUEST_TIMEOUT_S
    _dynamic: DynamicClient | None = field(default=None, repr=False)

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            api = kube_config.new_client_from_config(config_file=str(self.kubeconfig))
            _with_deadline(api.rest_client, self.timeout_s)
            if self.impersonate:
                api.set_default_header("Impersonate-User", self.impersonate)
            if self.impersonate_group:
                api.set_default_header("Impersonate-Group", self.impersonate_group)
            self._dynamic = DynamicClient(api)
        return self._dynamic

    def server_version(self) -> str:
        """The API server's gitVersion (v1.34.4)."""
        with self._request("get the server version"):
            return str(self.dynamic.version["kubernetes"]["gitVersion"])

    def as_user(self, user: str, group: str | None = None) -> Kube:
        """The same cluster, impersonating `user` (e.g. system:serviceaccount:apps:dev-team), and
        with `group` as the one group it claims (the API server adds the ones it always adds)."""
        return Kube(self.kubeconfig, impersonate=user, impersonate_group=group, timeout_s=self.timeout_s)

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    @contextmanager
    def _request(self, what: str) -> Iterator[None]:
        """A network failure (a timeout above all) becomes a KubeError naming the cluster and
        the call; the API server's own refusals stay ApiException."""
        try:
            yield
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(f"{what} on the cluster of {self.kubeconfig} failed: {exc} "
                            f"(each API request has {self.timeout_s:.0f}s)") from exc

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None,
            timeout_s: float | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None if it does not exist. `timeout_s` shortens this
        request's deadline (a wait gives it what is left of its own)."""
        bound = {} if timeout_s is None else {"_request_timeout": (min(timeout_s, self.timeout_s),) * 2}
        with self._request(f"get {kind} {namespace or ''}/{name}"):
            try:
                return dict(self._resource(api_version, kind).get(name=name, namespace=namespace, **bound).to_dict())
            except NotFoundError:
                return None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._request(f"list {kind} in {namespace or 'all namespaces'}"):
            result = self._resource(api_version, kind).get(namespace=namespace)
        return [dict(item) for item in result.to_dict().get("items", [])]

    def create(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Create obj; raises ApiException (e.g. 403 Forbidden, admission denial) on refusal.
        `dry_run`: the server's dry run, judged by admission (policies included), stored nowhere."""
        namespace = (obj.get("metadata") or {}).get("namespace")
        with self._request(f"create {obj['kind']} {namespace or ''}/{obj['metadata'].get('name')}"):
            resource = self._resource(obj["apiVersion"], obj["kind"])
            return dict(resource.create(body=obj, namespace=namespace, **_dry(dry_run)).to_dict())

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None,
               dry_run: bool = False, resource_version: str | None = None) -> None:
        """Gone already counts as deleted. `resource_version`: only if the object is still at
        it (raises ApiException 409 Conflict when it changed since it was read)."""
        body = {"preconditions": {"resourceVersion": resource_version}} if resource_version else None
        with self._request(f"delete {kind} {namespace or ''}/{name}"):
            try:
                self._resource(api_version, kind).delete(name=name, namespace=namespace, body=body, **_dry(dry_run))
            except NotFoundError:
                pass

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, body: dict[str, Any],
              dry_run: bool = False) -> dict[str, Any]:
        """A JSON merge patch; raises ApiException on refusal."""
        with self._request(f"patch {kind} {namespace or ''}/{name}"):
            return dict(self._resource(api_version, kind).patch(
                body=body, name=name, namespace=namespace, content_type="application/merge-patch+json",
                **_dry(dry_run)).to_dict())

    def patch_subresource(self, api_version: str, kind: str, name: str, namespace: str | None, subresource: str,
                          body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """A JSON merge patch of a subresource (status, ephemeralcontainers); raises ApiException."""
        with self._request(f"patch {kind} {namespace or ''}/{name}/{subresource}"):
            resource = self._resource(api_version, kind).subresources[subresource]
            return dict(resource.patch(body=body, name=name, namespace=namespace,
                                       content_type="application/merge-patch+json", **_dry(dry_run)).to_dict())

    def create_subresource(self, api_version: str, kind: str, name: str, namespace: str | None, subresource: str,
                           body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """POST to a subresource (a TokenRequest to serviceaccounts/token); raises ApiException."""
        with self._request(f"create {kind} {namespace or ''}/{name}/{subresource}"):
            resource = self._resource(api_version, kind).subresources[subresource]
            return dict(resource.create(body=body, name=name, namespace=namespace, **_dry(dry_run)).to_dict())

    def annotate(self, api_version: str, kind: str, name: str, namespace: str | None, annotations: dict[str, str]) -> None:
        self.patch(api_version, kind, name, namespace, {"metadata": {"annotations": annotations}})

    def logs(self, namespace: str, pod: str, since_s: int = 600) -> str:
        """The recent log of a pod's (only or first) container."""
        with self._request(f"logs of pod {namespace}/{pod}"):
            return str(CoreV1Api(self.dynamic.client).read_namespaced_pod_log(pod, namespace, since_seconds=since_s))

    def service_get(self, namespace: str, service: str, port: int, path: str = "", timeout_s: float = 5.0) -> str:
        """GET a Service's HTTP endpoint through the API server's proxy (each call picks a
        ready endpoint anew, so a restarted pod does not break it as a port-forward would)."""
        with self._request(f"GET service {namespace}/{service}:{port}/{path}"):
            # Raw body: the client would parse a JSON answer and hand back its Python repr.
            response: Any = CoreV1Api(self.dynamic.client).connect_get_namespaced_service_proxy_with_path(
                f"{service}:{port}", namespace, path, _request_timeout=(timeout_s, timeout_s),
                _preload_content=False)
            return bytes(response.data).decode()

    def namespaced_kinds(self, group: str) -> tuple[tuple[str, str], ...]:
        """(apiVersion, kind) of every namespaced kind the API group serves, in one of its
        versions (a kind may be served in an older version only; subresources left out)."""
        with self._request(f"discover API group {group}"):
            found = self.dynamic.resources.search(group=group)
        kinds: dict[str, str] = {}
        for r in sorted(found, key=lambda r: r.group_version):
            if getattr(r, "namespaced", False) and "/" not in r.name and not r.kind.endswith("List"):
                kinds.setdefault(r.kind, r.group_version)
        return tuple(sorted((version, kind) for kind, version in kinds.items()))


def _dry(dry_run: bool) -> dict[str, str]:
    """The dry-run query parameter, when asked for."""
    return {"dry_run": "All"} if dry_run else {}


def refusal(exc: ApiException) -> str:
    """The API server's message for a refused request (Forbidden, admission denial)."""
    return f"HTTP {exc.status} {exc.reason}: {exc.body}"


def refusal_message(exc: ApiException) -> str:
    """The message of the API server's Status, as a person reads it (the body is JSON, where
    every quote in the message is escaped); the raw body when it is not a Status."""
    try:
        status = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return str(exc.body)
    return str(status.get("message", exc.body)) if isinstance(status, dict) else str(exc.body)

