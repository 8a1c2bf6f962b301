"""The machine rendering: every record plus, per experiment, an RFC 6902 patch (jsonpatch) from old to new."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jsonpatch

from amlvc.diff import ExperimentDiff

FORMAT = "amlvc/diff@1"


def patch(d: ExperimentDiff) -> list[dict[str, Any]]:
    """Operations turning the old experiment's files into the new ones (see Tree.as_document)."""
    old = d.old.as_document() if d.old is not None else {}
    new = d.new.as_document() if d.new is not None else {}
    ops: list[dict[str, Any]] = jsonpatch.make_patch(old, new).patch
    return ops


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
