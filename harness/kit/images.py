"""The images the clusters run, built from the kit's binaries and tagged as upstream names them.

Tags are exactly what the Kubernetes/kubeadm defaults, the Flux install manifests and the
Kyverno and podinfo charts reference, so nothing in the fleet repo needs to change: the local
registry mirrors those names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.core import commands
from harness.core.errors import CommandError, KitError
from harness.core.versions import Versions
from harness.kit import cache, debian, dockerfile, gomod
from harness.kit.oci import DEFAULT_ENV, File, ImageSpec
from harness.kit.recipes import KYVERNO_COMMANDS

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
NOBODY = "65534:65534"
# What kube-proxy's image needs besides its binary (upstream: distroless-iptables).
IPTABLES_PACKAGES = ("iptables", "nftables", "conntrack", "ipset", "kmod", "ca-certificates")
# Upstream Flux images are Alpine-based. Each Alpine package their Dockerfiles add, as the Debian
# package the kit installs instead, and the program or file upstream's image has from it (at
# upstream's path, which the image test looks for).
ALPINE_TO_DEBIAN: dict[str, tuple[str, str]] = {
    "ca-certificates": ("ca-certificates", "/etc/ssl/certs/ca-certificates.crt"),
    "tini": ("tini", "/sbin/tini"),
    "git": ("git", "/usr/bin/git"),
    "openssh-client": ("openssh-client", "/usr/bin/ssh"),
    "gnupg": ("gnupg", "/usr/bin/gpg"),
}
# Where Debian puts a program Alpine keeps elsewhere; the image gets a link at Alpine's path.
# (Debian merges /sbin into /usr/sbin, so the link is written there.)
DEBIAN_PATHS = {"/sbin/tini": ("/usr/sbin/tini", "/usr/bin/tini")}
FLUX_BINARY_DIR = "/usr/local/bin/"
# What the kit can build for a policy engine beyond Flux, the clusters and the tools every engine's
# offline checks use; each engine names the parts it needs (harness/e2e/engines.py, kit_parts).
KYVERNO_PART = "kyverno"  # Kyverno's controller images and its chart
ENGINE_PARTS = (KYVERNO_PART,)
# Kyverno's image names, by the binary that runs in them.
KYVERNO_IMAGES = {
    "kyverno": "kyverno", "kyverno-init": "kyvernopre",
    "background-controller": "background-controller", "cleanup-controller": "cleanup-controller",
    "reports-controller": "reports-controller", "readiness-checker": "readiness-checker",
    "kubectl-kyverno": "kyverno-cli",
}


# kube-router's image (Alpine): each package its Dockerfile adds, as the Debian package the kit
# installs instead, and the program upstream's image has from it (the image test runs each).
KUBE_ROUTER_PACKAGES: dict[str, tuple[str, str]] = {
    "iptables": ("iptables", "iptables"), "ip6tables": ("iptables", "ip6tables"),
    "ipset": ("ipset", "ipset"), "iproute2": ("iproute2", "ip"), "ipvsadm": ("ipvsadm", "ipvsadm"),
    "conntrack-tools": ("conntrack", "conntrack"), "curl": ("curl", "curl"), "bash": ("bash", "bash"),
}
# Steps of kube-router's final stage the kit's image does without, and why:
KUBE_ROUTER_SKIPPED = (
    ("mkdir", "-p", "/var/lib/gobgp"),  # BGP state: the kit runs the firewall only
    ("mkdir", "-p", "/usr/local/share/bash-completion"),  # shell completion for people in the pod
    ("curl", "-L", "-o", "/usr/local/share/bash-completion/bash-completion"),  # a GitHub download
    # Picks iptables-legacy or -nft from the rules the node already has. The kit's node writes
    # nft rules (kube-proxy and kubelet, Debian's default), which is also Debian's default here.
    ("/iptables-wrapper-installer.sh",),
    ("echo", "hosts: files dns"),  # Debian's /etc/nsswitch.conf already says so
)
# What the final stage copies: the kit reproduces the binary; the rest is the pod's shell
# comfort and kube-router's CNI mode (cni-install, the CNI plugins), which the kit does not use.
KUBE_ROUTER_COPIES = {
    "/usr/local/bin/": "binary", "/root/.bashrc": "", "/root/.profile": "", "/root/.vimrc": "",
    "/etc/motd-kube-router.sh": "", "/usr/local/bin/cni-install": "", "/usr/libexec/cni": "", "/": "",
}


@dataclass(frozen=True)
class GoArtifacts:
    """The compiled inputs of the images."""

    kubernetes: cache.Artifact
    etcd: cache.Artifact
    coredns: cache.Artifact
    flux: dict[str, cache.Artifact]
    kyverno: cache.Artifact | None  # built with its controllers only when the kit builds their images
    podinfo: cache.Artifact
    kube_router: cache.Artifact


def _ca() -> File:
    if not CA_BUNDLE.is_file():
        raise KitError(f"{CA_BUNDLE} is missing; install Debian's ca-certificates package")
    return File("/etc/ssl/certs/ca-certificates.crt", CA_BUNDLE)


def pause_binary(v: Versions, tag: str) -> cache.Artifact:
    """Kubernetes' pause.c from the pinned module, compiled static (as upstream's image does)."""
    key = cache.recipe_key(("pause", v.kubernetes, tag))

    def produce(out: Path) -> None:
        module = gomod.download("k8s.io/kubernetes", v.kubernetes)
        if commands.which("gcc") is None:
            raise KitError("pause: gcc is missing; install Debian's gcc and libc6-dev")
        try:
            commands.run(
                ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}-fleet-kit",
                 "-o", str(out / "pause"), str(module.dir / "build/pause/linux/pause.c")],
                timeout_s=120.0,
            )
        except CommandError as exc:
            raise KitError(f"pause: static build failed (is libc6-dev installed?)\n{exc}") from exc

    return cache.build_once("c", "pause", tag, key, f"k8s.io/kubernetes@{v.kubernetes}", produce)


def kubernetes_images(v: Versions, go: GoArtifacts, pause_tag: str) -> list[ImageSpec]:
    bins = go.kubernetes.path / "bin"
    specs = [
        ImageSpec(tags=(f"registry.k8s.io/{name}:{v.kubernetes}",),
                  files=(File(f"/usr/local/bin/{name}", bins / name, 0o755), _ca()),
                  dirs=(("tmp", 0o1777),), entrypoint=(f"/usr/local/bin/{name}",))
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    ]
    iptables = iptables_base(v)
    specs.append(ImageSpec(
        tags=(f"registry.k8s.io/kube-proxy:{v.kubernetes}",),
        base=iptables.path / "rootfs.tar",
        files=(File("/usr/local/bin/kube-proxy", bins / "kube-proxy", 0o755),),
        entrypoint=("/usr/local/bin/kube-proxy",),
    ))
    etcd_tag = v.node.etcd.removeprefix("v") + "-0"
    specs.append(ImageSpec(
        tags=(f"registry.k8s.io/etcd:{etcd_tag}",),
        files=(File("/usr/local/bin/etcd", go.etcd.path / "bin" / "server", 0o755), _ca()),
        dirs=(("tmp", 0o1777), ("var/lib/etcd", 0o700)),
        entrypoint=("/usr/local/bin/etcd",),
    ))
    specs.append(ImageSpec(
        tags=(f"registry.k8s.io/coredns/coredns:{v.node.coredns}",),
        files=(File("/coredns", go.coredns.path / "bin" / "coredns", 0o755), _ca()),
        entrypoint=("/coredns",),
    ))
    pause = pause_binary(v, pause_tag)
    specs.append(ImageSpec(
        tags=tuple(dict.fromkeys((f"registry.k8s.io/pause:{pause_tag}", f"registry.k8s.io/pause:{v.node.pause}"))),
        files=(File("/pause", pause.path / "pause", 0o755),),
        entrypoint=("/pause",), user=NOBODY,
    ))
    return specs


def flux_tag(name: str, version: str) -> str:
    return f"ghcr.io/fluxcd/{name}:{version}"


def kyverno_tags(v: Versions, image: str) -> tuple[str, ...]:
    registry = "ghcr.io" if image == "readiness-checker" else "reg.kyverno.io"
    tags = [f"{registry}/kyverno/{image}:{v.kyverno}"]
    if image == "readiness-checker":
        # The chart's cleanup hook defaults this image's tag to `latest`.
        tags.append(f"{registry}/kyverno/{image}:latest")
    return tuple(tags)


def podinfo_tag(v: Versions) -> str:
    return f"ghcr.io/stefanprodan/podinfo:{v.podinfo}"


def kube_router_tag(v: Versions) -> str:
    return f"docker.io/cloudnativelabs/kube-router:{v.kube_router}"


def workload_tags(v: Versions, parts: tuple[str, ...] = ENGINE_PARTS) -> list[str]:
    """Images that run on top of Kubernetes (the NetworkPolicy enforcer, Flux, Kyverno when it is
    one of `parts`, podinfo), by upstream name."""
    kyverno = [t for image in KYVERNO_IMAGES.values() for t in kyverno_tags(v, image)] if KYVERNO_PART in parts else []
    return [kube_router_tag(v), *(flux_tag(n, ver) for n, ver in v.flux.controllers().items()),
            *kyverno, podinfo_tag(v)]


def kube_router_stage(v: Versions) -> dockerfile.FinalStage:
    """The final stage of kube-router's Dockerfile at the pinned version, as the kit reproduces it."""
    module = gomod.download("github.com/cloudnativelabs/kube-router/v2", v.kube_router)
    stage = dockerfile.read(module.dir / "Dockerfile", KUBE_ROUTER_SKIPPED)
    unknown = [p for p in stage.packages if p not in KUBE_ROUTER_PACKAGES]
    if unknown:
        raise KitError(f"kube-router {v.kube_router}: upstream's image adds Alpine packages {unknown} that the "
                       "kit has no Debian equivalent for; add them to KUBE_ROUTER_PACKAGES in harness/kit/images.py")
    copies = [c for c in stage.copies if c not in KUBE_ROUTER_COPIES]
    if copies:
        raise KitError(f"kube-router {v.kube_router}: upstream's image copies {copies}, which the kit does not "
                       "know; decide in KUBE_ROUTER_COPIES (harness/kit/images.py) whether the image needs them")
    return stage


