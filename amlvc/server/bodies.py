"""Request bodies of the local workspace: one bounded reader, spool files hashed as they fill, and a clean 413.

Every body is read here, from the WSGI input itself (Content-Length bodies and chunked ones alike),
in 1 MiB pieces: JSON bodies into memory up to their own limit, uploads into a spool file in the
data directory while their sha256 is computed, so a request costs a bounded amount of memory
whatever its size. A body over its limit is refused with 413 and nothing is stored; the rest of it is
read and dropped (up to `DRAIN_BYTES`) so the client, still sending, sees the 413 rather than a reset.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import request
from werkzeug.wsgi import get_input_stream

from amlvc.server.errors import ApiFault, Style

MAX_BODY_BYTES = 64 * 1024 * 1024  # uploads: a whole file (R) or one blobuploads block
CHUNK_BYTES = 1024 * 1024
DRAIN_BYTES = 256 * 1024 * 1024  # read past a refused body at most this far; beyond it the connection is closed


@dataclass(frozen=True)
class Spooled:
    """A finished spool file: where it is, its sha256 and size (moved into the blob store, or removed)."""

    path: Path
    sha256: str
    size: int


class Spool:
    """A temporary file in `directory` being written and hashed; `finish()` or `discard()` ends it."""

    def __init__(self, directory: Path) -> None:
        handle, name = tempfile.mkstemp(dir=directory, prefix="spool-", suffix=".tmp")
        self._file = os.fdopen(handle, "wb")
        self.path = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def copy_from(self, path: Path) -> None:
        """Append a file's bytes, piece by piece."""
        with path.open("rb") as source:
            while piece := source.read(CHUNK_BYTES):
                self.write(piece)

    def finish(self) -> Spooled:
        self._file.close()
        return Spooled(self.path, self._hash.hexdigest(), self.size)

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _input() -> IO[bytes]:
    # Not request.stream: Flask would cut a chunked body at MAX_CONTENT_LENGTH without a word (the truncated
    # upload was stored with another sha256). Content-Length bodies come limited to their length; chunked
    # ones end where the server's dechunker ends them; a body with neither is empty.
    return get_input_stream(request.environ, max_content_length=None)


def _drain(stream: IO[bytes], budget: int) -> None:
    try:
        while budget > 0 and (piece := stream.read(min(CHUNK_BYTES, budget))):
            budget -= len(piece)
    except Exception:  # OSError, werkzeug's ClientDisconnected: the client is gone, and the 413 stands
        pass


def too_large(limit: int, style: Style, stream: IO[bytes] | None = None) -> ApiFault:
    """The 413 of a body over `limit`, after reading (and dropping) what the client still sends."""
    length = request.content_length
    if stream is None and (length is None or length - limit <= DRAIN_BYTES):
        stream = _input()
    if stream is not None:
        _drain(stream, DRAIN_BYTES)
    return ApiFault(413, None, f"the request body is over {limit} bytes ({limit // (1024 * 1024)} MiB); nothing was "
                               "stored. Send a large dataset in blocks (blobuploads, each at most 64 MiB)",
                    style, headers={"Connection": "close"})


def read_limited(limit: int, style: Style) -> bytes:
    """The whole body in memory, at most `limit` bytes (JSON bodies); 413 beyond."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit, style)
    stream = _input()
    data = bytearray()
    while piece := stream.read(min(CHUNK_BYTES, limit + 1 - len(data))):
        data += piece
        if len(data) > limit:
            raise too_large(limit, style, stream)
    return bytes(data)


def spool_body(directory: Path, limit: int = MAX_BODY_BYTES, style: Style = "studio") -> Spooled:
    """The body written to a spool file in `directory` and hashed on the way; 413 (file removed) beyond `limit`."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit, style)
    stream = _input()
    spool = Spool(directory)
    try:
        while piece := stream.read(CHUNK_BYTES):
            if spool.size + len(piece) > limit:
                raise too_large(limit, style, stream)
            spool.write(piece)
    except BaseException:
        spool.discard()
        raise
    return spool.finish()
