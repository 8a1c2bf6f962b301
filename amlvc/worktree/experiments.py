"""Experiment folders of the user's repository: slugs, the one listing, reading and writing of experiments/<slug>/."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from amlvc import repo
from amlvc.canonical.jsonio import content_hash
from amlvc.canonical.secrets import redact
from amlvc.errors import InvalidDocument, LocalError, UsageError
from amlvc.rules import (
    CANONICAL_FILES,
    EXPERIMENT_FILE,
    EXPERIMENTS_DIR,
    SCRIPTS_DIR,
    WEBSERVICE_FILE,
    WINDOWS_RESERVED,
)
from amlvc.worktree import files as disk
from amlvc.worktree.lockfile import Lock, hash_like

Files = dict[str, bytes]
MAX_SLUG = 64
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_SAFE_PART = re.compile(r"^[^\x00-\x1f/\\:*?\"<>|]+$")


# ----------------------------------------------------------------------------------------------- slugs


def slugify(name: str) -> str:
    """Lowercase `[a-z0-9-]`, at most 64 characters; accents folded ("Kündigung" -> "kundigung"); a secret in
    the name (a key pasted into a description) never names a folder."""
    folded = unicodedata.normalize("NFKD", redact(name)).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
    return slug[:MAX_SLUG].rstrip("-") or "experiment"


def short_id(experiment_id: str) -> str:
    """Eight hex characters naming an experiment: the start of its GUID, else of a hash of the id."""
    parts = experiment_id.split(".")
    if len(parts) >= 3 and re.fullmatch(r"[0-9a-f]{32}", parts[2]):
        return parts[2][:8]
    return hashlib.sha256(experiment_id.encode("utf-8")).hexdigest()[:8]


def portable(part: str) -> bool:
    """A file or folder name every checkout can hold: not a Windows device name, not ending in a dot or space."""
    return part.split(".", 1)[0].lower() not in WINDOWS_RESERVED and part[-1:] not in (".", " ")


def unique_slug(name: str, experiment_id: str | None, taken: Iterable[str]) -> str:
    """The slug of `name`, with `-<short id>` appended when another experiment already has it, or when it is
    a name Windows reserves (`con`, `nul`, `com1`…), as a case collision would be."""
    used = set(taken)
    base = slugify(name)
    if base not in used and portable(base):
        return base
    suffix = short_id(experiment_id or name)
    candidate = f"{base[:MAX_SLUG - len(suffix) - 1].rstrip('-')}-{suffix}"
    counter = 2
    while candidate in used:  # same short id twice (or a name that looks like one): count up
        tail = f"{suffix}-{counter}"
        candidate = f"{base[:MAX_SLUG - len(tail) - 1].rstrip('-')}-{tail}"
        counter += 1
    return candidate


def check_slug(slug: str) -> str:
    """A slug given on the command line or found on disk; LocalError when it is not one."""
    if not SLUG.match(slug):
        raise LocalError(f"{slug!r} is not an experiment slug (lowercase letters, digits and '-', at most "
                         f"{MAX_SLUG}); see `ls {EXPERIMENTS_DIR}/`")
    return slug


def taken_slugs(root: Path, lock: Lock) -> set[str]:
    """Slugs no new experiment may take: folders holding a file, and every slug the lock records."""
    base = root / EXPERIMENTS_DIR
    # An empty directory (a pull killed between mkdir and its first file) does not take a slug.
    taken = {p.name for p in base.iterdir() if p.is_dir() and any(f.is_file() for f in p.rglob("*"))} \
        if base.is_dir() else set()
    return taken | lock.all_slugs()


# ----------------------------------------------------------------------------------------------- paths


def path(slug: str, name: str = "") -> str:
    """Repository-relative POSIX path of an experiment's folder or of one of its files."""
    base = f"{EXPERIMENTS_DIR}/{slug}"
    return f"{base}/{name}" if name else base


