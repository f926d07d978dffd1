"""KIT_SOURCE=upstream: only the CLIs are compiled, images and the node image come by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.core.errors import KitError
from harness.core.versions import Versions
from harness.kit import build, cache, images, node, recipes, upstream


def test_upstream_source_compiles_only_the_clis_the_harness_runs(versions: Versions) -> None:
    assert [r.name for r in build.go_recipes(versions, "upstream")] == ["kind", "kubectl"]
    assert recipes.kubernetes(versions, ("kubectl",)).binaries == ("kubectl",)
    cli = recipes.kyverno(versions, cli_only=True)
    assert (cli.name, cli.binaries) == ("kyverno-cli", ("kubectl-kyverno",))


def test_build_source_compiles_what_every_image_is_made_of(versions: Versions) -> None:
    names = {r.name for r in build.go_recipes(versions, "build")}
    assert {"kubernetes", "containerd", "etcd", "coredns", "kube-router", "podinfo",
            *versions.flux.controllers()} <= names
    # The CLI rides along with Kyverno's controllers: one build, shared packages compiled once.
    assert "kubectl-kyverno" in recipes.kyverno(versions).binaries


@pytest.mark.kit
def test_upstream_pulls_exactly_the_images_the_kit_would_build(versions: Versions, tmp_path: Path) -> None:
    fake = cache.Artifact("fake", "v0", tmp_path, "test", built=False, seconds=0.0)
    go = images.GoArtifacts(kubernetes=fake, etcd=fake, coredns=fake,
                            flux={n: fake for n in versions.flux.controllers()}, kyverno=fake, podinfo=fake,
                            kube_router=fake)
    built = [t for spec in (images.kube_router_image(versions, go), *images.flux_images(versions, go),
                            *images.kyverno_images(versions, go), images.podinfo_image(versions, go))
             for t in spec.tags]
    assert images.workload_tags(versions) == built


@pytest.mark.kit
def test_upstream_node_image_is_kinds_own_by_digest(versions: Versions) -> None:
    reference = node.upstream_node_image(versions)
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", reference), reference
    kit = build.Kit([], [], (), reference, {}, versions, "upstream")
    assert kit.node_kubernetes == reference.split("@")[0].split(":")[1]


def test_pull_without_a_registry_names_the_image_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\necho 'Error response from daemon: Get \"https://ghcr.io/v2/\": "
                      "dial tcp: lookup ghcr.io: no such host' >&2\nexit 1\n")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(KitError, match=r"cannot pull ghcr.io/fluxcd/x:v1 from upstream .*no such host.*make kit"):
        upstream.pull("ghcr.io/fluxcd/x:v1")


def test_what_the_kit_builds_follows_the_policy_engine(versions: Versions, tmp_path: Path) -> None:
    """The engine seam names the kit's parts: Kyverno's images and chart for a Kyverno fleet,
    nothing beyond Flux and the clusters for the native variant (whose offline checks still use
    the Kyverno CLI, built alone)."""
    from harness.e2e.engines import Kyverno, Native

    assert Kyverno(tmp_path).kit_parts == (images.KYVERNO_PART,) and Native(tmp_path).kit_parts == ()
    assert set(Kyverno(tmp_path).kit_parts) <= set(images.ENGINE_PARTS)
    with_kyverno, without = images.workload_tags(versions, ("kyverno",)), images.workload_tags(versions, ())
    assert [t for t in with_kyverno if t not in without] == [t for image in images.KYVERNO_IMAGES.values()
                                                             for t in images.kyverno_tags(versions, image)]
    assert not [t for t in without if "kyverno" in t]
    fake = cache.Artifact("fake", "v0", tmp_path, "test", built=False, seconds=0.0)
    go = images.GoArtifacts(kubernetes=fake, etcd=fake, coredns=fake,
                            flux={n: fake for n in versions.flux.controllers()}, kyverno=None, podinfo=fake,
                            kube_router=fake)
    with pytest.raises(KitError, match="need its controllers built"):
        images.kyverno_images(versions, go)


def test_a_part_the_kit_does_not_know_is_refused_before_anything_is_built(versions: Versions) -> None:
    with pytest.raises(KitError, match="builds no gatekeeper for a policy engine; it knows kyverno"):
        build.build_kit(versions, "build", ("gatekeeper",))
