"""Kit building blocks that need no toolchain: cache sealing, wrapper go.mod, layers, names."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pytest

from harness.access.registry import strip_registry
from harness.core.errors import CommandError, KitError
from harness.core.versions import load_versions
from harness.kit import build, cache, debian, dockerfile, images, node, oci
from harness.kit.gomod import GoBuild, wrapper_gomod
from harness.kit.oci import File, ImageSpec, write_layer


@pytest.fixture
def kit_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty kit cache."""
    monkeypatch.setenv("FLEET_KIT_CACHE", str(tmp_path))
    return tmp_path


def test_failed_build_leaves_no_artifact(kit_cache: Path) -> None:
    def broken(out: Path) -> None:
        (out / "half-written").write_text("x")
        raise KitError("boom")

    with pytest.raises(KitError, match="boom"):
        cache.build_once("go", "thing", "v1", "k", "src", broken)
    assert cache.cached("go", "thing", "v1", "k", "src") is None
    assert list((kit_cache / "go" / "thing").iterdir()) == []


def test_successful_build_is_sealed_and_reused(kit_cache: Path) -> None:
    calls = []

    def produce(out: Path) -> None:
        calls.append(out)
        (out / "bin").write_text("ok")

    first = cache.build_once("go", "thing", "v1", "k", "src", produce)
    second = cache.build_once("go", "thing", "v1", "k", "src", produce)
    assert first.built and not second.built
    assert len(calls) == 1
    assert (second.path / "bin").read_text() == "ok"


