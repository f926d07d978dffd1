"""Reuse of a tool's answer within one process when nothing it can read has changed.

The offline checks run the same tools on the same files many times in one process: the
broken-copy tests validate some forty copies of the repo, each different from the others in one
file. A command's successful output is kept under a digest of its command line (with the
scratch folder's path taken out) and of every file it can read, path and bytes; a later call
whose digest matches gets the kept output instead of running again. Failures are never kept.

What a tool can read is found generously: every file under the folders it is pointed at, and
every path that a file it reads for references (a kustomization, a Kyverno test) names, as
folders (walked the same way) or files. Reading too much only costs a rerun; reading too little
would hand a broken copy the answer of an intact one, which the broken-copy tests would catch.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from harness.core import commands, yamlio

_answers: dict[str, commands.Completed] = {}
_lock = threading.Lock()


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _named_paths(file: Path) -> Iterator[Path]:
    """Existing paths that a YAML file names, relative to its folder."""
    try:
        docs = yamlio.load_all(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        return  # the tool will fail on it; nothing more to follow
    for text in _strings(docs):
        if not text or "\n" in text or "://" in text or len(text) > 4096:
            continue
        candidate = (file.parent / text).resolve()
        if candidate.exists():
            yield candidate


def readable_files(starts: Iterable[Path], refers: Callable[[Path], bool]) -> set[Path]:
    """Every file a tool pointed at `starts` can read: files under each folder (recursively),
    and what the files accepted by `refers` name, followed the same way."""
    files: set[Path] = set()
    pending = [p.resolve() for p in starts]
    roots = tuple(pending)
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        # A string naming a folder that holds a start ("/", "..", a patch's "/spec/...") is no
        # input: a build that read its own ancestor would be a cycle kustomize refuses, and
        # walking it would read the whole disk.
        if path in seen or any(path != r and r.is_relative_to(path) for r in roots):
            continue
        seen.add(path)
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in found:
            files.add(file)
            if refers(file):
                pending.extend(p for p in _named_paths(file) if p not in seen)
    return files


def digest(argv: list[str], root: Path, files: Iterable[Path]) -> str:
    """The command line with `root` taken out, and each file's path (under `root` when it is
    there) and bytes."""
    root = root.resolve()
    h = hashlib.sha256()
    for word in argv:
        h.update(word.replace(str(root), "<root>").encode() + b"\0")
    for file in sorted(set(files)):
        name = file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
        h.update(b"\1" + name.encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def run(argv: list[str], *, root: Path, files: Iterable[Path], timeout_s: float) -> commands.Completed:
    """commands.run, or the output of an earlier successful run with the same digest."""
    key = digest(argv, root, files)
    with _lock:
        kept = _answers.get(key)
    if kept is not None:
        return kept
    result = commands.run(argv, timeout_s=timeout_s)
    with _lock:
        _answers[key] = result
    return result
