"""A tool's answer is reused only while every file it can read is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import CommandError
from harness.manifests import reuse
from harness.manifests.render import KUSTOMIZATION_FILES


def _kustomization(folder: Path, *resources: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        + "".join(f"- {r}\n" for r in resources))


def _is_kustomization(file: Path) -> bool:
    return file.name in KUSTOMIZATION_FILES


def test_files_named_outside_the_folder_are_read(tmp_path: Path) -> None:
    _kustomization(tmp_path / "clusters" / "staging", "../../infrastructure", "local.yaml")
    (tmp_path / "clusters" / "staging" / "local.yaml").write_text("kind: ConfigMap\n")
    _kustomization(tmp_path / "infrastructure", "policies/one.yaml")
    (tmp_path / "infrastructure" / "policies").mkdir()
    (tmp_path / "infrastructure" / "policies" / "one.yaml").write_text("kind: ConfigMap\n")
    (tmp_path / "unrelated.yaml").write_text("kind: ConfigMap\n")
    files = reuse.readable_files([tmp_path / "clusters" / "staging"], _is_kustomization)
    names = {f.relative_to(tmp_path.resolve()).as_posix() for f in files}
    assert names == {"clusters/staging/kustomization.yaml", "clusters/staging/local.yaml",
                     "infrastructure/kustomization.yaml", "infrastructure/policies/one.yaml"}


def test_output_is_reused_until_a_file_changes(tmp_path: Path) -> None:
    _kustomization(tmp_path / "app", "../base")
    _kustomization(tmp_path / "base", "cm.yaml")
    (tmp_path / "base" / "cm.yaml").write_text("data: {a: '1'}\n")
    # Prints something new on every real run: equal output means the answer was reused.
    argv = ["sh", "-c", f"cat /proc/sys/kernel/random/uuid; ls {tmp_path}/app"]

    def answer() -> str:
        files = reuse.readable_files([tmp_path / "app"], _is_kustomization)
        return reuse.run(argv, root=tmp_path, files=files, timeout_s=30.0).stdout

    first = answer()
    assert answer() == first
    (tmp_path / "base" / "cm.yaml").write_text("data: {a: '2'}\n")  # read only through ../base
    changed = answer()
    assert changed != first
    assert answer() == changed


def test_the_scratch_folder_path_does_not_count(tmp_path: Path) -> None:
    outputs = []
    for copy in ("one", "two"):
        root = tmp_path / copy
        root.mkdir()
        (root / "policies.yaml").write_text("kind: ValidatingPolicy\n")
        argv = ["sh", "-c", f"cat /proc/sys/kernel/random/uuid; test -f {root}/policies.yaml"]
        outputs.append(reuse.run(argv, root=root, files=[root / "policies.yaml"], timeout_s=30.0).stdout)
    assert outputs[0] == outputs[1]


def test_a_failure_is_never_reused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = ["sh", "-c", f"echo >> {marker}; exit 3"]
    for _ in range(2):
        with pytest.raises(CommandError):
            reuse.run(argv, root=tmp_path, files=[], timeout_s=30.0)
    assert len(marker.read_text().splitlines()) == 2


def test_a_string_naming_an_ancestor_is_not_walked(tmp_path: Path) -> None:
    """"/" or ".." in a kustomization (a JSON patch path, say) names the disk or the tree
    holding the build: following it would read everything, and kustomize refuses such a cycle."""
    _kustomization(tmp_path / "app", "local.yaml")
    (tmp_path / "app" / "local.yaml").write_text("kind: ConfigMap\n")
    (tmp_path / "app" / "kustomization.yaml").write_text(
        (tmp_path / "app" / "kustomization.yaml").read_text() + "patches:\n- path: /\n- path: ..\n")
    (tmp_path / "elsewhere.yaml").write_text("kind: ConfigMap\n")
    files = reuse.readable_files([tmp_path / "app"], _is_kustomization)
    assert {f.name for f in files} == {"kustomization.yaml", "local.yaml"}
