"""Change records: the closed vocabulary of kinds, one record per semantic change, an experiment's records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from amlvc.review.parsed import Parsed
from amlvc.rules import EXPERIMENT_FILE

# The closed vocabulary, in the order records of one experiment are listed.
KINDS: tuple[str, ...] = (
    "experiment.renamed",
    "experiment.summary_changed",
    "experiment.property_changed",
    "node.added",
    "node.removed",
    "node.module_version_changed",
    "node.module_replaced",
    "node.comment_changed",
    "node.property_changed",
    "parameter.added",
    "parameter.removed",
    "parameter.changed",
    "script.changed",
    "asset.version_changed",
    "asset.replaced",
    "edge.added",
    "edge.removed",
    "webservice.input_added",
    "webservice.input_removed",
    "webservice.input_changed",
    "webservice.output_added",
    "webservice.output_removed",
    "webservice.output_changed",
    "webservice.parameter_added",
    "webservice.parameter_removed",
    "webservice.parameter_changed",
    "webservice.property_changed",
    "webservice.definition_added",
    "webservice.definition_removed",
    "layout.changed",
)
_RANK = {kind: i for i, kind in enumerate(KINDS)}
# Sections keep a node's records together: experiment, nodes (by id), edges, web service, layout.
_SECTION = {"experiment": 0, "node": 1, "parameter": 1, "script": 1, "asset": 1, "edge": 2, "webservice": 3,
            "layout": 4}


@dataclass(frozen=True)
class Change:
    """One semantic change; `path` is a JSON Pointer into `file` (of the new side, the old one for removals)."""

    kind: str
    path: str
    file: str = EXPERIMENT_FILE
    node: str | None = None
    label: str = ""
    old: Any = None
    new: Any = None
    breaking: bool = False
    detail: str = ""

    def sort_key(self) -> tuple[Any, ...]:
        section = _SECTION[self.kind.split(".")[0]]
        # Edge indexes differ between the sides (removed: old, added: new), so edges sort by what they join.
        where = () if section == 2 else pointer_key(self.path)
        return (section, self.node or "", where, _RANK[self.kind], self.label, self.file)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "file": self.file, "node": self.node, "label": self.label,
                "old": self.old, "new": self.new, "breaking": self.breaking, "detail": self.detail}


@dataclass(frozen=True)
class ExperimentDiff:
    """The records of one experiment; status is added, removed, modified or unchanged."""

    slug: str
    status: str
    changes: tuple[Change, ...]
    name: str = ""
    old: Parsed | None = field(default=None, compare=False, repr=False)
    new: Parsed | None = field(default=None, compare=False, repr=False)

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    def without(self, *kinds: str) -> ExperimentDiff:
        """The same diff without records of `kinds` (a modified experiment left with none is unchanged)."""
        kept = tuple(c for c in self.changes if c.kind not in kinds)
        status = "unchanged" if self.status == "modified" and not kept else self.status
        return replace(self, status=status, changes=kept)


def pointer_key(path: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a pointer: numeric parts compare as numbers."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in path.split("/")[1:])


def sort_changes(changes: Sequence[Change]) -> tuple[Change, ...]:
    return tuple(sorted(changes, key=Change.sort_key))