def iptables_base(v: Versions) -> cache.Artifact:
    """The root filesystem of the images that program iptables (kube-proxy, the registry's)."""
    return debian.rootfs("debian-iptables", v.node.debian, IPTABLES_PACKAGES)


def kube_router_base(v: Versions) -> cache.Artifact:
    """kube-router's root filesystem: its Dockerfile's packages, from Debian."""
    stage = kube_router_stage(v)
    packages = tuple(sorted({KUBE_ROUTER_PACKAGES[p][0] for p in stage.packages} | {"ca-certificates"}))
    return debian.rootfs("kube-router", v.node.debian, packages)


def flux_base(v: Versions, name: str, version: str) -> cache.Artifact | None:
    """The controller's root filesystem when its Dockerfile adds packages beyond CA certificates
    (else its image has no base)."""
    stage = flux_stage(name, version)
    if not set(stage.packages) - {"ca-certificates"}:
        return None
    packages = tuple(sorted({ALPINE_TO_DEBIAN[p][0] for p in stage.packages} | {"ca-certificates"}))
    return debian.rootfs(f"flux-{name}", v.node.debian, packages)


def debian_bases(v: Versions) -> list[cache.Artifact]:
    """Every Debian root filesystem the workload and control-plane images are built on. They
    need no Go build, so the kit makes them while it compiles (debootstrap waits on the network
    and the disk more than on the cores)."""
    flux = [flux_base(v, name, version) for name, version in v.flux.controllers().items()]
    return [iptables_base(v), kube_router_base(v), *(base for base in flux if base is not None)]


