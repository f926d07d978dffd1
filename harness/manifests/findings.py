"""What a check reports: one problem, located by file, object and field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"


@dataclass(frozen=True, order=True)
class Finding:
    """A problem found in the repo; its text names the file, the object, the field and why."""

    check: str
    file: str
    obj: str
    field: str
    reason: str

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.obj, self.field) if part)
        return f"[{self.check}] {where}: {self.reason}"


def describe(obj: dict[str, Any]) -> str:
    """Kind namespace/name of a rendered object, as in Flux's own messages."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "?")
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')} {ns + '/' if ns else ''}{name}"

