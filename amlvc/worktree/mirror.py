"""The workspace's mirror in the working tree: experiment files, lock entries, secrets, and crash-safe commits.

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from amlvc import config, repo
from amlvc.canonical.normalize import content_hash, dumps
from amlvc.client import Client, hosts_for
from amlvc.credentials import resolve_token
from amlvc.errors import LocalError
from amlvc.sync.messages import Signature
from amlvc.worktree import lockfile, project

LOCK_NAME = "amlvc.lock"
STATE_DIR = ".amlvc"
SECRETS_NAME = f"{STATE_DIR}/secrets.json"
JOURNAL_NAME = f"{STATE_DIR}/pull-journal.json"
EXPERIMENTS = project.EXPERIMENTS_DIR
GLOBAL_WORKSPACE = "506153734175476c4f62416c57734963"


@dataclass(frozen=True)
class Target:
    """A remote, resolved: its name, workspace id and an open client."""

    name: str
    workspace_id: str
    client: Client


def open_remote(root: Path, remote: str | None, *, token_env: str | None = None, jobs: int = 8) -> Target:
    """The remote of amlvc.toml named `remote` (else the default one) with a client holding its token."""
    spec = config.load(root).remote(remote)
    creds = resolve_token(spec.name, workspace_id=spec.workspace_id, token_env=token_env,
                          remote_token_env=spec.token_env)
    hosts = hosts_for(location=spec.location, endpoint=spec.endpoint)
    client = Client(remote=spec.name, workspace_id=spec.workspace_id, hosts=hosts, token=creds.token,
                    token_source=creds.source, jobs=jobs)
    return Target(spec.name, spec.workspace_id, client)


def user_experiments(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The workspace's own experiments: the list also carries Microsoft's samples (reference §2.2)."""
    mine = []
    for item in summaries:
        exp_id = item.get("ExperimentId")
        if not isinstance(exp_id, str) or exp_id.startswith(GLOBAL_WORKSPACE + "."):
            continue
        if item.get("Category") not in (None, "", "user"):
            continue
        mine.append(dict(item))
    return mine


def module_names(client: Client) -> dict[str, str]:
    """Module id -> human name from the workspace's module list (annotations in experiment.json)."""
    names: dict[str, str] = {}
    for module in client.list_modules():
        module_id, name = module.get("Id"), module.get("Name")
        if isinstance(module_id, str) and isinstance(name, str):
            names[module_id] = name
            parts = module_id.split(".")
            if len(parts) == 3:  # older batches of the same family keep their human name
                names.setdefault(parts[1], name)
    return names


# -- paths and files --------------------------------------------------------------------------


def experiment_dir(slug: str) -> str:
    return f"{EXPERIMENTS}/{slug}"


def read_experiment_files(root: Path, slug: str) -> dict[str, bytes]:
    """Every file of an experiment directory in the working tree (paths relative to it, POSIX)."""
    base = root / EXPERIMENTS / slug
    return {rel: (base / rel).read_bytes() for rel in _file_names(base)}


def read_experiment_files_at(root: Path, rev: str, slug: str) -> dict[str, bytes]:
    """Every file of an experiment directory at `rev` (paths relative to it, POSIX), in one walk of the tree."""
    return project.files_at(root, rev, experiment_dir(slug))


def synced_files(root: Path, slug: str, digest: str, *, depth: int = 50) -> dict[str, bytes] | None:
    """The experiment's files as last pulled or pushed (the commit whose files have the lock's hash)."""
    for rev in repo.revisions(root, experiment_dir(slug), limit=depth):
        files = read_experiment_files_at(root, rev, slug)
        if experiment_hash(files) == digest:
            return files
    return None


def write_experiment_files(root: Path, slug: str, files: Mapping[str, bytes]) -> None:
    """Make the experiment directory hold exactly `files`; unchanged files are not rewritten."""
    base = root / EXPERIMENTS / slug
    # A directory this call creates holds no symlink, so a plain relative path cannot leave it: the
    # per-file resolve() (a third of the write time of a first pull) is only needed for existing ones.
    fresh = not os.path.lexists(base)
    made: set[str] = set()
    for rel in sorted(files):
        path = base / rel if fresh and _plain(rel) else _inside(base, rel)
        _replace(path, files[rel], made)
    if fresh:
        return
    for rel in _file_names(base):
        if rel not in files:
            repo.remove_file(base / rel)


def _file_names(base: Path) -> list[str]:
    """The files of an experiment directory that amlvc reads (no symlinks, no hidden files), sorted."""
    names: list[str] = []
    if not base.is_dir():
        return names
    for path in base.rglob("*"):
        if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
            names.append(path.relative_to(base).as_posix())
    return sorted(names)


