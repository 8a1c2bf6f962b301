"""Changes of trained-model manifests (`models/*.json`) between revisions, in words: "+ model churn@4 (sha256 1a2b…,
from kundigung-training run 2017-07-03)"; for `amlvc diff` and for `amlvc log` of the experiment a model came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.rules import MODELS_DIR
from amlvc.worktree import models
from amlvc.worktree.models import Manifest, ModelVersion


@dataclass(frozen=True)
class ModelChange:
    """A model version added to (+), dropped from (-) or changed in (~) a manifest."""

    sigil: str
    manifest: str  # the manifest's slug
    name: str
    version: ModelVersion

    @property
    def text(self) -> str:
        return f"{self.sigil} {models.line(self.name, self.version)}"

    def to_json(self) -> dict[str, Any]:
        return {"change": {"+": "added", "-": "removed", "~": "changed"}[self.sigil], "manifest":
                models.path(self.manifest), "name": self.name, **self.version.to_json()}


def diff_manifests(old: Mapping[str, Manifest], new: Mapping[str, Manifest]) -> list[ModelChange]:
    """Version by version, ordered by manifest and version."""
    out = []
    for slug in sorted(set(old) | set(new)):
        a, b = old.get(slug), new.get(slug)
        before = {v.version: v for v in a.versions} if a else {}
        after = {v.version: v for v in b.versions} if b else {}
        either = b or a
        name = either.name if either is not None else slug
        for number in sorted(set(before) | set(after)):
            was, now = before.get(number), after.get(number)
            if was == now:
                continue
            sigil = "+" if was is None else "-" if now is None else "~"
            changed = now or was
            assert changed is not None
            out.append(ModelChange(sigil, slug, name, changed))
    return out


def diff_models(root: Path, rev_a: str | None, rev_b: str | None) -> list[ModelChange]:
    """As `amlvc diff` compares experiments: no revision = HEAD against the work tree, and so on."""
    if rev_a is None and repo.head(root) is None:
        return diff_manifests({}, models.load_all(root))
    if not repo.changed_paths(root, rev_a or "HEAD", rev_b, MODELS_DIR):
        return []
    return diff_manifests(models.load_all(root, rev_a or "HEAD"), models.load_all(root, rev_b))


def log_models(root: Path, slug: str, max_count: int | None = None) -> list[tuple[repo.CommitInfo, list[ModelChange]]]:
    """Commits that added or changed versions of models promoted from experiment `slug` (of any model without
    one), newest first."""
    out = []
    for info in repo.commits_touching(root, MODELS_DIR):
        before = models.load_all(root, info.parent) if info.parent else {}
        changes = [c for c in diff_manifests(before, models.load_all(root, info.commit))
                   if not slug or c.version.source.experiment_slug == slug]
        if changes:
            out.append((info, changes))
            if max_count is not None and len(out) >= max_count:
                break
    return out
