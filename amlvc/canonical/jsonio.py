"""JSON in and out: the strict reader with limits, the loader of amlvc's own files, the canonical writer, the hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring as _encode_string  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import orjson

from amlvc import rules
from amlvc.canonical.checks import expect_dict, fail, find_conflict
from amlvc.errors import LocalError

_INFINITY = float("inf")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INFINITY, -_INFINITY):  # 1e400: valid JSON syntax, but no JSON writer can write it back
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def loads(data: bytes | str, source: str) -> Any:
    """Parse JSON strictly (no NaN, no duplicate keys, bounded nesting); errors name line and column."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):  # editors save exports with a BOM (reference 1.4)
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            fail(source, "", f"not valid UTF-8 at byte {exc.start}; save the file as UTF-8")
    else:
        text = data
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                          object_pairs_hook=_unique_object)
    except json.JSONDecodeError as exc:
        fail(source, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    except RecursionError:
        fail(source, "", "JSON nested too deeply")
    except ValueError as exc:  # duplicate keys, NaN, integers too long to convert
        fail(source, "", f"invalid JSON: {exc}")


def load_json_file(path: Path | str) -> Any:
    """Read a JSON document from disk with the size limit; missing file or directory is a LocalError."""
    file = Path(path)
    source = str(path)
    if not file.exists():
        raise LocalError(f"{source}: no such file; check the path")
    if file.is_dir():
        raise LocalError(f"{source}: is a directory, expected a JSON file")
    try:
        size = file.stat().st_size
        if size > rules.MAX_DOCUMENT_BYTES:
            fail(source, "", f"file of {size:,} bytes is over the limit of {rules.MAX_DOCUMENT_BYTES:,} bytes")
        with file.open("rb") as handle:
            data = handle.read(rules.MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise LocalError(f"{source}: cannot read ({exc.strerror})") from None
    if len(data) > rules.MAX_DOCUMENT_BYTES:
        fail(source, "", f"file is over the limit of {rules.MAX_DOCUMENT_BYTES:,} bytes")
    return loads(data, source)


def load_canonical(data: bytes | None, source: str) -> dict[str, Any]:
    """Parse one of amlvc's own files (an object; absent = {}); a merge driver's conflict marker makes it invalid."""
    if data is None:
        return {}
    value = expect_dict(loads(data, source), source, "")
    # Walking a 2,000-node document costs more than parsing it; only a file that holds the key can have a marker.
    where = find_conflict(value) if rules.CONFLICT_MARKER.encode() in data else None
    if where is not None:
        fail(source, where, "unresolved merge conflict ($conflict); edit the file to keep one side, then `git add` it")
    return value


# --- the canonical JSON writer ---------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """The one canonical JSON writer: sorted keys, indent 2, UTF-8 without escapes, newline at the end.

    Byte-identical to json.dumps(sort_keys=True, indent=2, ensure_ascii=False) + "\n". A value of plain
    dicts, lists, strings, integers, booleans and nulls (a normalized document) goes to orjson, about 15
    times faster; anything else, floats included (orjson spells 1e-05 as 0.00001 and NaN as null), to the
    writer below, which matches the standard library exactly and is itself three times faster than it.
    """
    if _plain(value):
        try:
            return orjson.dumps(value, option=_ORJSON)
        except TypeError:  # orjson.JSONEncodeError: a key that is not a string, an integer over 64 bits,
            pass  # a lone surrogate, nesting over 254 levels: the writer below says what the stdlib says
    out: list[str] = []
    try:
        _write(value, "", out.append)
    except _Unusual:
        text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")
    out.append("\n")
    return "".join(out).encode("utf-8")


_ORJSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_SUBCLASS
_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """True when `value` holds only dicts, lists, tuples, strings, integers, booleans and None (exact types):
    what orjson writes exactly as the standard library does."""
    stack = [value]
    pop = stack.pop
    push = stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            push(item.values())
        elif kind is list or kind is tuple:
            push(item)
        elif kind not in _SCALARS:
            return False
    return True


class _Unusual(Exception):
    """A value the fast writer leaves to the standard library (non-string keys, int/float subclasses, NaN)."""


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and value == value and value not in (_INFINITY, -_INFINITY):
        return float.__repr__(value)
    raise _Unusual


def _write(value: Any, indent: str, emit: Callable[[str], None]) -> None:
    kind = type(value)
    if kind is dict:
        if not value:
            emit("{}")
            return
        inner = indent + "  "
        lead = "{\n" + inner
        for key in sorted(value):
            if type(key) is not str:
                raise _Unusual
            item = value[key]
            item_kind = type(item)
            if item_kind is str:
                emit(lead + _encode_string(key) + ": " + _encode_string(item))
            elif item_kind is dict or item_kind is list:
                emit(lead + _encode_string(key) + ": ")
                _write(item, inner, emit)
            else:
                emit(lead + _encode_string(key) + ": " + _scalar(item))
            lead = ",\n" + inner
        emit("\n" + indent + "}")
    elif kind is list:
        if not value:
            emit("[]")
            return
        inner = indent + "  "
        lead = "[\n" + inner
        for item in value:
            item_kind = type(item)
            if item_kind is str:
                emit(lead + _encode_string(item))
            elif item_kind is dict or item_kind is list:
                emit(lead)
                _write(item, inner, emit)
            else:
                emit(lead + _scalar(item))
            lead = ",\n" + inner
        emit("\n" + indent + "]")
    elif kind is str:
        emit(_encode_string(value))
    else:
        emit(_scalar(value))


def content_hash(files: Mapping[str, bytes]) -> str:
    """sha256 over the sorted (relative path, bytes) pairs of an experiment directory."""
    digest = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        digest.update(f"{path}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()
