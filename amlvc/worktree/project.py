"""The repository layout: experiment slugs, one experiment's directory of files, and the local secrets file."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from amlvc import config, repo, rules
from amlvc.errors import ConfigError, InvalidDocument, LocalError

EXPERIMENTS_DIR = rules.EXPERIMENTS_DIR
EXPERIMENT_FILE = rules.EXPERIMENT_FILE
LAYOUT_FILE = rules.LAYOUT_FILE
WEBSERVICE_FILE = rules.WEBSERVICE_FILE
SECRETS_DIR = ".amlvc"
SECRETS_FILE = ".amlvc/secrets.json"
MAX_SLUG = 64
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_SAFE_PART = re.compile(r"^[^\x00-\x1f/\\:*?\"<>|]+$")


def open_repo(cwd: Path) -> Path:
    """The amlvc repository containing `cwd`, with its amlvc.toml checked (a broken file stops every command)."""
    root = repo.find_root(cwd)
    config.load(root)
    return root


# ----------------------------------------------------------------------------------------------- slugs


def slugify(name: str) -> str:
    """Lowercase `[a-z0-9-]`, at most 64 characters; accents folded ("Kündigung" -> "kundigung")."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
    return slug[:MAX_SLUG].rstrip("-") or "experiment"


def short_id(experiment_id: str) -> str:
    """Eight hex characters naming an experiment: the start of its GUID, else of a hash of the id."""
    parts = experiment_id.split(".")
    if len(parts) >= 3 and re.fullmatch(r"[0-9a-f]{32}", parts[2]):
        return parts[2][:8]
    return hashlib.sha256(experiment_id.encode("utf-8")).hexdigest()[:8]


def unique_slug(name: str, experiment_id: str | None, taken: Iterable[str]) -> str:
    """The slug of `name`, with `-<short id>` appended when another experiment already has it."""
    used = set(taken)
    base = slugify(name)
    if base not in used:
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


# ------------------------------------------------------------------------------------ experiment files


def experiment_dir(root: Path, slug: str) -> Path:
    return root / EXPERIMENTS_DIR / check_slug(slug)


def experiment_path(slug: str, name: str = "") -> str:
    """Repository-relative POSIX path of an experiment's directory or one of its files."""
    base = f"{EXPERIMENTS_DIR}/{check_slug(slug)}"
    return f"{base}/{name}" if name else base


def list_experiments(root: Path) -> list[str]:
    """Slugs of the experiments in the work tree (directories holding experiment.json or webservice.json)."""
    top = root / EXPERIMENTS_DIR
    if not top.is_dir():
        return []
    return sorted(p.name for p in top.iterdir()
                  if p.is_dir() and SLUG.match(p.name)
                  and ((p / EXPERIMENT_FILE).is_file() or (p / WEBSERVICE_FILE).is_file()))


def list_experiments_at(root: Path, rev: str) -> list[str]:
    slugs = {path.split("/")[1] for path in repo.list_at(root, rev, EXPERIMENTS_DIR) if path.count("/") >= 2}
    return sorted(s for s in slugs if SLUG.match(s))


def safe_relative(name: str, source: str) -> str:
    """Check a file name inside an experiment directory: relative, no '..', no odd characters."""
    parts = PurePosixPath(name).parts
    if (not parts or name.startswith("/") or "\\" in name
            or any(p in (".", "..") or not _SAFE_PART.match(p) for p in parts)):
        raise InvalidDocument(source, "", f"file name {name!r} would leave the experiment directory or is not "
                                          f"portable; rename the node or parameter")
    return "/".join(parts)


def write_files(root: Path, slug: str, files: Mapping[str, bytes], *, keep: Iterable[str] = (WEBSERVICE_FILE,),
                ) -> list[str]:
    """Write an experiment's files; delete files of the directory that `files` no longer has (except `keep`).

    Returns the repository-relative paths written or deleted (unchanged files are not rewritten).
    """
    directory = experiment_dir(root, slug)
    wanted = {safe_relative(name, experiment_path(slug)): data for name, data in files.items()}
    touched: list[str] = []
    for name, data in sorted(wanted.items()):
        if repo.atomic_write(directory / name, data):
            touched.append(experiment_path(slug, name))
    kept = set(keep)
    for name in sorted(_files_in(directory)):
        if name not in wanted and name not in kept and repo.remove_file(directory / name):
            touched.append(experiment_path(slug, name))
    return touched


