"""The kind node image, built without a registry or GitHub.

kind's own recipe (its base image Dockerfile, then `kind build node-image`) clones from GitHub
and pulls from registries. This reproduces its result from local parts: a debootstrap root
filesystem with the packages kind's base installs, kind's static files from the kind module,
the kit's containerd, crictl and Kubernetes binaries, and every image kubeadm needs imported
(--no-unpack, pinned, as kind does) into the node's containerd store by a throwaway containerd
run on the host. The result is imported with kind's entrypoint.

Two deliberate differences from upstream, both for hosts like these:
- `runc` on PATH is a wrapper that drops capabilities missing from the bounding set (privileged
  pods such as kube-proxy fail otherwise); the real runc is Debian's.
- The pod network is a bridge CNI configuration baked into the image (Debian's CNI plugins),
  since kindnetd's module is not served by the module proxy. It serves single-node clusters on
  kind's default pod subnet 10.244.0.0/16; /kind/manifests/default-cni.yaml only records it.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.core import commands
from harness.core.errors import CommandError, KitError
from harness.core.progress import step
from harness.core.versions import Versions
from harness.core.waits import wait_for
from harness.kit import cache, debian, gomod
from harness.kit.host import capfix_script
from harness.kit.oci import BuiltImage, File, ImageSpec, cached_image, image_size, import_layer

NODE_REPOSITORY = "fleet-kit/node"
POD_SUBNET = "10.244.0.0/16"
# kind's base image package list, minus what only rootless/NFS/iSCSI setups need, plus the
# runc and CNI plugins kind builds from GitHub.
NODE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "conntrack", "iptables", "nftables", "iproute2", "ethtool",
    "util-linux", "mount", "kmod", "libseccomp2", "pigz", "bash", "ca-certificates", "jq",
    "procps", "runc", "containernetworking-plugins",
)
BRIDGE_CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "kind-bridge",
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


@dataclass(frozen=True)
class NodeInputs:
    kubernetes: cache.Artifact
    containerd: cache.Artifact
    crictl: cache.Artifact
    image_tags: tuple[str, ...]  # images to preload, already in Docker


def node_tag(v: Versions) -> str:
    return f"{NODE_REPOSITORY}:{v.kubernetes}"


def upstream_node_image(v: Versions) -> str:
    """kind's own default node image, by digest, as the pinned kind module names it.

    For KIT_SOURCE=upstream: that image runs the Kubernetes version kind pins for it (which may
    differ from versions.yaml's patch) and upstream's runc, which privileged pods need a full
    capability bounding set for.
    """
    kind_dir = gomod.download("sigs.k8s.io/kind", v.kind).dir
    source = (kind_dir / "pkg/apis/config/defaults/image.go").read_text()
    match = re.search(r'Image\s*=\s*"(kindest/node:[^"@]+@sha256:[0-9a-f]{64})"', source)
    if not match:
        raise KitError(f"kind {v.kind}: pkg/apis/config/defaults/image.go names no node image by digest; "
                       "update harness/kit/node.py")
    return match.group(1)


def sandbox_image(kind_dir: Path) -> str:
    """The pause image kind's containerd config uses (kind preloads that one, not kubeadm's)."""
    config = (kind_dir / "images/base/files/etc/containerd/config.toml").read_text()
    match = re.search(r'sandbox_image\s*=\s*"([^"]+)"', config)
    if not match:
        raise KitError("kind's containerd config names no sandbox_image; update harness/kit/node.py")
    return match.group(1)


def _kind_files(kind_dir: Path) -> list[File]:
    """kind's base image files, with the modes its Dockerfile gives them (zips drop exec bits)."""
    root = kind_dir / "images/base/files"
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        executable = rel.startswith(("usr/local/bin/", "kind/bin/"))
        files.append(File(f"/{rel}", path, 0o755 if executable else 0o644))
    return files


