"""Deployed web services in the repository: `webservices/<name>/service.json`, their amlvc.lock section, and the
one writer that puts service files, model manifests and the lock into one commit.

The lock keeps, per remote, `webservices.<name>`: the service's identity in that workspace (classic id or ARM
resource), a `fingerprint` of what the workspace had at the last pull or push (classic: endpoints without keys,
SAS or times; ARM: `modifiedOn`) and the `content_hash` of service.json as the workspace had it then (the base of
a three-way merge, found again in git history).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.canonical.secrets import redact
from amlvc.errors import DirtyTree, UsageError
from amlvc.worktree import lockfile, models
from amlvc.worktree.experiments import slugify
from amlvc.worktree.files import atomic_write, check_targets
from amlvc.worktree.models import Manifest

MAX_BASE_SEARCH = 50  # commits of a service.json searched for the version the lock's content_hash names


def path(name: str) -> str:
    return f"{rules.WEBSERVICES_DIR}/{name}/{rules.SERVICE_FILE}"


def local_name(name: str) -> str:
    """The folder of a service called `name` (the slug of its name)."""
    return slugify(name)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def names(root: Path, rev: str | None = None) -> list[str]:
    """The services the repository holds (work tree, or at `rev`), sorted."""
    if rev is not None:
        return sorted({p.split("/")[1] for p in repo.list_at(root, rev, rules.WEBSERVICES_DIR + "/")
                       if p.endswith("/" + rules.SERVICE_FILE) and p.count("/") == 2})
    top = root / rules.WEBSERVICES_DIR
    return sorted(p.parent.name for p in top.glob(f"*/{rules.SERVICE_FILE}") if p.is_file()) if top.is_dir() else []


def read(root: Path, name: str, rev: str | None = None) -> bytes | None:
    """service.json's bytes in the work tree (rev None) or at a revision; None when there is none."""
    if rev is not None:
        return repo.read_at(root, rev, path(name)) if repo.head(root) else None
    target = root / path(name)
    return target.read_bytes() if target.is_file() else None


def parsed(root: Path, name: str, rev: str | None = None) -> dict[str, Any]:
    """service.json parsed and checked; UsageError (2) naming the services there are when it does not exist."""
    data = read(root, name, rev)
    if data is None:
        known = ", ".join(names(root)) or f"none yet (`amlvc webservice pull` or `deploy` writes {path('NAME')})"
        raise UsageError(f"no web service {name!r} in {rules.WEBSERVICES_DIR}/ (services: {known})")
    from amlvc.canonical.services import load  # a pull that tracks no service never needs the service form

    return load(data, path(name))


def synced(root: Path, name: str, content_hash: str | None) -> bytes | None:
    """service.json as it was at the last pull or push (the bytes the lock's content_hash names), from history."""
    if content_hash is None:
        return None
    current = read(root, name)
    if current is not None and digest(current) == content_hash:
        return current
    for rev in repo.revisions(root, path(name), limit=MAX_BASE_SEARCH):
        data = repo.read_at(root, rev, path(name))
        if data is not None and digest(data) == content_hash:
            return data
    return None


# -- amlvc.lock: remotes.<remote>.webservices -------------------------------------------------------------------


def entries(lock: lockfile.Lock, remote: str) -> dict[str, dict[str, Any]]:
    """name -> entry of the services `remote` has (plain dicts)."""
    section = lock.sections.get(remote, {}).get(rules.LOCK_WEBSERVICES) or {}
    return {name: dict(entry) for name, entry in section.items() if isinstance(entry, Mapping)}


def with_entry(lock: lockfile.Lock, remote: str, name: str, entry: Mapping[str, Any] | None) -> lockfile.Lock:
    """`lock` with the entry of service `name` in `remote` replaced (None removes it)."""
    sections = {r: dict(s) for r, s in lock.sections.items()}
    services = entries(lock, remote)
    if entry is None:
        services.pop(name, None)
    else:
        services[name] = dict(entry)
    sections.setdefault(remote, {})[rules.LOCK_WEBSERVICES] = {k: services[k] for k in sorted(services)}
    return replace(lock, sections=sections)


def tracked(root: Path) -> bool:
    """Whether the repository tracks web services at all (pull mirrors them only then)."""
    lock = lockfile.load(root)
    return bool(names(root)) or any(entries(lock, remote) for remote in lock.remotes())


# -- writing ----------------------------------------------------------------------------------------------------


def refuse_dirty(root: Path, wanted: Mapping[str, bytes | None]) -> None:
    """DirtyTree (3) when a file to be written has uncommitted changes, unless it already holds exactly the bytes
    to be written (a command cut off before its commit, run again)."""
    dirty = repo.dirty_paths(root, list(wanted))
    blocking = [p for p in dirty if wanted.get(p) is None or not (root / p).is_file()
                or (root / p).read_bytes() != wanted[p]]
    if blocking:
        raise DirtyTree(f"{', '.join(blocking)} has uncommitted changes; commit or discard them first "
                        f"(`git diff {blocking[0]}`); nothing was changed")


def write_and_commit(root: Path, *, services: Mapping[str, bytes | None] | None = None,
                     manifests: Sequence[Manifest] = (), lock: lockfile.Lock | None = None,
                     message: str) -> str | None:
    """Write service files (None deletes one), manifests and the lock, then commit exactly those; None when
    nothing changed. The caller holds the operation lock."""
    files: dict[str, bytes | None] = {path(n): data for n, data in (services or {}).items()}
    files.update({models.path(m.slug): models.dumps_manifest(m) for m in manifests})
    if lock is not None:
        files[rules.LOCK_FILE] = lockfile.dumps(lock)
    check_targets(root, list(files))
    for rel, data in files.items():
        target = root / rel
        if data is None:
            target.unlink(missing_ok=True)
            if target.parent.is_dir() and not any(target.parent.iterdir()):
                target.parent.rmdir()
        else:
            atomic_write(target, data)
    return repo.commit_paths(root, list(files), redact(message))
