"""Semantic versions and Helm's version ranges (Masterminds semver), for asserting which chart
a range resolves to: `>=6.0.0 <7.0.0` (AND), `||` (OR); a pre-release only satisfies a range
whose comparators name a pre-release themselves, as in Helm."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.core.errors import ConfigError

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_COMPARATOR = re.compile(r"^(>=|<=|!=|>|<|=)?\s*(\S+)$")


@dataclass(frozen=True)
class Version:
    core: tuple[int, int, int]
    pre: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if not match:
            raise ConfigError(f"{text!r} is not a semantic version")
        major, minor, patch, pre = match.groups()
        return cls((int(major), int(minor), int(patch)), tuple(pre.split(".")) if pre else ())

    def _key(self) -> tuple[object, ...]:
        # A release sorts after its pre-releases; numeric identifiers sort before alphanumeric.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.core, not self.pre, pre)

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()


def _holds(version: Version, op: str, bound: Version) -> bool:
    a, b = version._key(), bound._key()
    return {"": a == b, "=": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def satisfies(version: str, constraint: str) -> bool:
    """Whether version is in the Helm range `constraint`."""
    v = Version.parse(version)
    for alternative in constraint.split("||"):
        comparators = []
        for part in re.split(r"[\s,]+", alternative.strip()):
            match = _COMPARATOR.match(part)
            if not part or not match:
                raise ConfigError(f"{constraint!r}: cannot read {part!r}")
            comparators.append((match.group(1) or "", Version.parse(match.group(2))))
        if v.pre and not any(bound.pre for _, bound in comparators):
            continue
        if all(_holds(v, op, bound) for op, bound in comparators):
            return True
    return False


def highest(versions: list[str], constraint: str) -> str | None:
    """The highest of versions in the range, as Helm picks a chart version."""
    matching = [v for v in versions if satisfies(v, constraint)]
    return max(matching, key=Version.parse) if matching else None
