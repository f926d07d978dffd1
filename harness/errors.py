"""The project's error hierarchy: every failure the harness reports is one of these."""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises on purpose; its message is meant for the user."""


class ConfigError(HarnessError):
    """A setting, flag or pinned version is missing or malformed."""


class CommandError(HarnessError):
    """An external command failed or timed out."""

    def __init__(
        self, argv: list[str], exit_code: int | None, stderr: str, reason: str, stdout: str = ""
    ) -> None:
        self.argv = argv
        self.exit_code = exit_code
        self.stderr = stderr
        self.stdout = stdout
        tail = "\n".join(stderr.strip().splitlines()[-25:])
        super().__init__(
            f"{reason}: {' '.join(argv)}"
            + (f" (exit {exit_code})" if exit_code is not None else "")
            + (f"\n--- stderr (tail) ---\n{tail}" if tail else "")
        )


class KitError(HarnessError):
    """A kit artifact could not be built or served; the message names the artifact and the fix."""
