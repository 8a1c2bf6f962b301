"""The blob store of the local workspace: content-addressed files beside the database, and their signed URLs.

A blob has a key like `datasets/{guid}/{guid}.csv` or `experimentoutput/{guid}/{guid}.ilearner`;
the key maps (table `blobs`) to a file `blobs/{sha[:2]}/{sha}` written before the row is
committed (spooled bodies are renamed into place), so a crash leaves at worst an unreferenced file.
SAS queries look like Azure's, `sv=2015-02-21&sr=b&sig=…&st=…&se=…&sp=r`, with an HMAC-SHA256 signature
over key, start, expiry and permission, so one SAS opens every URL form of the blob (storage.py); the
HMAC key lives in the `meta` table so URLs stay valid across restarts until `se`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from amlvc.server.bodies import Spool, Spooled
from amlvc.server.errors import ApiFault
from amlvc.server.storage import BlobRef, account_base, valid_key
from amlvc.server.store import Store
from amlvc.server.wire import same_secret

SAS_VERSION = "2015-02-21"
DEFAULT_TTL_S = 24 * 3600  # reference §3.8: se = now + 24 h, st = now - 5 min
# The inner blob URL of a node-output credential, in the account form, percent-encoded once more.
_ACCOUNT_BASE_QQ = quote(account_base(), safe="")



@dataclass(frozen=True)
class BlobInfo:
    key: str
    sha256: str
    size: int
    path: Path


_FAST_CHARS = re.compile(r"[A-Za-z0-9_.~\-:/?=&%+ ]*")
_REPLACEMENTS = (("%", "%25"), (":", "%3A"), ("/", "%2F"), ("?", "%3F"), ("=", "%3D"), ("&", "%26"), ("+", "%2B"),
                 (" ", "%20"))


def fast_quote(text: str, safe: str = "") -> str:
    """urllib.parse.quote for the characters of SAS URLs by a few str.replace calls (quote is per-byte Python)."""
    if not _FAST_CHARS.fullmatch(text):
        return quote(text, safe=safe)
    for char, escaped in _REPLACEMENTS:
        if char in text and char not in safe:
            text = text.replace(char, escaped)
    return text


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> int | None:
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


class BlobStore:
    """Blob files plus their rows; `put` must be called inside the caller's write transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.blob_dir
        with store.tx() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'sas_key'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta(key, value) VALUES('sas_key', ?)", (secrets.token_hex(32),))
                row = conn.execute("SELECT value FROM meta WHERE key = 'sas_key'").fetchone()
        self._secret = bytes.fromhex(row[0])
        # Spool files of bodies and assembled uploads: beside the blobs (one file system, so a finished spool
        # is renamed into place); what a killed server left there is removed at start.
        self.incoming = self.root / ".incoming"
        self.incoming.mkdir(exist_ok=True)
        for stale in self.incoming.iterdir():
            stale.unlink(missing_ok=True)
        self._memo: dict[tuple[str, str], str] = {}
        self._memo_second = 0
        self._window_memo: tuple[int, tuple[str, str]] = (0, ("", ""))

    def _file(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def put(self, conn: sqlite3.Connection, key: str, data: bytes) -> BlobInfo:
        """Store `data` under `key` (replacing an older value); the file is durable before the row."""
        sha = hashlib.sha256(data).hexdigest()
        if self._file(sha).exists():
            return self.alias(conn, key, BlobInfo(key, sha, len(data), self._file(sha)))
        spool = self.spool()
        try:
            spool.write(data)
        except BaseException:
            spool.discard()
            raise
        return self.put_spooled(conn, key, spool.finish())

    def spool(self) -> Spool:
        """A new spool file in the store's incoming directory (for `put_spooled`)."""
        return Spool(self.incoming)

    def put_spooled(self, conn: sqlite3.Connection, key: str, spooled: Spooled) -> BlobInfo:
        """Store a finished spool file under `key` by renaming it into place (the spool file is gone after)."""
        try:
            if not valid_key(key):
                raise ApiFault(400, None, f"invalid blob name {key!r}")
            path = self._file(spooled.sha256)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                # rename: a killed server leaves a whole file or none (no fsync: durability against power
                # loss is not a goal of a local emulator, and fsync per blob is slow).
                os.replace(spooled.path, path)
        finally:
            spooled.path.unlink(missing_ok=True)
        return self.alias(conn, key, BlobInfo(key, spooled.sha256, spooled.size, path))

    def alias(self, conn: sqlite3.Connection, key: str, content: BlobInfo) -> BlobInfo:
        """Store the content of a stored blob under another `key` too (no copy: files are content-addressed)."""
        if not valid_key(key):
            raise ApiFault(400, None, f"invalid blob name {key!r}")
        conn.execute("INSERT INTO blobs(key, sha256, size, created_ms) VALUES(?, ?, ?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size",
                     (key, content.sha256, content.size, int(time.time() * 1000)))
        return BlobInfo(key, content.sha256, content.size, self._file(content.sha256))

    def info(self, conn: sqlite3.Connection, key: str) -> BlobInfo | None:
        row = conn.execute("SELECT sha256, size FROM blobs WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return BlobInfo(key, row["sha256"], int(row["size"]), self._file(row["sha256"]))

    def read(self, key: str) -> bytes | None:
        with self.store.read() as conn:
            info = self.info(conn, key)
        return info.path.read_bytes() if info is not None and info.path.exists() else None

    def _signature(self, key: str, st: str, se: str, sp: str) -> str:
        mac = hmac.digest(self._secret, f"{key}\n{st}\n{se}\n{sp}".encode(), "sha256")
        return base64.b64encode(mac).decode("ascii")

    def _window(self, t: int, ttl_s: int) -> tuple[str, str]:
        """(st, se) of a SAS issued at second t: st = t - 5 min, se = t + ttl (reference §3.8)."""
        if ttl_s == DEFAULT_TTL_S and self._window_memo[0] == t:
            return self._window_memo[1]
        window = (_iso(t - 300), _iso(t + ttl_s))
        if ttl_s == DEFAULT_TTL_S:
            self._window_memo = (t, window)
        return window

    def sas_query(self, key: str, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
        """`sv=…&sr=b&sig=…&st=…&se=…&sp=r` for `key` (field order as in the captured SAS URLs)."""
        st, se = self._window(int(now if now is not None else time.time()), ttl_s)
        sig = self._signature(key, st, se, "r")
        st_q, se_q = st.replace(":", "%3A"), se.replace(":", "%3A")  # ISO times only need their colons escaped
        return f"sv={SAS_VERSION}&sr=b&sig={fast_quote(sig)}&st={st_q}&se={se_q}&sp=r"

    def sas_url(self, base_url: str, key: str, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
        """Absolute signed URL of a blob; base_url is the server root as the client sees it."""
        return f"{base_url.rstrip('/')}/blobs/{fast_quote(key, '/')}?{self.sas_query(key, ttl_s, now)}"

    def shared_access(self, ws: str, key: str) -> str:
        """`AccessCredential` of a node-output endpoint (reference §3.8): workspace, signature, blob SAS URL.

        The blob URL is the account form (`https://amlvclocal.blob.core.windows.net/{key}?{SAS}`, as the
        real service named its storage account there); `api/sharedaccess` of this server reads it. The outer
        `signature` repeats the blob URL's own `sig` (the inner SAS is what authenticates); the doubly
        percent-encoded URL is assembled from its parts, since a 40-module GET carries ~300 credentials.
        Within one second a credential is the same string, so it is memoised per second.
        """
        t = int(time.time())
        if t != self._memo_second:
            self._memo = {}
            self._memo_second = t
        memo_key = (ws, key)
        found = self._memo.get(memo_key)
        if found is not None:
            return found
        st, se = self._window(t, DEFAULT_TTL_S)
        sig_q = fast_quote(self._signature(key, st, se, "r"))
        # quote(quote(key, "/"), ""): keys hold only [A-Za-z0-9._ /-] (storage.KEY_RE)
        key_qq = key.replace("/", "%2F").replace(" ", "%2520")
        uri_qq = (f"{_ACCOUNT_BASE_QQ}{key_qq}%3Fsv%3D{SAS_VERSION}%26sr%3Db%26sig%3D{sig_q.replace('%', '%25')}"
                  f"%26st%3D{st.replace(':', '%253A')}%26se%3D{se.replace(':', '%253A')}%26sp%3Dr")
        value = f"?workspaceId={ws}&signature={sig_q}&sharedAccessUri={uri_qq}"
        self._memo[memo_key] = value
        return value

    @staticmethod
    def check_shared_access(uri: str, signature: str) -> None:
        """The outer signature must repeat the blob URL's `sig` (the blob URL itself is checked by `check`)."""
        inner = parse_qs(urlsplit(uri).query).get("sig", [""])[0]
        if not inner or not same_secret(signature, inner):
            raise ApiFault(403, "AuthenticationFailed", "the shared access signature does not match")

    def sas_problem(self, key: str, st: str | None, se: str | None, sp: str | None, sig: str | None) -> str | None:
        """Why a SAS does not grant reading `key` (incomplete, forged, expired, not yet valid), or None."""
        if not (st and se and sp and sig):
            return "the blob URL carries no complete signature (st, se, sp, sig)"
        if not same_secret(sig, self._signature(key, st, se, sp)) or "r" not in sp:
            return "the blob URL signature does not match"
        end, start = _parse_iso(se), _parse_iso(st)
        now = time.time()
        if end is None or start is None or now > end:
            return "the blob URL has expired; GET the resource again for a fresh URL"
        if now < start - 60:
            return "the blob URL is not valid yet"
        return None

    def ref_problem(self, ref: BlobRef) -> str | None:
        """Why a URL a client sent does not grant reading its blob: None when it carries no SAS at all (the
        service reads its own storage with its account key) or a SAS that verifies."""
        if ref.sas is None:
            return None
        return self.sas_problem(ref.key, *(ref.sas.get(name) for name in ("st", "se", "sp", "sig")))

    def check(self, key: str, st: str | None, se: str | None, sp: str | None, sig: str | None) -> None:
        """403 unless the signature matches and the URL is within [st, se]."""
        problem = self.sas_problem(key, st, se, sp, sig)
        if problem is not None:
            raise ApiFault(403, "AuthenticationFailed", problem)