def _systemd_setup(rootfs: Path) -> None:
    """What kind's Dockerfile does to systemd: no unneeded units, kubelet and containerd on."""
    for pattern in ("lib/systemd/system/multi-user.target.wants/*", "etc/systemd/system/*.wants/*",
                    "lib/systemd/system/local-fs.target.wants/*",
                    "lib/systemd/system/sockets.target.wants/*udev*",
                    "lib/systemd/system/sockets.target.wants/*initctl*",
                    "lib/systemd/system/basic.target.wants/*",
                    "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service"):
        for path in rootfs.glob(pattern):
            path.unlink()
    journald = rootfs / "etc/systemd/journald.conf"
    journald.write_text(journald.read_text() + "ReadKMsg=no\n")
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit in ("kubelet.service", "containerd.service", "undo-mount-hacks.service"):
        (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
    (rootfs / "etc/systemd/system/systemd-binfmt.service").symlink_to("/dev/null")
    (rootfs / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)


def _preload(rootfs: Path, ctr_bin: Path, image_tags: tuple[str, ...], workdir: Path) -> None:
    """Import images into the node's containerd store with a throwaway containerd on the host."""
    state = workdir / "containerd-state"
    state.mkdir()
    socket = workdir / "containerd.sock"
    config = workdir / "containerd.toml"
    config.write_text(
        "version = 3\n"
        f'root = "{rootfs}/var/lib/containerd"\n'
        f'state = "{state}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", '
        '"io.containerd.cri.v1.images", "io.containerd.snapshotter.v1.devmapper", '
        '"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs"]\n'
        f'[grpc]\n  address = "{socket}"\n'
        f'[ttrpc]\n  address = "{socket}.ttrpc"\n'
    )
    log = workdir / "containerd.log"
    daemon = commands.spawn([str(ctr_bin / "containerd"), "--config", str(config)], log=log)
    ctr = [str(ctr_bin / "ctr"), "--address", str(socket), "--namespace", "k8s.io"]
    try:
        wait_for("the image-import containerd to start",
                 lambda: (commands.succeeds([*ctr, "version"], timeout_s=10.0), None, log.read_text()[-500:]),
                 timeout_s=60.0, interval_s=0.5)
        archive = workdir / "images.tar"
        commands.run(["docker", "save", "-o", str(archive), *image_tags], timeout_s=1800.0)
        commands.run([*ctr, "images", "import", "--label=io.cri-containerd.pinned=pinned",
                      "--all-platforms", "--no-unpack", "--digests", str(archive)], timeout_s=1800.0)
        listed = commands.run([*ctr, "images", "ls", "-q"], timeout_s=60.0).stdout.split()
        missing = [t for t in image_tags if not any(name.endswith(t.split("/", 1)[-1]) or name == t
                                                    for name in listed)]
        if missing:
            raise KitError(f"node image: images missing after import: {missing}; imported: {listed}")
        archive.unlink()
    finally:
        daemon.stop()


def node_base(v: Versions) -> cache.Artifact:
    """The node's Debian root filesystem (no Go build needed: the kit makes it while it compiles)."""
    return debian.rootfs("kind-node-base", v.node.debian, NODE_PACKAGES)


def build_node_image(v: Versions, inputs: NodeInputs) -> BuiltImage:
    """Build (or reuse) fleet-kit/node:<kubernetes version>."""
    kind = gomod.download("sigs.k8s.io/kind", v.kind)
    base = node_base(v)
    k8s_bin = inputs.kubernetes.path / "bin"
    ctr_bin = inputs.containerd.path / "bin"
    files = [
        *_kind_files(kind.dir),
        *(File(f"/usr/bin/{b}", k8s_bin / b, 0o755) for b in ("kubeadm", "kubelet", "kubectl")),
        *(File(f"/usr/local/bin/{b}", ctr_bin / b, 0o755)
          for b in ("containerd", "ctr", "containerd-shim-runc-v2")),
        File("/usr/local/bin/crictl", inputs.crictl.path / "bin" / "crictl", 0o755),
        File("/usr/local/sbin/runc", content=capfix_script().encode(), mode=0o755),
        File("/kind/version", content=v.kubernetes.encode()),
        File("/etc/cni/net.d/10-kind-bridge.conflist", content=json.dumps(BRIDGE_CONFLIST, indent=2).encode()),
    ]
    # The node image's key must change when the preloaded images change.
    preload_key = ",".join(f"{t}={_image_id(t)}" for t in inputs.image_tags)
    files.append(File("/kind/fleet-kit-images", content=preload_key.encode()))

    def customize(rootfs: Path) -> None:
        _systemd_setup(rootfs)
        cni = rootfs / "opt/cni/bin"
        cni.mkdir(parents=True, exist_ok=True)
        for plugin in sorted((rootfs / "usr/lib/cni").iterdir()):
            (cni / plugin.name).symlink_to(f"/usr/lib/cni/{plugin.name}")
        spec = commands.run([str(ctr_bin / "ctr"), "oci", "spec"], timeout_s=30.0).stdout
        data = json.loads(spec)
        data.setdefault("hooks", {}).setdefault("createContainer", []).append(
            {"path": "/kind/bin/mount-product-files.sh"})
        data["process"].pop("rlimits", None)
        (rootfs / "etc/containerd").mkdir(parents=True, exist_ok=True)
        (rootfs / "etc/containerd/cri-base.json").write_text(json.dumps(data, indent=2))
        manifests = rootfs / "kind/manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        (manifests / "default-cni.yaml").write_text(_cni_record())

    spec = ImageSpec(
        tags=(node_tag(v),),
        base=base.path / "rootfs.tar",
        files=tuple(files),
        env=(("container", "docker"),
             ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")),
        # kind's base also sets STOPSIGNAL SIGRTMIN+3, which `docker import` cannot; kind removes
        # node containers with `docker rm -f`, so the stop signal is never used.
        entrypoint=("/usr/local/bin/entrypoint", "/sbin/init"),
    )
    return _build_with_rootfs(spec, customize, inputs, ctr_bin)


def _image_id(tag: str) -> str:
    try:
        return commands.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], timeout_s=30.0).stdout.strip()
    except CommandError as exc:
        raise KitError(f"node image: image {tag} to preload is not in Docker; build the images first") from exc


