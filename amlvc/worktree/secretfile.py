"""Secret values outside git: `.amlvc/secrets.json` and the one lookup of a placeholder's value (environment first)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc.errors import ConfigError
from amlvc.rules import SECRET_ENV_PREFIX, SECRETS_FILE, STATE_DIR
from amlvc.worktree.files import atomic_write, check_targets

Secrets = dict[str, dict[str, dict[str, str]]]  # remote -> slug -> NAME -> value


@dataclass(frozen=True)
class SecretFill:
    """A placeholder and where its value comes from (never the value); `source` None = missing."""

    name: str
    source: str | None


def load(root: Path) -> Secrets:
    """`.amlvc/secrets.json` as {remote: {slug: {NAME: value}}}; empty when absent; ConfigError when broken."""
    path = root / SECRETS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise ConfigError(f"{path}: invalid JSON; fix it or delete it and pull again") from None
    remotes = data.get("remotes") if isinstance(data, dict) else None
    if not isinstance(remotes, dict):
        raise ConfigError(f"{path}: /remotes: expected an object")
    out: Secrets = {}
    for remote, slugs in remotes.items():
        if not isinstance(slugs, dict):
            raise ConfigError(f"{path}: /remotes/{remote}: expected an object")
        for slug, values in slugs.items():
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise ConfigError(f"{path}: /remotes/{remote}/{slug}: expected an object of strings")
            out.setdefault(remote, {})[slug] = dict(values)
    return out


def store(root: Path, remote: str, values: Mapping[str, Mapping[str, str]]) -> bool:
    """Merge slug -> {NAME: value} into the section of `remote`: one read and one write of the file (mode 0600).

    True when the file changed.
    """
    data = load(root)
    changed = False
    for slug, secrets in sorted(values.items()):
        if not secrets:
            continue
        current = data.setdefault(remote, {}).setdefault(slug, {})
        if all(current.get(k) == v for k, v in secrets.items()):
            continue
        current.update(secrets)
        changed = True
    if not changed:
        return False
    check_targets(root, [SECRETS_FILE])
    (root / STATE_DIR).mkdir(mode=0o700, exist_ok=True)
    text = json.dumps({"remotes": data}, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    return atomic_write(root / SECRETS_FILE, text.encode("utf-8"), mode=0o600)


def stored(root: Path, slug: str, sections: Sequence[str] | None = None) -> dict[str, str]:
    """The stored values of an experiment from the given sections (remotes), the first holding a NAME wins.

    None reads every section: the `import` pseudo-remote first, then the others by name.
    """
    data = load(root)
    order = list(sections) if sections is not None else sorted(data, key=lambda r: (r != "import", r))
    merged: dict[str, str] = {}
    for name in order:
        for key, value in data.get(name, {}).get(slug, {}).items():
            merged.setdefault(key, value)
    return merged


def lookup(names: Sequence[str], stored_values: Mapping[str, str], environ: Mapping[str, str] | None = None,
           ) -> tuple[tuple[SecretFill, ...], dict[str, str]]:
    """Where each placeholder's value comes from, and the values: $AMLVC_SECRET_<NAME> first, then the file."""
    env = os.environ if environ is None else environ
    fills: list[SecretFill] = []
    values: dict[str, str] = {}
    for name in names:
        env_name = SECRET_ENV_PREFIX + name
        if env.get(env_name):
            fills.append(SecretFill(name, f"${env_name}"))
            values[name] = env[env_name]
        elif stored_values.get(name):
            fills.append(SecretFill(name, SECRETS_FILE))
            values[name] = stored_values[name]
        else:
            fills.append(SecretFill(name, None))
    return tuple(fills), values
