"""Files of the user's repository on disk: atomic writes, deletions, and a folder made to hold exactly some files."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from amlvc.errors import LocalError


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> bool:
    """Write `data` to `path` through a temp file and os.replace; returns False (and writes nothing) if unchanged.

    `mode` sets the permission bits of the new file before it becomes visible (0o600 for secrets).
    """
    try:
        if path.is_file() and path.read_bytes() == data:
            if mode is not None and (path.stat().st_mode & 0o777) != mode:
                os.chmod(path, mode)
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise LocalError(f"{path}: cannot write ({exc.strerror}); check permissions and free space") from None
    return True


def remove_file(path: Path) -> bool:
    """Delete a file if it exists, and its parent directories that became empty (up to the repository)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise LocalError(f"{path}: cannot delete ({exc.strerror})") from None
    parent = path.parent
    with contextlib.suppress(OSError):
        while parent != parent.parent and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return True


def regular_files(base: Path) -> list[str]:
    """The files under a folder that amlvc reads (regular, not symlinks, not hidden), as sorted POSIX paths."""
    names: list[str] = []
    if not base.is_dir():
        return names
    for path in base.rglob("*"):
        if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
            names.append(path.relative_to(base).as_posix())
    return sorted(names)


def write_folder(base: Path, files: Mapping[str, bytes], delete: Iterable[str]) -> list[str]:
    """Make `base` hold `files` (relative POSIX paths) and not `delete`; returns the paths written or deleted.

    Unchanged files are not rewritten. Each file goes through a temp file and a rename, without an fsync
    (hundreds per pull would dominate its time): a killed process cannot lose page-cache data, and after a
    power cut the pull journal makes the next pull redo the writes, while git never commits a half file.
    """
    # A directory this call creates holds no symlink, so a plain relative path cannot leave it: the
    # per-file resolve() (a third of the write time of a first pull) is only needed for existing ones.
    fresh = not os.path.lexists(base)
    made: set[str] = set()
    touched: list[str] = []
    for rel in sorted(files):
        path = base / rel if fresh and _plain(rel) else _inside(base, rel)
        if replace_bytes(path, files[rel], made):
            touched.append(rel)
    if not fresh:
        for rel in sorted(delete):
            if rel not in files and remove_file(base / rel):
                touched.append(rel)
    return touched


def replace_bytes(path: Path, data: bytes, made: set[str]) -> bool:
    """Temp file + rename, skipped (False) when the bytes are already there; `made` remembers created folders."""
    name = os.fspath(path)
    try:
        try:
            if os.path.getsize(name) == len(data) and path.read_bytes() == data:
                return False
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
    return True


def _plain(rel: str) -> bool:
    """A relative POSIX path of ordinary names (no `..`, `.`, empty or absolute parts)."""
    parts = rel.split("/")
    return bool(rel) and "\\" not in rel and all(part not in ("", ".", "..") for part in parts)


def _inside(base: Path, rel: str) -> Path:
    path = (base / rel).resolve()
    if not path.is_relative_to(base.resolve()):
        raise LocalError(f"{rel}: refusing to write outside {base}")
    return path
