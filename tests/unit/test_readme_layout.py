"""The README's layout section and the harness' tree agree."""

from __future__ import annotations

import re
from pathlib import Path


def test_every_harness_module_is_in_the_readme_layout_and_every_listed_one_exists(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    block = readme[readme.index("harness/\n  entry/"):]
    block = block[:block.index("```")]
    listed: set[str] = set()
    folder = ""
    for line in block.splitlines()[1:]:
        top = re.match(r"^  ([a-z0-9_]+)/", line)
        if top:
            folder = top.group(1)
            continue
        listed |= {f"{folder}/{name}" for name in re.findall(r"\b([a-z0-9_]+\.py)\b", line.split("#")[0])}
    actual = {p.relative_to(repo_root / "harness").as_posix() for p in (repo_root / "harness").rglob("*.py")
              if p.name != "__init__.py" and p.parent != repo_root / "harness"}
    assert listed - actual == set(), f"the README lists modules that do not exist: {sorted(listed - actual)}"
    assert actual - listed == set(), f"modules missing from the README's layout: {sorted(actual - listed)}"


def _where_each_test_runs(readme: str) -> dict[str, list[str]]:
    """The rows of the README's "Where each test runs" table: module -> its cells."""
    section = readme[readme.index("### Where each test runs"):]
    rows: dict[str, list[str]] = {}
    for line in section[:section.index("\n\n", section.index("| Module |"))].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"`(?:tests/\w+/)?(test_\w+\.py)`", cells[0])
        if found:
            rows[found.group(1)] = cells[1:]
    return rows


def test_the_readme_says_where_every_e2e_module_runs(repo_root: Path) -> None:
    """Every e2e and upgrade module has its row; its fresh-install cell is filled exactly when
    it holds tests marked fresh_install, its native cell says yes exactly when the Makefile's
    NATIVE_SUITE names it."""
    rows = _where_each_test_runs((repo_root / "README.md").read_text())
    modules = {p.name: p for folder in ("e2e", "upgrade") for p in (repo_root / "tests" / folder).glob("test_*.py")}
    assert set(rows) == set(modules), (sorted(set(modules) - set(rows)), sorted(set(rows) - set(modules)))
    makefile = (repo_root / "Makefile").read_text()
    native_suite = makefile[makefile.index("NATIVE_SUITE ="):].split("\ne2e-native:")[0]
    for name, (upgraded, fresh, native, e2e) in rows.items():
        is_upgrade = name == "test_upgrade.py"
        assert upgraded.startswith("yes"), name
        assert bool(fresh) == ("fresh_install" in modules[name].read_text()), name
        assert (native == "yes") == (f"tests/e2e/{name}" in native_suite), name
        assert (e2e == "yes") != is_upgrade, name
