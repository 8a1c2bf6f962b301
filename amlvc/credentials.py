"""Token lookup (SPEC §4): --token-env, the remote's token_env, AMLVC_TOKEN, then ~/.azureml/settings.json."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from amlvc.errors import ConfigError, UsageError

DEFAULT_TOKEN_ENV = "AMLVC_TOKEN"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEX_TOKEN = re.compile(r"^[0-9a-fA-F]{20,}$")


@dataclass(frozen=True)
class Credentials:
    """A token and where it came from; `source` (never the token) is what messages show."""

    token: str = field(repr=False)
    source: str


@dataclass(frozen=True)
class AzuremlSettings:
    """The public azureml SDK's `~/.azureml/settings.json` (`{"workspace": {...}}`)."""

    path: Path
    workspace_id: str | None
    token: str | None = field(repr=False)
    api_endpoint: str | None
    management_endpoint: str | None


def settings_path(home: Path | None = None) -> Path:
    base = home if home is not None else Path(os.path.expanduser("~"))
    return base / ".azureml" / "settings.json"


def read_azureml_settings(home: Path | None = None) -> AzuremlSettings | None:
    """The SDK's settings file, or None when there is none; a broken file is a ConfigError (exit 3)."""
    path = settings_path(home)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.__class__.__name__
        raise ConfigError(f"{path}: cannot read it as JSON ({reason}); fix or remove the file") from None
    ws = data.get("workspace") if isinstance(data, dict) else None
    if not isinstance(ws, dict):
        raise ConfigError(f"{path}: /workspace: expected an object with id and authorization_token")

    def text(key: str) -> str | None:
        value = ws.get(key)
        return value if isinstance(value, str) and value else None

    return AzuremlSettings(path, text("id"), text("authorization_token"), text("api_endpoint"),
                           text("management_endpoint"))


def looks_like_token(value: str) -> bool:
    """A value that is more likely a token or key than the name of an environment variable (which is short,
    upper case with underscores): long, without underscores, with digits, or hexadecimal."""
    if _HEX_TOKEN.fullmatch(value):
        return True
    return len(value) >= 16 and "_" not in value and any(c.isdigit() for c in value) and not value.isupper()


def check_token_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    """`--token-env NAME`: the name of a set environment variable, never a token; UsageError (exit 2) otherwise.

    The messages never repeat a value that looks like a token, nor any variable's value.
    """
    env = os.environ if environ is None else environ
    if looks_like_token(name):
        raise UsageError("--token-env takes the NAME of the environment variable that holds the token (for example "
                         "AMLVC_DEV_TOKEN), not the token itself; nothing was written. Export the token in a "
                         "variable and give its name")
    if not ENV_NAME.match(name):
        raise UsageError(f"--token-env {name!r} is not an environment variable name (letters, digits, '_')")
    if not env.get(name):
        raise UsageError(f"--token-env {name}: no environment variable of that name is set; export it with the "
                         f"workspace's token (`export {name}=…`), then run the command again")
    return name


def resolve_token(
    remote: str,
    *,
    workspace_id: str | None,
    token_env: str | None = None,
    remote_token_env: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Credentials:
    """The first token found, in the SPEC's order; ConfigError (exit 3) naming every place looked at.

    `token_env` is the `--token-env` option: when given, its variable must be set. The settings file
    counts only when its `workspace.id` is this remote's workspace (or the remote names none).
    """
    env = os.environ if environ is None else environ
    if token_env:
        return Credentials(env[check_token_env(token_env, env)], f"${token_env}")
    looked = []
    for name in (remote_token_env, DEFAULT_TOKEN_ENV):
        if name:
            looked.append(f"${name}")
            value = env.get(name)
            if value:
                return Credentials(value, f"${name}")
    settings = read_azureml_settings(home)
    looked.append("~/.azureml/settings.json")
    usable = settings is not None and (workspace_id is None or settings.workspace_id in (None, workspace_id))
    if settings is not None and settings.token and usable:
        return Credentials(settings.token, "~/.azureml/settings.json")
    hint = f"set {remote_token_env or DEFAULT_TOKEN_ENV}"
    raise ConfigError(
        f"no token for workspace '{remote}' (looked in {', '.join(looked)}); {hint} to the workspace's "
        f"authorization token, or pass --token-env NAME"
    )