def test_wrapper_gomod_maps_local_replaces() -> None:
    upstream = {
        "Go": "1.24.0",
        "Require": [{"Path": "k8s.io/api", "Version": "v0.0.0"}, {"Path": "example.com/api", "Version": "v1.2.3"}],
        "Replace": [
            {"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}},
            {"Old": {"Path": "example.com/api"}, "New": {"Path": "./api"}},
            {"Old": {"Path": "example.com/fork"}, "New": {"Path": "example.com/fork2", "Version": "v0.1.0"}},
        ],
    }
    recipe = GoBuild(name="x", module="example.com/x", version="v1.0.0", packages=("example.com/x",),
                     local_replace_versions=(("k8s.io/api", "v0.34.4"),))
    text = wrapper_gomod(recipe, upstream)
    assert "require example.com/x v1.0.0" in text
    assert "replace k8s.io/api => k8s.io/api v0.34.4" in text
    assert "example.com/api =>" not in text  # required at a real version: the replace is dropped
    assert "replace example.com/fork => example.com/fork2 v0.1.0" in text


def test_wrapper_gomod_refuses_unmapped_zero_version() -> None:
    upstream = {"Require": [{"Path": "k8s.io/api", "Version": "v0.0.0"}],
                "Replace": [{"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}}]}
    recipe = GoBuild(name="x", module="example.com/x", version="v1.0.0", packages=())
    with pytest.raises(KitError, match="k8s.io/api"):
        wrapper_gomod(recipe, upstream)


def test_layer_overrides_base_files_and_creates_parents(tmp_path: Path) -> None:
    base_dir = tmp_path / "base"
    (base_dir / "etc").mkdir(parents=True)
    (base_dir / "etc" / "os-release").write_text("old")
    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as tar:
        tar.add(base_dir, arcname=".")
    spec = ImageSpec(tags=("t:1",), base=base, files=(
        File("/etc/os-release", content=b"new"), File("/usr/local/bin/tool", content=b"#!", mode=0o755)))
    layer = tmp_path / "layer.tar"
    write_layer(spec, layer)
    with tarfile.open(layer) as tar:
        names = tar.getnames()
        assert names.count("etc/os-release") == 1
        assert tar.extractfile("etc/os-release").read() == b"new"  # type: ignore[union-attr]
        assert tar.getmember("usr/local/bin/tool").mode == 0o755
        assert "usr/local/bin" in names


@pytest.mark.parametrize(("reference", "expected"), [
    ("ghcr.io/fluxcd/source-controller:v1.9.3", "fluxcd/source-controller:v1.9.3"),
    ("registry.k8s.io/pause:3.10", "pause:3.10"),
    ("reg.kyverno.io/kyverno/kyverno:v1.19.1", "kyverno/kyverno:v1.19.1"),
    ("localhost:5000/x:1", "x:1"),
    ("kindest/kindnetd:v1", "kindest/kindnetd:v1"),
])
def test_strip_registry(reference: str, expected: str) -> None:
    assert strip_registry(reference) == expected


UPSTREAM_LIKE = """\
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-alpine AS builder
RUN go build -o kustomize-controller main.go

FROM alpine:3.23
# comment
RUN apk --no-cache add ca-certificates tini git \\
  && update-ca-certificates
COPY --from=builder /workspace/kustomize-controller /usr/local/bin/
USER 65534:65534
ENV GNUPGHOME=/tmp
ENTRYPOINT [ "/sbin/tini", "--", "kustomize-controller" ]
"""


def test_dockerfile_final_stage_is_read_from_the_last_from() -> None:
    stage = dockerfile.final_stage(UPSTREAM_LIKE, "Dockerfile")
    assert stage.base == "alpine:3.23"
    assert stage.packages == ["ca-certificates", "tini", "git"]
    assert stage.copies == ["/usr/local/bin/"]
    assert (stage.user, stage.env) == ("65534:65534", {"GNUPGHOME": "/tmp"})
    assert stage.entrypoint == ["/sbin/tini", "--", "kustomize-controller"]


@pytest.mark.parametrize(("line", "expected"), [
    ("RUN apk add curl && curl -o /x https://example.com/x", "runs `curl -o /x https://example.com/x`"),
    ("HEALTHCHECK CMD true", "has `HEALTHCHECK CMD true`"),
])
def test_dockerfile_step_the_kit_cannot_reproduce_is_named(line: str, expected: str) -> None:
    with pytest.raises(KitError, match=re.escape(expected)):
        dockerfile.final_stage(UPSTREAM_LIKE + line + "\n", "kustomize-controller/Dockerfile")


def test_an_alias_another_build_took_is_pointed_back_without_a_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two version sets share `readiness-checker:latest`: loading one set after the other re-points
    the alias at the image its first tag holds (same image ID, so the kit's fingerprint holds)."""
    spec = oci.ImageSpec(tags=("ghcr.io/kyverno/readiness-checker:v1.19.1", "ghcr.io/kyverno/readiness-checker:latest"))
    key = spec.key()
    keys = {spec.tags[0]: key, spec.tags[1]: "the-other-sets-build"}
    ran: list[list[str]] = []

    def run(argv: list[str], **_: object) -> object:
        ran.append(argv)
        keys[argv[3]] = keys[argv[2]]
        return None

    monkeypatch.setattr(oci, "image_key", keys.get)
    monkeypatch.setattr(oci, "image_key_and_size", lambda tag: (keys.get(tag), 1))
    monkeypatch.setattr(oci.commands, "run", run)
    monkeypatch.setattr(oci, "write_layer", lambda *a: pytest.fail("rebuilt for an alias"))
    image = oci.build_image(spec)
    assert not image.built
    assert ran == [["docker", "tag", spec.tags[0], spec.tags[1]]]
    assert keys[spec.tags[1]] == key
    # Its first tag holding another build is a rebuild, as before.
    keys[spec.tags[0]] = "stale"
    assert oci.cached_image(spec, key) is None


@pytest.mark.parametrize(("stdout", "expected"), [
    ('1234 {"' + oci.KEY_LABEL + '":"abc","other":"x"}\n', ("abc", 1234)),
    ("99 null\n", (None, 99)),  # an image without labels
    (None, (None, 0)),  # Docker does not have it
])
def test_one_inspect_gives_an_images_key_and_size(monkeypatch: pytest.MonkeyPatch, stdout: str | None,
                                                  expected: tuple[str | None, int]) -> None:
    def run(argv: list[str], **_: object) -> object:
        if stdout is None:
            raise CommandError(argv, 1, "Error: No such image", "exit status 1")
        return type("Done", (), {"stdout": stdout})()

    monkeypatch.setattr(oci.commands, "run", run)
    assert oci.image_key_and_size("ghcr.io/x/y:v1") == expected
    assert oci.image_key("ghcr.io/x/y:v1") == expected[0]


@pytest.mark.kit
def test_the_bases_made_beside_the_compiles_are_every_base_the_images_use(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    """The kit makes the Debian root filesystems while it compiles (build._debian_bases): an image
    whose base is missing from that list would debootstrap after the compiles, a base no image
    uses would be made for nothing."""
    asked: list[str] = []

    def rootfs(name: str, suite: str, packages: tuple[str, ...]) -> cache.Artifact:
        asked.append(f"{name} {suite} {','.join(packages)}")
        return cache.Artifact(name, suite, tmp_path / name, "test", built=False, seconds=0.0)

    monkeypatch.setattr(debian, "rootfs", rootfs)
    monkeypatch.setattr(images, "pause_binary", lambda v, tag: rootfs("pause", tag, ()))
    v = load_versions()
    build._debian_bases(v)
    beside = set(asked)
    asked.clear()
    fake = cache.Artifact("go", "v0", tmp_path / "go", "test", built=False, seconds=0.0)
    go = images.GoArtifacts(kubernetes=fake, etcd=fake, coredns=fake, flux=dict.fromkeys(v.flux.controllers(), fake),
                            kyverno=fake, podinfo=fake, kube_router=fake)
    images.all_images(v, go, "3.10")
    node.node_base(v)
    used = {a for a in asked if not a.startswith("pause ")}
    assert beside == used, f"made beside the compiles only: {beside - used}; made after them: {used - beside}"
