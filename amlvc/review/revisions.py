"""Review operations: which experiments to compare between revisions and the work tree, `log`, git drivers."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.canonical.checks import experiment_shape, layout_shape
from amlvc.canonical.jsonio import load_canonical
from amlvc.errors import LocalError, UsageError
from amlvc.render.common import summary
from amlvc.review.diff import ExperimentDiff, diff_layout, diff_trees, diff_wsd, sort_changes
from amlvc.review.difftree import EXPERIMENT_FILE, LAYOUT_FILE, WEBSERVICE_FILE, Tree

EXPERIMENTS_DIR = rules.EXPERIMENTS_DIR
DRIVER = "amlvc"
# What `.gitattributes` says about the canonical files (written by `amlvc init` and `amlvc config-git`).
ATTRIBUTE_PATTERNS = tuple(f"{EXPERIMENTS_DIR}/*/{name}" for name in (EXPERIMENT_FILE, LAYOUT_FILE, WEBSERVICE_FILE))
ATTRIBUTES_HEADER = "# amlvc: semantic diff and three-way merge of experiments (amlvc config-git)"
# Hunk headers name the node a change is in (lines of the textconv outline).
XFUNCNAME = "^(node .*|experiment .*|web service.*)$"

Files = dict[str, bytes]


@dataclass(frozen=True)
class LogEntry:
    """One commit that touched an experiment, with its semantic summary line."""

    commit: str
    date: str
    author: str
    subject: str
    summary: str
    diff: ExperimentDiff


def experiment_files(root: Path, rev: str | None, slugs: Sequence[str] = ()) -> dict[str, Files]:
    """slug -> {path relative to the experiment directory: bytes}, at `rev` or (None) in the work tree.

    With `slugs`, only those experiments are read (a big repository holds many).
    """
    for slug in slugs:
        if not slug or slug in (".", "..") or "/" in slug or "\\" in slug:
            raise UsageError(f"{slug!r} is not an experiment name; use the directory names under {EXPERIMENTS_DIR}/")
    out: dict[str, Files] = {}
    if rev is None:
        base = root / EXPERIMENTS_DIR
        dirs = [base / s for s in slugs] if slugs else (sorted(base.iterdir()) if base.is_dir() else [])
        for directory in dirs:
            if not directory.is_dir() or directory.is_symlink():
                continue
            for path in sorted(directory.rglob("*")):
                rel = path.relative_to(directory).as_posix()
                if path.is_file() and not path.is_symlink() and _canonical(rel):
                    out.setdefault(directory.name, {})[rel] = path.read_bytes()
        return out
    prefixes = [f"{EXPERIMENTS_DIR}/{s}" for s in slugs] if slugs else [EXPERIMENTS_DIR]
    for name, data in repo.read_tree_at(root, rev, prefixes).items():
        slug, _, rel = name.removeprefix(EXPERIMENTS_DIR + "/").partition("/")
        if rel and _canonical(rel):
            out.setdefault(slug, {})[rel] = data
    return out


def work_tree_slugs(root: Path) -> set[str]:
    base = root / EXPERIMENTS_DIR
    return {p.name for p in base.iterdir() if p.is_dir()} if base.is_dir() else set()


def _canonical(rel: str) -> bool:
    return rel in (EXPERIMENT_FILE, LAYOUT_FILE, WEBSERVICE_FILE) or rel.startswith("scripts/")


def split_arguments(root: Path, args: Sequence[str]) -> tuple[list[str], list[str]]:
    """`diff [REV_A [REV_B]] [EXP…]`: leading arguments that name a commit (and no experiment) are revisions."""
    known = work_tree_slugs(root)
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
        a = Tree.from_files(old[slug], f"{EXPERIMENTS_DIR}/{slug}") if slug in old else None
        b = Tree.from_files(new[slug], f"{EXPERIMENTS_DIR}/{slug}") if slug in new else None
        out.append(diff_trees(a, b, slug))
    return out


def diff_revisions(root: Path, rev_a: str | None, rev_b: str | None, slugs: Sequence[str] = ()
                   ) -> list[ExperimentDiff]:
    """`amlvc diff`: no revision = HEAD against the work tree; one = REV against the work tree; two = REV_A..REV_B."""
    if rev_a is None and repo.head(root) is None:
        return diff_experiments({}, experiment_files(root, None, slugs), slugs)
    if slugs:
        old = experiment_files(root, rev_a or "HEAD", slugs)
        new = experiment_files(root, rev_b, slugs)
        return diff_experiments(old, new, slugs)
    # Only the experiments git sees a change in are read and compared: a pull request touching two
    # experiments of a thousand reads two.
    touched = {name.split("/")[1] for name in repo.changed_paths(root, rev_a or "HEAD", rev_b, EXPERIMENTS_DIR)
               if name.count("/") >= 2}
    old = experiment_files(root, rev_a or "HEAD", sorted(touched)) if touched else {}
    new = experiment_files(root, rev_b, sorted(touched)) if touched else {}
    return diff_experiments(old, new, sorted(set(old) | set(new)))


def log(root: Path, slug: str, max_count: int | None = None) -> list[LogEntry]:
    """The commits that touched experiment `slug`, newest first, each with its semantic summary."""
    path = f"{EXPERIMENTS_DIR}/{slug}"
    commits = repo.commits_touching(root, path, max_count)
    if not commits and not (root / path).is_dir():
        raise UsageError(f"no experiment {slug!r} in this repository (see the directories under {EXPERIMENTS_DIR}/)")
    entries = []
    for info in commits:
        old = _files_of(root, info.parent, path) if info.parent else {}
        new = _files_of(root, info.commit, path)
        diffs = diff_experiments({slug: old} if old else {}, {slug: new} if new else {}, [slug])
        entries.append(LogEntry(info.commit, info.date, info.author, info.subject, summary(diffs[0]), diffs[0]))
    return entries


def _files_of(root: Path, rev: str, path: str) -> Files:
    return {p.removeprefix(path + "/"): data for p, data in repo.read_tree_at(root, rev, path).items()
            if _canonical(p.removeprefix(path + "/"))}


# --- git drivers ----------------------------------------------------------------------------------------------


def file_kind(path: str, data: Mapping[str, Any]) -> str:
    """experiment, layout or webservice: from the `$format` marker, else the file name."""
    fmt = str(data.get("$format", ""))
    if fmt.startswith("amlvc/experiment"):
        return "experiment"
    if fmt.startswith("amlvc/layout"):
        return "layout"
    name = Path(path).name
    return {EXPERIMENT_FILE: "experiment", LAYOUT_FILE: "layout"}.get(name, "webservice")


def driver_diff(path: str, old_file: str, new_file: str) -> ExperimentDiff:
    """The records between two versions of one canonical file (git's external diff passes them as temp files)."""
    old = _read_optional(old_file, f"a/{path}")
    new = _read_optional(new_file, f"b/{path}")
    kind = file_kind(path, new or old)
    check = {"experiment": experiment_shape, "layout": layout_shape}.get(kind)
    if check is not None:
        check(old, f"a/{path}")
        check(new, f"b/{path}")
    slug = Path(path).parent.name
    if kind == "experiment":
        a = Tree(old, {}, {}, None) if old or old_file != "/dev/null" else None
        b = Tree(new, {}, {}, None) if new or new_file != "/dev/null" else None
        return diff_trees(a, b, slug)
    changes = diff_layout(old, new) if kind == "layout" else diff_wsd(old, new)
    records = sort_changes(changes)
    return ExperimentDiff(slug, "modified" if records else "unchanged", records)


def _read_optional(path: str, source: str) -> dict[str, Any]:
    if path == "/dev/null":
        return {}
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LocalError(f"{path}: cannot read ({exc.strerror})") from None
    return load_canonical(data, source)


def amlvc_command() -> str:
    """How git should start amlvc: `amlvc` when it is on PATH, else this interpreter with `-m amlvc`."""
    found = shutil.which("amlvc")
    if found:
        return "amlvc"
    return f"{shlex.quote(sys.executable)} -m amlvc"


def git_settings(command: str) -> dict[str, str]:
    """The git config entries `config-git` writes (nbdime's layout: a diff driver and a merge driver)."""
    return {
        f"diff.{DRIVER}.command": f"{command} diff-driver",
        f"diff.{DRIVER}.textconv": f"{command} textconv",
        # git keeps each blob's outline in notes, so `git log -p` starts amlvc once per blob, not per run.
        f"diff.{DRIVER}.cachetextconv": "true",
        f"diff.{DRIVER}.xfuncname": XFUNCNAME,
        f"merge.{DRIVER}.name": "amlvc three-way merge of experiments",
        f"merge.{DRIVER}.driver": f"{command} merge-driver %O %A %B %P",
    }


def attribute_lines(global_scope: bool) -> list[str]:
    prefix = "**/" if global_scope else ""
    return [f"{prefix}{pattern} diff={DRIVER} merge={DRIVER}" for pattern in ATTRIBUTE_PATTERNS]


def with_attributes(existing: str, global_scope: bool = False) -> str:
    """`existing` .gitattributes text with amlvc's lines added (once; other lines untouched)."""
    lines = existing.splitlines()
    missing = [line for line in attribute_lines(global_scope) if line not in lines]
    if not missing:
        return existing
    text = existing if not existing or existing.endswith("\n") else existing + "\n"
    if ATTRIBUTES_HEADER not in lines:
        text += ATTRIBUTES_HEADER + "\n"
    return text + "\n".join(missing) + "\n"


def ensure_gitattributes(root: Path) -> bool:
    """Add amlvc's diff/merge attributes to `root/.gitattributes`; True when the file changed."""
    path = root / ".gitattributes"
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    updated = with_attributes(existing)
    return updated != existing and repo.atomic_write(path, updated.encode("utf-8"))


@dataclass(frozen=True)
class GitConfigResult:
    scope: str
    settings: dict[str, str]
    attributes_file: Path
    attributes_changed: bool


def config_git(root: Path | None, global_scope: bool) -> GitConfigResult:
    """`amlvc config-git`: the drivers in the repository's (or the global) git config, plus the attributes."""
    settings = git_settings(amlvc_command())
    if global_scope:
        repo.set_git_config(None, settings)
        attributes = repo.global_attributes_file()
        existing = attributes.read_text(encoding="utf-8") if attributes.is_file() else ""
        updated = with_attributes(existing, global_scope=True)
        changed = updated != existing and repo.atomic_write(attributes, updated.encode("utf-8"))
        return GitConfigResult("global", settings, attributes, changed)
    if root is None:
        raise UsageError("config-git without --global must run inside a git repository")
    repo.set_git_config(root, settings)
    changed = ensure_gitattributes(root)
    return GitConfigResult("repository", settings, root / ".gitattributes", changed)


def remote_files(root: Path, remote: str, slugs: Sequence[str] = ()) -> dict[str, Files]:
    """The live workspace's experiments in canonical form: slug (from amlvc.lock, else the name) -> files."""
    from amlvc.sync import pull
    from amlvc.worktree import mirror, project

    target = mirror.open_remote(root, remote)
    with target.client:
        entries = mirror.lock_entries(mirror.read_lock(root), target.name)
        known = {str(entry.get("id")): slug for slug, entry in entries.items()}
        summaries = mirror.user_experiments(target.client.list_experiments())
        names = mirror.module_names(target.client) if summaries else {}
        out: dict[str, Files] = {}
        for summary in summaries:
            exp_id = str(summary.get("ExperimentId"))
            slug = known.get(exp_id) or project.slugify(str(summary.get("Description") or exp_id))
            if slugs and slug not in slugs:
                continue
            out[slug] = dict(pull.fetch_one(target, slug, summary, names).files)
        return out
