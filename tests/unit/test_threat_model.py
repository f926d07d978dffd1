"""The README's threat-model table stays true: every row names tests that exist (rows 11 and 21, the network, are out
of scope and say so), so a renamed or deleted test cannot leave a row unproven."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

HEADING = "### Threat model, and the test that proves each row"
ROWS = range(1, 22)
OUT_OF_SCOPE: set[int] = set()  # every row has its live test
_REF = re.compile(r"`([\w/]+\.py)::(\w+)`")


def threat_rows(readme: str) -> dict[int, str]:
    """Row number -> the row's text, from the table under HEADING."""
    assert HEADING in readme, f"README has no section {HEADING!r}"
    section = readme.split(HEADING, 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[int(cells[0])] = line
    return rows


def defined_tests(repo: Path) -> dict[str, set[str]]:
    """Test file name -> the test functions it defines at module level."""
    found: dict[str, set[str]] = {}
    for path in sorted((repo / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
        found.setdefault(path.name, set()).update(names)
    return found


def missing_tests(row_text: str, tests: dict[str, set[str]]) -> list[str]:
    """The tests a row names that no test file defines."""
    return [f"{file}::{name}" for file, name in _REF.findall(row_text) if name not in tests.get(Path(file).name, set())]


@pytest.fixture(scope="module")
def rows(repo_root: Path) -> dict[int, str]:
    return threat_rows((repo_root / "README.md").read_text())


def test_every_row_of_the_threat_model_is_in_the_table(rows: dict[int, str]) -> None:
    assert sorted(rows) == list(ROWS)


@pytest.mark.parametrize("row", ROWS)
def test_each_row_names_tests_that_exist(rows: dict[int, str], repo_root: Path, row: int) -> None:
    refs = _REF.findall(rows[row])
    if row in OUT_OF_SCOPE:
        assert not refs and "out of scope" in rows[row], rows[row]
        return
    assert refs, f"row {row} names no test: {rows[row]}"
    missing = missing_tests(rows[row], defined_tests(repo_root))
    assert not missing, f"row {row} names tests that do not exist: {missing}"


def test_a_missing_test_is_caught(repo_root: Path) -> None:
    """The check above can fail: of a row naming one real test and one nobody wrote, the
    computation it runs reports exactly the one nobody wrote."""
    fake = threat_rows(f"{HEADING}\n\n| # | a |\n|---|---|\n"
                       "| 1 | `tests/unit/test_threat_model.py::test_a_missing_test_is_caught`, "
                       "`tests/unit/test_threat_model.py::test_nobody_wrote_this` |\n")
    assert missing_tests(fake[1], defined_tests(repo_root)) == ["tests/unit/test_threat_model.py::test_nobody_wrote_this"]
