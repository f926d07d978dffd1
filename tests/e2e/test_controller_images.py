"""The Flux controller images the clusters run carry what upstream's Dockerfile puts in them at
the pinned version: its packages' programs, its entrypoint chain, environment and user. Remote
bases, SOPS with PGP keys and SSH Git depend on these, so a stand-in without them would make
tests pass or fail for the wrong reason."""

from __future__ import annotations

import json

import pytest

from harness.core import commands
from harness.core.errors import CommandError
from harness.kit.build import Kit
from harness.kit.images import (
    ALPINE_TO_DEBIAN,
    FLUX_BINARY_DIR,
    KUBE_ROUTER_PACKAGES,
    flux_stage,
    flux_tag,
    kube_router_stage,
    kube_router_tag,
)

pytestmark = pytest.mark.e2e

CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller", "notification-controller")
# How to ask each program for its version (a run proves it starts as the image's user).
VERSION_FLAG = {"/usr/bin/ssh": "-V"}


def _config(tag: str) -> dict[str, object]:
    out = commands.run(["docker", "image", "inspect", "--format", "{{json .Config}}", tag], timeout_s=30.0)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", CONTROLLERS)
def test_controller_image_matches_upstream_dockerfile(kit: Kit, name: str) -> None:
    version = kit.versions.flux.controllers()[name]
    stage = flux_stage(name, version)
    tag = flux_tag(name, version)
    config = _config(tag)
    assert config["Entrypoint"] == stage.entrypoint, f"{tag}: entrypoint differs from upstream's Dockerfile"
    assert config["User"] == stage.user, f"{tag}: user differs from upstream's Dockerfile"
    env = dict(e.split("=", 1) for e in config["Env"] or [])  # type: ignore[union-attr]
    for key, value in stage.env.items():
        assert env.get(key) == value, f"{tag}: ENV {key}={value} of upstream's Dockerfile is missing"
    assert stage.entrypoint[-1] == name
    programs = [f"{FLUX_BINARY_DIR}{name}"] + [ALPINE_TO_DEBIAN[p][1] for p in stage.packages]
    for path in programs:
        if path.startswith("/etc/"):
            created = commands.run(["docker", "create", tag], timeout_s=60.0).stdout.strip()
            try:
                copied = commands.run_binary(["docker", "cp", "-L", f"{created}:{path}", "-"], timeout_s=60.0)
                assert b"BEGIN CERTIFICATE" in copied, f"{tag}: {path} holds no certificate"
            finally:
                commands.run(["docker", "rm", created], timeout_s=60.0)
            continue
        flag = "--help" if path.startswith(FLUX_BINARY_DIR) else VERSION_FLAG.get(path, "--version")
        try:
            commands.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", path, tag, flag],
                         timeout_s=60.0)
        except CommandError as exc:
            # Controllers built on an older pflag print their usage and exit 2 on --help, as in
            # upstream's image: the program ran.
            if not (flag == "--help" and exc.exit_code == 2 and f"Usage of {path}:" in exc.stderr):
                pytest.fail(f"{tag}: {path} {flag} failed; upstream's image has it:\n{exc}")


def test_upstream_kustomize_controller_packages_are_read(kit: Kit) -> None:
    """A control for the comparison above, which checks only what the Dockerfile is read to
    hold: upstream's kustomize-controller adds what remote bases, SSH Git and SOPS with PGP need,
    and the reading finds it (an empty reading would make that comparison check nothing)."""
    stage = flux_stage("kustomize-controller", kit.versions.flux.controllers()["kustomize-controller"])
    assert {"git", "openssh-client", "gnupg", "tini"} <= set(stage.packages), stage.packages
    assert stage.entrypoint[:2] == ["/sbin/tini", "--"]


def test_kube_router_image_matches_upstream_dockerfile(kit: Kit) -> None:
    """The NetworkPolicy enforcer's image: upstream's entrypoint, and every program its Alpine
    packages bring (kube-router shells out to iptables, ipset and ip), each run as it is there."""
    stage = kube_router_stage(kit.versions)
    tag = kube_router_tag(kit.versions)
    config = _config(tag)
    assert config["Entrypoint"] == stage.entrypoint == ["/usr/local/bin/kube-router"], config["Entrypoint"]
    assert {"iptables", "ipset", "iproute2"} <= set(stage.packages), stage.packages
    programs = {KUBE_ROUTER_PACKAGES[p][1] for p in stage.packages}
    script = " && ".join(f"command -v {p} >/dev/null" for p in sorted(programs))
    script += " && kube-router --version && iptables --version | grep -q nf_tables && ipset --help >/dev/null"
    try:
        commands.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", tag, "-c", script],
                     timeout_s=60.0)
    except CommandError as exc:
        pytest.fail(f"{tag}: a program of upstream's image is missing or does not run:\n{exc}")
