"""Review commands: diff, log, config-git, and the hidden git drivers (merge-driver, textconv, diff-driver)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from amlvc.cli.base import cli, emit_json, note
from amlvc.errors import ExitCode, LocalError, UsageError
from amlvc.render import FORMATS, render
from amlvc.render.markdown import COMMENT_LIMIT

if TYPE_CHECKING:
    from amlvc.review.records import ExperimentDiff

# amlvc.repo and amlvc.review import GitPython: each command imports them when it runs, so that the
# commands git runs per file (textconv, diff-driver) and `amlvc --help` do not pay for them up front.


def _color() -> bool:
    """Colour on a terminal unless NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _root() -> Path:
    from amlvc import repo

    return repo.find_root()


def _write(text: str, output: str | None, *, color: bool) -> None:
    if output is None:
        click.echo(text, nl=False, color=color)
        return
    from amlvc.worktree.files import atomic_write

    atomic_write(Path(output), text.encode("utf-8"))
    note(f"Wrote {output}")


@cli.command("diff")
@click.argument("args", nargs=-1, metavar="[REV_A [REV_B]] [EXP]...")
@click.option("--remote", "remote", metavar="R", help="Compare with the live workspace R instead of a revision.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text (git-like, coloured on a terminal), markdown (PR comment), json (records + RFC 6902 "
                   "patch), html (one self-contained page with the graph).")
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are differences, 0 when there are none.")
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--title", default="", help="Heading of markdown and html reports.")
@click.option("--max-bytes", type=click.IntRange(min=0), metavar="N",
              help=f"Markdown: at most N bytes (default {COMMENT_LIMIT:,}, GitHub's comment limit; 0: no limit): the "
                   "summary table, then whole experiments, then how many more the HTML report has.")
@click.option("--summary", "summary_only", is_flag=True, help="Markdown: the summary table alone.")
def diff_command(args: tuple[str, ...], remote: str | None, fmt: str, exit_code: bool, output: str | None,
                 title: str, max_bytes: int | None, summary_only: bool) -> int:
    """Semantic diff of experiments: nodes, parameters, wiring, assets, scripts, web-service contract.

    \b
    amlvc diff                    HEAD against the work tree
    amlvc diff REV                REV against the work tree
    amlvc diff REV_A REV_B        (or REV_A..REV_B) between two revisions
    amlvc diff --remote dev       the work tree (or REV_A) against the live workspace
    Layout-only changes are collapsed into a count; breaking web-service changes are flagged.

    \b
    Examples:
      amlvc diff HEAD~1 --format markdown -o comment.md   # fits a GitHub comment (65,536 bytes)
      amlvc diff HEAD~1 --format markdown --summary       # the summary table alone
      amlvc diff HEAD~1 --format html -o report.html      # everything, with the graphs
    """
    from amlvc.review import revisions
    from amlvc.sync.remote import workspace_files
    from amlvc.worktree import experiments

    if fmt != "markdown" and (max_bytes is not None or summary_only):
        raise UsageError("--max-bytes and --summary shape the markdown report; add --format markdown")
    root = _root()
    revs, slugs = revisions.split_arguments(root, args)
    if remote is not None:
        if len(revs) > 1:
            raise UsageError("diff --remote compares one side with the workspace; give at most one revision")
        old = experiments.read_many(root, slugs, revs[0] if revs else None)
        diffs = revisions.diff_experiments(old, workspace_files(root, remote, slugs), slugs)
        title = title or f"amlvc diff {revs[0] if revs else 'work tree'} → workspace {remote}"
    else:
        diffs = revisions.diff_revisions(root, revs[0] if revs else None, revs[1] if len(revs) > 1 else None, slugs)
        title = title or "amlvc diff " + (" → ".join(revs) if len(revs) == 2 else f"{revs[0] if revs else 'HEAD'}"
                                          " → work tree")
    color = output is None and fmt == "text" and _color()
    limit = COMMENT_LIMIT if max_bytes is None else max_bytes
    _write(render(diffs, fmt, color=color, title=title, max_bytes=limit, summary_only=summary_only), output,
           color=color)
    return int(ExitCode.DIFFERENCES) if exit_code and _changed(diffs) else 0


def _changed(diffs: list[ExperimentDiff]) -> bool:
    return any(d.changes or d.status in ("added", "removed") for d in diffs)


