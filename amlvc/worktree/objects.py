"""The content-addressed object store: trained-model bytes under `.amlvc/objects/sha256/<aa>/<rest>`, verified on read.

The store lives in the ignored `.amlvc/` folder, so git holds only the manifests (`models/<name>.json`)
that name each object by its sha256. Every read hashes the bytes again: an object whose bytes no longer
hash to its name is refused (exit 6) with both hashes named.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from amlvc.errors import LocalError, ValidationError
from amlvc.rules import OBJECTS_DIR
from amlvc.worktree.files import atomic_write

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    """An object of the store: its name (sha256 of the bytes), size and where it lies."""

    sha256: str
    size: int
    path: Path


@dataclass(frozen=True)
class ObjectState:
    """What a check of one object found: `ok`, `missing` or `mismatch` (then `actual` is the bytes' sha256)."""

    sha256: str
    state: str
    actual: str | None
    relative: str

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def relative_path(sha256: str) -> str:
    """`.amlvc/objects/sha256/<aa>/<rest>` of a sha256 (repository-relative, POSIX)."""
    if not _SHA256.match(sha256):
        raise ValidationError(f"{sha256!r} is not a sha256 (64 lowercase hex digits)")
    return f"{OBJECTS_DIR}/{sha256[:2]}/{sha256[2:]}"


def object_path(root: Path, sha256: str) -> Path:
    return root / relative_path(sha256)


def digest(chunks: Iterable[bytes]) -> tuple[str, int]:
    """(sha256, size) of bytes given in chunks."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in chunks:
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return digest(iter(lambda: handle.read(_BLOCK), b""))[0]


def store(root: Path, data: bytes) -> StoredObject:
    """Put `data` into the store (a temp file and a rename); an object already stored intact is not rewritten."""
    sha, size = digest([data])
    path = object_path(root, sha)
    if not check(root, sha).ok:
        atomic_write(path, data, mode=0o444)
    return StoredObject(sha, size, path)


def check(root: Path, sha256: str) -> ObjectState:
    """Hash the stored object again: ok, missing, or mismatch (with the sha256 its bytes have now)."""
    rel = relative_path(sha256)
    path = root / rel
    if not path.is_file():
        return ObjectState(sha256, "missing", None, rel)
    try:
        actual = _file_digest(path)
    except OSError as exc:
        raise LocalError(f"{rel}: cannot read ({exc.strerror})") from None
    return ObjectState(sha256, "ok" if actual == sha256 else "mismatch", actual, rel)


def mismatch_error(state: ObjectState, what: str, hint: str) -> ValidationError:
    """The refusal of an object whose bytes changed: both hashes, what names it, what to do."""
    return ValidationError(
        f"{state.relative} holds bytes with sha256 {state.actual}, but {what} names sha256 {state.sha256}: "
        f"the stored object was changed. {hint}")


def read(root: Path, sha256: str, *, what: str = "the manifest", hint: str = "") -> bytes:
    """The bytes of an object, hashed on the way: ValidationError (6) on a mismatch, LocalError (3) if missing."""
    rel = relative_path(sha256)
    path = root / rel
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LocalError(f"{rel}: not in the object store ({what} names it). {hint}".rstrip()) from None
    except OSError as exc:
        raise LocalError(f"{rel}: cannot read ({exc.strerror})") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise mismatch_error(ObjectState(sha256, "mismatch", actual, rel), what, hint)
    return data
