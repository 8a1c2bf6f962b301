"""Which experiments to compare between revisions, the work tree and a workspace, and `log`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from amlvc import repo
from amlvc.errors import LocalError, UsageError
from amlvc.review.assetnames import name_versions
from amlvc.review.diff import diff_trees
from amlvc.review.parsed import Parsed
from amlvc.review.records import ExperimentDiff
from amlvc.rules import EXPERIMENTS_DIR
from amlvc.worktree import experiments

Files = dict[str, bytes]


@dataclass(frozen=True)
class LogEntry:
    """One commit that touched an experiment, with its change records."""

    commit: str
    date: str
    author: str
    subject: str
    diff: ExperimentDiff




def split_arguments(root: Path, args: Sequence[str]) -> tuple[list[str], list[str]]:
    """`diff [REV_A [REV_B]] [EXP…]`: leading arguments that name a commit (and no experiment) are revisions."""
    known = set(experiments.slugs(root))
    if args and ".." in args[0] and args[0] not in known:
        first, _, second = args[0].partition("..")
        try:
            for rev in (first, second):
                repo.resolve(root, rev or "HEAD")
        except LocalError:
            pass
        else:
            return [first or "HEAD", second or "HEAD"], list(args[1:])
    revs: list[str] = []
    for arg in args[:2]:
        if arg in known:
            break
        try:
            repo.resolve(root, arg)
        except LocalError:
            break
        revs.append(arg)
    return revs, list(args[len(revs):])


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


def diff_revisions(root: Path, rev_a: str | None, rev_b: str | None, slugs: Sequence[str] = ()
                   ) -> list[ExperimentDiff]:
    """`amlvc diff`: no revision = HEAD against the work tree; one = REV against the work tree; two = REV_A..REV_B.

    Asset version changes are named from the asset catalog and the model manifests (review/assetnames.py).
    """
    return name_versions(root, _diff_revisions(root, rev_a, rev_b, slugs))


def _diff_revisions(root: Path, rev_a: str | None, rev_b: str | None, slugs: Sequence[str] = ()
                    ) -> list[ExperimentDiff]:
    if rev_a is None and repo.head(root) is None:
        return diff_experiments({}, experiments.read_many(root, slugs), slugs)
    if slugs:
        old = experiments.read_many(root, slugs, rev_a or "HEAD")
        new = experiments.read_many(root, slugs, rev_b)
        return diff_experiments(old, new, slugs)
    # Only the experiments git sees a change in are read and compared: a pull request touching two
    # experiments of a thousand reads two.
    touched = {name.split("/")[1] for name in repo.changed_paths(root, rev_a or "HEAD", rev_b, EXPERIMENTS_DIR)
               if name.count("/") >= 2}
    old = experiments.read_many(root, sorted(touched), rev_a or "HEAD") if touched else {}
    new = experiments.read_many(root, sorted(touched), rev_b) if touched else {}
    return diff_experiments(old, new, sorted(set(old) | set(new)))


def log(root: Path, slug: str, max_count: int | None = None) -> list[LogEntry]:
    """The commits that touched experiment `slug`, newest first, each with its semantic summary."""
    path = f"{EXPERIMENTS_DIR}/{slug}"
    commits = repo.commits_touching(root, path, max_count)
    if not commits and not (root / path).is_dir():
        raise UsageError(f"no experiment {slug!r} in this repository (see the directories under {EXPERIMENTS_DIR}/)")
    entries = []
    for info in commits:
        old = experiments.read(root, slug, info.parent) if info.parent else {}
        new = experiments.read(root, slug, info.commit)
        diffs = diff_experiments({slug: old} if old else {}, {slug: new} if new else {}, [slug])
        entries.append(LogEntry(info.commit, info.date, info.author, info.subject, diffs[0]))
    return entries