def _cni_record() -> str:
    conflist = json.dumps(BRIDGE_CONFLIST, indent=2).replace("\n", "\n    ")
    return (
        "# The pod network of this node image is the bridge CNI configuration baked into\n"
        "# /etc/cni/net.d (single-node clusters, pod subnet " + POD_SUBNET + "). kind applies\n"
        "# this file as its default CNI manifest; it only records that configuration.\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fleet-kit-cni\n  namespace: kube-system\n"
        "data:\n  10-kind-bridge.conflist: |\n    " + conflist + "\n"
    )


def _build_with_rootfs(
    spec: ImageSpec, customize: Callable[[Path], None], inputs: NodeInputs, ctr_bin: Path
) -> BuiltImage:
    """Extract the base, apply the spec's files and customizations, preload images, import."""
    key = spec.key()
    hit = cached_image(spec, key)
    if hit is not None:
        return hit
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fleetkit-node-") as tmp:
        work = Path(tmp)
        rootfs = work / "rootfs"
        rootfs.mkdir()
        with step("assembling the kind node root filesystem"):
            assert spec.base is not None
            with tarfile.open(spec.base) as tar:
                tar.extractall(rootfs, filter="fully_trusted")
            for f in spec.files:
                target = rootfs / f.path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.exists():
                    target.unlink()
                if f.source is not None:
                    shutil.copyfile(f.source, target)
                else:
                    target.write_bytes(f.content or b"")
                target.chmod(f.mode)
            customize(rootfs)
        with step(f"preloading {len(inputs.image_tags)} images into the node's containerd"):
            _preload(rootfs, ctr_bin, inputs.image_tags, work)
        with step(f"importing {spec.tags[0]}"):
            layer = work / "node-rootfs.tar"
            with tarfile.open(layer, "w") as tar:
                tar.add(rootfs, arcname=".")
            shutil.rmtree(rootfs)
            import_layer(spec, key, layer)
    return BuiltImage(spec.tags[0], True, time.monotonic() - started, image_size(spec.tags[0]))