def kube_router_image(v: Versions, go: GoArtifacts) -> ImageSpec:
    """As upstream's Dockerfile: its packages (from Debian), the binary in /usr/local/bin, its
    entrypoint, run as root in /root (it programs the node's iptables)."""
    stage = kube_router_stage(v)
    base = kube_router_base(v).path / "rootfs.tar"
    return ImageSpec(
        tags=(kube_router_tag(v),), base=base,
        files=(File("/usr/local/bin/kube-router", go.kube_router.path / "bin" / "kube-router", 0o755),),
        entrypoint=tuple(stage.entrypoint), workdir="/root",
    )


def flux_stage(name: str, version: str) -> dockerfile.FinalStage:
    """The final stage of the controller's own Dockerfile at the pinned version."""
    stage = dockerfile.read(gomod.download(f"github.com/fluxcd/{name}", version).dir / "Dockerfile")
    unknown = [p for p in stage.packages if p not in ALPINE_TO_DEBIAN]
    if unknown:
        raise KitError(f"{name} {version}: upstream's image adds Alpine packages {unknown} that the kit "
                       "has no Debian equivalent for; add them to ALPINE_TO_DEBIAN in harness/kit/images.py")
    if stage.copies != [FLUX_BINARY_DIR]:
        raise KitError(f"{name} {version}: upstream's image copies {stage.copies}, the kit expects only "
                       f"the controller binary into {FLUX_BINARY_DIR}; update flux_images")
    return stage


