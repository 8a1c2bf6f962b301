"""Pull's three-way merge of a diverged experiment: the last synced files, HEAD's and the workspace's."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.canonical.checks import experiment_shape, layout_shape
from amlvc.canonical.denormalize import denormalize, recorded_module_names
from amlvc.canonical.jsonio import dumps, load_canonical
from amlvc.canonical.normalize import normalize
from amlvc.errors import AmlvcError, ConflictError
from amlvc.review.merge import MergeResult, merge_experiment, merge_layout, validate_experiment
from amlvc.rules import BACKUP_REF_PREFIX, EXPERIMENT_FILE, LAYOUT_FILE, SCRIPTS_DIR, WEBSERVICE_FILE
from amlvc.worktree import experiments

MERGED_NOTE = "local edits kept"


@dataclass(frozen=True)
class Conflict:
    """One place a diverged experiment cannot be merged: a file of it, a JSON Pointer (or ""), why."""

    slug: str
    file: str
    where: str
    reason: str

    def line(self) -> str:
        place = experiments.path(self.slug, self.file)
        return f"  {place}{' ' + self.where if self.where else ''}: {self.reason}"


@dataclass(frozen=True)
class Outcome:
    """The merged files of one experiment, or the conflicts that stop the merge."""

    files: dict[str, bytes]
    conflicts: tuple[Conflict, ...]


def merge_diverged(root: Path, entries: Mapping[str, Mapping[str, Any]],
                   theirs: Mapping[str, Mapping[str, bytes]]) -> dict[str, dict[str, bytes]]:
    """The merged files of every diverged experiment (slug -> files); ConflictError when any cannot merge.

    Base = the experiment's files in the newest commit whose content hash is the lock's, ours = HEAD's,
    theirs = the workspace's, freshly normalized. Nothing is written here.
    """
    merged: dict[str, dict[str, bytes]] = {}
    conflicts: list[Conflict] = []
    for slug in sorted(theirs):
        outcome = merge_one(root, slug, entries.get(slug, {}), theirs[slug])
        conflicts.extend(outcome.conflicts)
        merged[slug] = outcome.files
    if conflicts:
        raise ConflictError(conflict_report(conflicts))
    return merged


def merge_one(root: Path, slug: str, entry: Mapping[str, Any], theirs: Mapping[str, bytes]) -> Outcome:
    base = experiments.synced_files(root, slug, entry)
    if base is None:
        return Outcome({}, (Conflict(slug, "", "", "cannot merge: the last pulled or pushed version (the hash in "
                                                    "amlvc.lock) is not in the recent history of this directory"),))
    ours = experiments.read(root, slug, "HEAD")
    return merge_files(slug, base, ours, theirs)


def merge_files(slug: str, base: Mapping[str, bytes], ours: Mapping[str, bytes],
                theirs: Mapping[str, bytes]) -> Outcome:
    """Three-way merge of one experiment's canonical files; the result is checked to be canonical."""
    out: dict[str, bytes] = {}
    conflicts: list[Conflict] = []
    for name in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(name), ours.get(name), theirs.get(name)
        if name in (EXPERIMENT_FILE, LAYOUT_FILE) and None not in (b, o, t) and len({b, o, t}) > 1:
            value, found = _merge_json(slug, name, b or b"", o or b"", t or b"")
        else:
            value, found = _merge_whole(slug, name, b, o, t)
        conflicts.extend(found)
        if value is not None:
            out[name] = value
    if conflicts:
        return Outcome({}, tuple(conflicts))
    return _canonical(slug, out)


