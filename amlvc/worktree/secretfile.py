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
    """A placeholder and where its value comes from (never the value); `source` None = missing; `changed`: the
    value differs from the one the workspace had at the last pull or push (the push replaces it)."""

    name: str
    source: str | None
    changed: bool = False


def load(root: Path) -> Secrets:
    """`.amlvc/secrets.json` as {remote: {slug: {NAME: value}}}; empty when absent; ConfigError when broken."""
    return _read(root)[0]


def synced(root: Path, remote: str, slug: str) -> dict[str, str]:
    """The values the workspace `remote` had at the last pull or push of `slug` (what a push compares with)."""
    return dict(_read(root)[1].get(remote, {}).get(slug, {}))


def _read(root: Path) -> tuple[Secrets, Secrets]:
    """The two sections of the file: the values to use, and the values as last seen in each workspace."""
    path = root / SECRETS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise ConfigError(f"{path}: invalid JSON; fix it or delete it and pull again") from None
    if not isinstance(data, dict) or not isinstance(data.get("remotes"), dict):
        raise ConfigError(f"{path}: /remotes: expected an object")
    return _section(data["remotes"], f"{path}: /remotes"), _section(data.get("synced") or {}, f"{path}: /synced")


def _section(remotes: Any, where: str) -> Secrets:
    if not isinstance(remotes, dict):
        raise ConfigError(f"{where}: expected an object")
    out: Secrets = {}
    for remote, slugs in remotes.items():
        if not isinstance(slugs, dict):
            raise ConfigError(f"{where}/{remote}: expected an object")
        for slug, values in slugs.items():
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise ConfigError(f"{where}/{remote}/{slug}: expected an object of strings")
            out.setdefault(remote, {})[slug] = dict(values)
    return out


def store(root: Path, remote: str, values: Mapping[str, Mapping[str, str]]) -> bool:
    """Record slug -> {NAME: value} as the workspace `remote` has them now (a pull, or a push that sent them):
    both the values to use and the values last seen there. One read and one write (mode 0600); True if changed.
    """
    data, seen = _read(root)
    changed = False
    for section in (data, seen):
        for slug, secrets in sorted(values.items()):
            current = section.setdefault(remote, {}).setdefault(slug, {})
            if secrets and not all(current.get(k) == v for k, v in secrets.items()):
                current.update(secrets)
                changed = True
    if not changed:
        return False
    check_targets(root, [SECRETS_FILE])
    (root / STATE_DIR).mkdir(mode=0o700, exist_ok=True)
    prune = {name: {slug: v for slug, v in slugs.items() if v} for name, slugs in seen.items()}
    text = json.dumps({"remotes": data, "synced": {k: v for k, v in prune.items() if v}}, sort_keys=True,
                      indent=2, ensure_ascii=False) + "\n"
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
           seen: Mapping[str, str] | None = None) -> tuple[tuple[SecretFill, ...], dict[str, str]]:
    """Where each placeholder's value comes from, and the values: $AMLVC_SECRET_<NAME> first, then the file.

    With `seen` (the workspace's values at the last sync), each fill says whether its value differs.
    """
    env = os.environ if environ is None else environ
    fills: list[SecretFill] = []
    values: dict[str, str] = {}
    for name in names:
        env_name = SECRET_ENV_PREFIX + name
        source = f"${env_name}" if env.get(env_name) else SECRETS_FILE if stored_values.get(name) else None
        if source is None:
            fills.append(SecretFill(name, None))
            continue
        values[name] = env[env_name] if source != SECRETS_FILE else stored_values[name]
        changed = seen is not None and name in seen and seen[name] != values[name]
        fills.append(SecretFill(name, source, changed))
    return tuple(fills), values