def _replace(path: Path, data: bytes, made: set[str]) -> None:
    """Temp file + rename, skipped when the bytes are already there.

    No fsync per file (hundreds per pull would dominate its time): a killed process cannot lose
    page-cache data, and after a power cut the journal makes the next pull redo the writes, while
    git (which fsyncs its own objects as configured) never sees a half-written file committed.
    """
    name = os.fspath(path)
    try:
        try:
            if os.path.getsize(name) == len(data) and path.read_bytes() == data:
                return
        except OSError:
            pass  # not there (or unreadable: then the write below says why)
        parent = os.path.dirname(name)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        tmp = os.path.join(parent, f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, name)
    except OSError as exc:
        raise LocalError(f"{path}: cannot write ({exc.strerror}); check permissions and free space") from None


def _plain(rel: str) -> bool:
    """A relative POSIX path of ordinary names (no `..`, `.`, empty or absolute parts)."""
    parts = rel.split("/")
    return bool(rel) and "\\" not in rel and all(part not in ("", ".", "..") for part in parts)


def _inside(base: Path, rel: str) -> Path:
    path = (base / rel).resolve()
    if not path.is_relative_to(base.resolve()):
        raise LocalError(f"{rel}: refusing to write outside {base}")
    return path


# -- the lock (amlvc/lockfile.py owns the format; pull works on plain entry dicts) -------------


def read_lock(root: Path) -> lockfile.Lock:
    return lockfile.load(root)


def lock_entries(lock: lockfile.Lock, remote: str) -> dict[str, dict[str, Any]]:
    return {slug: entry.to_json() for slug, entry in lock.entries(remote).items()}


def lock_entry(exp_id: str, etag: str, run_id: str | None, identity: Mapping[str, Any],
               digest: str) -> dict[str, Any]:
    ident = {k: v for k, v in identity.items() if k != "ExperimentId"}
    return {"content_hash": digest, "etag": etag, "id": exp_id, "identity": ident, "run_id": run_id}


def with_entries(lock: lockfile.Lock, remote: str, entries: Mapping[str, Mapping[str, Any]]) -> lockfile.Lock:
    """`lock` with the experiments of `remote` replaced by `entries` (other remotes untouched)."""
    experiments = {r: dict(e) for r, e in lock.experiments.items()}
    experiments[remote] = {slug: _to_entry(entries[slug]) for slug in sorted(entries)}
    return replace(lock, experiments=experiments)


def _to_entry(data: Mapping[str, Any]) -> lockfile.LockEntry:
    known = ("content_hash", "etag", "id", "identity", "run_id")
    return lockfile.LockEntry(id=data.get("id"), etag=data.get("etag"), run_id=data.get("run_id"),
                              content_hash=data.get("content_hash"), identity=dict(data.get("identity") or {}),
                              extra={k: v for k, v in data.items() if k not in known})


def slug_used_elsewhere(lock: lockfile.Lock, remote: str, slug: str) -> bool:
    return any(slug in lock.entries(other) for other in lock.remotes() if other != remote)


def taken_slugs(root: Path, lock: lockfile.Lock) -> set[str]:
    base = root / EXPERIMENTS
    # An empty directory (a pull killed between mkdir and its first file) does not take a slug.
    taken = {p.name for p in base.iterdir() if p.is_dir() and any(f.is_file() for f in p.rglob("*"))} \
        if base.is_dir() else set()
    return taken | lock.all_slugs()


def new_slug(name: str, exp_id: str, taken: set[str]) -> str:
    """A slug for a new experiment, unique in the repository (a short id suffix breaks ties)."""
    return project.unique_slug(name, exp_id, taken)


def experiment_hash(files: Mapping[str, bytes]) -> str:
    """The lock's content hash: the experiment's files without webservice.json (which push never sends)."""
    return content_hash({k: v for k, v in files.items() if k != project.WEBSERVICE_FILE})


# -- secrets ----------------------------------------------------------------------------------


def store_secrets(root: Path, remote: str, values: Mapping[str, Mapping[str, str]]) -> None:
    """Merge scrubbed secret values into `.amlvc/secrets.json` (mode 0600, never committed)."""
    project.store_secrets_of(root, remote, values)


# -- crash-safe commits -----------------------------------------------------------------------