def flux_images(v: Versions, go: GoArtifacts) -> list[ImageSpec]:
    """As upstream's Dockerfile at the pinned version: its packages (from Debian), the binary on
    PATH, its entrypoint chain, environment and numeric non-root user."""
    specs = []
    for name, version in v.flux.controllers().items():
        stage = flux_stage(name, version)
        files = [File(f"{FLUX_BINARY_DIR}{name}", go.flux[name].path / "bin" / name, 0o755)]
        rootfs = flux_base(v, name, version)
        base = None
        if rootfs is not None:
            base = rootfs.path / "rootfs.tar"
            for p in stage.packages:
                link = DEBIAN_PATHS.get(ALPINE_TO_DEBIAN[p][1])
                if link is not None:
                    files.append(File(link[0], link=link[1]))
        else:
            files.append(_ca())
        specs.append(ImageSpec(
            tags=(flux_tag(name, version),), files=tuple(files), base=base,
            dirs=(("tmp", 0o1777), ("data", 0o777)),
            env=(*DEFAULT_ENV, *stage.env.items()),
            entrypoint=tuple(stage.entrypoint), user=stage.user,
        ))
    return specs


def kyverno_images(v: Versions, go: GoArtifacts) -> list[ImageSpec]:
    """As upstream (built with ko): /ko-app/<binary> as entrypoint, non-root."""
    if go.kyverno is None:
        raise KitError("Kyverno's images need its controllers built (the kit's kyverno part)")
    specs = []
    for binary, image in KYVERNO_IMAGES.items():
        if binary not in (*KYVERNO_COMMANDS, "kubectl-kyverno"):
            raise KitError(f"kyverno image {image}: the kit does not build {binary}")
        specs.append(ImageSpec(
            tags=kyverno_tags(v, image),
            files=(File(f"/ko-app/{binary}", go.kyverno.path / "bin" / binary, 0o755), _ca()),
            dirs=(("tmp", 0o1777), ("var/run/ko", 0o755)),
            env=(("PATH", "/ko-app:/usr/local/bin:/usr/bin:/bin"), ("KO_DATA_PATH", "/var/run/ko")),
            entrypoint=(f"/ko-app/{binary}",), user=NOBODY,
        ))
    return specs


def podinfo_image(v: Versions, go: GoArtifacts) -> ImageSpec:
    """As upstream: /home/app holds ./podinfo and ./ui, podcli on PATH, runs as `app`."""
    module = gomod.download("github.com/stefanprodan/podinfo", v.podinfo_module)
    ui = [File(f"/home/app/ui/{p.relative_to(module.dir / 'ui')}", p)
          for p in sorted((module.dir / "ui").rglob("*")) if p.is_file()]
    passwd = b"root:x:0:0:root:/root:/bin/sh\napp:x:100:101:app:/home/app:/sbin/nologin\n"
    group = b"root:x:0:\napp:x:101:app\n"
    return ImageSpec(
        tags=(podinfo_tag(v),),
        files=(
            File("/home/app/podinfo", go.podinfo.path / "bin" / "podinfo", 0o755),
            File("/usr/local/bin/podcli", go.podinfo.path / "bin" / "podcli", 0o755),
            File("/etc/passwd", content=passwd), File("/etc/group", content=group), _ca(), *ui,
        ),
        dirs=(("tmp", 0o1777), ("data", 0o777)),
        cmd=("./podinfo",), user="100:101", workdir="/home/app",
    )


def all_images(v: Versions, go: GoArtifacts, pause_tag: str, parts: tuple[str, ...] = ENGINE_PARTS) -> list[ImageSpec]:
    kyverno = kyverno_images(v, go) if KYVERNO_PART in parts else []
    return [*kubernetes_images(v, go, pause_tag), kube_router_image(v, go), *flux_images(v, go),
            *kyverno, podinfo_image(v, go)]
