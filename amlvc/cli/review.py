"""Review commands: `amlvc diff` and `amlvc log`, their arguments read as git reads them."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from amlvc.cli.base import cli, emit_json, note, remote_option
from amlvc.errors import ExitCode, UsageError
from amlvc.render import FORMATS, render
from amlvc.render.markdown import COMMENT_LIMIT

if TYPE_CHECKING:
    from amlvc.review.records import ExperimentDiff

# amlvc.repo and amlvc.review import GitPython: each command imports them when it runs, so that `amlvc --help`
# does not pay for them up front.


def color_for(stream: Any = None) -> bool:
    """Colour on a terminal unless NO_COLOR is set (no-color.org)."""
    return (stream or sys.stdout).isatty() and not os.environ.get("NO_COLOR")


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


class GitArguments(click.Command):
    """A command whose arguments keep git's `--` (click drops it; it is put back as an argument of its own)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            args = [*args[:at], "--", "--", *args[at + 1:]]
        return super().parse_args(ctx, args)


@cli.command("diff", cls=GitArguments)
@click.argument("args", nargs=-1, metavar="[REV_A [REV_B] | A..B | A...B] [--] [EXP|PATH]...")
@remote_option("Compare with the live workspace R instead of a revision.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="text (git-like, coloured on a terminal; the default), markdown (PR comment), json (records + "
                   "RFC 6902 patch), html (one self-contained page with the graph).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are differences, 0 when there are none.")
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--title", default="", help="Heading of markdown and html reports.")
@click.option("--max-bytes", type=click.IntRange(min=0), metavar="N",
              help=f"Markdown: at most N bytes (default {COMMENT_LIMIT:,}, GitHub's comment limit; 0: no limit): the "
                   "summary table, then whole experiments, then how many more the HTML report has.")
@click.option("--summary", "summary_only", is_flag=True, help="Markdown: the summary table alone.")
def diff_command(args: tuple[str, ...], remote: str | None, fmt: str | None, as_json: bool, exit_code: bool,
                 output: str | None, title: str, max_bytes: int | None, summary_only: bool) -> int:
    """Semantic diff of experiments: nodes, parameters, wiring, assets, scripts, web-service contract.

    \b
    amlvc diff                    HEAD against the work tree
    amlvc diff REV                REV against the work tree
    amlvc diff REV_A REV_B        between two revisions (also REV_A..REV_B)
    amlvc diff main...feature     from the merge base: what a pull request of feature into main shows
    amlvc diff --remote dev       the work tree (or REV) against the live workspace
    Experiments are named by slug, by name ("Churn v2") or by a path under experiments/; `--`
    separates revisions from experiments, as in git. Layout-only changes are collapsed into a count;
    breaking web-service changes are flagged.

    \b
    Examples:
      amlvc diff HEAD~1 --format markdown -o comment.md   # fits a GitHub comment (65,536 bytes)
      amlvc diff HEAD~1 --format markdown --summary       # the summary table alone
      amlvc diff main...feature --format html -o report.html
      amlvc diff v1.2 -- churn-training                   # one experiment since the tag v1.2
      amlvc diff -- experiments/churn-training/scripts/   # paths select their experiment
    """
    from amlvc.review import arguments, revisions
    from amlvc.sync.remote import workspace_files
    from amlvc.worktree import experiments

    if as_json and fmt not in (None, "json"):
        raise UsageError(f"--json and --format {fmt} ask for two formats; give one")
    fmt = "json" if as_json else fmt or "text"
    if fmt != "markdown" and (max_bytes is not None or summary_only):
        raise UsageError("--max-bytes and --summary shape the markdown report; add --format markdown")
    root = _root()
    chosen = arguments.parse(root, args, cwd=Path.cwd(), max_revisions=1 if remote else 2)
    for line in chosen.notes:
        note(line)
    slugs = list(chosen.slugs)
    if remote is not None:
        old = experiments.read_many(root, slugs, chosen.old)
        diffs = revisions.diff_experiments(old, workspace_files(root, remote, slugs), slugs)
        title = title or f"amlvc diff {chosen.old or 'work tree'} → workspace {remote}"
    else:
        diffs = revisions.diff_revisions(root, chosen.old, chosen.new, slugs)
        shown = " ".join(chosen.revisions) if chosen.new else f"{chosen.revisions[0] if chosen.revisions else 'HEAD'}" \
            " → work tree"
        title = title or f"amlvc diff {shown}"
    color = output is None and fmt == "text" and color_for()
    limit = COMMENT_LIMIT if max_bytes is None else max_bytes
    _write(render(diffs, fmt, color=color, title=title, max_bytes=limit, summary_only=summary_only), output,
           color=color)
    return int(ExitCode.DIFFERENCES) if exit_code and _changed(diffs) else 0


def _changed(diffs: list[ExperimentDiff]) -> bool:
    return any(d.changes or d.status in ("added", "removed") for d in diffs)


@cli.command("log")
@click.argument("experiment", metavar="[EXP]", required=False)
@click.option("-n", "--max-count", type=click.IntRange(min=1), help="Show at most N commits.")
@click.option("--json", "as_json", is_flag=True, help="Commits and their change records as JSON.")
@click.option("-p", "--patch", is_flag=True, help="Show each commit's change records, not only the summary.")
def log_command(experiment: str | None, max_count: int | None, as_json: bool, patch: bool) -> None:
    """History of one experiment (or, without EXP, of the repository), newest first, with one semantic
    summary line per experiment a commit changed.

    \b
    Examples:
      amlvc log                            # every commit, with the experiments each changed
      amlvc log churn-training -n 5        # one experiment, by slug
      amlvc log "Churn – Training" -p      # by name, with each commit's changes
    """
    from amlvc.render.common import summary
    from amlvc.review import arguments, revisions

    root = _root()
    chosen = arguments.parse(root, ["--", experiment] if experiment else [], cwd=Path.cwd(), max_revisions=0)
    one = chosen.slugs[0] if chosen.slugs else ""
    entries = revisions.log(root, one, max_count)
    if as_json:
        emit_json([_log_json(e, summary, single=bool(one)) for e in entries])
        return
    color = color_for()
    for e in entries:
        sha = click.style(e.commit[:10], fg="yellow") if color else e.commit[:10]
        click.echo(f"{sha} {e.date[:10]} {e.author}: {e.subject}", color=color)
        for d in e.diffs:
            click.echo(f"    {summary(d)}" if one else f"    {d.slug}: {summary(d)}")
            if patch:
                body = render([d], "text", color=color).splitlines()[1:]
                click.echo("\n".join("    " + line for line in body if line), color=color)
        if not e.diffs:
            click.echo("    (no experiment changed)")


def _log_json(e: Any, summary: Any, *, single: bool) -> dict[str, Any]:
    changed = [{"slug": d.slug, "status": d.status, "summary": summary(d), "changes": [c.to_json() for c in d.changes]}
               for d in e.diffs]
    entry = {"commit": e.commit, "date": e.date, "author": e.author, "subject": e.subject, "experiments": changed}
    if single:  # `log EXP`: the experiment's summary and records at the top level too
        entry.update(summary=changed[0]["summary"], changes=changed[0]["changes"])
    return entry
