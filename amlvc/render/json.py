"""The machine rendering: every record plus, per experiment, an RFC 6902 patch (jsonpatch) from old to new."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import jsonpatch

from amlvc.canonical.paths import pointer
from amlvc.review.records import ExperimentDiff

FORMAT = "amlvc/diff@1"
_SMALL_LIST = 64


def patch(d: ExperimentDiff) -> list[dict[str, Any]]:
    """Operations turning the old experiment's files into the new ones (see Tree.as_document)."""
    old = d.old.as_document() if d.old is not None else {}
    new = d.new.as_document() if d.new is not None else {}
    return list(_ops(old, new, ""))


def _ops(old: Any, new: Any, prefix: str) -> Iterator[dict[str, Any]]:
    """Objects are walked key by key (an untouched node costs one comparison); jsonpatch diffs what differs.

    jsonpatch on the whole document compares every node of a 2,000-module graph; descending first keeps the
    patch the same shape and the time proportional to the change.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                yield {"op": "remove", "path": prefix + pointer(key)}
        for key, value in new.items():
            if key not in old:
                yield {"op": "add", "path": prefix + pointer(key), "value": value}
            elif old[key] != value:
                yield from _ops(old[key], value, prefix + pointer(key))
        return
    if isinstance(old, list) and isinstance(new, list):
        if len(old) == len(new):
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                if a != b:
                    yield from _ops(a, b, f"{prefix}/{index}")
            return
        if len(old) + len(new) <= _SMALL_LIST:
            for op in jsonpatch.make_patch(old, new).patch:
                yield {**op, "path": prefix + op["path"], **({"from": prefix + op["from"]} if "from" in op else {})}
            return
        yield from _list_ops(old, new, prefix)
        return
    yield {"op": "replace", "path": prefix, "value": new}


def _list_ops(old: list[Any], new: list[Any], prefix: str) -> Iterator[dict[str, Any]]:
    """A long list (edges, positions): blocks matched by difflib, applied from the end so indices stay valid."""
    def key(item: Any) -> str:
        return json.dumps(item, sort_keys=True)

    matcher = difflib.SequenceMatcher(None, [key(x) for x in old], [key(x) for x in new], autojunk=False)
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        common = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for i in range(i2 - 1, i1 + common - 1, -1):
            yield {"op": "remove", "path": f"{prefix}/{i}"}
        for j in range(j1 + common, j2):
            yield {"op": "add", "path": f"{prefix}/{i1 + j - j1}", "value": new[j]}
        for k in range(common):
            yield from _ops(old[i1 + k], new[j1 + k], f"{prefix}/{i1 + k}")


def to_data(diffs: Sequence[ExperimentDiff]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "breaking": any(d.breaking for d in diffs),
        "experiments": [
            {"slug": d.slug, "name": d.name, "status": d.status, "breaking": d.breaking,
             "changes": [c.to_json() for c in d.changes], "patch": patch(d)}
            for d in diffs if d.changes or d.status != "unchanged"
        ],
    }


def render_json(diffs: Sequence[ExperimentDiff]) -> str:
    return json.dumps(to_data(diffs), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
