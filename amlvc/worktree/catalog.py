"""The asset catalog: names and versions of asset ids amlvc has seen in workspaces (`.amlvc/assets.json`, ignored).

Experiments pin assets by id (`{owner}.{family}.v1-default-{batch}`); what a person calls them ("Kundenstamm
2016.csv, version 2") lives in the workspace's lists. Commands that read those lists (`outdated`, `bump`,
`dataset`, `model`) note each version here, so that `amlvc diff` can say "dataset Kundenstamm 2016.csv:
version 1 → 2" without asking the workspace. Model manifests (`models/*.json`, in git) name model versions too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from amlvc import rules
from amlvc.canonical.jsonio import dumps
from amlvc.rules import ASSET_CATALOG_FILE
from amlvc.worktree import models
from amlvc.worktree.files import atomic_write


@dataclass(frozen=True)
class Known:
    """One asset version as a workspace lists it."""

    id: str
    kind: str  # dataset | trainedmodel | transform | module
    name: str | None
    version: int | None  # ServiceVersion + 1
    created: str | None  # ISO 8601 UTC

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "version": self.version, "created": self.created}


def load(root: Path) -> dict[str, Known]:
    """id -> what the catalog knows of it (an unreadable catalog is an empty one: it is only a cache)."""
    try:
        data = json.loads((root / ASSET_CATALOG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    items = data.get("assets") if isinstance(data, dict) else None
    out: dict[str, Known] = {}
    for ident, item in (items.items() if isinstance(items, dict) else []):
        if isinstance(item, dict):
            version = item.get("version")
            out[ident] = Known(ident, str(item.get("kind") or "asset"), _text(item.get("name")),
                               version if isinstance(version, int) else None, _text(item.get("created")))
    return out


def note(root: Path, seen: Iterable[Known]) -> None:
    """Add or refresh entries (only those with a name or version); writes nothing when nothing is new."""
    current = load(root)
    merged = dict(current)
    for known in seen:
        if known.name is not None or known.version is not None:
            merged[known.id] = known
    if merged != current:
        body = {"assets": {ident: merged[ident].to_json() for ident in sorted(merged)}}
        atomic_write(root / ASSET_CATALOG_FILE, dumps(body))


def names(root: Path, manifests: Mapping[str, models.Manifest] | None = None) -> dict[str, Known]:
    """Everything known by id: the catalog, and the versions of the model manifests (which win)."""
    out = load(root)
    for manifest in (manifests if manifests is not None else models.load_all(root)).values():
        for v in manifest.versions:
            out[v.id] = Known(v.id, "trainedmodel", manifest.name, v.version, v.created)
    return out




def change_words(kind: str, name: str, old: Known | None, new: Known | None, old_id: str, new_id: str) -> str:
    """"dataset Kundenstamm 2016.csv: version 1 → 2" (batches when a version is unknown): how a bump reads."""
    if old is not None and new is not None and old.version is not None and new.version is not None:
        change = f"version {old.version} → {new.version}"
    else:
        change = f"batch {_batch(old_id)} → {_batch(new_id)}"
    return f"{rules.ASSET_KIND_WORDS.get(kind, kind)} {name}: {change}"


def _batch(ident: str) -> str:
    tail = ident.rsplit("-", 1)[-1]
    return tail if tail.isdigit() else ident


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
