"""Kubernetes API clients: one explicit object per cluster and identity, never the ambient context."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError


@dataclass
class Kube:
    """A client for one cluster (kubeconfig) acting as one identity (optionally impersonated)."""

    kubeconfig: Path
    impersonate: str | None = None
    _dynamic: DynamicClient | None = field(default=None, repr=False)

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            api = kube_config.new_client_from_config(config_file=str(self.kubeconfig))
            if self.impersonate:
                api.set_default_header("Impersonate-User", self.impersonate)
            self._dynamic = DynamicClient(api)
        return self._dynamic

    def as_user(self, user: str) -> Kube:
        """The same cluster, impersonating `user` (e.g. system:serviceaccount:apps:dev-team)."""
        return Kube(self.kubeconfig, impersonate=user)

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None if it does not exist."""
        try:
            return dict(self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict())
        except NotFoundError:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        result = self._resource(api_version, kind).get(namespace=namespace)
        return [dict(item) for item in result.to_dict().get("items", [])]

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create obj; raises ApiException (e.g. 403 Forbidden, admission denial) on refusal."""
        resource = self._resource(obj["apiVersion"], obj["kind"])
        namespace = (obj.get("metadata") or {}).get("namespace")
        return dict(resource.create(body=obj, namespace=namespace).to_dict())

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        try:
            self._resource(api_version, kind).delete(name=name, namespace=namespace)
        except NotFoundError:
            pass

    def annotate(self, api_version: str, kind: str, name: str, namespace: str | None, annotations: dict[str, str]) -> None:
        patch = {"metadata": {"annotations": annotations}}
        self._resource(api_version, kind).patch(body=patch, name=name, namespace=namespace,
                                                 content_type="application/merge-patch+json")


def refusal(exc: ApiException) -> str:
    """The API server's message for a refused request (Forbidden, admission denial)."""
    return f"HTTP {exc.status} {exc.reason}: {exc.body}"

