"""Host requirements: installed state from dpkg, one list covering every program the code runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.kit import requirements

RUNNERS = {"run", "succeeds", "spawn", "run_binary", "which"}


@pytest.mark.parametrize(("abbrev", "installed"), [
    ("ii ", True),   # installed
    ("hi ", True),   # installed, on hold
    ("un ", False),  # known to dpkg, not installed: `dpkg-query -W` still exits 0
    ("rc ", False),  # removed, configuration files left
    ("pn ", False),  # purged
    ("iU ", False),  # unpacked, not configured
    ("iiR", False),  # installed but needing reinstallation
    ("", False),
])
def test_installed_state_is_read_from_the_status_letters(abbrev: str, installed: bool) -> None:
    assert requirements.is_installed_status(abbrev) is installed


def _fake_dpkg_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    """A dpkg-query that answers like dpkg does for a package in `status`: exit 0."""
    script = tmp_path / "dpkg-query"
    script.write_text(f"#!/bin/sh\nprintf '{status}'\nexit 0\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")


def test_known_but_absent_package_is_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dpkg_query(tmp_path, monkeypatch, "un ")
    assert requirements.dpkg_installed("debootstrap") is False


def test_installed_package_is_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dpkg_query(tmp_path, monkeypatch, "ii ")
    assert requirements.dpkg_installed("debootstrap") is True


def test_package_dpkg_calls_installed_but_whose_program_is_gone_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_dpkg_query(tmp_path, monkeypatch, "ii ")
    gone = requirements.Package("ghost", ("/nonexistent/ghost",), frozenset({"kit"}), "a test")
    assert requirements.missing_packages_of([gone]) == [gone]


def test_too_old_go_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requirements, "go_version", lambda: (1, 22, 5))
    found = requirements.problems("validate", installable=True)
    assert any("Go 1.22.5 is too old" in p and "Go >= 1.26" in p for p in found), found


def test_missing_package_is_named_with_the_command_that_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = requirements.PACKAGES[1]
    monkeypatch.setattr(requirements, "missing_packages", lambda purpose: [pkg])
    with pytest.raises(requirements.RequirementError) as error:
        requirements.check("validate")
    assert f"Debian package {pkg.name} is not installed" in str(error.value)
    assert "python -m harness host prepare" in str(error.value)


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "string" (or Path("string")) assignments."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Call) and value.args:
                value = value.args[0]
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found[node.targets[0].id] = value.value
    return found


def programs_run_by(source: str) -> set[str]:
    """Programs named literally as argv[0] (or to `which`) in calls of the command wrapper."""
    tree = ast.parse(source)
    constants = _constants(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in RUNNERS and node.args):
            continue
        first = node.args[0]
        if isinstance(first, ast.List) and first.elts:
            first = first.elts[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(first.value)
        elif isinstance(first, ast.Name) and first.id in constants:
            found.add(constants[first.id])
    return found


def test_the_scan_finds_literal_and_constant_programs() -> None:
    source = (
        'BACKEND = "/usr/lib/x/backend"\n'
        'commands.run(["docker", "ps"], timeout_s=1)\n'
        'commands.run_binary([BACKEND], timeout_s=1)\n'
        'shutil.which("dockerd")\n'
        'commands.run([kit_built_binary, "x"], timeout_s=1)\n'
    )
    assert programs_run_by(source) == {"docker", "/usr/lib/x/backend", "dockerd"}


def test_every_program_the_harness_runs_is_a_listed_requirement(repo_root: Path) -> None:
    """Programs built by the kit are passed as paths; every name or fixed path is a host's."""
    used: dict[str, list[str]] = {}
    for path in sorted((repo_root / "harness").rglob("*.py")):
        for program in programs_run_by(path.read_text()):
            used.setdefault(program, []).append(str(path.relative_to(repo_root)))
    assert "docker" in used and "git" in used  # the scan sees the code at all
    uncovered = {p: where for p, where in used.items() if p not in requirements.known_programs()}
    assert not uncovered, f"programs run but not in harness/kit/requirements.py: {uncovered}"


def test_a_cold_machine_needs_room_for_the_whole_kit_on_each_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_KIT_CACHE", str(tmp_path / "kit"))  # nothing built: cold
    # All four on one disk (tmp_path's): their needs add up.
    monkeypatch.setattr(requirements, "cache_places",
                        lambda: {name: tmp_path / str(i) for i, name in enumerate(requirements.COLD_NEEDS_GIB)})
    monkeypatch.setattr(requirements, "free_gib", lambda path: 20.0)
    found = requirements.disk_problems()
    total = sum(requirements.COLD_NEEDS_GIB.values())
    assert found and any(f"a cold kit fills about {total:.0f} GiB" in p and "FLEET_KIT_CACHE" in p for p in found), found


def test_a_built_kit_needs_only_a_margin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = tmp_path / "kit" / "go" / "kubernetes" / "v1.34.4-abc"
    sealed.mkdir(parents=True)
    (sealed / "complete.json").write_text("{}")
    monkeypatch.setenv("FLEET_KIT_CACHE", str(tmp_path / "kit"))
    monkeypatch.setattr(requirements, "free_gib", lambda path: requirements.WARM_MARGIN_GIB + 1)
    assert requirements.disk_problems() == []
    monkeypatch.setattr(requirements, "free_gib", lambda path: requirements.WARM_MARGIN_GIB - 1)
    assert any("keep 3 GiB free" in p for p in requirements.disk_problems())
