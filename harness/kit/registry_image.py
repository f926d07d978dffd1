"""The registry's image: Debian's docker-registry (distribution) on a Debian root filesystem,
and where its storage lives in the kit cache (shared by every run's registry container)."""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import KitError
from harness.core.versions import Versions
from harness.kit import cache
from harness.kit.images import iptables_base
from harness.kit.oci import File, ImageSpec, build_image

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
CONFIG = b"""version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
"""


def storage() -> Path:
    """The registry's storage: pushed once by the kit, served by every run."""
    return cache.cache_root() / "registry"


def registry_image(v: Versions) -> str:
    if not REGISTRY_BINARY.exists():
        raise KitError(f"{REGISTRY_BINARY} is missing: run `python -m harness host prepare` "
                       "(it installs the Debian package docker-registry)")
    base = iptables_base(v)
    spec = ImageSpec(
        tags=("fleet-kit/registry:debian",),
        base=base.path / "rootfs.tar",
        files=(File("/usr/bin/docker-registry", REGISTRY_BINARY, 0o755),
               File("/etc/docker/registry/config.yml", content=CONFIG)),
        entrypoint=("/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"),
    )
    return build_image(spec).tag
