"""Files of the user's repository on disk: atomic writes, deletions, and a folder made to hold exactly some files."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

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
    """The files under a folder that amlvc reads (regular, not behind a symlink, not hidden), sorted POSIX paths."""
    names: list[str] = []
    if not base.is_dir() or base.is_symlink():
        return names
    for top, dirs, found in os.walk(base):  # never follows a link to a folder
        rel = Path(top).relative_to(base)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in found:
            if not name.startswith(".") and not os.path.islink(os.path.join(top, name)):
                names.append((rel / name).as_posix())
    return sorted(names)


def check_targets(root: Path, paths: Iterable[str]) -> None:
    """Refuse, before anything is written, any repository-relative target that is or lies behind a symbolic
    link, or that would leave the repository: a committed link could point anywhere on the disk."""
    checked: set[str] = set()
    base = os.fspath(root)
    for rel in paths:
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or ".." in parts:
            raise LocalError(f"{rel}: refusing to write outside the repository {root}")
        where = base
        for depth, part in enumerate(parts, 1):
            where = os.path.join(where, part)
            if where in checked:
                continue
            try:
                mode = os.lstat(where).st_mode
            except OSError as exc:
                if exc.errno not in _ABSENT:
                    raise
                break  # not there: nothing below it exists either, so no link can be on the way
            if stat.S_ISLNK(mode):
                shown = "/".join(parts[:depth])
                raise LocalError(f"{shown}: is a symbolic link; amlvc writes only into real folders inside the "
                                 f"repository, so nothing was written. Replace the link by a folder (or remove "
                                 f"it) and try again")
            checked.add(where)


_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})  # what Path.is_symlink() calls False


def write_folder(base: Path, files: Mapping[str, bytes], delete: Iterable[str]) -> list[str]:
    """Make `base` hold `files` (relative POSIX paths) and not `delete`; returns the paths written or deleted.

    Unchanged files are not rewritten. Each file goes through a temp file and a rename, without an fsync
    (hundreds per pull would dominate its time): a killed process cannot lose page-cache data, and after a
    power cut the pull journal makes the next pull redo the writes, while git never commits a half file.
    The caller has checked the targets (`check_targets`): no symlink on the way, nothing outside the repository.
    """
    made: set[str] = set()
    touched: list[str] = []
    for rel in sorted(files):
        if replace_bytes(base / rel, files[rel], made):
            touched.append(rel)
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