def folder(root: Path, slug: str) -> Path:
    return root / EXPERIMENTS_DIR / check_slug(slug)


def is_canonical(rel: str) -> bool:
    """A file of an experiment folder that amlvc owns: the JSON files and scripts/…; anything else is left alone."""
    return rel in CANONICAL_FILES or rel.startswith(SCRIPTS_DIR + "/")


def safe_name(name: str, source: str) -> str:
    """Check a file name inside an experiment folder: relative, no '..', no odd characters."""
    parts = PurePosixPath(name).parts
    if (not parts or name.startswith("/") or "\\" in name
            or any(p in (".", "..") or not _SAFE_PART.match(p) or not portable(p) for p in parts)):
        raise InvalidDocument(source, "", f"file name {name!r} would leave the experiment directory or is not "
                                          f"portable; rename the node or parameter")
    return "/".join(parts)


def without_webservice(files: Mapping[str, bytes]) -> Files:
    """The files that make up the experiment document (webservice.json is pushed by its own commands)."""
    return {name: data for name, data in files.items() if name != WEBSERVICE_FILE}


def content_hash_of(files: Mapping[str, bytes]) -> str:
    """The lock's content hash of an experiment: every canonical file of its folder, webservice.json included
    (so a local edit of any of them is seen, merged and never silently overwritten)."""
    return content_hash(files)


# -------------------------------------------------------------------------------------------- listing


def slugs(root: Path, rev: str | None = None, *, with_experiment: bool = False) -> list[str]:
    """The experiments of the work tree (rev None) or of a revision: slug-named folders holding a canonical
    JSON file (experiment.json or webservice.json; only experiment.json `with_experiment`)."""
    wanted = (EXPERIMENT_FILE,) if with_experiment else (EXPERIMENT_FILE, WEBSERVICE_FILE)
    if rev is None:
        top = root / EXPERIMENTS_DIR
        if not top.is_dir():
            return []
        return sorted(p.name for p in top.iterdir() if p.is_dir() and not p.is_symlink() and SLUG.match(p.name)
                      and any((p / name).is_file() for name in wanted))
    found = {name.split("/")[1] for name in repo.list_at(root, rev, EXPERIMENTS_DIR)
             if name.count("/") == 2 and name.rsplit("/", 1)[1] in wanted}
    return sorted(s for s in found if SLUG.match(s))


def select(root: Path, wanted: Sequence[str], rev: str | None = None) -> list[str]:
    """The experiments to work on: those named (by slug, folder path or name), else every one with an
    experiment.json."""
    present = slugs(root, rev, with_experiment=True)
    where = f"{EXPERIMENTS_DIR}/{f' at {rev}' if rev else ''}"
    if not wanted:
        if not present:
            raise UsageError(f"no experiments under {where}; run `amlvc pull` or `amlvc import FILE` first")
        return present
    chosen = []
    named: dict[str, set[str]] | None = None
    for name in wanted:
        slug = name.rstrip("/").removeprefix(EXPERIMENTS_DIR + "/")
        if slug not in present:  # an experiment's name ("Churn – Training"), as diff, log and export take it
            named = display_names(root, rev) if named is None else named
            found = sorted(named.get(name, set()))
            if len(found) > 1:
                raise UsageError(f"{name!r} is the name of {', '.join(repr(s) for s in found)}; give its slug")
            slug = found[0] if found else slug
        if slug not in present:
            known = ", ".join(f"'{s}'" for s in present[:10]) + (f" and {len(present) - 10} more"
                                                                 if len(present) > 10 else "")
            raise UsageError(f"no experiment {name!r} in {where} (experiments: {known or 'none'})")
        chosen.append(slug)
    return list(dict.fromkeys(chosen))


# -------------------------------------------------------------------------------------------- reading


