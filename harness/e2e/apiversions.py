"""The API versions an upgrade drops, and a fleet written at them.

When the previous version set serves a version of a custom resource that the new set no longer
serves (HelmRelease v2beta2, Kustomization v1beta2, ...), a fleet that has lived through the old
release plausibly still declares it, and the upgrade must migrate it (`flux migrate -f .`) or
the new controllers stop applying it. An upgrade run that starts from a version-set file rather
than from a commit writes the working tree's manifests at those versions, so the migration has
real work to do. An object is moved only where the old version's schema knows every field it
sets: otherwise the API server would drop the unknown fields and the start state would be a
different fleet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.core import yamlio
from harness.e2e.publish import Rewrite, RewriteHit

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_DOCUMENT_BREAK = re.compile(r"(^---[ \t]*$)", re.MULTILINE)


@dataclass(frozen=True)
class Dropped:
    """A version of a kind the previous set serves and the new set does not, with its schema."""

    group: str
    kind: str
    version: str
    current: str  # the version the working tree's manifests use instead (the new set's storage)
    schema: dict[str, Any]


def version_key(version: str) -> tuple[int, int, int]:
    """Kubernetes' version priority: GA above beta above alpha, then by number."""
    match = _KUBE_VERSION.match(version)
    if not match:
        return (-1, 0, 0)
    major, level, number = match.groups()
    return ({"alpha": 0, "beta": 1, None: 2}[level], int(major), int(number or 0))


def crd_versions(manifests: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each CRD's versions in a multi-document manifest, by (group, kind)."""
    found = {}
    for doc in yamlio.load_all(manifests):
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            spec = doc["spec"]
            found[(spec["group"], spec["names"]["kind"])] = list(spec["versions"])
    return found


def dropped_versions(previous: str, current: str) -> dict[tuple[str, str], Dropped]:
    """Per kind both sets define: the newest version the previous set serves that the new set
    does not serve, written against the new set's storage version."""
    old, new = crd_versions(previous), crd_versions(current)
    dropped = {}
    for key, versions in old.items():
        if key not in new:
            continue
        served_now = {v["name"] for v in new[key] if v.get("served")}
        storage = next(v["name"] for v in new[key] if v.get("storage"))
        gone = [v for v in versions if v.get("served") and v["name"] not in served_now]
        if gone:
            newest = max(gone, key=lambda v: version_key(v["name"]))
            dropped[key] = Dropped(key[0], key[1], newest["name"], storage,
                                   (newest.get("schema") or {}).get("openAPIV3Schema") or {})
    return dropped


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths in `value` the structural schema does not declare (what the API server prunes)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None and extra is None:
            return []
        found = []
        for name, item in value.items():
            if props is not None and name in props:
                found += unknown_fields(item, props[name], f"{path}.{name}")
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, f"{path}.{name}")
            elif extra is not True and not (path == "" and name in ("apiVersion", "kind", "metadata")):
                found.append(f"{path}.{name}")
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [p for i, item in enumerate(value) for p in unknown_fields(item, schema["items"], f"{path}[{i}]")]
    return []


def _rewrite_document(text: str, dropped: dict[tuple[str, str], Dropped]) -> tuple[str, Rewrite | None, str]:
    """One YAML document at its dropped version; the rewrite made, or why it was kept."""
    try:
        doc = yamlio.load(text)
    except yaml.YAMLError:  # a template or partial document stays as it is
        return text, None, ""
    if not isinstance(doc, dict) or "/" not in str(doc.get("apiVersion", "")):
        return text, None, ""
    group, version = str(doc["apiVersion"]).rsplit("/", 1)
    target = dropped.get((group, str(doc.get("kind"))))
    if target is None or version != target.current:
        return text, None, ""
    unknown = unknown_fields(doc, target.schema)
    if unknown:
        name = doc.get("metadata", {}).get("name")
        return text, None, f"{doc['kind']} {name} kept at {version}: {target.version} has no {', '.join(unknown)}"
    line = re.compile(rf"^apiVersion:[ \t]*{re.escape(doc['apiVersion'])}[ \t]*$", re.MULTILINE)
    rewrite = Rewrite(f"apiVersion: {group}/{version}", f"apiVersion: {group}/{target.version}")
    changed, count = line.subn(rewrite.new, text, count=1)
    return changed, rewrite if count else None, ""


def write_at_dropped_versions(root: Path, dropped: dict[tuple[str, str], Dropped]) -> tuple[list[RewriteHit], list[str]]:
    """Every manifest under `root` moved, object by object, to the dropped version of its kind;
    the rewrites made and the objects kept (with the fields the old version lacks)."""
    hits, kept = [], []
    for path in sorted(p for p in root.rglob("*.yaml") if ".git" not in p.parts):
        text = path.read_text()
        chunks = _DOCUMENT_BREAK.split(text)  # documents at even indexes, the breaks between them
        for i in range(0, len(chunks), 2):
            chunks[i], rewrite, why = _rewrite_document(chunks[i], dropped)
            name = path.relative_to(root).as_posix()
            if rewrite is not None:
                hits.append(RewriteHit(name, rewrite, 1))
            if why:
                kept.append(f"{name}: {why}")
        if "".join(chunks) != text:
            path.write_text("".join(chunks))
    return hits, kept
