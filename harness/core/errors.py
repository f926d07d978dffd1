"""The project's error hierarchy: every failure the harness reports is one of these."""

from __future__ import annotations

import re


class HarnessError(Exception):
    """Base of every error the harness raises on purpose; its message is meant for the user."""


class ConfigError(HarnessError):
    """A setting, flag or pinned version is missing or malformed."""


class Abandoned(HarnessError):
    """A step given up because a step running beside it (in another thread) failed."""


# Flags whose value is a credential, and credentials inside URLs (scheme://user:secret@host).
_SECRET_FLAG = re.compile(r"^(--?(?:password|token|secret|client-secret)[=])(.+)$", re.IGNORECASE)
_URL_SECRET = re.compile(r"(://[^/:@\s]+:)[^@/\s]+@")
REDACTED = "***"


class Secret(str):
    """A credential: a str everywhere, but its repr is masked, so a traceback that prints a
    frame's arguments (pytest's does) shows `***` for it, also inside a dict like `env`."""

    def __repr__(self) -> str:
        return repr(REDACTED)


def redact(text: str) -> str:
    """text with credentials masked: `--password=x`, `--token=x`, `scheme://user:x@host`."""
    text = _URL_SECRET.sub(rf"\1{REDACTED}@", text)
    return " ".join(_SECRET_FLAG.sub(rf"\1{REDACTED}", word) for word in text.split(" "))


class CommandError(HarnessError):
    """An external command failed or timed out. Its message never carries a credential from
    the command line: errors end up in terminals, CI logs and JUnit reports."""

    def __init__(
        self, argv: list[str], exit_code: int | None, stderr: str, reason: str, stdout: str = ""
    ) -> None:
        self.argv = argv
        self.exit_code = exit_code
        self.stderr = stderr
        self.stdout = stdout
        tail = redact("\n".join(stderr.strip().splitlines()[-25:]))
        super().__init__(
            f"{reason}: {redact(' '.join(argv))}"
            + (f" (exit {exit_code})" if exit_code is not None else "")
            + (f"\n--- stderr (tail) ---\n{tail}" if tail else "")
        )


class KitError(HarnessError):
    """A kit artifact could not be built or served; the message names the artifact and the fix."""
