"""The crash-safe write and commit: one operation at a time per repository, a journal, recovery after a kill.

A pull writes in this order: a journal in `.amlvc/` naming every path it will touch, the experiment files
(each through a temp file and a rename), the secrets, the lock, then one `git add` + `git commit`, then the
journal goes. A pull killed at any moment therefore leaves either the old commit with a journal (the next
pull puts the journaled paths back as HEAD has them and starts over) or the new commit (the journal is
stale and is dropped). `git fsck` never sees anything but whole objects, because only git writes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from amlvc import repo
from amlvc.canonical.jsonio import dumps
from amlvc.canonical.secrets import redact
from amlvc.errors import LocalError
from amlvc.rules import JOURNAL_FILE, LOCK_FILE, SECRETS_FILE
from amlvc.worktree import experiments, lockfile, secretfile
from amlvc.worktree.files import atomic_write, check_targets, remove_file

LOCK_GRACE_S = 2.0  # how long a second operation waits for the repository before giving up


@dataclass(frozen=True)
class Signature:
    """Who and when, for the author of a commit (None = git's own default)."""

    name: str
    email: str
    date: datetime | None


@contextlib.contextmanager
def operation_lock(root: Path) -> Iterator[None]:
    """One pull, push or restore at a time per repository; the kernel drops the lock if the process dies.

    The lock is taken on the repository's `.git` directory itself, so taking it writes nothing.
    """
    fd = os.open(root / ".git" if (root / ".git").is_dir() else root, os.O_RDONLY)
    _LOCK_FDS.add(fd)
    try:
        deadline = time.monotonic() + LOCK_GRACE_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                # A run killed a moment ago may still be let go of by a child between fork and exec.
                if time.monotonic() >= deadline:
                    raise LocalError("another amlvc pull, push or restore is running in this repository; wait "
                                     "for it to finish and try again") from None
                time.sleep(0.02)
        yield
    finally:
        _LOCK_FDS.discard(fd)
        os.close(fd)


_LOCK_FDS: set[int] = set()  # descriptors holding an operation lock in this process


def drop_inherited_locks() -> None:
    """In a forked worker: close the inherited operation-lock descriptors.

    An flock belongs to the open file, which a fork shares: a worker outliving a killed parent would
    otherwise keep the repository locked.
    """
    for fd in list(_LOCK_FDS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _LOCK_FDS.clear()


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def write_and_commit(root: Path, *, writes: Mapping[str, Mapping[str, bytes]], delete: Sequence[str],
                     lock: lockfile.Lock | None, secrets: tuple[str, Mapping[str, Mapping[str, str]]] | None,
                     message: str, author: Signature | None = None, stream: repo.PackStream | None = None,
                     ) -> str | None:
    """Journal, write experiment directories, drop deleted ones, secrets, lock; then one commit.

    `stream` holds blobs of these writes sent to git while they were fetched (`repo.commit_paths`).
    """
    if (root / JOURNAL_FILE).is_file():  # a killed run's journal must not be overwritten unread
        recover_interrupted(root)
    paths = sorted({experiments.path(s) for s in writes} | {experiments.path(s) for s in delete})
    contents: dict[str, bytes | None] = {}
    for slug, files in writes.items():
        for rel in experiments.names(root, slug):
            contents[experiments.path(slug, rel)] = None
        for rel, data in files.items():
            contents[experiments.path(slug, rel)] = data
    for slug in delete:
        for rel in experiments.names(root, slug):
            contents[experiments.path(slug, rel)] = None
    lock_bytes = lockfile.dumps(lock) if lock is not None else None
    if lock_bytes is not None:
        contents[LOCK_FILE] = lock_bytes
        paths.append(LOCK_FILE)
    planned = {path: _digest(data) for path, data in contents.items()}
    # Every target checked before the first byte is written: a refusal leaves the repository as it was.
    targets = [*planned, JOURNAL_FILE, *([SECRETS_FILE] if secrets is not None else [])]
    targets += [experiments.path(s) for s in writes if not writes[s]]
    check_targets(root, targets)
    journal = {"head": repo.head(root), "paths": paths, "files": planned}
    atomic_write(root / JOURNAL_FILE, dumps(journal))
    try:
        for slug, files in sorted(writes.items()):
            experiments.write(root, slug, files)
        for slug in delete:
            experiments.write(root, slug, {})
        if secrets is not None:
            secretfile.store(root, secrets[0], secrets[1])
        if lock_bytes is not None:
            atomic_write(root / LOCK_FILE, lock_bytes)
    except BaseException:
        # A full disk or Ctrl-C part-way: put the paths back as HEAD has them now, not at the next run
        # (no git process is running yet, so nothing races the undo; if the undo fails too, the journal
        # stays and the next pull finishes it).
        if stream is not None:
            stream.abort()
        with contextlib.suppress(Exception):
            recover_interrupted(root)
        raise
    sha = repo.commit_paths(
        root, paths, redact(message),
        author_name=author.name if author else None,
        author_email=author.email if author else None,
        author_date=author.date if author else None,
        contents=contents, stream=stream,
    )
    (root / JOURNAL_FILE).unlink(missing_ok=True)
    return sha


def recover_interrupted(root: Path) -> bool:
    """Finish off a pull killed before its commit: put the journaled paths back as HEAD has them.

    Only paths whose working-tree content is either HEAD's or what the killed pull meant to write are
    touched, so an edit made after the crash is never discarded (the dirty-tree check then names it).
    """
    path = root / JOURNAL_FILE
    if not path.is_file():
        return False
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        journal = None
    if not isinstance(journal, dict) or journal.get("head") != repo.head(root):
        # The commit was made (or the journal is unreadable): nothing to undo, but a git killed with the
        # run (repo.commit_paths binds git to it) may have left its index lock behind the new commit.
        repo.clear_stale_locks(root)
        path.unlink(missing_ok=True)
        return journal is not None
    repo.clear_stale_locks(root)
    for stray in root.glob(f".{LOCK_FILE}.*.tmp"):  # the lock's temp file, cut off before its rename
        stray.unlink(missing_ok=True)
    planned: Mapping[str, str | None] = journal.get("files") or {}
    paths = [str(p) for p in journal.get("paths") or []]
    dirty = repo.dirty_paths(root, paths)
    head = journal.get("head")
    mine = []
    for rel in dirty:
        name = rel.rsplit("/", 1)[-1]
        if name.startswith(".") and name.endswith(".tmp") and any(rel.startswith(p + "/") for p in paths):
            mine.append(rel)  # a temp file of files.atomic_write, cut off before its rename
            continue
        current = _digest((root / rel).read_bytes()) if (root / rel).is_file() else None
        at_head = _digest(repo.read_at(root, head, rel)) if head else None
        if rel in planned and current in (planned[rel], at_head):
            mine.append(rel)
    if len(mine) == len(dirty):
        for rel in repo.discard_changes(root, mine):
            remove_file(root / rel)
        for rel in paths:  # directories made before the first file landed in them
            where = root / rel
            if where.is_dir() and not any(f.is_file() for f in where.rglob("*")):
                shutil.rmtree(where, ignore_errors=True)
        path.unlink(missing_ok=True)
        return True
    path.unlink(missing_ok=True)
    return False
