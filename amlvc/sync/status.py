"""`amlvc status`: each experiment's state between the workspace, amlvc.lock and the working tree."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc.rules import LAYOUT_FILE
from amlvc.sync.remote import Fetched, Target, canonical, module_names, open_remote, user_experiments
from amlvc.worktree import experiments, lockfile

SYNCED = "synced"
WORKSPACE_CHANGED = "workspace-changed"
LOCAL_CHANGED = "local-changed"
DIVERGED = "diverged"
LAYOUT_ONLY = "layout-only"
WORKSPACE_ONLY = "workspace-only"
GIT_ONLY = "git-only"
STATES = (SYNCED, WORKSPACE_CHANGED, LOCAL_CHANGED, DIVERGED, LAYOUT_ONLY, WORKSPACE_ONLY, GIT_ONLY)

# How one side differs from the last sync (the lock's content hash).
NONE, LAYOUT, CONTENT, ABSENT = "none", "layout", "content", "absent"


@dataclass(frozen=True)
class ExperimentStatus:
    """One experiment: its state, and how each side differs from the last pull or push."""

    slug: str
    name: str | None
    state: str
    workspace: str  # none | layout | content | absent
    local: str  # none | layout | content | absent
    etag_moved: bool = False  # saved or run in the workspace (maybe without a content change)

    def as_json(self) -> dict[str, Any]:
        return {"experiment": self.slug, "name": self.name, "state": self.state, "workspace": self.workspace,
                "local": self.local, "etag_moved": self.etag_moved}


@dataclass(frozen=True)
class StatusResult:
    remote: str
    workspace_id: str
    experiments: tuple[ExperimentStatus, ...]

    @property
    def in_sync(self) -> bool:
        return all(e.state == SYNCED for e in self.experiments)

    def counts(self) -> dict[str, int]:
        return {state: sum(1 for e in self.experiments if e.state == state) for state in STATES}

    def as_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "workspace_id": self.workspace_id, "in_sync": self.in_sync,
                "counts": self.counts(), "experiments": [e.as_json() for e in self.experiments]}


def status(root: Path, *, remote: str | None = None, token_env: str | None = None, jobs: int = 8) -> StatusResult:
    """One list request, plus a GET of each experiment whose Etag moved (to tell content from layout)."""
    target = open_remote(root, remote, token_env=token_env, jobs=jobs)
    with target.client:
        lock = lockfile.load(root)
        entries = lockfile.entries(lock, target.name)
        listed = {str(s["ExperimentId"]): s for s in user_experiments(target.client.list_experiments())}
        slug_of_id = {str(e.get("id")): slug for slug, e in entries.items()}
        moved = {slug: listed[str(e.get("id"))] for slug, e in entries.items()
                 if str(e.get("id")) in listed and listed[str(e.get("id"))].get("Etag") != e.get("etag")}
        current = _fetch(target, moved, jobs)
        found: list[ExperimentStatus] = []
        for slug, entry in sorted(entries.items()):
            summary = listed.get(str(entry.get("id")))
            found.append(_compare(root, slug, entry, summary, current.get(slug)))
        taken = experiments.taken_slugs(root, lock)
        for exp_id, summary in sorted(listed.items(), key=lambda kv: str(kv[1].get("Description"))):
            if exp_id not in slug_of_id:
                slug = experiments.unique_slug(str(summary.get("Description") or exp_id), exp_id, taken)
                taken.add(slug)
                found.append(ExperimentStatus(slug, summary.get("Description"), WORKSPACE_ONLY, NONE, ABSENT))
        for slug in sorted(set(experiments.slugs(root, with_experiment=True)) - set(entries)):
            found.append(ExperimentStatus(slug, None, GIT_ONLY, ABSENT, NONE))
        found.sort(key=lambda e: e.slug)
        return StatusResult(target.name, target.workspace_id, tuple(found))


def _fetch(target: Target, moved: Mapping[str, Mapping[str, Any]], jobs: int) -> dict[str, Fetched]:
    if not moved:
        return {}
    names = module_names(target.client)

    def one(slug: str) -> Fetched:
        doc = target.client.get_experiment(str(moved[slug]["ExperimentId"]))
        return canonical(target, slug, doc, names, with_wsd=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(moved, pool.map(one, moved), strict=True))


def _compare(root: Path, slug: str, entry: Mapping[str, Any], summary: Mapping[str, Any] | None,
             fetched: Fetched | None) -> ExperimentStatus:
    base_hash = entry.get("content_hash")
    local = experiments.read(root, slug)
    name = summary.get("Description") if summary else None
    base: dict[str, bytes] | None = None

    def side(files: Mapping[str, bytes] | None) -> str:
        nonlocal base
        if not files:
            return ABSENT
        if lockfile.hash_like(entry, files) == base_hash:
            return NONE
        if base is None:
            base = experiments.synced_files(root, slug, entry)
        return LAYOUT if base is not None and _layout_only(base, files) else CONTENT

    local_side = side(local)
    if summary is None:
        return ExperimentStatus(slug, name, GIT_ONLY, ABSENT, local_side)
    etag_moved = summary.get("Etag") != entry.get("etag")
    ws_side = side(fetched.files) if fetched is not None else NONE
    if fetched is not None and local and fetched.files == local:
        state = SYNCED  # the same change on both sides
    elif ws_side == NONE and local_side == NONE:
        state = SYNCED
    elif {ws_side, local_side} <= {NONE, LAYOUT}:
        state = LAYOUT_ONLY
    elif ws_side == CONTENT and local_side == NONE:
        state = WORKSPACE_CHANGED
    elif ws_side == NONE and local_side == CONTENT:
        state = LOCAL_CHANGED
    elif local_side == ABSENT:
        state = WORKSPACE_CHANGED if ws_side != NONE else LOCAL_CHANGED
    else:
        state = DIVERGED
    return ExperimentStatus(slug, name, state, ws_side, local_side, etag_moved)


def _layout_only(base: Mapping[str, bytes], files: Mapping[str, bytes]) -> bool:
    """True when the two file sets differ in layout.json and nowhere else."""
    keys = set(base) | set(files)
    differing = {k for k in keys if base.get(k) != files.get(k)}
    return differing == {LAYOUT_FILE}
