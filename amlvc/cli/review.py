"""Review commands: `amlvc diff` and `amlvc log`, their arguments read as git reads them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from amlvc.cli.base import cli, color_option, emit_json, note, remote_option, use_color, write_output
from amlvc.cli.models import diff_changes, log_rows, model_section
from amlvc.errors import ExitCode, UsageError, some
from amlvc.render import FORMATS, render
from amlvc.render.markdown import COMMENT_LIMIT
from amlvc.render.text import render_names, render_stat

if TYPE_CHECKING:
    from amlvc.review.records import ExperimentDiff

# amlvc.repo and amlvc.review import GitPython: each command imports them when it runs, so that `amlvc --help`
# does not pay for them up front.


def _root() -> Path:
    from amlvc import repo

    return repo.find_root()


def _write(text: str, output: str | None, *, color: bool) -> None:
    if output is None:
        click.echo(text, nl=False, color=color)
        return
    write_output(Path(output), text.encode("utf-8"))
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
@remote_option("Compare with the live workspace R: what `amlvc push -r R` would change there (-R: what a pull "
               "would bring).")
@click.option("-R", "--reverse", is_flag=True, help="Swap the two sides.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="text (git-like, coloured on a terminal; the default), markdown (PR comment), json (records + "
                   "RFC 6902 patch), html (one self-contained page with the graph).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--stat", is_flag=True, help="One line per experiment: how many changes, and a bar of + - ~.")
@click.option("--name-only", is_flag=True, help="Only the slugs of the experiments that differ.")
@click.option("--ignore-layout", is_flag=True, help="Leave canvas positions out: a drag alone is no difference.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are differences, 0 when there are none.")
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--title", default="", help="Heading of markdown and html reports.")
@click.option("--max-bytes", type=click.IntRange(min=0), metavar="N",
              help=f"Markdown: at most N bytes (default {COMMENT_LIMIT:,}, GitHub's comment limit; 0: no limit): the "
                   "summary table, then whole experiments, then how many more the HTML report has.")
@click.option("--summary", "summary_only", is_flag=True, help="Markdown: the summary table alone.")
@color_option
def diff_command(args: tuple[str, ...], remote: str | None, reverse: bool, fmt: str | None, as_json: bool,
                 stat: bool, name_only: bool, ignore_layout: bool, exit_code: bool, output: str | None, title: str,
                 max_bytes: int | None, summary_only: bool, color: str) -> int:
    """Semantic diff of experiments: nodes, parameters, wiring, assets, scripts, web-service contract.

    \b
    amlvc diff                    HEAD against the work tree
    amlvc diff REV                REV against the work tree
    amlvc diff REV_A REV_B        between two revisions (also REV_A..REV_B)
    amlvc diff main...feature     from the merge base: what a pull request of feature into main shows
    amlvc diff -r dev [REV]       the workspace dev against the work tree (or REV): what a push changes
    Experiments are named by slug, by name ("Churn v2") or by a path under experiments/; `--`
    separates revisions from experiments, as in git. Layout-only changes are collapsed into a count;
    breaking web-service changes are flagged.

    \b
    Examples:
      amlvc diff HEAD~1 --format markdown -o comment.md   # fits a GitHub comment (65,536 bytes)
      amlvc diff HEAD~1 --format markdown --summary       # the summary table alone
      amlvc diff main...feature --format html -o report.html
      amlvc diff main...feature --stat                    # how much changed where
      amlvc diff v1.2 -- churn-training                   # one experiment since the tag v1.2
      amlvc diff -- experiments/churn-training/scripts/   # paths select their experiment
      amlvc diff -r prod --ignore-layout --exit-code      # would a push change anything but positions?
    """
    fmt = _format(fmt, as_json, stat=stat, name_only=name_only, shaped=max_bytes is not None or summary_only)
    diffs, heading, models = _diffs(args, remote, reverse)
    if ignore_layout:
        diffs = [d.without("layout.changed") for d in diffs]
    if remote is not None and fmt == "text":  # text has no heading: the direction goes to stderr
        note(heading.removeprefix("amlvc diff: "))
    colored = output is None and fmt == "text" and use_color(color)
    if stat or name_only:
        text = render_stat(diffs, color=colored) if stat else render_names(diffs)
    else:
        limit = COMMENT_LIMIT if max_bytes is None else max_bytes
        text = render(diffs, fmt, color=colored, title=title or heading, max_bytes=limit, summary_only=summary_only)
        text += model_section(models, fmt)  # trained-model versions added or dropped (cli/models.py)
    _write(text, output, color=colored)
    return int(ExitCode.DIFFERENCES) if exit_code and (_changed(diffs) or models) else 0


def _format(fmt: str | None, as_json: bool, *, stat: bool, name_only: bool, shaped: bool) -> str:
    if as_json and fmt not in (None, "json"):
        raise UsageError(f"--json and --format {fmt} ask for two formats; give one")
    chosen = "json" if as_json else fmt or "text"
    if stat and name_only:
        raise UsageError("--stat and --name-only are two outputs; give one")
    if (stat or name_only) and chosen != "text":
        raise UsageError(f"{'--stat' if stat else '--name-only'} is a text output; leave out --format/--json")
    if chosen != "markdown" and shaped:
        raise UsageError("--max-bytes and --summary shape the markdown report; add --format markdown")
    return chosen


def _diffs(args: tuple[str, ...], remote: str | None, reverse: bool
           ) -> tuple[list[ExperimentDiff], str, list[Any]]:
    """The diffs the arguments ask for, the report's default heading, and the model manifests' changes."""
    from amlvc.review import arguments, revisions

    root = _root()
    chosen = arguments.parse(root, args, cwd=Path.cwd(), max_revisions=1 if remote else 2)
    for line in chosen.notes:
        note(line)
    slugs = list(chosen.slugs)
    if remote is None:
        diffs = revisions.diff_revisions(root, chosen.old, chosen.new, slugs, reverse=reverse)
        sides = list(chosen.revisions) if chosen.new else [*(chosen.revisions[:1] or ["HEAD"]), "work tree"]
        if reverse:
            sides = sides[::-1] if len(sides) == 2 else [f"{sides[0]} (reversed)"]
        revs = [rev for rev in (chosen.old, chosen.new) if rev]
        models = [] if reverse else diff_changes(root, revs, slugs)
        return diffs, "amlvc diff " + " → ".join(sides), models
    return (*_remote_diffs(root, remote, chosen.old, slugs, pull=reverse), [])


def _remote_diffs(root: Path, remote: str, rev: str | None, slugs: list[str], *, pull: bool
                  ) -> tuple[list[ExperimentDiff], str]:
    """The workspace against the local files (what a push would write), or with `pull` the other way round."""
    from amlvc.review import revisions
    from amlvc.sync.remote import workspace_files
    from amlvc.worktree import experiments

    local = experiments.read_many(root, slugs, rev)
    workspace = workspace_files(root, remote, slugs)
    here = rev or "work tree"
    if pull:
        return (revisions.diff_experiments(local, workspace, slugs),
                f"amlvc diff: workspace {remote} → {here} (what `amlvc pull -r {remote}` would bring)")
    only_there = sorted(set(workspace) - set(local))
    if only_there:  # a push leaves them as they are
        note(f"{len(only_there)} experiment(s) only in workspace '{remote}' ({some(only_there)}): a push leaves "
             f"them alone; `amlvc pull -r {remote}` brings them here")
    kept = [s for s in slugs if s in local] if slugs else []
    diffs = revisions.diff_experiments({s: f for s, f in workspace.items() if s in local}, local, kept)
    return diffs, f"amlvc diff: {here} → workspace {remote} (what `amlvc push -r {remote}` would change)"


def _changed(diffs: list[ExperimentDiff]) -> bool:
    return any(d.changes or d.status in ("added", "removed") for d in diffs)


@cli.command("log")
@click.argument("experiment", metavar="[EXP]", required=False)
@click.option("-n", "--max-count", type=click.IntRange(min=1), help="Show at most N commits.")
@click.option("--json", "as_json", is_flag=True, help="Commits and their change records as JSON.")
@click.option("-p", "--patch", is_flag=True, help="Show each commit's change records, not only the summary.")
@color_option
def log_command(experiment: str | None, max_count: int | None, as_json: bool, patch: bool, color: str) -> None:
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
    rows = log_rows(root, one, entries, max_count)  # + commits of trained-model versions (cli/models.py)
    if as_json:
        emit_json([_log_json(commit, date, author, subject, e, changes, summary, single=bool(one))
                   for commit, date, author, subject, e, changes in rows])
        return
    colored = use_color(color)
    for commit, date, author, subject, e, changes in rows:
        sha = click.style(commit[:10], fg="yellow") if colored else commit[:10]
        click.echo(f"{sha} {date[:10]} {author}: {subject}", color=colored)
        for d in e.diffs if e else ():
            click.echo(f"    {summary(d)}" if one else f"    {d.slug}: {summary(d)}")
            if patch:
                body = render([d], "text", color=colored).splitlines()[1:]
                click.echo("\n".join("    " + line for line in body if line), color=colored)
        for change in changes:
            click.echo(f"    {change.text}")
        if not (e and e.diffs) and not changes:
            click.echo("    (no experiment changed)")


def _log_json(commit: str, date: str, author: str, subject: str, e: Any, models: Any, summary: Any, *,
              single: bool) -> dict[str, Any]:
    changed = [{"slug": d.slug, "status": d.status, "summary": summary(d), "changes": [c.to_json() for c in d.changes]}
               for d in (e.diffs if e else ())]
    entry: dict[str, Any] = {"commit": commit, "date": date, "author": author, "subject": subject,
                             "experiments": changed}
    if single:  # `log EXP`: the experiment's summary and records at the top level too
        entry.update(summary=changed[0]["summary"] if changed else "", changes=changed[0]["changes"] if changed else [])
    if models:
        entry["models"] = [m.to_json() for m in models]
    return entry
