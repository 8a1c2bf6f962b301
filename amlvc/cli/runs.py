"""`amlvc run`: run an experiment in the workspace and follow it; the run lines shared with `push --run --wait`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from amlvc.cli.base import cli, emit_json, json_option, note, token_option, workspace_option

if TYPE_CHECKING:
    from amlvc.sync.runs import NodeState, RunResult, RunState

timeout_option = click.option("--timeout", type=click.FloatRange(min=0), default=3600.0, show_default=True,
                              metavar="S", help="With --wait: give up waiting after S seconds (exit 5).")


def node_line(n: NodeState) -> str:
    detail = f": {n.detail}" if n.detail and n.status != "Finished" else ""
    return f"    {n.status:<10} {n.module} [{n.node}]{detail}"


def watch(state: RunState, changed: Sequence[NodeState]) -> None:
    """A progress line per change of the run's or a node's status (stderr)."""
    for n in changed:
        note(node_line(n))
    if not changed or state.final:
        note(f"  run {state.status}" + (f" ({state.run_id})" if state.run_id else ""))


def report(results: Sequence[RunResult]) -> None:
    """One line per run on stdout, the lock commit or why there is none on stderr."""
    for r in results:
        what = r.experiment.slug or r.experiment.name
        took = f" in {r.seconds:.1f} s" if r.waited else ""
        click.echo(f"{r.state.status} {what} ({r.state.run_id or 'no run id yet'}){took}")
        if r.commit:
            note(f"Recorded the run in amlvc.lock: commit {r.commit[:12]}.")
        elif r.lock_note and r.waited:
            note(f"amlvc.lock not updated: {r.lock_note}.")


@cli.command("run")
@click.argument("experiment", metavar="EXP")
@workspace_option
@click.option("--wait", "wait_", is_flag=True,
              help="Poll until the run is Finished, Failed or Canceled, printing each node's state; exit 7 when it "
                   "failed, naming each failed node with its module and error.")
@timeout_option
@token_option
@json_option
def run_command(experiment: str, remote: str | None, wait_: bool, timeout: float, token_env: str | None,
                as_json: bool) -> int:
    """Run the workspace's version of EXP (Start-AmlExperiment), optionally to the end.

    EXP is a folder under experiments/, an experiment id or a name in the workspace. The run
    uses what the workspace has: when that differs from your committed files, a warning says so
    (push first to run yours). After --wait, the run's Etag and RunId go into amlvc.lock in one
    commit when the workspace holds exactly what the lock records, so a later push is not
    refused as stale.

    \b
    Examples:
      amlvc run kundigung-training --wait
      amlvc run kundigung-training --remote prod --wait --timeout 1800
      amlvc run kundigung-training --json          # start it, print the run id, do not wait
    """
    from amlvc.sync import runs

    poll = runs.Poll(timeout=timeout, watch=None if as_json else watch)
    result = runs.run(Path.cwd(), experiment, remote=remote, wait_=wait_, poll=poll, token_env=token_env,
                      warn=lambda text: note(f"Warning: {text}"))
    if as_json:
        emit_json(result.to_json())
    else:
        report([result])
    runs.raise_for_failures([result])
    return 0