@cli.command("log")
@click.argument("experiment", metavar="EXP")
@click.option("-n", "--max-count", type=click.IntRange(min=1), help="Show at most N commits.")
@click.option("--json", "as_json", is_flag=True, help="Commits and their change records as JSON.")
@click.option("-p", "--patch", is_flag=True, help="Show each commit's change records, not only the summary.")
def log_command(experiment: str, max_count: int | None, as_json: bool, patch: bool) -> None:
    """History of one experiment, newest first, one semantic summary line per commit."""
    from amlvc.render.common import summary
    from amlvc.review import revisions

    entries = revisions.log(_root(), experiment, max_count)
    if as_json:
        emit_json([{"commit": e.commit, "date": e.date, "author": e.author, "subject": e.subject,
                    "summary": summary(e.diff), "changes": [c.to_json() for c in e.diff.changes]} for e in entries])
        return
    color = _color()
    for e in entries:
        sha = click.style(e.commit[:10], fg="yellow") if color else e.commit[:10]
        click.echo(f"{sha} {e.date[:10]} {e.author}: {e.subject}", color=color)
        click.echo(f"    {summary(e.diff)}")
        if patch:
            body = render([e.diff], "text", color=color).splitlines()[1:]
            click.echo("\n".join("    " + line for line in body if line), color=color)


@cli.command("config-git")
@click.option("--global", "global_scope", is_flag=True, help="Configure git for every repository of this user.")
def config_git_command(global_scope: bool) -> None:
    """Make plain git diff/log/show print semantic diffs and git merge use amlvc's merge (like nbdime config-git)."""
    from amlvc import repo
    from amlvc.review import drivers

    root = None if global_scope else repo.git_root(Path.cwd())
    if root is None and not global_scope:
        raise LocalError(f"{Path.cwd()}: not inside a git repository; run it in one, or use --global")
    result = drivers.config_git(root, global_scope)
    for key, value in result.settings.items():
        note(f"git config ({result.scope}) {key} = {value}")
    if result.attributes_changed:
        hint = "" if global_scope else " (commit it so every clone uses the drivers once configured)"
        note(f"Updated {result.attributes_file}{hint}")
    else:
        note(f"Already set up: {result.attributes_file}")


@cli.command("merge-driver", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False))
@click.argument("ours", type=click.Path(dir_okay=False))
@click.argument("theirs", type=click.Path(dir_okay=False))
@click.argument("path", required=False, default="")
def merge_driver_command(base: str, ours: str, theirs: str, path: str) -> None:
    """git merge driver: `amlvc merge-driver %O %A %B %P`; writes the result to %A, non-zero on conflict."""
    from amlvc.review import drivers

    merged = drivers.merge_file(base, ours, theirs, path)
    if merged.report:
        click.echo(merged.report, err=True, nl=False)
    drivers.write_merge(ours, path, merged)


@cli.command("textconv", hidden=True)
@click.argument("file", type=click.Path(dir_okay=False))
def textconv_command(file: str) -> None:
    """git textconv: print a canonical file as a one-value-per-line outline."""
    from amlvc.review import drivers

    click.echo(drivers.textconv(file), nl=False)


@cli.command("diff-driver", hidden=True)
@click.argument("args", nargs=-1)
def diff_driver_command(args: tuple[str, ...]) -> None:
    """git external diff: `path old-file old-hex old-mode new-file new-hex new-mode`; prints the records."""
    from amlvc.review import drivers

    if len(args) == 1:  # git passes only the path of an unmerged file
        click.echo(f"* Unmerged path {args[0]} (resolve the $conflict markers; `amlvc diff` works again after)")
        return
    if len(args) < 7:
        raise UsageError("diff-driver expects the 7 arguments git passes to an external diff command")
    path, old_file, new_file = args[0], args[1], args[4]
    result = drivers.driver_diff(path, old_file, new_file)
    color = _color()
    header = f"diff --amlvc a/{path} b/{path}"
    click.echo(click.style(header, bold=True) if color else header, color=color)
    if not result.changes and result.status not in ("added", "removed"):
        click.echo("(no semantic change: formatting only)")
        return
    body = render([result], "text", color=color).splitlines()
    click.echo("\n".join(line for line in body if line), color=color)