def _merge_whole(slug: str, name: str, b: bytes | None, o: bytes | None,
                 t: bytes | None) -> tuple[bytes | None, list[Conflict]]:
    """Any other file (scripts, webservice.json): one side changed -> that side; both alike -> it."""
    if o == t or t == b:
        return o, []
    if o == b:
        return t, []
    if name.startswith(SCRIPTS_DIR + "/") and None not in (b, o, t):
        text = repo.merge_text(b or b"", o or b"", t or b"")
        if text is not None:
            return text, []
        return None, [Conflict(slug, name, "", "both sides changed the same lines of this script")]
    what = ("deleted on one side and changed on the other" if None in (o, t)
            else "added differently on both sides" if b is None else "changed differently on both sides")
    return None, [Conflict(slug, name, "", what)]


def _merge_json(slug: str, name: str, b: bytes, o: bytes, t: bytes) -> tuple[bytes | None, list[Conflict]]:
    merge: Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], MergeResult]
    check: Callable[[dict[str, Any], str], dict[str, Any]]
    if name == EXPERIMENT_FILE:
        merge, check = merge_experiment, experiment_shape
    else:
        merge, check = merge_layout, layout_shape
    try:
        docs = [check(load_canonical(data, f"{slug}/{name} ({side})"), f"{slug}/{name} ({side})")
                for data, side in ((b, "base"), (o, "ours"), (t, "theirs"))]
    except AmlvcError as exc:
        return None, [Conflict(slug, name, "", f"cannot merge: {exc.message}")]
    result = merge(*docs)
    if not result.clean:
        return None, [Conflict(slug, name, c.path, c.reason) for c in result.conflicts]
    return dumps(result.merged), []


def _canonical(slug: str, files: dict[str, bytes]) -> Outcome:
    """The merged files as normalize writes them; a result that does not denormalize is a conflict."""
    experiment = {k: v for k, v in files.items() if k != WEBSERVICE_FILE}
    source = f"{experiments.path(slug)} (merged)"
    if EXPERIMENT_FILE not in experiment:
        return Outcome(files, ())
    try:
        doc = denormalize(experiment, source=source)
        problems = validate_experiment(json.loads(experiment[EXPERIMENT_FILE]))
        again = normalize(doc, source=source, module_names=recorded_module_names(experiment)).files
    except AmlvcError as exc:
        return Outcome({}, (Conflict(slug, "", "", f"the merged experiment is not valid: {exc.message}"),))
    if problems:
        return Outcome({}, tuple(Conflict(slug, EXPERIMENT_FILE, "", f"the merged graph is invalid: {p}")
                                 for p in problems))
    if WEBSERVICE_FILE in files:
        again[WEBSERVICE_FILE] = files[WEBSERVICE_FILE]
    return Outcome(dict(again), ())


def conflict_report(conflicts: Sequence[Conflict]) -> str:
    """The message of the refusal: one line per conflict, then what to do next."""
    slugs = sorted({c.slug for c in conflicts})
    exp, which = (slugs[0], "it") if len(slugs) == 1 else ("EXP", "each")
    lines = [f"pull stopped: {len(slugs)} experiment(s) changed both here (committed) and in the workspace and "
             f"cannot be merged; nothing was written:"]
    lines += [c.line() for c in conflicts]
    lines.append(f"Resolve {which}: keep yours with `amlvc push --force {exp}` (the workspace version is backed "
                 f"up under {BACKUP_REF_PREFIX}/ first), or take the workspace's with `amlvc pull --theirs {exp}` "
                 f"(your commits stay in `git log`).")
    return "\n".join(lines)


def note_merges(message: str, merged: Sequence[str]) -> str:
    """A pull's commit message with a `merged <slug>: local edits kept` line per merged experiment."""
    if not merged:
        return message
    paragraphs = message.rstrip("\n").split("\n\n")
    notes = "\n".join(f"merged {slug}: {MERGED_NOTE}" for slug in sorted(merged))
    if len(paragraphs) >= 3:
        paragraphs[-2] += "\n" + notes
    else:
        paragraphs.insert(len(paragraphs) - 1 if len(paragraphs) > 1 else 1, notes)
    return "\n\n".join(paragraphs) + "\n"
