"""Documents on disk and in memory: JSON loading with limits, schema classification, typed checks with JSON Pointers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring as _encode_string  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any, Literal, NoReturn

from amlvc import rules
from amlvc.errors import InvalidDocument, LocalError

DocumentKind = Literal["experiment", "wsd", "snapshot"]


def pointer(*parts: str | int) -> str:
    """The JSON Pointer (RFC 6901) of a path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def child(path: str, part: str | int) -> str:
    """Extend a JSON Pointer by one step."""
    return path + "/" + str(part).replace("~", "~0").replace("/", "~1")


# A path inside a document: a JSON Pointer string, or (parent, key) pairs rendered only when an error needs it
# (the hot loops of normalize would otherwise build a string per value).
Where = str | tuple[Any, str | int]


def at(parent: Where, key: str | int) -> Where:
    """A child path, built lazily."""
    return (parent, key)


def render(where: Where) -> str:
    """The JSON Pointer of a path."""
    parts: list[str | int] = []
    while isinstance(where, tuple):
        parts.append(where[1])
        where = where[0]
    return where + pointer(*reversed(parts))


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def fail(source: str, path: Where, problem: str) -> NoReturn:
    raise InvalidDocument(source, render(path), problem)


def expect_dict(value: Any, source: str, path: Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(source, path, f"expected an object, got {_type_name(value)}")
    return value


def expect_list(value: Any, source: str, path: Where) -> list[Any]:
    if not isinstance(value, list):
        fail(source, path, f"expected a list, got {_type_name(value)}")
    return value


def expect_str(value: Any, source: str, path: Where) -> str:
    if not isinstance(value, str):
        fail(source, path, f"expected a string, got {_type_name(value)}")
    if len(value) > rules.MAX_STRING_LENGTH:
        fail(source, path, f"string of {len(value):,} characters is over the limit of {rules.MAX_STRING_LENGTH:,}")
    return value


def expect_opt_str(value: Any, source: str, path: Where) -> str | None:
    if value is None:
        return None
    return expect_str(value, source, path)


def check_tree(value: Any, source: str, path: Where, depth: int = 0) -> None:
    """Check a pass-through value: every string within the length limit, nesting within MAX_DEPTH."""
    if isinstance(value, str):
        if len(value) > rules.MAX_STRING_LENGTH:
            expect_str(value, source, path)
    elif isinstance(value, dict):
        if depth >= rules.MAX_DEPTH:
            fail(source, path, f"nested deeper than {rules.MAX_DEPTH} levels")
        for key, item in value.items():
            if type(item) is str:
                if len(item) > rules.MAX_STRING_LENGTH:
                    expect_str(item, source, (path, key))
            elif isinstance(item, dict | list | float):
                check_tree(item, source, (path, key), depth + 1)
    elif isinstance(value, list):
        if depth >= rules.MAX_DEPTH:
            fail(source, path, f"nested deeper than {rules.MAX_DEPTH} levels")
        for index, item in enumerate(value):
            if type(item) is str:
                if len(item) > rules.MAX_STRING_LENGTH:
                    expect_str(item, source, (path, index))
            elif isinstance(item, dict | list | float):
                check_tree(item, source, (path, index), depth + 1)
    elif isinstance(value, float) and (value != value or value in (_INFINITY, -_INFINITY)):
        fail(source, path, "NaN and infinite numbers are not JSON values")


def check_no_reserved(keys: Iterable[str], source: str, path: Where) -> None:
    """Keys starting with '$' are amlvc's annotations; a document that already uses them cannot round-trip."""
    for key in keys:
        if key[:1] == "$":
            fail(source, (path, key), "keys starting with '$' are reserved for amlvc annotations")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_INFINITY = float("inf")


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


def _find_key(value: Any, key: str, path: str) -> str | None:
    if isinstance(value, dict):
        if key in value:
            return child(path, key)
        items: Iterable[tuple[str | int, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for name, item in items:
        found = _find_key(item, key, child(path, name))
        if found is not None:
            return found
    return None


def loads_canonical(data: bytes, source: str) -> Any:
    """Parse one of amlvc's own files; a merge driver's conflict marker anywhere makes it invalid."""
    value = loads(data, source)
    if rules.CONFLICT_MARKER.encode() in data:
        where = _find_key(value, rules.CONFLICT_KEY, "")
        if where is not None:
            fail(source, where, "unresolved merge conflict; pick a side, delete the marker, then `git add` the file")
    return value


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


def _lower_keys(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {key.lower(): value for key, value in doc.items()}


def classify(doc: Any, source: str = "<document>") -> DocumentKind:
    """Tell a GET-experiment document, a run-history snapshot and a web-service definition apart."""
    if not isinstance(doc, dict):
        fail(source, "", f"unknown schema: expected a JSON object, got {_type_name(doc)}")
    if "Graph" in doc or "ExperimentId" in doc:
        experiment_id = doc.get("ExperimentId")
        if isinstance(experiment_id, str) and ".s-id." in experiment_id:
            return "snapshot"
        if doc.get("IsLeaf") is False:
            return "snapshot"
        return "experiment"
    lowered = _lower_keys(doc)
    properties = lowered.get("properties")
    if isinstance(properties, dict):
        inner = _lower_keys(properties)
        if "package" in inner or "packagetype" in inner or "assets" in inner:
            return "wsd"
    fail(source, "", "unknown schema: neither a GET-experiment document (no 'Graph') nor a web-service "
                     "definition (no 'properties.package'); export it with Export-AmlExperimentGraph or "
                     "Export-AzMlWebService")


def _describe(value: Any) -> str:
    """A short description that never prints a string's content (it may be a secret)."""
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return f"an object with {len(value)} keys" if isinstance(value, dict) else _type_name(value)


def _first_difference(a: str, b: str) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def compare(before: Any, after: Any, path: str = "", *, identity_lists: Iterable[str] = (),
            fold_case: bool = False) -> list[str]:
    """One human line per difference (JSON Pointer of `before` + what differs); [] when equal.

    Lists at `identity_lists` are compared as sets (items with an "Id" are paired by it); with `fold_case`
    object keys are compared case-insensitively (web-service definitions).
    """
    out: list[str] = []
    sets = frozenset(item.lower() if fold_case else item for item in identity_lists)
    _compare(before, after, path, sets, fold_case, out)
    return out


def _compare(a: Any, b: Any, path: str, sets: frozenset[str], fold: bool, out: list[str]) -> None:
    where = path or "/"
    if isinstance(a, dict) and isinstance(b, dict):
        b_keys = {(key.lower() if fold else key): key for key in b}
        seen = set()
        for key, value in a.items():
            lookup = key.lower() if fold else key
            seen.add(lookup)
            if lookup not in b_keys:
                out.append(f"{child(path, key)}: {_describe(value)} would be lost")
            else:
                _compare(value, b[b_keys[lookup]], child(path, key), sets, fold, out)
        for lookup, key in b_keys.items():
            if lookup not in seen:
                out.append(f"{child(path, key)}: would appear ({_describe(b[key])}) although the input has no such key")
    elif isinstance(a, list) and isinstance(b, list):
        if (path.lower() if fold else path) in sets:
            _compare_set(a, b, path, sets, fold, out)
            return
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} items would become {len(b)}")
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            _compare(x, y, child(path, index), sets, fold, out)
    elif type(a) is not type(b) or a != b:
        if isinstance(a, str) and isinstance(b, str):
            out.append(f"{where}: string differs at character {_first_difference(a, b)} "
                       f"({len(a)} characters would become {len(b)})")
        else:
            out.append(f"{where}: {_describe(a)} would become {_describe(b)}")


def _fold_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key.lower(): _fold_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fold_keys(item) for item in value]
    return value


def _compare_set(a: list[Any], b: list[Any], path: str, sets: frozenset[str], fold: bool, out: list[str]) -> None:
    def key(item: Any) -> str:
        if isinstance(item, dict) and isinstance(item.get("Id"), str) and path.endswith("ModuleNodes"):
            return "id:" + str(item["Id"])
        return json.dumps(_fold_keys(item) if fold else item, sort_keys=True)

    b_items: dict[str, list[Any]] = {}
    for item in b:
        b_items.setdefault(key(item), []).append(item)
    for index, item in enumerate(a):
        matches = b_items.get(key(item))
        if not matches:
            out.append(f"{child(path, index)}: item would be lost")
            continue
        _compare(item, matches.pop(0), child(path, index), sets, fold, out)
    extra = sum(len(items) for items in b_items.values())
    if extra:
        out.append(f"{path}: {extra} item(s) would appear that the input does not have")


# --- the canonical JSON writer ---------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """The one canonical JSON writer: sorted keys, indent 2, UTF-8 without escapes, newline at the end.

    Byte-identical to json.dumps(sort_keys=True, indent=2, ensure_ascii=False) + "\n", about three times
    faster: the standard library's indenting encoder is pure Python and yields one chunk per token.
    """
    out: list[str] = []
    try:
        _write(value, "", out.append)
    except _Unusual:
        text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")
    out.append("\n")
    return "".join(out).encode("utf-8")


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
    if kind is float and value == value and value not in (_INF, -_INF):
        return float.__repr__(value)
    raise _Unusual


_INF = float("inf")


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


def reorder(obj: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """Known keys in the service's order, then unknown keys (sorted, as they come back from git)."""
    result = {key: obj[key] for key in order if key in obj}
    if len(result) != len(obj):
        for key in sorted(obj):
            if key not in result:
                result[key] = obj[key]
    return result


def resource_annotation(resource_id: str) -> dict[str, Any]:
    """owner, family and batch of a '{owner}.{family}.v1-default-{batch}' id (empty when it has another shape)."""
    match = rules.RESOURCE_ID.match(resource_id)
    if match is None:
        return {}
    return {"owner": match.group("owner"), "family": match.group("family"), "batch": int(match.group("batch"))}


def find_surrogate(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "/"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = find_surrogate(key, child(path, key)) or find_surrogate(item, child(path, key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_surrogate(item, child(path, index))
            if found:
                return found
    return None
