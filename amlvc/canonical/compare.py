"""Structural comparison of two documents, one human line per difference (what `verify` reports)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from amlvc import rules
from amlvc.canonical.checks import type_name
from amlvc.canonical.paths import child


def _describe(value: Any) -> str:
    """A short description that never prints a string's content (it may be a secret)."""
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return f"an object with {len(value)} keys" if isinstance(value, dict) else type_name(value)


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
        ident = rules.LIST_KEYS.get(path.rsplit("/", 1)[-1])
        if ident is not None and isinstance(item, dict) and isinstance(item.get(ident), str):
            return "id:" + str(item[ident])
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
