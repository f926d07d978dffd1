"""The checks after an in-place upgrade tell a finished upgrade from a half-done one: judged
here on objects shaped as the API server returns them."""

from __future__ import annotations

from typing import Any

from harness.core.versions import PREVIOUS_VERSIONS_FILE, Versions, load_versions
from harness.e2e.upgrade import stale_images, stored_version_problems
from harness.kit.images import flux_tag


class FakeKube:
    """Answers `list` from fixed objects (what the checks read)."""

    def __init__(self, objects: dict[tuple[str, str | None], list[dict[str, Any]]]) -> None:
        self.objects = objects

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.objects.get((kind, namespace), [])


def _crd(name: str, group: str, kind: str, storage: str, served: list[str], stored: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"group": group, "names": {"kind": kind}, "versions": [
        {"name": v, "served": True, "storage": v == storage} for v in served]}, "status": {"storedVersions": stored}}


def _deployment(name: str, images: list[str], rolled_out: bool = True) -> dict[str, Any]:
    status = {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1 if rolled_out else 0,
              "availableReplicas": 1}
    return {"metadata": {"name": name, "generation": 2},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": i} for i in images]}}},
            "status": status}


def test_stored_versions_other_than_the_storage_version_are_found() -> None:
    kube = FakeKube({
        ("CustomResourceDefinition", None): [
            _crd("helmreleases.helm.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io", "HelmRelease", "v2", ["v2"],
                 ["v2beta2", "v2"]),
            _crd("kustomizations.kustomize.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io", "Kustomization",
                 "v1", ["v1"], ["v1"]),
            _crd("validatingpolicies.policies.kyverno.io", "policies.kyverno.io", "ValidatingPolicy", "v1beta1",
                 ["v1", "v1beta1"], ["v1beta1"]),
            _crd("widgets.example.com", "example.com", "Widget", "v1", ["v1"], ["v0"]),  # not an upgraded group
        ],
        ("Kustomization", None): [{"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                                   "metadata": {"name": "apps", "namespace": "flux-system"}}],
        # An object that does not read back at the storage version (a broken conversion).
        ("ValidatingPolicy", None): [{"apiVersion": "policies.kyverno.io/v1", "metadata": {"name": "p"}}],
    })
    assert stored_version_problems(kube) == {  # type: ignore[arg-type]
        "helmreleases.helm.toolkit.fluxcd.io": ["stored ['v2beta2', 'v2'], storage version v2"],
        "validatingpolicies.policies.kyverno.io": ["/p read back as policies.kyverno.io/v1"]}


def _fleet(versions: Versions, kyverno: str, rolled_out: bool = True) -> FakeKube:
    flux = [_deployment(n, [flux_tag(n, v)], rolled_out) for n, v in versions.flux.controllers().items()]
    return FakeKube({("Deployment", "flux-system"): flux, ("Deployment", "kyverno"): [
        _deployment("kyverno-admission-controller", [f"reg.kyverno.io/kyverno/kyvernopre:{kyverno}",
                                                     f"reg.kyverno.io/kyverno/kyverno:{kyverno}"])]})


def test_stale_images_tell_the_sets_apart(versions: Versions) -> None:
    previous = load_versions(PREVIOUS_VERSIONS_FILE)
    assert stale_images(_fleet(versions, versions.kyverno), versions) == {}  # type: ignore[arg-type]
    before = stale_images(_fleet(previous, previous.kyverno), versions)  # type: ignore[arg-type]
    assert set(before) == {f"flux-system/{n}" for n in versions.flux.controllers()} | {
        "kyverno/kyverno-admission-controller"}
    # Right images, not rolled out yet: still stale.
    assert "flux-system/helm-controller" in stale_images(
        _fleet(versions, versions.kyverno, rolled_out=False), versions)  # type: ignore[arg-type]
