"""Checks of the forkers' CI configuration: the workflows (actionlint), the Renovate config
(Renovate's own validator), and that every pin in versions.yaml has a Renovate rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness.core import commands, yamlio
from harness.core.errors import CommandError
from harness.manifests.findings import Finding

WORKFLOWS = ".github/workflows"
RENOVATE = "renovate.json"
VERSIONS = "versions.yaml"
CHECK_TIMEOUT_S = 300.0


def actionlint(binary: Path, repo: Path) -> list[Finding]:
    """actionlint over every workflow; one finding per problem it reports."""
    files = sorted((repo / WORKFLOWS).glob("*.y*ml"))
    if not files:
        return [Finding("actionlint", WORKFLOWS, "", "", "no workflow files")]
    try:
        commands.run([str(binary), "-no-color", "-oneline", *map(str, files)], timeout_s=CHECK_TIMEOUT_S, cwd=repo)
    except CommandError as exc:
        lines = (exc.stdout or exc.stderr).strip().splitlines() or [str(exc)]
        return [Finding("actionlint", WORKFLOWS, "", "", line) for line in lines]
    return []


def renovate_validator(validator: tuple[str, ...], repo: Path) -> list[Finding]:
    """Renovate's validator on the repo's config, as Renovate reads it (strict: deprecated
    options fail too). Its lines about the optional re2 module are noise, not findings."""
    try:
        commands.run([*validator, "--strict"], timeout_s=CHECK_TIMEOUT_S, cwd=repo)
    except CommandError as exc:
        lines = [line for line in (exc.stdout + "\n" + exc.stderr).splitlines()
                 if line.strip() and "re2" not in line.lower() and not line.startswith(" " * 7 + "at ")]
        return [Finding("renovate", RENOVATE, "", "", "\n".join(lines[-40:]) or str(exc))]
    return []


def _python_regex(renovate_regex: str) -> re.Pattern[str]:
    """Renovate's matchStrings are JavaScript regexes: named groups are (?<name>...)."""
    return re.compile(re.sub(r"\(\?<([A-Za-z]\w*)>", r"(?P<\1>", renovate_regex))


def pins(data: Any, prefix: str = "") -> dict[str, str]:
    """Every leaf of versions.yaml, by dotted path."""
    if isinstance(data, dict):
        found: dict[str, str] = {}
        for key, value in data.items():
            found.update(pins(value, f"{prefix}{key}."))
        return found
    return {prefix.rstrip("."): str(data)}


def renovate_coverage(repo: Path) -> list[Finding]:
    """Pins of versions.yaml that no custom manager of renovate.json matches."""
    config = json.loads((repo / RENOVATE).read_text())
    text = (repo / VERSIONS).read_text()
    matched: set[int] = set()  # line numbers of pins a manager's currentValue lands on
    for manager in config.get("customManagers", []):
        if not any(_python_regex(p.strip("/")).search(VERSIONS) for p in manager.get("managerFilePatterns", [])):
            continue
        for pattern in manager.get("matchStrings", []):
            for match in _python_regex(pattern).finditer(text):
                if "currentValue" in match.groupdict() and match.group("currentValue"):
                    matched.add(text.count("\n", 0, match.start("currentValue")))
    lines = text.splitlines()
    findings = []
    for path, value in pins(yamlio.load(text)).items():
        key = path.rsplit(".", 1)[-1]
        line = next((i for i, raw in enumerate(lines)
                     if re.match(rf"\s*{re.escape(key)}:\s*\"?{re.escape(value)}\"?(\s|$)", raw)), None)
        if line is None or line not in matched:
            findings.append(Finding("renovate-coverage", VERSIONS, "", path,
                                    f"pin {value!r} has no Renovate rule: add a `# renovate:` line above it"))
    return findings


def check_all(actionlint_binary: Path, validator: tuple[str, ...], repo: Path) -> list[Finding]:
    return [*actionlint(actionlint_binary, repo), *renovate_validator(validator, repo),
            *renovate_coverage(repo)]
