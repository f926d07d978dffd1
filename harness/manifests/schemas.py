"""Strict JSON schemas for every apiVersion/kind the pinned versions serve.

Built offline from the pinned modules: Kubernetes' published OpenAPI (swagger.json in the
k8s.io/kubernetes module), the Flux CRDs bundled by the kit, and Kyverno's CRDs. Objects get
`additionalProperties: false` wherever the API is not explicitly open, so an unknown field such
as `spec.intervall` fails the way the API server's strict field validation does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from harness.core import yamlio

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
INT_OR_STRING = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY = {"anyOf": [{"type": "string"}, {"type": "number"}]}
_DROP = {"description", "format", "x-kubernetes-group-version-kind", "x-kubernetes-map-type",
         "x-kubernetes-unions", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
         "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key", "x-kubernetes-validations",
         "default", "example"}


@dataclass(frozen=True)
class KindSchema:
    api_version: str
    kind: str
    schema: dict[str, Any]
    source: str
    deprecated: str | None = None  # why, when the pinned version deprecates it


def _convert_swagger(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert_swagger(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string":
        return dict(INT_OR_STRING)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            # Property names are data here, not keywords: keep all of them.
            out[key] = {name: _convert_swagger(sub) for name, sub in value.items()}
        elif key not in _DROP:
            out[key] = _convert_swagger(value)
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _convert_crd(node: Any, root: bool = False) -> Any:
    if isinstance(node, list):
        return [_convert_crd(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-int-or-string"):
        return dict(INT_OR_STRING)
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: _convert_crd(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _convert_crd(value) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_convert_crd(sub) for sub in value]
        else:
            out[key] = value
    if preserve:
        # An open object: any field is allowed, and with no properties any type is too.
        if not out.get("properties"):
            out.pop("type", None)
    elif out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if root:
        props = out.setdefault("properties", {})
        props["metadata"] = {"$ref": f"#/definitions/{OBJECT_META}"}
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
    return out


def kubernetes_schemas(swagger_json: Path, lifecycle: dict[tuple[str, str], str]) -> tuple[
    dict[str, Any], list[KindSchema]
]:
    """Definitions shared by all schemas, and one schema per built-in apiVersion/kind."""
    spec = json.loads(swagger_json.read_text())
    raw = spec["definitions"]
    definitions = {name: _convert_swagger(body) for name, body in raw.items()}
    definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = dict(QUANTITY)
    kinds = []
    for name, body in raw.items():
        for gvk in body.get("x-kubernetes-group-version-kind", []):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            kinds.append(
                KindSchema(
                    api_version, gvk["kind"], {"$ref": f"#/definitions/{name}"},
                    f"Kubernetes OpenAPI ({swagger_json.parent.parent.parent.name})",
                    lifecycle.get((api_version, gvk["kind"])),
                )
            )
    return definitions, kinds


def crd_schemas(files: Iterable[Path]) -> list[KindSchema]:
    """One schema per served version of every CRD found in the given YAML files."""
    kinds = []
    for path in files:
        for doc in yamlio.load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
                deprecated = None
                if version.get("deprecated"):
                    deprecated = version.get("deprecationWarning") or (
                        f"{spec['group']}/{version['name']} {spec['names']['kind']} is deprecated"
                    )
                kinds.append(
                    KindSchema(
                        f"{spec['group']}/{version['name']}", spec["names"]["kind"],
                        _convert_crd(schema, root=True), f"CRD {doc['metadata']['name']} ({path.name})",
                        deprecated,
                    )
                )
    return kinds


_LIFECYCLE = re.compile(
    r"func \(in \*(\w+)\) APILifecycle(Deprecated|Removed)\(\) \(major, minor int\) \{\s*"
    r"return (\d+), (\d+)"
)
_GROUP = re.compile(r'const GroupName = "([^"]*)"')


def kubernetes_lifecycle(api_module: Path, kubernetes_version: str) -> dict[tuple[str, str], str]:
    """Built-in kinds the pinned release deprecates, from k8s.io/api's prerelease-lifecycle code."""
    major, minor = (int(x) for x in kubernetes_version.removeprefix("v").split(".")[:2])
    found: dict[tuple[str, str], str] = {}
    for gen in api_module.glob("*/*/zz_generated.prerelease-lifecycle.go"):
        register = gen.parent / "register.go"
        group_match = _GROUP.search(register.read_text()) if register.exists() else None
        if group_match is None:
            continue
        group, version = group_match.group(1), gen.parent.name
        api_version = f"{group}/{version}" if group else version
        for kind, what, maj, mnr in _LIFECYCLE.findall(gen.read_text()):
            if (int(maj), int(mnr)) <= (major, minor):
                verb = "deprecated" if what == "Deprecated" else "removed"
                found.setdefault(
                    (api_version, kind), f"{api_version} {kind} is {verb} since Kubernetes {maj}.{mnr}"
                )
    return found


class SchemaIndex:
    """Validators by (apiVersion, kind), created lazily."""

    def __init__(self, definitions: dict[str, Any], kinds: Iterable[KindSchema]) -> None:
        self._definitions = definitions
        self._kinds = {(k.api_version, k.kind): k for k in kinds}
        self._validators: dict[tuple[str, str], Any] = {}

    def lookup(self, api_version: str, kind: str) -> KindSchema | None:
        return self._kinds.get((api_version, kind))

    def known_versions(self, kind: str) -> list[str]:
        return sorted(av for (av, k) in self._kinds if k == kind)

    def errors(self, obj: dict[str, Any]) -> list[tuple[str, str]]:
        """(field path, message) for every schema violation of obj."""
        key = (obj.get("apiVersion", ""), obj.get("kind", ""))
        entry = self._kinds[key]
        validator = self._validators.get(key)
        if validator is None:
            schema = {**entry.schema, "definitions": self._definitions}
            validator = jsonschema.Draft7Validator(schema)
            self._validators[key] = validator
        problems = []
        for error in validator.iter_errors(_without_nulls(obj)):
            path = ".".join(str(p) for p in error.absolute_path)
            if error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
                for name in extra:
                    problems.append((f"{path}.{name}" if path else name, "unknown field"))
                continue
            problems.append((path or "(root)", error.message))
        return problems


def _without_nulls(node: Any) -> Any:
    """The API server ignores null-valued fields; so does the schema check."""
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node]
    return node
