"""amlvc.lock: per remote and experiment, the workspace identity, Etag, RunId and content hash last seen."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from amlvc.canonical.jsonio import content_hash
from amlvc.canonical.jsonio import dumps as dumps_json
from amlvc.errors import ConfigError, UsageError
from amlvc.rules import IMPORT_REMOTE, LOCK_FILE, WEBSERVICE_FILE
from amlvc.worktree.files import atomic_write, check_targets

FORMAT = 2
# Format 1 hashed an experiment's files without webservice.json; its entries keep that scope until rewritten.
HASH_SCOPE = "hash_scope"
LEGACY_SCOPE = "without-webservice"
_ENTRY_KEYS = ("content_hash", "etag", "id", "identity", "run_id")


@dataclass(frozen=True)
class LockEntry:
    """One experiment in one remote (architecture.md 2.2); `extra` keeps keys other parts of amlvc add."""

    id: str | None = None
    etag: str | None = None
    run_id: str | None = None
    content_hash: str | None = None
    identity: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data.update({"content_hash": self.content_hash, "etag": self.etag, "id": self.id,
                     "identity": dict(self.identity), "run_id": self.run_id})
        return data


@dataclass(frozen=True)
class Lock:
    """The whole lock file: remote -> slug -> entry; `sections` keeps other per-remote sections untouched."""

    experiments: Mapping[str, Mapping[str, LockEntry]] = field(default_factory=dict)
    # remote -> {section: value} for per-remote sections besides experiments (web services, models, ...)
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # top-level keys besides format and remotes

    def entry(self, remote: str, slug: str) -> LockEntry | None:
        return self.experiments.get(remote, {}).get(slug)

    def entries(self, remote: str) -> Mapping[str, LockEntry]:
        return self.experiments.get(remote, {})

    def slug_of(self, remote: str, experiment_id: str) -> str | None:
        """The slug recorded for a workspace experiment id in `remote`."""
        return next((slug for slug, e in self.entries(remote).items() if e.id == experiment_id), None)

    def slug_of_any(self, experiment_id: str) -> str | None:
        """The slug recorded for an experiment id in any remote (the same experiment copied stays one slug)."""
        for remote in sorted(self.experiments):
            slug = self.slug_of(remote, experiment_id)
            if slug is not None:
                return slug
        return None

    def all_slugs(self) -> set[str]:
        return {slug for entries in self.experiments.values() for slug in entries}

    def remotes(self) -> Iterator[str]:
        yield from sorted(set(self.experiments) | set(self.sections))

    def with_entry(self, remote: str, slug: str, entry: LockEntry) -> Lock:
        experiments = {r: dict(e) for r, e in self.experiments.items()}
        experiments.setdefault(remote, {})[slug] = entry
        return replace(self, experiments=experiments)

    def without_entry(self, remote: str, slug: str) -> Lock:
        experiments = {r: {s: e for s, e in entries.items() if not (r == remote and s == slug)}
                       for r, entries in self.experiments.items()}
        return replace(self, experiments=experiments)


def lock_path(root: Path) -> Path:
    return root / LOCK_FILE


def parse(text: str, source: str = LOCK_FILE) -> Lock:
    """Parse and check the lock; ConfigError (exit 3) naming the file and key on any problem."""
    try:
        data = json.loads(text) if text.strip() else {"format": FORMAT, "remotes": {}}
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid JSON ({exc}); restore it with `git checkout -- {LOCK_FILE}`") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object")
    version = data.get("format", FORMAT)
    if version not in (1, FORMAT):
        raise ConfigError(f"{source}: /format: this amlvc reads formats 1 and {FORMAT}; upgrade amlvc")
    remotes = data.get("remotes", {})
    if not isinstance(remotes, dict):
        raise ConfigError(f"{source}: /remotes: expected an object")
    experiments: dict[str, dict[str, LockEntry]] = {}
    sections: dict[str, dict[str, Any]] = {}
    for remote, body in remotes.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: /remotes/{remote}: expected an object")
        entries = body.get("experiments", {})
        if not isinstance(entries, dict):
            raise ConfigError(f"{source}: /remotes/{remote}/experiments: expected an object")
        if "experiments" in body:
            experiments[remote] = {slug: _entry(value, f"{source}: /remotes/{remote}/experiments/{slug}", version)
                                   for slug, value in entries.items()}
        others = {k: v for k, v in body.items() if k != "experiments"}
        if others:
            sections[remote] = others
    extra = {k: v for k, v in data.items() if k not in ("format", "remotes")}
    return Lock(experiments=experiments, sections=sections, extra=extra)


def _entry(value: Any, where: str, version: int = FORMAT) -> LockEntry:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected an object")
    for key in ("content_hash", "etag", "id", "run_id"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise ConfigError(f"{where}/{key}: expected a string or null")
    identity = value.get("identity", {})
    if not isinstance(identity, dict):
        raise ConfigError(f"{where}/identity: expected an object")
    extra = {k: v for k, v in value.items() if k not in _ENTRY_KEYS}
    if version == 1:
        extra.setdefault(HASH_SCOPE, LEGACY_SCOPE)
    return LockEntry(id=value.get("id"), etag=value.get("etag"), run_id=value.get("run_id"),
                     content_hash=value.get("content_hash"), identity=identity, extra=extra)


def load(root: Path) -> Lock:
    """Read `root/amlvc.lock` (a missing file is an empty lock)."""
    path = lock_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lock()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    return parse(text, str(path))


def dumps(lock: Lock) -> bytes:
    """Sorted keys, indent 2, UTF-8, trailing newline (architecture.md 2.2)."""
    remotes: dict[str, Any] = {}
    for remote in lock.remotes():
        body: dict[str, Any] = dict(lock.sections.get(remote, {}))
        entries = lock.experiments.get(remote)
        if entries is not None:
            body["experiments"] = {slug: e.to_json() for slug, e in entries.items()}
        remotes[remote] = body
    data = dict(lock.extra)
    data.update({"format": FORMAT, "remotes": remotes})
    return dumps_json(data)  # the canonical writer: byte for byte the standard library's, ~10x faster


def write(root: Path, lock: Lock) -> bool:
    """Write the lock atomically; False when the bytes did not change."""
    check_targets(root, [LOCK_FILE])
    return atomic_write(lock_path(root), dumps(lock))


# --- entries as plain dicts (what pull, push and status compare and rebuild) -------------------------------------


def entries(lock: Lock, remote: str) -> dict[str, dict[str, Any]]:
    """slug -> entry of `remote`, as plain dicts."""
    return {slug: entry.to_json() for slug, entry in lock.entries(remote).items()}


def record(exp_id: str, etag: str, run_id: str | None, identity: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """The entry of an experiment as the workspace has it now (ExperimentId is the entry's `id`, not identity)."""
    ident = {k: v for k, v in identity.items() if k != "ExperimentId"}
    return {"content_hash": digest, "etag": etag, "id": exp_id, "identity": ident, "run_id": run_id}


def with_entries(lock: Lock, remote: str, new: Mapping[str, Mapping[str, Any]]) -> Lock:
    """`lock` with the experiments of `remote` replaced by `new` (other remotes untouched)."""
    experiments = {r: dict(e) for r, e in lock.experiments.items()}
    experiments[remote] = {slug: _from_dict(new[slug]) for slug in sorted(new)}
    return replace(lock, experiments=experiments)


def _from_dict(data: Mapping[str, Any]) -> LockEntry:
    return LockEntry(id=data.get("id"), etag=data.get("etag"), run_id=data.get("run_id"),
                     content_hash=data.get("content_hash"), identity=dict(data.get("identity") or {}),
                     extra={k: v for k, v in data.items() if k not in _ENTRY_KEYS})


def hash_like(entry: Mapping[str, Any] | None, files: Mapping[str, bytes]) -> str:
    """The content hash of an experiment's files computed as `entry`'s was: over every canonical file, or
    (entries of format 1) without webservice.json."""
    if entry is not None and entry.get(HASH_SCOPE) == LEGACY_SCOPE:
        files = {name: data for name, data in files.items() if name != WEBSERVICE_FILE}
    return content_hash(files)


def used_elsewhere(lock: Lock, remote: str, slug: str) -> bool:
    """Whether another remote records an experiment under `slug` (its folder then stays when `remote` drops it)."""
    return any(slug in lock.entries(other) for other in lock.remotes() if other != remote)


def find_entry(lock: Lock, slug: str, remote: str | None) -> LockEntry | None:
    """The entry of `slug` in `remote`; without a remote, the `import` entry, else the first remote's by name."""
    if remote is not None:
        entry = lock.entry(remote, slug)
        if entry is None:
            raise UsageError(f"{LOCK_FILE} has no entry for {slug!r} in remote {remote!r}")
        return entry
    for name in [IMPORT_REMOTE, *sorted(r for r in lock.experiments if r != IMPORT_REMOTE)]:
        entry = lock.entry(name, slug)
        if entry is not None:
            return entry
    return None