@contextlib.contextmanager
def operation_lock(root: Path) -> Iterator[None]:
    """One pull, push or restore at a time per repository; the kernel drops the lock if the process dies.

    The lock is taken on the repository's `.git` directory itself, so taking it writes nothing.
    """
    fd = os.open(root / ".git" if (root / ".git").is_dir() else root, os.O_RDONLY)
    _LOCK_FDS.add(fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LocalError("another amlvc pull, push or restore is running in this repository; wait for it "
                             "to finish and try again") from None
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
                     message: str, author: Signature | None = None) -> str | None:
    """Journal, write experiment directories, drop deleted ones, secrets, lock; then one commit."""
    if (root / JOURNAL_NAME).is_file():  # a killed run's journal must not be overwritten unread
        recover_interrupted(root)
    paths = sorted({experiment_dir(s) for s in writes} | {experiment_dir(s) for s in delete})
    planned: dict[str, str | None] = {}
    for slug, files in writes.items():
        for rel in _file_names(root / EXPERIMENTS / slug):
            planned[f"{experiment_dir(slug)}/{rel}"] = None
        for rel, data in files.items():
            planned[f"{experiment_dir(slug)}/{rel}"] = _digest(data)
    for slug in delete:
        for rel in _file_names(root / EXPERIMENTS / slug):
            planned[f"{experiment_dir(slug)}/{rel}"] = None
    lock_bytes = lockfile.dumps(lock) if lock is not None else None
    if lock_bytes is not None:
        planned[LOCK_NAME] = _digest(lock_bytes)
        paths.append(LOCK_NAME)
    journal = {"head": repo.head(root), "paths": paths, "files": planned}
    repo.atomic_write(root / JOURNAL_NAME, dumps(journal))
    try:
        for slug, files in sorted(writes.items()):
            write_experiment_files(root, slug, files)
        for slug in delete:
            write_experiment_files(root, slug, {})
        if secrets is not None:
            store_secrets(root, secrets[0], secrets[1])
        if lock_bytes is not None:
            repo.atomic_write(root / LOCK_NAME, lock_bytes)
    except BaseException:
        # A full disk or Ctrl-C part-way: put the paths back as HEAD has them now, not at the next run
        # (no git process is running yet, so nothing races the undo; if the undo fails too, the journal
        # stays and the next pull finishes it).
        with contextlib.suppress(Exception):
            recover_interrupted(root)
        raise
    sha = repo.commit_own_paths(
        root, paths, message,
        author_name=author.name if author else None,
        author_email=author.email if author else None,
        author_date=author.date if author else None,
    )
    (root / JOURNAL_NAME).unlink(missing_ok=True)
    return sha


def recover_interrupted(root: Path) -> bool:
    """Finish off a pull killed before its commit: put the journaled paths back as HEAD has them.

    Only paths whose working-tree content is either HEAD's or what the killed pull meant to write are
    touched, so an edit made after the crash is never discarded (the dirty-tree check then names it).
    """
    path = root / JOURNAL_NAME
    if not path.is_file():
        return False
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        journal = None
    if not isinstance(journal, dict) or journal.get("head") != repo.head(root):
        # The commit was made (or the journal is unreadable): nothing to undo, but a git killed with the
        # run (repo.commit_own_paths binds git to it) may have left its index lock behind the new commit.
        repo.clear_stale_locks(root)
        path.unlink(missing_ok=True)
        return journal is not None
    repo.clear_stale_locks(root)
    for stray in root.glob(f".{LOCK_NAME}.*.tmp"):  # the lock's temp file, cut off before its rename
        stray.unlink(missing_ok=True)
    planned: Mapping[str, str | None] = journal.get("files") or {}
    paths = [str(p) for p in journal.get("paths") or []]
    dirty = repo.dirty_paths(root, paths)
    head = journal.get("head")
    mine = []
    for rel in dirty:
        name = rel.rsplit("/", 1)[-1]
        if name.startswith(".") and name.endswith(".tmp") and any(rel.startswith(p + "/") for p in paths):
            mine.append(rel)  # a temp file of repo.atomic_write, cut off before its rename
            continue
        current = _digest((root / rel).read_bytes()) if (root / rel).is_file() else None
        at_head = _digest(repo.read_at(root, head, rel)) if head else None
        if rel in planned and current in (planned[rel], at_head):
            mine.append(rel)
    if len(mine) == len(dirty):
        repo.discard_changes(root, mine)
        for rel in paths:  # directories made before the first file landed in them
            where = root / rel
            if where.is_dir() and not any(f.is_file() for f in where.rglob("*")):
                shutil.rmtree(where, ignore_errors=True)
        path.unlink(missing_ok=True)
        return True
    path.unlink(missing_ok=True)
    return False
