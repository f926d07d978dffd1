"""What an upstream Dockerfile's final stage puts in its image, read from the module cache.

The kit does not run Dockerfiles (no registry, no Alpine); it rebuilds the final stage's content
from Debian packages. This reads that stage so the kit follows upstream: the Alpine packages it
adds, the binaries it copies, its user, environment and entrypoint. A step it cannot reproduce is
an error naming the step, so an upgrade that changes the image is noticed at build time.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import KitError


@dataclass
class FinalStage:
    """The runtime image as upstream's Dockerfile describes it."""

    base: str = ""
    packages: list[str] = field(default_factory=list)  # Alpine package names
    copies: list[str] = field(default_factory=list)  # destination paths of COPY --from=<builder>
    user: str = ""
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def _apk_packages(command: str, origin: str, skipped: tuple[tuple[str, ...], ...] = ()) -> list[str]:
    """The packages of `apk add` steps; any other command is refused (the kit cannot run it)
    unless it starts with one of the `skipped` word sequences the caller knowingly leaves out."""
    packages = []
    for part in (p.strip() for p in command.split("&&")):
        words = shlex.split(part)
        if words == ["update-ca-certificates"]:
            continue  # Debian's ca-certificates does this when installed
        if any(tuple(words[:len(prefix)]) == prefix for prefix in skipped):
            continue
        if words[:1] == ["apk"] and "add" in words:
            packages += [w for w in words[words.index("add") + 1:] if not w.startswith("-")]
            continue
        raise KitError(f"{origin}: the final stage runs `{part}`, which the kit cannot reproduce; "
                       "teach harness/kit/dockerfile.py and harness/kit/images.py this step")
    return packages


def final_stage(text: str, origin: str, skipped: tuple[tuple[str, ...], ...] = ()) -> FinalStage:
    """Parse the last stage of a Dockerfile; `origin` names it in errors. `skipped`: RUN commands
    (by their first words) the caller's image knowingly does without."""
    stages: list[list[tuple[str, str]]] = []
    for word, args in _instructions(text):
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, args))
    if not stages:
        raise KitError(f"{origin}: no FROM line; is this a Dockerfile?")
    stage = FinalStage()
    for word, args in stages[-1]:
        if word == "FROM":
            stage.base = args.split()[-1] if args else ""
        elif word == "RUN":
            stage.packages += _apk_packages(args, origin, skipped)
        elif word == "COPY":
            stage.copies.append(args.split()[-1])
        elif word == "USER":
            stage.user = args
        elif word == "ENV":
            key, sep, value = args.partition("=")
            if not sep:
                key, _, value = args.partition(" ")
            stage.env[key.strip()] = value.strip().strip('"')
        elif word == "ENTRYPOINT":
            stage.entrypoint = json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]
        elif word in ("ARG", "LABEL", "WORKDIR", "EXPOSE"):
            continue
        else:
            raise KitError(f"{origin}: the final stage has `{word} {args}`, which the kit does not "
                           "reproduce; teach harness/kit/dockerfile.py this instruction")
    return stage


def read(path: Path, skipped: tuple[tuple[str, ...], ...] = ()) -> FinalStage:
    if not path.is_file():
        raise KitError(f"{path} is missing: the module should ship its Dockerfile")
    return final_stage(path.read_text(), str(path), skipped)
