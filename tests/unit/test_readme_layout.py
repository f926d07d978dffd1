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
