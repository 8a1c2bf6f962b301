"""`amlvc release PLAN.toml`: the ALM article's steps from one declarative plan, resumable, reported for CI."""

from __future__ import annotations

from pathlib import Path

import click

from amlvc.cli.base import cli, emit_json, json_option, note, token_option, workspace_option


@cli.command("release")
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path), metavar="PLAN.toml")
@click.option("--resume", is_flag=True, help="Continue a release that stopped, at the step that did not finish.")
@click.option("--dry-run", "-n", is_flag=True, help="List the steps and which are done; change nothing.")
@workspace_option
@token_option
@json_option
def release_command(plan: Path, resume: bool, dry_run: bool, remote: str | None, token_env: str | None,
                    as_json: bool) -> None:
    """Release a model from data to a scored endpoint, as the ALM article does by hand.

    \b
    Steps (each beside the PowerShell cmdlet it replaces):
       1 upload the dataset              Upload-AmlUserDataSetFromFile
       2 copy the training experiment    Copy-AmlExperiment
       3 bump its dataset                Update-AmlExperimentUserAsset
       4 run it                          Start-AmlExperiment
       5 promote the model               Promote-AmlTrainedModel
       6 copy the predictive experiment  Copy-AmlExperiment
       7 bump its model                  Replace-AmlExperimentUserAsset
       8 run it                          Start-AmlExperiment
       9 deploy it                       New-AmlWebService
      10 add / patch an endpoint         Add-/Patch-AmlWebServiceEndpoint
      11 score a sample                  Invoke-AmlWebServiceRRSEndpoint

    Each step looks for its effect first (so running it twice does it once), commits it through
    the command it stands for, and records its state in .amlvc/release/<plan>.json. A failed or
    killed release stops (with the failed step's exit code); --resume continues there. --json
    reports every step for CI. See docs/examples/release.toml and docs/webservices.md.

    \b
    Examples:
      amlvc release docs/examples/release.toml --dry-run
      amlvc release release.toml --remote prod --json
      amlvc release release.toml --resume
    """
    from amlvc.sync.release import release

    result = release(Path.cwd(), plan, resume=resume, dry_run=dry_run, remote=remote, token_env=token_env,
                     say=None if as_json else note)
    if as_json:
        emit_json(result.to_json())
    else:
        for step in result.steps:
            click.echo(f"{step.state:<12} {step.id:<16} {step.cmdlet}")
        note(f"Progress in {result.progress}.")
    if result.failure is not None:
        raise result.failure
