"""Which experiments to compare between revisions, the work tree and a workspace, and `log`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from amlvc import repo
from amlvc.errors import UsageError
from amlvc.review.assetnames import name_versions
from amlvc.review.diff import diff_trees
from amlvc.review.parsed import Parsed
from amlvc.review.records import ExperimentDiff
from amlvc.rules import EXPERIMENTS_DIR
from amlvc.worktree import experiments

Files = dict[str, bytes]


@dataclass(frozen=True)
class LogEntry:
    """One commit, with the records of each experiment it changed (of the one asked for, with `log EXP`)."""

    commit: str
    date: str
    author: str
    subject: str
    diffs: tuple[ExperimentDiff, ...]



def diff_experiments(old: Mapping[str, Files], new: Mapping[str, Files], slugs: Sequence[str] = ()
                     ) -> list[ExperimentDiff]:
    """Diffs of every experiment present on either side (or only `slugs`), ordered by slug."""
    wanted = sorted(set(slugs) if slugs else set(old) | set(new))
    unknown = [s for s in wanted if s not in old and s not in new]
    if unknown:
        raise UsageError(f"no experiment {', '.join(repr(s) for s in unknown)} on either side; "
                         f"experiments are the directory names under {EXPERIMENTS_DIR}/")
    out = []
    for slug in wanted:
        if slug in old and slug in new and old[slug] == new[slug]:
            out.append(ExperimentDiff(slug, "unchanged", ()))  # the same bytes: nothing to parse or compare
            continue
        a = Parsed.from_files(old[slug], f"{EXPERIMENTS_DIR}/{slug}") if slug in old else None
        b = Parsed.from_files(new[slug], f"{EXPERIMENTS_DIR}/{slug}") if slug in new else None
        out.append(diff_trees(a, b, slug))
    return out


def diff_revisions(root: Path, rev_a: str | None, rev_b: str | None, slugs: Sequence[str] = (), *,
                   reverse: bool = False) -> list[ExperimentDiff]:
    """`amlvc diff`: no revision = HEAD against the work tree; one = REV against the work tree; two = REV_A..REV_B.

    `reverse` swaps the sides (git's `-R`). Asset version changes are named from the asset catalog and the
    model manifests (review/assetnames.py).
    """
    return name_versions(root, _diff_revisions(root, rev_a, rev_b, slugs, reverse))


def _diff_revisions(root: Path, rev_a: str | None, rev_b: str | None, slugs: Sequence[str], reverse: bool
                    ) -> list[ExperimentDiff]:
    def compare(old: Mapping[str, Files], new: Mapping[str, Files], wanted: Sequence[str]) -> list[ExperimentDiff]:
        return diff_experiments(new, old, wanted) if reverse else diff_experiments(old, new, wanted)

    if rev_a is None and repo.head(root) is None:
        return compare({}, experiments.read_many(root, slugs), slugs)
    if slugs:
        return compare(experiments.read_many(root, slugs, rev_a or "HEAD"), experiments.read_many(root, slugs, rev_b),
                       slugs)
    # Only the experiments git sees a change in are read and compared: a pull request touching two
    # experiments of a thousand reads two.
    touched = {name.split("/")[1] for name in repo.changed_paths(root, rev_a or "HEAD", rev_b, EXPERIMENTS_DIR)
               if name.count("/") >= 2}
    old = experiments.read_many(root, sorted(touched), rev_a or "HEAD") if touched else {}
    new = experiments.read_many(root, sorted(touched), rev_b) if touched else {}
    return compare(old, new, sorted(set(old) | set(new)))


def log(root: Path, slug: str = "", max_count: int | None = None) -> list[LogEntry]:
    """The commits that touched experiment `slug` (every commit without one), newest first, with their records."""
    path = f"{EXPERIMENTS_DIR}/{slug}" if slug else "."
    commits = repo.commits_touching(root, path, max_count)
    if slug and not commits and not (root / path).is_dir():
        raise UsageError(f"no experiment {slug!r} in this repository (see the directories under {EXPERIMENTS_DIR}/)")
    entries = []
    for info in commits:
        if slug:
            touched = [slug]
        elif info.parent:
            touched = sorted({name.split("/")[1] for name in repo.changed_paths(root, info.parent, info.commit,
                                                                                  EXPERIMENTS_DIR)
                              if name.count("/") >= 2})
        else:
            touched = experiments.slugs(root, info.commit)
        old = experiments.read_many(root, touched, info.parent) if info.parent and touched else {}
        new = experiments.read_many(root, touched, info.commit) if touched else {}
        diffs = diff_experiments(old, new, sorted(set(old) | set(new))) if old or new else []
        if slug and not diffs:
            diffs = [ExperimentDiff(slug, "unchanged", ())]
        entries.append(LogEntry(info.commit, info.date, info.author, info.subject, tuple(diffs)))
    return entries
