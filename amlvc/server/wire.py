"""Wire conventions of the Studio API: Json.NET-style JSON, `\\/Date(ms)\\/` dates, table-storage Etags, ids.

Dates are kept inside the server as the plain string `/Date(ms)/`; `dumps` escapes their slashes
on the way out (reference §1.4: only date slashes are escaped, every other slash is not).
"""

from __future__ import annotations

import hmac
import json
import re
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, request

from amlvc import rules
from amlvc.server.bodies import read_limited
from amlvc.server.errors import ApiFault, Style

GLOBAL_WORKSPACE_ID = rules.BUILTIN_OWNER
MIN_DATE_MS = -62135596800000  # DateTime.MinValue, the observed "unset" time (reference §7 Q7)
TICKS_AT_EPOCH = 621355968000000000  # .NET ticks (100 ns since 0001-01-01) at 1970-01-01
MAX_TICKS = 3155378975999999999  # DateTime.MaxValue
MAX_JSON_BYTES = 16 * 1024 * 1024
_BODY_KEY = "amlvc.json_body"
MAX_JSON_DEPTH = 64

WORKSPACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
RESOURCE_ID_RE = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{32})\.v1-default-([0-9]{1,9})$")
LEAF_ID_RE = re.compile(r"^([0-9a-f]{32})\.f-id\.([0-9a-f]{32})$")
SNAPSHOT_ID_RE = re.compile(r"^([0-9a-f]{32})\.s-id\.([0-9a-f]{32})\.(\d{4}-\d{2}-\d{2}t\d{2}\.\d{2}\.\d{2})$")
_DATE_RE = re.compile(r'"/Date\((-?\d+)\)/"')


def now_ms() -> int:
    return int(time.time() * 1000)


def date(ms: int) -> str:
    """The internal form of a date; rendered as `"\\/Date(ms)\\/"` by `dumps`."""
    return f"/Date({ms})/"


def date_ms(value: Any) -> int | None:
    """Milliseconds of a `/Date(ms)/` string, else None."""
    if isinstance(value, str):
        match = re.fullmatch(r"/Date\((-?\d+)\)/", value)
        if match:
            return int(match.group(1))
    return None


def ticks(ms: int) -> int:
    """.NET ticks of a Unix millisecond time (the `CreatedDateTicks` companion of asset dates)."""
    return TICKS_AT_EPOCH + ms * 10_000


def dumps(value: Any) -> str:
    """Compact JSON as the service sent it (reference §7 Q1), dates with escaped slashes."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _DATE_RE.sub(r'"\\/Date(\1)\\/"', text)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(dumps(value), status=status, mimetype="application/json")
    resp.headers["Content-Type"] = "application/json; charset=utf-8"
    for key, val in (headers or {}).items():
        resp.headers[key] = val
    return resp


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for item in value.values():
            _check_depth(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_depth(item, depth + 1)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)


def pointer_token(key: str) -> str:
    """A member name as one JSON Pointer token (RFC 6901: `~` as `~0`, `/` as `~1`)."""
    return key.replace("~", "~0").replace("/", "~1")


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """The JSON Pointer of the first key or string holding a lone surrogate (`"\\ud800"`), else None.

    Python's json module decodes such escapes into str that cannot be encoded as UTF-8: stored, they
    would break every later answer that contains them, so they are refused at the door.
    """
    if isinstance(value, str):
        return path if _LONE_SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}/{pointer_token(_LONE_SURROGATE.sub('?', key))}"
            if _LONE_SURROGATE.search(key):
                return here
            found = lone_surrogate_at(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate_at(item, f"{path}/{index}")
            if found is not None:
                return found
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# The error code of a body that cannot be read, per API (None: the status's code, e.g. BadArgument).
BODY_ERROR_CODES: dict[Style, str | None] = {"studio": None, "mgmt": None, "arm": "InvalidRequestContent"}


def json_body(style: Style = "studio", *, allow_empty: bool = False) -> Any:
    """The request body parsed as JSON; 400/413 with a JSON error body when it is not usable."""
    raw = request.environ.get(_BODY_KEY)
    if raw is None:  # read once per request: a handler may ask again
        raw = request.environ[_BODY_KEY] = read_limited(MAX_JSON_BYTES, style)
    if not raw.strip():
        if allow_empty:
            return None
        raise ApiFault(400, None, "the request body is empty; a JSON document was expected", style)
    try:
        text = raw.decode("utf-8-sig")
        value = json.loads(text, parse_constant=_reject_constant)
        _check_depth(value)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiFault(400, BODY_ERROR_CODES[style], f"the request body is not valid JSON: {exc}", style) from None
    # A surrogate pair (an emoji) decodes to one character; only a lone half is refused.
    pointer = lone_surrogate_at(value) if _ESCAPED_SURROGATE.search(text) else None
    if pointer is not None:
        where = pointer or "/"
        raise ApiFault(400, BODY_ERROR_CODES[style],
                       f"{where}: a string holds a lone UTF-16 surrogate (an escape like \\ud800 without its "
                       "pair), which is not Unicode text; send the character itself or a complete surrogate pair",
                       style, target=where)
    return value


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of a token, key or signature a client sent and the one expected.

    Compared as UTF-8 bytes: header values arrive decoded as latin-1 and query values as UTF-8, so
    they may hold any character, and `hmac.compare_digest` refuses non-ASCII str (a TypeError, a 500).
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def new_guid() -> str:
    return uuid.uuid4().hex


def etag_from_ticks(value: int) -> str:
    """Azure Table Storage weak ETag: W/"datetime'2016-05-25T20%3A22%3A48.9673538Z'" (reference §1.6)."""
    seconds, frac = divmod(value - TICKS_AT_EPOCH, 10_000_000)
    stamp = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:07d}Z"
    return 'W/"datetime\'' + text.replace(":", "%3A") + '\'"'


def next_etag(conn: sqlite3.Connection) -> str:
    """A new Etag, strictly later than every Etag this data directory ever issued.

    Called inside a write transaction (BEGIN IMMEDIATE serialises writers), so two writes can
    never share an Etag even within one clock tick or across restarts.
    """
    row = conn.execute("SELECT value FROM meta WHERE key = 'last_etag_ticks'").fetchone()
    last = int(row[0]) if row else 0
    value = max(TICKS_AT_EPOCH + time.time_ns() // 100, last + 1)
    conn.execute("INSERT INTO meta(key, value) VALUES('last_etag_ticks', ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(value),))
    return etag_from_ticks(value)


def reverse_timestamp(ms: int) -> str:
    """`DateTime.MaxValue - (t - 1970)` as `yyyy-MM-dd't'HH.mm.ss` (reference §1.6, verified on the capture)."""
    remaining = MAX_TICKS - ms * 10_000
    stamp = datetime(1, 1, 1) + timedelta(microseconds=remaining // 10)
    return stamp.strftime("%Y-%m-%dt%H.%M.%S")


def resource_id(owner: str, family: str, batch: int) -> str:
    return f"{owner}.{family}.v1-default-{batch}"
