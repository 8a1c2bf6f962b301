"""git's conventions for the arguments of `diff` and `log`: revisions, `A..B` and `A...B`, `--`, and experiments
named by slug, by name or by a path under experiments/."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from amlvc import repo
from amlvc.errors import LocalError, UsageError, some
from amlvc.rules import EXPERIMENTS_DIR
from amlvc.worktree import experiments

SEPARATOR = "--"


@dataclass(frozen=True)
class Selection:
    """What to compare: `old` (a commit; None: HEAD), `new` (None: the work tree), the experiments (none: all)."""

    old: str | None
    new: str | None
    revisions: tuple[str, ...]  # as written, for headings
    slugs: tuple[str, ...]
    notes: tuple[str, ...] = ()


def parse(root: Path, args: Sequence[str], *, cwd: Path, max_revisions: int = 2) -> Selection:
    """`[REV_A [REV_B] | A..B | A...B] [--] [EXP | PATH]...`, read as git reads `git diff`'s arguments.

    Before `--` only revisions, after it only experiments. Without `--`, leading arguments that name a revision
    (and no experiment) are revisions; one naming both is taken as the experiment, and a note says so.
    """
    finder = Finder(root, cwd, ["HEAD"] if repo.head(root) else [])
    notes: list[str] = []
    if SEPARATOR in args:
        cut = list(args).index(SEPARATOR)
        revs, names = list(args[:cut]), list(args[cut + 1:])
        for rev in revs:
            _check_revision(root, rev)
    else:
        revs = _leading_revisions(root, args, finder, max_revisions, notes)
        names = list(args[len(revs):])
    old, new = _sides(root, revs, max_revisions)
    finder = Finder(root, cwd, [r for r in ("HEAD" if repo.head(root) else None, old, new) if r])
    slugs: list[str] = []
    for name in names:
        found = finder.find(name)
        if found is None:
            raise UsageError(f"no experiment {name!r} on either side ({finder.known()}); name one by its folder "
                             f"under {EXPERIMENTS_DIR}/, its name, or a path inside it")
        slugs.extend([found] if found else [])  # "" is experiments/ itself: every experiment
    return Selection(old, new, tuple(revs), tuple(dict.fromkeys(slugs)), tuple(notes))


def _leading_revisions(root: Path, args: Sequence[str], finder: Finder, max_revisions: int,
                       notes: list[str]) -> list[str]:
    revs: list[str] = []
    for arg in args:
        if len(revs) == max_revisions or (revs and _is_range(revs[0])):
            if finder.find(arg, by_name=False) is None and (_is_range(arg) or _resolves(root, arg)):
                _too_many([*revs, arg], max_revisions)
            break
        if _is_range(arg):
            if revs:
                raise UsageError(f"{arg!r}: a range A..B or A...B stands alone; give it, or two revisions")
            _check_revision(root, arg)
            revs.append(arg)
            continue
        is_rev = _resolves(root, arg)
        found = finder.find(arg, by_name=not is_rev)  # names are read only when nothing cheaper matched
        if found is not None and is_rev:
            notes.append(f"'{arg}' is both an experiment and a revision; taken as the experiment "
                         f"(write `{arg} --` for the revision)")
        if found is not None:
            break
        if not is_rev and ("/" in arg or _is_path(arg)):
            raise UsageError(f"{arg!r} is not an experiment name or a path under {EXPERIMENTS_DIR}/<slug>/ "
                             f"({finder.known()})")
        if not is_rev:
            raise UsageError(f"unknown revision {arg!r}, and no experiment is called that ({finder.known()}); "
                             f"`git log --oneline` lists revisions; put `--` between revisions and experiments")
        revs.append(arg)
    return revs


def _too_many(revs: Sequence[str], most: int) -> None:
    words = {0: "no revision", 1: "at most one revision", 2: "at most two revisions (or one range)"}
    raise UsageError(f"give {words.get(most, most)} here (got {', '.join(revs)})")


def _is_path(arg: str) -> bool:
    return arg in (".", "..") or arg.startswith(("/", "./", "../")) or (os.sep in arg and os.path.exists(arg))


def _is_range(arg: str) -> bool:
    return ".." in arg and not _is_path(arg)  # git refuses ".." in a ref name: this is a range


def _resolves(root: Path, rev: str) -> bool:
    try:
        repo.resolve(root, rev)
    except LocalError:
        return False
    return True


def _check_revision(root: Path, rev: str) -> None:
    ends = _ends(rev) if _is_range(rev) else (rev,)
    for end in ends:
        if not _resolves(root, end):
            raise UsageError(f"unknown revision {end!r}" + (f" in {rev!r}" if end != rev else "")
                             + "; `git log --oneline` and `git branch -a` list the revisions there are")


def _ends(rev: str) -> tuple[str, str]:
    first, _, second = rev.partition("...") if "..." in rev else rev.partition("..")
    return first or "HEAD", second or "HEAD"


def _sides(root: Path, revs: Sequence[str], max_revisions: int) -> tuple[str | None, str | None]:
    """(old, new) revisions: `A...B` compares from their merge base (what a pull request shows)."""
    if len(revs) > max_revisions or (max_revisions < 2 and any(_is_range(r) for r in revs)):
        _too_many(revs, max_revisions)
    if not revs:
        return None, None
    if len(revs) == 2:
        return revs[0], revs[1]
    if not _is_range(revs[0]):
        return revs[0], None
    first, second = _ends(revs[0])
    if "..." not in revs[0]:
        return first, second
    base = repo.merge_base(root, first, second)
    if base is None:
        raise UsageError(f"{revs[0]!r}: {first} and {second} have no common ancestor; compare them with "
                         f"{first}..{second}")
    return base, second


@dataclass
class Finder:
    """Experiments by slug, by path (relative to `cwd`) or by name, in the work tree and at `revisions`."""

    root: Path
    cwd: Path
    revisions: list[str]
    _slugs: set[str] | None = field(default=None, repr=False)
    _names: dict[str, set[str]] | None = field(default=None, repr=False)

    def slugs(self) -> set[str]:
        if self._slugs is None:
            self._slugs = set(experiments.slugs(self.root))
            for rev in self.revisions:
                self._slugs.update(experiments.slugs(self.root, rev))
        return self._slugs

    def known(self) -> str:
        found = sorted(self.slugs())
        return f"experiments: {some(found)}" if found else f"no experiments under {EXPERIMENTS_DIR}/"

    def find(self, arg: str, *, by_name: bool = True) -> str | None:
        """The slug `arg` names, "" for experiments/ itself (every experiment), or None."""
        if arg in self.slugs():
            return arg
        rel = self._relative(arg)
        if rel is not None:
            parts = rel.split("/")
            if len(parts) == 1:
                return ""
            return parts[1] if parts[1] in self.slugs() else None
        named = self.names().get(arg, set()) if by_name else set()
        if len(named) > 1:
            raise UsageError(f"{arg!r} is the name of {some(sorted(named))}; give the one you mean by its slug")
        return next(iter(named), None)

    def _relative(self, arg: str) -> str | None:
        """`arg` as a path relative to `cwd`, repository-relative, when it lies under experiments/."""
        root = os.path.realpath(self.root)
        path = os.path.normpath(os.path.join(os.path.realpath(self.cwd), arg))
        if os.path.commonpath([root, path]) != root:
            return None
        rel = Path(os.path.relpath(path, root)).as_posix()
        return rel if rel == EXPERIMENTS_DIR or rel.startswith(EXPERIMENTS_DIR + "/") else None

    def names(self) -> dict[str, set[str]]:
        """Experiment name (`Description`) -> slugs; read only when an argument is neither slug nor path."""
        if self._names is None:
            self._names = {}
            for rev in [None, *self.revisions]:
                for name, found in experiments.display_names(self.root, rev).items():
                    self._names.setdefault(name, set()).update(found)
        return self._names
