"""The error hierarchy and the exit-code table of the SPEC, stated once."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (SPEC section 3); README's table is tested against this one."""

    OK = 0
    DIFFERENCES = 1
    USAGE = 2
    LOCAL = 3
    CONFLICT = 4
    REMOTE = 5
    VALIDATION = 6
    RUN_FAILED = 7
    INTERNAL = 70
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success, nothing different",
    ExitCode.DIFFERENCES: "differences found (`--check`, `--exit-code` only)",
    ExitCode.USAGE: "usage error",
    ExitCode.LOCAL: "local problem: not an amlvc repository, dirty tree where it matters, bad config or file",
    ExitCode.CONFLICT: "conflict: workspace changed since last pull, merge conflict",
    ExitCode.REMOTE: "workspace unreachable, authentication or API error (after retries)",
    ExitCode.VALIDATION: "validation failed: missing referenced assets, invalid document, missing secret",
    ExitCode.RUN_FAILED: "a run, batch job or deployment failed in the workspace (its message is shown)",
    ExitCode.INTERNAL: "internal error (a bug; the message says where to report it)",
    ExitCode.INTERRUPTED: "interrupted",
}


class AmlvcError(Exception):
    """Base of every error amlvc reports to the user; carries its exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(AmlvcError):
    """The command line asked for something impossible."""

    exit_code = ExitCode.USAGE


class LocalError(AmlvcError):
    """A local problem: missing or unreadable file, bad config, not an amlvc repository."""

    exit_code = ExitCode.LOCAL


class NotARepository(LocalError):
    """The current directory is not inside an amlvc repository."""


class DirtyTree(LocalError):
    """Uncommitted changes would be overwritten."""


class ConfigError(LocalError):
    """amlvc.toml, amlvc.lock or the secrets file is invalid."""


class RepoError(LocalError):
    """A git operation failed."""


class ConflictError(AmlvcError):
    """The workspace changed since the last pull, or a merge conflicts."""

    exit_code = ExitCode.CONFLICT


class RemoteError(AmlvcError):
    """The workspace is unreachable, refused the credentials or answered with an error."""

    exit_code = ExitCode.REMOTE


class AuthError(RemoteError):
    """The workspace refused the token (401/403)."""


class ApiError(RemoteError):
    """The workspace answered with an unexpected status after retries."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ValidationError(AmlvcError):
    """A document is invalid, a referenced asset is missing or a secret has no value."""

    exit_code = ExitCode.VALIDATION


_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in range(32)}


class InvalidDocument(ValidationError):
    """A document does not have the shape amlvc expects; names the file and the JSON path."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        shown = path.translate(_CONTROL_ESCAPES)  # a key may hold a line break: the message stays one line
        where = f"{source}: {shown}" if path else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.path = path
        self.problem = problem


class RunFailed(AmlvcError):
    """A run, batch job or deployment ended Failed or Canceled in the workspace; the message names what failed."""

    exit_code = ExitCode.RUN_FAILED


class MissingAssets(ValidationError):
    """Referenced modules or assets do not exist in the target workspace."""


class MissingSecret(ValidationError):
    """A `${secret:NAME}` placeholder has no value in the environment or the secrets file."""


class LossyRoundTrip(ValidationError):
    """`verify` found fields that would not survive normalize + denormalize."""


def some(names: Iterable[str], limit: int = 5) -> str:
    """Names for a message, quoted, at most `limit` of them: "'a', 'b' and 198 more" (a message stays one line)."""
    items = [f"'{name}'" for name in names]
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])} and {len(items) - limit} more"
