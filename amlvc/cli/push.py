"""`amlvc check` and `amlvc push`: parse options, call amlvc.push, render the plan and the results."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from amlvc.cli.base import cli, emit_json, is_terminal, json_option, note, token_option, workspace_option
from amlvc.cli.runs import report, timeout_option, watch
from amlvc.errors import MissingAssets, UsageError, some
from amlvc.render.text import record_line

if TYPE_CHECKING:  # the core modules import requests and git: loaded by the commands that use them
    from amlvc.sync import push as core
    from amlvc.sync import pushplan
    from amlvc.sync.check import CheckResult, Resolution
    from amlvc.sync.runs import RunResult

_MARKS = {"exact": "=", "family": "~", "name": "~", "mapped": "~", "missing": "!"}
_ACTION_MARKS = {"create": "+", "update": "~", "unchanged": "="}

rev_option = click.option("--rev", metavar="REV", help="Use the files as they were at this git revision.")
remap_option = click.option(
    "--remap", metavar="family|name|FILE",
    help="Resolve references missing in the target: by family (latest batch), by name, or by a JSON file "
         "mapping ids, family ids or names to target ids. Default: keep what exists, move foreign "
         "references to the same family (or name) in the target.")


def _short(ident: str) -> str:
    parts = ident.split(".")
    if len(parts) == 3 and len(parts[0]) == 32 and len(parts[1]) == 32:
        return f"{parts[0][:8]}….{parts[1][:8]}….{parts[2]}"
    return ident


def _resolution_line(r: Resolution) -> str:
    from amlvc.rules import ASSET_KIND_WORDS

    kind = ASSET_KIND_WORDS.get(r.reference.kind, "asset")
    name = f" {r.target.name!r}" if r.target is not None and r.target.name else ""
    target = f" -> {_short(r.target.id)}" if r.remap and r.target is not None else ""
    layout = " (also in layout)" if any("layout" in p for p in r.reference.places) and len(
        r.reference.places) > 1 else ""
    status = "MISSING: " if r.status == "missing" else ""
    return f"  {_MARKS.get(r.status, '?')} {kind:<13} {_short(r.reference.id)}{target}{name}  {status}{r.note}{layout}"


def render_check(result: CheckResult, *, verbose: bool) -> list[str]:
    lines = [f"{result.experiment} -> {result.remote}: "
             + ("ok" if result.ok else f"{len(result.missing)} missing")]
    for r in result.resolutions:
        if verbose or r.status != "exact":
            lines.append(_resolution_line(r))
    return lines


def render_plan(plan: pushplan.PushPlan) -> list[str]:
    where = f" at {plan.rev}" if plan.rev else ""
    lines = [f"Plan for workspace '{plan.remote}' ({plan.workspace_id}){where}:"]
    for e in plan.experiments:
        ident = f" [{e.experiment_id}]" if e.experiment_id else ""
        lines.append(f"  {_ACTION_MARKS[e.action]} {e.slug}  {e.action}: {e.reason}{ident}")
        lines += [f"      {record_line(change)}" for change in e.changes]  # what it writes, as terraform's plan
        if e.check is not None:
            for r in e.check.resolutions:
                if r.remap or not r.ok:
                    lines.append("    " + _resolution_line(r).lstrip())
        for s in e.secrets:
            if e.writes:
                changed = " (differs from the workspace's value: the push replaces it)" if s.changed else ""
                lines.append(f"    secret {s.name}: " + (f"from {s.source}{changed}" if s.source else "MISSING"))
    lines.append(f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
                 f"{plan.count('unchanged')} unchanged.")
    return lines


@contextmanager
def _progress(enabled: bool) -> Iterator[core.Progress | None]:
    if not enabled:
        yield None
        return
    state: dict[str, Any] = {}

    def update(label: str, done: int, total: int) -> None:
        bar: Any = state.get("bar")
        if bar is None:
            bar = click.progressbar(length=total, label="push", file=sys.stderr)
            bar.__enter__()  # closed in the finally below
            state["bar"] = bar
        bar.label = label
        bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)


@cli.command("check")
@click.argument("experiments", nargs=-1, metavar="[EXP]...")
@workspace_option
@rev_option
@remap_option
@token_option
@click.option("--verbose", "-v", is_flag=True, help="Also list the references that resolve exactly.")
@json_option
def check_command(experiments: tuple[str, ...], remote: str | None, rev: str | None, remap: str | None,
                  token_env: str | None, verbose: bool, as_json: bool) -> int:
    """Resolve every module, dataset, trained model and transform an experiment references in a workspace.

    Each reference (node module ids, input-port asset ids and the layout XML) is exact, another batch of
    the same family (shown with the batch a push would use), found by name, or missing. Exit 6 when
    anything is missing, so CI can run it before a push.

    \b
    Examples:
      amlvc check                          # every experiment against the default remote
      amlvc check churn --remote prod      # one experiment, against prod
      amlvc check --remap name --remote prod
      amlvc check --rev v1.2 --json
    """
    from amlvc.sync.check import check

    results = check(Path.cwd(), experiments, remote=remote, rev=rev, remap=remap, token_env=token_env)
    if as_json:
        emit_json({"ok": all(r.ok for r in results), "experiments": [r.to_json() for r in results]})
    else:
        for result in results:
            for line in render_check(result, verbose=verbose):
                click.echo(line)
    missing = [r for r in results if not r.ok]
    if missing:
        count = sum(len(r.missing) for r in missing)
        raise MissingAssets(
            f"{count} reference(s) of {some(r.experiment for r in missing)} missing in workspace "
            f"'{missing[0].remote}'; create them there or map them with --remap family|name|FILE")
    return 0


@cli.command("push")
@click.argument("experiments", nargs=-1, metavar="[EXP]...")
@workspace_option
@rev_option
@click.option("--as-new", metavar="NAME", help="Create a new experiment called NAME instead of updating.")
@click.option("--dry-run", "-n", is_flag=True, help="Print the plan and write nothing.")
@click.option("--force", is_flag=True,
              help="Overwrite an experiment that changed in the workspace, after backing its current version up "
                   "under refs/amlvc/backup/<remote>/<exp>/<time>.")
@click.option("--run", "run_", is_flag=True,
              help="Save and run (IsDraft: false) instead of saving a draft; unchanged experiments are not run.")
@click.option("--wait", "wait_", is_flag=True,
              help="With --run: poll each run until it ends, as `amlvc run --wait` (exit 7 when one failed).")
@timeout_option
@remap_option
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Parallel connections to the workspace.")
@token_option
@json_option
def push_command(experiments: tuple[str, ...], remote: str | None, rev: str | None, as_new: str | None,
                 dry_run: bool, force: bool, run_: bool, wait_: bool, timeout: float, remap: str | None, jobs: int,
                 token_env: str | None, as_json: bool) -> int:
    """Write a committed revision of experiments back to a workspace, safely.

    A push sends a revision: HEAD, or --rev REV. Commit your edits first (your pre-commit hooks run
    then); uncommitted changes to an experiment it would send stop it (exit 3). It prints the plan
    (create / update / unchanged, assets to remap, secrets to fill, a secret whose value would replace
    the workspace's), checks every reference, then saves each changed experiment as a draft and records
    the new Etag in amlvc.lock in one commit.

    Refuses, writing nothing anywhere: an experiment changed in the workspace since the last pull
    (exit 4; pull and review, or --force), a reference the workspace lacks or a secret without a value
    (exit 6). An unchanged experiment is not written; one the workspace already has (a push cut off
    before it could record it) is recorded, not written again. Secrets come from $AMLVC_SECRET_<NAME>,
    then from .amlvc/secrets.json.

    \b
    Examples:
      amlvc push --dry-run                 # what would happen
      amlvc push churn                     # push one experiment to the default remote
      amlvc push churn --remote prod       # dev -> prod: created there, assets remapped by family
      amlvc push churn --rev HEAD~2 --force
      amlvc push churn --as-new "Churn (copy)"
      amlvc push churn --run --wait        # save, run, and follow the run to its end
    """
    from amlvc.sync import push as core
    from amlvc.sync import pushplan

    if wait_ and not run_:
        raise UsageError("--wait follows the runs that --run starts; add --run (or use `amlvc run EXP --wait`)")

    options = pushplan.PushOptions(experiments=experiments, remote=remote, rev=rev, as_new=as_new, dry_run=dry_run,
                               force=force, run=run_, remap=remap, token_env=token_env, jobs=jobs)

    def show(plan: pushplan.PushPlan) -> None:
        if not as_json:
            for line in render_plan(plan):
                note(line)

    with _progress(is_terminal() and not as_json) as progress:
        result = core.push(Path.cwd(), options, show_plan=show, progress=progress)
    followed = _follow(result, remote, timeout, token_env, as_json) if wait_ and not dry_run else []
    if as_json:
        emit_json({**result.to_json(), **({"runs": [r.to_json() for r in followed]} if wait_ else {})})
        _raise_for_failures(followed)
        return 0
    if dry_run:
        note("Dry run: nothing was written.")
    elif not result.pushed:
        note("Nothing to push: the workspace already has these experiments.")
    else:
        for p in result.pushed:
            extra = f"; previous version saved as {p.backup_ref}" if p.backup_ref else ""
            click.echo(f"{p.action}d {p.slug} in '{result.plan.remote}' ({p.experiment_id}){extra}")
        if result.commit:
            note(f"Recorded in amlvc.lock: commit {result.commit[:12]}.")
    report(followed)
    _raise_for_failures(followed)
    return 0


def _follow(result: core.PushResult, remote: str | None, timeout: float, token_env: str | None,
            quiet: bool) -> list[RunResult]:
    """`push --run --wait`: follow the run of each experiment the push wrote (sync.runs.follow)."""
    from amlvc.sync import runs

    pushed = [(p.slug, p.experiment_id) for p in result.pushed]
    return runs.follow(Path.cwd(), pushed, remote=result.plan.remote or remote, token_env=token_env,
                       poll=runs.Poll(timeout=timeout, watch=None if quiet else watch))


def _raise_for_failures(followed: list[RunResult]) -> None:
    from amlvc.sync import runs

    runs.raise_for_failures(followed)
