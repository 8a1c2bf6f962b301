"""git's hooks into amlvc: the external diff, the textconv outline, the merge driver, and `config-git`."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.canonical.checks import experiment_shape, layout_shape
from amlvc.canonical.jsonio import dumps, load_canonical
from amlvc.errors import ConflictError, LocalError, UsageError
from amlvc.review.diff import diff_layout, diff_trees
from amlvc.review.merge import merge_experiment, merge_json, merge_layout, report
from amlvc.review.outline import outline
from amlvc.review.parsed import Parsed
from amlvc.review.records import ExperimentDiff, sort_changes
from amlvc.review.webservice import diff_webservice_file
from amlvc.rules import EXPERIMENT_FILE, EXPERIMENTS_DIR, LAYOUT_FILE, WEBSERVICE_FILE
from amlvc.worktree.files import atomic_write

DRIVER = "amlvc"
# What `.gitattributes` says about the canonical files (written by `amlvc init` and `amlvc config-git`).
ATTRIBUTE_PATTERNS = tuple(f"{EXPERIMENTS_DIR}/*/{name}" for name in (EXPERIMENT_FILE, LAYOUT_FILE, WEBSERVICE_FILE))
ATTRIBUTES_HEADER = "# amlvc: semantic diff and three-way merge of experiments (amlvc config-git)"
# Hunk headers name the node a change is in (lines of the textconv outline).
XFUNCNAME = "^(node .*|experiment .*|web service.*)$"


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
        a = Parsed(old, {}, {}, None) if old or old_file != "/dev/null" else None
        b = Parsed(new, {}, {}, None) if new or new_file != "/dev/null" else None
        return diff_trees(a, b, slug)
    if kind == "layout":
        changes = diff_layout(old, new)
    else:
        changes = diff_webservice_file(None if old_file == "/dev/null" else old,
                                       None if new_file == "/dev/null" else new)
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


def amlvc_command(*, portable: bool = False) -> str:
    """How git should start amlvc: the absolute path of this installation's entry point, so that git run from an
    editor or a GUI client (with another PATH, outside the virtual environment) finds it; `portable`: `amlvc`."""
    if portable:
        return "amlvc"
    beside = Path(sys.executable).parent / ("amlvc.exe" if sys.platform == "win32" else "amlvc")
    found = str(beside) if beside.is_file() else shutil.which("amlvc")
    if found:
        return str(Path(found).absolute())
    return f"{sys.executable} -m amlvc"


# git starts a driver through the shell; when the program is gone (a deleted or moved virtual environment, a
# PATH without amlvc) the shell's "not found" and git's "external diff died" say nothing about what to do.
_GUARD = ("command -v \"$0\" >/dev/null 2>&1 || {{ echo \"amlvc: the git {what} driver cannot start $0: {why}\" >&2; "
          "exit 127; }}; exec \"$0\" \"$@\"")
_WHY_PORTABLE = "amlvc is not on the PATH git runs with (editors and GUI clients often have a shorter one); " \
                "run amlvc config-git, without --portable, in the environment amlvc is installed in"
_WHY_PATH = "it is not there any more (a moved or deleted virtual environment?); run amlvc config-git again in " \
            "the environment amlvc is installed in"


def git_settings(command: str, *, portable: bool = False) -> dict[str, str]:
    """The git config entries `config-git` writes (nbdime's layout: a diff driver and a merge driver)."""
    program, _, rest = command.partition(" -m ")
    why = _WHY_PORTABLE if portable else _WHY_PATH

    def guarded(what: str, args: str) -> str:
        guard = _GUARD.format(what=what, why=why)
        module = f"-m {rest} " if rest else ""
        return f"sh -c '{guard}' {shlex.quote(program)} {module}{args}".rstrip()

    return {
        f"diff.{DRIVER}.command": guarded("diff", "diff-driver"),
        f"diff.{DRIVER}.textconv": guarded("textconv", "textconv"),
        # git keeps each blob's outline in notes, so `git log -p` starts amlvc once per blob, not per run.
        f"diff.{DRIVER}.cachetextconv": "true",
        f"diff.{DRIVER}.xfuncname": XFUNCNAME,
        f"merge.{DRIVER}.name": "amlvc three-way merge of experiments",
        f"merge.{DRIVER}.driver": guarded("merge", "merge-driver %O %A %B %P"),
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
    return updated != existing and atomic_write(path, updated.encode("utf-8"))


@dataclass(frozen=True)
class GitConfigResult:
    scope: str
    settings: dict[str, str]
    attributes_file: Path
    attributes_changed: bool


def config_git(root: Path | None, global_scope: bool, *, portable: bool = False) -> GitConfigResult:
    """`amlvc config-git`: the drivers in the repository's (or the global) git config, plus the attributes."""
    settings = git_settings(amlvc_command(portable=portable), portable=portable)
    if global_scope:
        repo.set_git_config(None, settings)
        attributes = repo.global_attributes_file()
        existing = attributes.read_text(encoding="utf-8") if attributes.is_file() else ""
        updated = with_attributes(existing, global_scope=True)
        changed = updated != existing and atomic_write(attributes, updated.encode("utf-8"))
        return GitConfigResult("global", settings, attributes, changed)
    if root is None:
        raise UsageError("config-git without --global must run inside a git repository")
    repo.set_git_config(root, settings)
    changed = ensure_gitattributes(root)
    return GitConfigResult("repository", settings, root / ".gitattributes", changed)


# --- the merge driver and textconv (git runs them per file) -----------------------------------------------------


@dataclass(frozen=True)
class MergedFile:
    """The merge driver's result: the bytes for %A, the report for stderr, and whether it is clean."""

    data: bytes
    report: str
    conflicts: int


def merge_file(base: str, ours: str, theirs: str, path: str) -> MergedFile:
    """Three-way merge of one canonical file (git passes three temp files and the path in the repository)."""
    name = path or ours
    sides = ((base, "base"), (ours, "ours"), (theirs, "theirs"))
    docs = [load_canonical(read_file(p), f"{name} ({side})") for p, side in sides]
    kind = file_kind(name, docs[1] or docs[2])
    check = {"experiment": experiment_shape, "layout": layout_shape}.get(kind)
    if check is not None:
        for doc, (_, side) in zip(docs, sides, strict=True):
            check(doc, f"{name} ({side})")
    merge = {"experiment": merge_experiment, "layout": merge_layout}.get(kind, merge_json)
    result = merge(*docs)
    return MergedFile(dumps(result.merged), report(result, name), len(result.conflicts))


def write_merge(ours: str, path: str, merged: MergedFile) -> None:
    """Write the result to %A; a conflicted result (markers in it) is an exit-4 error naming the file."""
    Path(ours).write_bytes(merged.data)
    if merged.conflicts:
        raise ConflictError(f"{path or ours}: {merged.conflicts} merge conflict(s); resolve the $conflict markers, "
                            "then `git add` the file")


def textconv(file: str) -> str:
    """A canonical file as a one-value-per-line outline; a file that does not parse is shown as it is."""
    data = read_file(file)
    try:
        doc = load_canonical(data, file)
    except Exception:  # git shows whatever textconv prints; an unreadable file is shown as it is
        return data.decode("utf-8", "replace")
    return outline(file_kind(file, doc), doc)


def read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LocalError(f"{path}: cannot read ({exc.strerror})") from None