def display_names(root: Path, rev: str | None = None) -> dict[str, set[str]]:
    """Experiment name (its `Description`) -> the slugs of the experiments called that, in the work tree or at
    `rev`; an experiment.json that does not parse has no name here."""
    out: dict[str, set[str]] = {}
    for slug, files in read_many(root, rev=rev).items():
        try:
            name = json.loads(files.get(EXPERIMENT_FILE, b"{}")).get("Description")
        except (ValueError, AttributeError):
            continue
        if isinstance(name, str):
            out.setdefault(name, set()).add(slug)
    return out


def names(root: Path, slug: str) -> list[str]:
    """The canonical files of an experiment's folder in the work tree (relative POSIX paths), sorted."""
    return [rel for rel in disk.regular_files(root / EXPERIMENTS_DIR / slug) if is_canonical(rel)]


def read(root: Path, slug: str, rev: str | None = None) -> Files:
    """An experiment's canonical files (paths relative to its folder) in the work tree or at `rev`; {} if none."""
    return read_many(root, [slug], rev).get(slug, {})


def read_many(root: Path, wanted: Sequence[str] = (), rev: str | None = None) -> dict[str, Files]:
    """slug -> canonical files, in the work tree (rev None) or at a revision (one walk of git's tree).

    With `wanted`, only those experiments are read (a big repository holds many).
    """
    for slug in wanted:
        if not slug or slug in (".", "..") or "/" in slug or "\\" in slug:
            raise UsageError(f"{slug!r} is not an experiment name; use the folder names under {EXPERIMENTS_DIR}/")
    out: dict[str, Files] = {}
    if rev is None:
        top = root / EXPERIMENTS_DIR
        dirs = [top / s for s in wanted] if wanted else (sorted(top.iterdir()) if top.is_dir() else [])
        for directory in dirs:
            if not directory.is_dir() or directory.is_symlink():
                continue
            for rel in disk.regular_files(directory):
                if is_canonical(rel):
                    out.setdefault(directory.name, {})[rel] = (directory / rel).read_bytes()
        return out
    prefixes = [path(s) for s in wanted] if wanted else [EXPERIMENTS_DIR]
    for name, data in repo.read_tree_at(root, rev, prefixes).items():
        slug, _, rel = name.removeprefix(EXPERIMENTS_DIR + "/").partition("/")
        if rel and is_canonical(rel):
            out.setdefault(slug, {})[rel] = data
    return out


def require_experiment(files: Mapping[str, bytes], slug: str, rev: str | None = None) -> Files:
    """The files of an experiment that must exist (with its experiment.json); LocalError naming it otherwise."""
    if EXPERIMENT_FILE not in files:
        where = f" at revision {rev!r}" if rev else ""
        raise LocalError(f"{path(slug)}: no experiment here{where}; see `ls {EXPERIMENTS_DIR}/`")
    return dict(files)


def synced_files(root: Path, slug: str, entry: Mapping[str, Any], *, depth: int = 50) -> Files | None:
    """The experiment's files as last pulled or pushed (the newest commit whose files have the lock's hash)."""
    for rev in repo.revisions(root, path(slug), limit=depth):
        files = read(root, slug, rev)
        if hash_like(entry, files) == entry.get("content_hash"):
            return files
    return None


# -------------------------------------------------------------------------------------------- writing


def write(root: Path, slug: str, files: Mapping[str, bytes], *, keep: Iterable[str] = ()) -> list[str]:
    """Make the experiment's folder hold exactly `files` (canonical files not given are deleted, except `keep`).

    Returns the repository-relative paths written or deleted; unchanged files are not rewritten.
    """
    wanted = {safe_name(name, path(slug)): data for name, data in files.items()}
    base = folder(root, slug)
    disk.check_targets(root, [path(slug, name) for name in wanted] or [path(slug)])
    kept = set(keep)
    stale = [rel for rel in names(root, slug) if rel not in wanted and rel not in kept]
    return [path(slug, rel) for rel in disk.write_folder(base, wanted, stale)]