def write_webservice(root: Path, slug: str, data: bytes) -> list[str]:
    if repo.atomic_write(experiment_dir(root, slug) / WEBSERVICE_FILE, data):
        return [experiment_path(slug, WEBSERVICE_FILE)]
    return []


def read_files(root: Path, slug: str) -> dict[str, bytes]:
    """The experiment's canonical files in the work tree (experiment.json, layout.json, scripts/…), not the WSD."""
    directory = experiment_dir(root, slug)
    if not (directory / EXPERIMENT_FILE).is_file():
        raise LocalError(f"{experiment_path(slug)}: no experiment here; see `ls {EXPERIMENTS_DIR}/`")
    return {name: (directory / name).read_bytes() for name in sorted(_files_in(directory)) if name != WEBSERVICE_FILE}


def files_at(root: Path, rev: str, directory: str) -> dict[str, bytes]:
    """Every file under a repository directory at a revision, paths relative to it (one walk of the tree)."""
    prefix = directory.rstrip("/") + "/"
    return {path.removeprefix(prefix): data for path, data in repo.read_tree_at(root, rev, prefix).items()}


def read_files_at(root: Path, rev: str, slug: str) -> dict[str, bytes]:
    """The experiment's canonical files at a revision; LocalError when it is not there."""
    files = files_at(root, rev, experiment_path(slug))
    files.pop(WEBSERVICE_FILE, None)
    if EXPERIMENT_FILE not in files:
        raise LocalError(f"{experiment_path(slug)}: no experiment at revision {rev!r}")
    return files


def read_webservice(root: Path, slug: str, rev: str | None = None) -> bytes | None:
    if rev is None:
        path = experiment_dir(root, slug) / WEBSERVICE_FILE
        return path.read_bytes() if path.is_file() else None
    return repo.read_at(root, rev, experiment_path(slug, WEBSERVICE_FILE))


def _files_in(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return [p.relative_to(directory).as_posix() for p in directory.rglob("*")
            if p.is_file() and not p.name.startswith(".")]


# ------------------------------------------------------------------------------------- secrets file


def secrets_path(root: Path) -> Path:
    return root / SECRETS_FILE


def load_secrets(root: Path) -> dict[str, dict[str, dict[str, str]]]:
    """`.amlvc/secrets.json` as {remote: {slug: {NAME: value}}}; empty when absent; ConfigError when broken."""
    path = secrets_path(root)
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
    out: dict[str, dict[str, dict[str, str]]] = {}
    for remote, slugs in remotes.items():
        if not isinstance(slugs, dict):
            raise ConfigError(f"{path}: /remotes/{remote}: expected an object")
        for slug, values in slugs.items():
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise ConfigError(f"{path}: /remotes/{remote}/{slug}: expected an object of strings")
            out.setdefault(remote, {})[slug] = dict(values)
    return out


def store_secrets(root: Path, remote: str, slug: str, values: Mapping[str, str]) -> bool:
    """Merge `values` into the secrets of (remote, slug); the file is written with mode 0600. True if changed."""
    return store_secrets_of(root, remote, {slug: values})


def store_secrets_of(root: Path, remote: str, values: Mapping[str, Mapping[str, str]]) -> bool:
    """`store_secrets` for several experiments (slug -> values) of one remote: one read and one write of the file."""
    data = load_secrets(root)
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
    directory = root / SECRETS_DIR
    directory.mkdir(mode=0o700, exist_ok=True)
    text = json.dumps({"remotes": data}, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    return repo.atomic_write(secrets_path(root), text.encode("utf-8"), mode=0o600)


def secrets_for(root: Path, slug: str, remote: str | None = None) -> dict[str, str]:
    """Stored secret values of an experiment: of `remote` when given, else of every remote (the `import`
    pseudo-remote first, then the others by name; the first value found for a NAME wins)."""
    data = load_secrets(root)
    if remote is not None:
        return dict(data.get(remote, {}).get(slug, {}))
    merged: dict[str, str] = {}
    for name in sorted(data, key=lambda r: (r != "import", r)):
        for key, value in data[name].get(slug, {}).items():
            merged.setdefault(key, value)
    return merged


def secret_values(root: Path, slug: str, names: Iterable[str], remote: str | None = None,
                  environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Values for placeholder names: `AMLVC_SECRET_<NAME>` first, then the secrets file; returns (found, missing)."""
    env = os.environ if environ is None else environ
    stored = secrets_for(root, slug, remote)
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        value = env.get(f"AMLVC_SECRET_{name}") or stored.get(name)
        if value is None:
            missing.append(name)
        else:
            found[name] = value
    return found, missing
