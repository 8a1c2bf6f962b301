"""`amlvc pull`, `status`, `restore` and `demo`: parse options, call the core, render, exit codes."""

from __future__ import annotations

from pathlib import Path

import click

from amlvc.cli.base import cli, emit_json, json_option, note, progress_bar, token_option, workspace_option
from amlvc.errors import ExitCode


def _root() -> Path:
    from amlvc.repo import find_root

    return find_root(Path.cwd())



# -- pull -------------------------------------------------------------------------------------


@cli.command()
@click.argument("experiments", nargs=-1, metavar="[EXP]...")
@workspace_option
@click.option("--history", "with_history", is_flag=True,
              help="Also import every run-history snapshot as its own commit (oldest first, authored and "
                   "dated as the run).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=32, show_default=True,
              help="Experiments fetched in parallel (a workspace takes 100s of ms per GET: the CPU work of a "
                   "pull fits between the answers).")
@click.option("--prune", is_flag=True, help="Remove experiments deleted in the workspace (else only reported).")
@click.option("--theirs", is_flag=True,
              help="Where an experiment changed both here (committed) and in the workspace, take the "
                   "workspace's version instead of merging (your commits stay in `git log`).")
@token_option
@json_option
def pull(experiments: tuple[str, ...], remote: str | None, with_history: bool, jobs: int, prune: bool,
         theirs: bool, token_env: str | None, as_json: bool) -> int:
    """Fetch the workspace's experiments into normalized files and one commit.

    Only experiments whose Etag moved since amlvc.lock are fetched; nothing changed means no
    request beyond the list, nothing written and no commit. Uncommitted edits to a file the pull
    would overwrite stop it (exit 3) before anything is written.

    An experiment changed both in your commits and in the workspace since the last pull is merged
    three-way (by node, parameter, edge and canvas position, scripts line by line): the merged
    files are committed and `amlvc push` then sends them. If both sides changed the same thing,
    nothing is written for any experiment and the pull stops (exit 4) listing each conflict;
    keep yours with `amlvc push --force EXP` or take the workspace's with `amlvc pull --theirs EXP`.

    \b
    Examples:
      amlvc pull                        # every experiment of the default remote
      amlvc pull churn-training         # one experiment (slug, name or id)
      amlvc pull --remote prod --prune  # and drop experiments deleted in prod
      amlvc pull --history              # also one commit per run-history snapshot
      amlvc pull --theirs churn-training  # take the workspace's version, do not merge
    """
    from amlvc.sync.pull import pull as run_pull

    root = _root()
    with progress_bar(not as_json) as progress:
        result = run_pull(root, experiments, remote=remote, history_=with_history, jobs=jobs, prune=prune,
                          token_env=token_env, progress=progress, theirs=theirs)
    refused = int(ExitCode.VALIDATION) if result.invalid else 0
    if as_json:
        emit_json(result.as_json())
        return refused
    for slug, why in result.invalid:
        note(f"  skipped  {slug}: {why}")
    if result.recovered:
        note("Finished off an interrupted pull (its partial writes were put back first).")
    for slug in result.added:
        note(f"  added    {slug}")
    for slug in result.changed:
        if slug in result.merged:
            note(f"  merged   {slug}  (changed on both sides; local edits kept, `amlvc push` sends them)")
        else:
            note(f"  changed  {slug}" + ("  (--theirs: local commits overwritten; see `git log`)"
                                         if slug in result.diverged else ""))
    for slug in result.removed:
        note(f"  removed  {slug}")
    for slug in result.recorded:
        note(f"  recorded {slug}  (saved or run in the workspace, content unchanged)")
    for slug in result.gone:
        note(f"  deleted in workspace: {slug}  (kept; `amlvc pull --prune` removes it)")
    if result.history_commits:
        note(f"Imported {len(result.history_commits)} run-history snapshot(s).")
    if result.commit:
        note(f"Committed {result.commit[:12]}: {len(result.added)} added, {len(result.changed)} changed, "
             f"{len(result.removed)} removed from '{result.remote}'.")
    else:
        note(f"Already up to date with '{result.remote}' ({result.unchanged} experiments).")
    services = result.webservices or {}
    if services.get("commit"):
        note(f"Web services: committed {services['commit'][:12]} (" + ", ".join(
            f"{verb} {', '.join(services[verb])}" for verb in ("added", "changed", "merged") if services[verb]) + ").")
    if result.invalid:
        note(f"Error: {len(result.invalid)} experiment(s) refused as invalid and not pulled (see above); the others "
             f"were. Fix them in the workspace (or report the service's answer), then pull again.")
    return refused


# -- status -----------------------------------------------------------------------------------


