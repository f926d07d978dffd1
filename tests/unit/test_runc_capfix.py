"""The runc wrapper: keeps only capabilities the bounding set has, never lowers oom_score_adj
below what the host allows, and passes every argument through to the real runc."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.kit.host import capfix_script

ALL_CAPS = ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_BPF"]
BITS = {"CAP_CHOWN": 0, "CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_BPF": 39}


def bounding() -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("CapBnd"))
    return int(line.split()[1], 16)


@pytest.fixture
def wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """The wrapper script and a stand-in runc that records its arguments."""
    script = tmp_path / "runc-capfix"
    script.write_text(capfix_script())
    script.chmod(0o755)
    fake = tmp_path / "fake-runc"
    fake.write_text(f'#!/bin/bash\necho "$@" > {tmp_path}/args\n')
    fake.chmod(0o755)
    return script, fake


def run(script: Path, fake: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], env={"FLEET_KIT_REAL_RUNC": str(fake), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30, check=False)


def test_create_keeps_only_capabilities_in_the_bounding_set(wrapper: tuple[Path, Path], tmp_path: Path) -> None:
    script, fake = wrapper
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    sets = {k: list(ALL_CAPS) for k in ("bounding", "effective", "permitted")}
    (bundle / "config.json").write_text(json.dumps({"process": {"capabilities": sets, "oomScoreAdj": -998}}))
    result = run(script, fake, "--root", "/run/x", "create", "--bundle", str(bundle), "ctr1")
    assert result.returncode == 0, result.stderr
    spec = json.loads((bundle / "config.json").read_text())
    expected = [c for c in ALL_CAPS if bounding() >> BITS[c] & 1]
    for name in sets:
        assert spec["process"]["capabilities"][name] == expected
    own = int(Path("/proc/self/oom_score_adj").read_text())
    if bounding() >> BITS["CAP_SYS_RESOURCE"] & 1:
        assert spec["process"]["oomScoreAdj"] == -998
    else:
        assert spec["process"]["oomScoreAdj"] == max(-998, own)
    assert (tmp_path / "args").read_text().split() == ["--root", "/run/x", "create", "--bundle", str(bundle), "ctr1"]


def test_exec_filters_the_process_file(wrapper: tuple[Path, Path], tmp_path: Path) -> None:
    script, fake = wrapper
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"bounding": list(ALL_CAPS)}, "args": ["sh"]}))
    result = run(script, fake, "exec", "--process", str(process), "ctr1")
    assert result.returncode == 0, result.stderr
    spec = json.loads(process.read_text())
    assert spec["capabilities"]["bounding"] == [c for c in ALL_CAPS if bounding() >> BITS[c] & 1]
    assert spec["args"] == ["sh"]


def test_other_commands_pass_through_untouched(wrapper: tuple[Path, Path], tmp_path: Path) -> None:
    script, fake = wrapper
    result = run(script, fake, "--root", "/run/x", "delete", "--force", "ctr1")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args").read_text().split() == ["--root", "/run/x", "delete", "--force", "ctr1"]
