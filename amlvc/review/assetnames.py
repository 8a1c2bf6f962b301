"""How a diff names asset versions: `asset.version_changed` records relabelled from the asset catalog and the model
manifests, so a bump reads "~ dataset Kundenstamm 2016.csv: version 1 → 2" instead of two resource ids.

A named record has the asset as its `label` ("dataset Kundenstamm 2016.csv") and "version 1 → 2 (<node> ←
<port>)" as its `detail`; a record whose ids nobody has named keeps the port as its label (which always holds
" ← ") and the batches as its detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from amlvc import rules
from amlvc.review.records import Change, ExperimentDiff
from amlvc.rules import ASSET_PORT_KEYS

if TYPE_CHECKING:
    from amlvc.worktree import catalog

_PORT_MARK = " ← "  # review.diff labels a port "<node> ← <port>"


def is_named(change: Change) -> bool:
    """Whether `name_versions` named this asset record (renderers then show label and detail as they are)."""
    return change.kind == "asset.version_changed" and _PORT_MARK not in change.label and bool(change.label)


def name_versions(root: Path, diffs: Sequence[ExperimentDiff]) -> list[ExperimentDiff]:
    """`diffs` with every asset version change the repository can name relabelled (the rest unchanged)."""
    if not any(c.kind == "asset.version_changed" for d in diffs for c in d.changes):
        return list(diffs)
    from amlvc.worktree import catalog  # reads .amlvc/ and models/: only when there is something to name

    known = catalog.names(root)
    out = []
    for d in diffs:
        changes = tuple(_named(c, known) if c.kind == "asset.version_changed" else c for c in d.changes)
        out.append(replace(d, changes=changes) if changes != d.changes else d)
    return out


def _named(change: Change, known: dict[str, catalog.Known]) -> Change:
    from amlvc.worktree import catalog

    old, new = known.get(str(change.old)), known.get(str(change.new))
    name = (new.name if new else None) or (old.name if old else None)
    if name is None:
        return change
    either = new or old
    kind = either.kind if either is not None else ""
    if kind not in rules.ASSET_KIND_WORDS:
        kind = ASSET_PORT_KEYS.get(change.path.rsplit("/", 1)[-1], "asset").replace("-", "")
    words = catalog.change_words(kind, name, old, new, str(change.old), str(change.new))
    label, _, versions = words.partition(": ")
    return replace(change, label=label, detail=f"{versions} ({change.label})")