@cli.command()
@workspace_option
@click.option("--check", is_flag=True, help="Exit 1 when any experiment is not synced.")
@token_option
@json_option
def status(remote: str | None, check: bool, token_env: str | None, as_json: bool) -> int:
    """Each experiment's state between the workspace, amlvc.lock and your files.

    \b
    States:
      synced             same in the workspace and here
      workspace-changed  changed in the workspace since the last pull (pull it)
      local-changed      changed here since the last pull or push (push it)
      diverged           changed on both sides (pull merges them, or stops on a conflict)
      layout-only        only canvas positions moved (layout.json), on either side
      workspace-only     in the workspace, never pulled
      git-only           here, but not (or no longer) in the workspace
    One list request, plus a GET of each experiment whose Etag moved.

    \b
    Examples:
      amlvc status
      amlvc status --remote prod --check   # exit 1 when anything is not synced (CI)
    """
    from amlvc.sync.status import status as run_status

    result = run_status(_root(), remote=remote, token_env=token_env)
    if as_json:
        emit_json(result.as_json())
    else:
        click.echo(f"Workspace '{result.remote}' ({result.workspace_id}):")
        width = max([len(e.state) for e in result.experiments] + [6])
        for e in result.experiments:
            extra = ""
            if e.state == "layout-only":
                sides = [s for s, v in (("workspace", e.workspace), ("local", e.local)) if v == "layout"]
                extra = f"  (canvas moved: {', '.join(sides)})"
            elif e.state == "synced" and e.etag_moved:
                extra = "  (saved or run in the workspace, content unchanged)"
            click.echo(f"  {e.state:<{width}}  {e.slug}{extra}")
        if not result.experiments:
            click.echo("  no experiments")
    if check and not result.in_sync:
        return int(ExitCode.DIFFERENCES)
    return 0


# -- restore ----------------------------------------------------------------------------------


@cli.command()
@click.argument("experiment", metavar="EXP")
@click.option("--rev", metavar="REV", help="The git revision whose files to put back.")
@click.option("--snapshot", metavar="RUN_ID",
              help="The run-history snapshot to put back (its full id or its timestamp part).")
@click.option("--as-new", metavar="NAME", help="Create a new experiment NAME instead of overwriting EXP.")
@workspace_option
@click.option("--force", is_flag=True,
              help="Overwrite even if EXP changed in the workspace since the last pull (backed up first "
                   "under refs/amlvc/backup/).")
@token_option
@json_option
def restore(experiment: str, rev: str | None, snapshot: str | None, as_new: str | None, remote: str | None,
            force: bool, token_env: str | None, as_json: bool) -> int:
    """Put an old revision or a run-history snapshot of EXP back into the workspace.

    Overwrites EXP (refused with exit 4 when it changed in the workspace since your last pull,
    unless --force), or creates a copy with --as-new. The repository records the result in a
    commit, so `amlvc status` shows EXP synced afterwards.

    \b
    Examples:
      amlvc restore churn-training --rev HEAD~3
      amlvc restore churn-training --rev v1.2 --as-new "Churn (v1.2)"
      amlvc restore churn-training --snapshot 9952-07-21t15.18.32
    """
    from amlvc.sync.restore import restore as run_restore

    result = run_restore(_root(), experiment, rev=rev, snapshot=snapshot, as_new=as_new, remote=remote,
                         force=force, token_env=token_env)
    if as_json:
        emit_json(result.as_json())
        return 0
    if result.backup_ref:
        note(f"Saved the workspace's previous version under {result.backup_ref}.")
    if result.created:
        note(f"Created {result.new_slug or result.experiment_id} in '{result.remote}' from {result.source} "
             f"of {result.slug}.")
    else:
        note(f"Restored {result.slug} in '{result.remote}' from {result.source}.")
    if result.commit:
        note(f"Committed {result.commit[:12]}.")
    return 0


# -- demo -------------------------------------------------------------------------------------


@cli.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Build the demo repository in DIR (new or empty) and keep it for inspection.")
def demo(keep: Path | None) -> int:
    """Run the main job end to end on an embedded local workspace, in a temporary directory.

    Starts a seeded local Studio (classic) workspace on 127.0.0.1, then: init, pull, an edit
    made through the API as Studio makes it (a parameter change and a node drag), status and
    pull, the semantic diff, a push of a local edit, and a restore of the first revision. Each
    step is printed on stderr. Nothing outside the temporary directory (or DIR) is touched.

    \b
    Examples:
      amlvc demo
      amlvc demo --keep ./amlvc-demo && cd amlvc-demo && git log --stat
    """
    from amlvc.demo import demo as run_demo

    run_demo(note, keep=keep)
    return 0
