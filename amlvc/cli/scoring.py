"""`amlvc score` (RRS), `amlvc batch` (BES) and `amlvc retrain`: using and retraining deployed web services."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from amlvc.cli.base import cli, emit_json, json_option, note, progress_bar, token_option, workspace_option
from amlvc.cli.webservices import show_plan
from amlvc.errors import UsageError

param_option = click.option("--param", "params", multiple=True, metavar="K=V",
                            help="A global parameter of the service (repeatable).")


def pairs(values: Sequence[str], option: str) -> list[tuple[str, str]]:
    """NAME=VALUE pairs of a repeatable option; UsageError (2) naming the option otherwise."""
    out = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{option} {value!r}: write NAME=VALUE")
        out.append((name.strip(), rest))
    return out


@cli.command("score")
@click.argument("service", metavar="SERVICE[/ENDPOINT]")
@click.option("--input", "input_", required=True, metavar="[NAME=]FILE",
              help="Rows to score: a CSV file (header, rows) or JSON ({ColumnNames, Values}, a list of row objects, or "
                   "a whole {Inputs: …} request). NAME: the service input (default: its first).")
@param_option
@workspace_option
@token_option
@json_option
def score_command(service: str, input_: str, params: tuple[str, ...], remote: str | None, token_env: str | None,
                  as_json: bool) -> None:
    """Score rows on a service (Invoke-AmlWebServiceRRSEndpoint): one table per output, as CSV on stdout.

    SERVICE is a folder of webservices/; a classic service's default endpoint unless /ENDPOINT is
    given. The endpoint's key is read from the workspace for the call and never stored.

    \b
    Examples:
      amlvc score kundigung-scoring --input sample.csv
      amlvc score kundigung-scoring/ep2 --input input1=sample.csv --json
    """
    from amlvc.sync.scoring import Spec, score, table_text

    name, sep, file = input_.partition("=")
    if not sep or Path(input_).is_file():
        name, file = "", input_
    result = score(Path.cwd(), Spec.parse(service), Path(file), input_name=name or None,
                   params=dict(pairs(params, "--param")), remote=remote, token_env=token_env)
    if as_json:
        emit_json(result.to_json())
        return
    for output, table in result.results.items():
        if len(result.results) > 1:
            note(f"{output}:")
        click.echo(table_text(table), nl=False)


@cli.command("batch")
@click.argument("service", metavar="SERVICE[/ENDPOINT]")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE",
              help="A service input: the file is put into the remote's storage account (repeatable).")
@click.option("--output", "outputs", multiple=True, metavar="NAME=PATH",
              help="Download output NAME to PATH once the job finished (repeatable; needs --wait).")
@param_option
@click.option("--wait", "wait_", is_flag=True, help="Poll the job to its end (exit 7 when it fails) and download.")
@workspace_option
@token_option
@json_option
def batch_command(service: str, inputs: tuple[str, ...], outputs: tuple[str, ...], params: tuple[str, ...],
                  wait_: bool, remote: str | None, token_env: str | None, as_json: bool) -> None:
    """Run a batch job on a service (Invoke-AmlWebServiceBESEndpoint): submit, start, poll, download.

    Inputs go into the remote's storage account by content (amlvc-batch/<sha256>.<ext>); that needs
    the account's key in $AMLVC_SECRET_STORAGE_ACCOUNT_KEY. Without --wait the job id is printed.

    \b
    Examples:
      amlvc batch kundigung-scoring --input input1=kunden.csv --output output1=scores.csv --wait
      amlvc batch kundigung-training-svc --param "Train fraction=0.7" --output model=model.ilearner --wait
    """
    from amlvc.sync.scoring import Spec, batch

    with progress_bar(not as_json) as bar:
        result = batch(Path.cwd(), Spec.parse(service), [(n, Path(f)) for n, f in pairs(inputs, "--input")],
                       [(n, Path(f)) for n, f in pairs(outputs, "--output")], dict(pairs(params, "--param")),
                       wait=wait_, remote=remote, token_env=token_env, progress=bar)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(f"{result.job}  {result.status}")
    for name, path in result.outputs.items():
        note(f"  {name} -> {path}")


@cli.command("retrain")
@click.argument("training", metavar="TRAINING_SERVICE")
@click.option("--into", "into", required=True, metavar="SERVICE[/ENDPOINT]",
              help="What serves the retrained model: a classic service's endpoint (never the default) or an ARM "
                   "service.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=FILE", help="A training input (repeatable).")
@param_option
@click.option("--resource", metavar="NAME", help="The endpoint resource or ARM asset (when there are several).")
@click.option("--push", "push_", is_flag=True,
              help="Also push the change (refusals first, before the job runs) and score one sample row.")
@click.option("--sample", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="With --push: the row to score (the first of FILE; default: the service's example columns).")
@workspace_option
@token_option
@json_option
def retrain_command(training: str, into: str, inputs: tuple[str, ...], params: tuple[str, ...],
                    resource: str | None, push_: bool, sample: Path | None, remote: str | None,
                    token_env: str | None, as_json: bool) -> None:
    """Retrain a model with a training service and serve it: one reviewable commit.

    Runs TRAINING_SERVICE's batch job, stores its .iLearner output by sha256, adds it as the next
    version of the model the target serves (models/<name>.json, with the job's evaluation), points
    the target at it in service.json and commits: "retrain: churn-model@5 (AUC 0.81 → 0.83)". Going
    back is `amlvc endpoint patch SERVICE ENDPOINT --model churn-model@4 --push`. A failed job is exit 7,
    nothing written.

    \b
    Examples:
      amlvc retrain kundigung-training-svc --into kundigung-scoring/ep2 --input input1=kunden-2017.csv
      amlvc retrain kundigung-training-svc --into kundigung-scoring/ep2 --param "Train fraction=0.65" --push
    """
    from amlvc.sync.retrain import Request, retrain
    from amlvc.sync.scoring import Spec, table_text

    with progress_bar(not as_json) as bar:
        result = retrain(Path.cwd(), Request(
            training, Spec.parse(into), [(n, Path(f)) for n, f in pairs(inputs, "--input")],
            dict(pairs(params, "--param")), resource, push_, sample, remote, token_env, progress=bar))
    if push_ and not as_json and result.pushed is not None:
        show_plan(result.pushed.plans)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(result.subject)
    for key, value in (result.evaluation or {}).items():
        old = (result.previous_evaluation or {}).get(key)
        click.echo(f"  {key}: {old if old is not None else '-'}  ->  {value}")
    note(f"Committed {result.commit[:12] if result.commit else '(nothing)'}: {result.previous or 'none'} -> "
         f"{result.model} on {result.into}.")
    if result.sample is not None:
        note("Sample scored on the retrained target:")
        for table in result.sample.results.values():
            click.echo(table_text(table), nl=False)
