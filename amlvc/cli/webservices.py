"""`amlvc webservice list|pull|show|push|deploy|patch` and `amlvc endpoint add|patch|refresh|rm`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from amlvc.cli.base import cli, emit_json, json_option, note, progress_bar, token_option, workspace_option

if TYPE_CHECKING:
    from amlvc.sync.endpoints import Edit, EditResult, Options, Recorded
    from amlvc.sync.servicepush import ServicePlan

dry_run_option = click.option("--dry-run", "-n", is_flag=True, help="Show the plan; write nothing anywhere.")
push_option = click.option("--push", "push_", is_flag=True,
                           help="Also apply it: plan (refusals first), commit the edit, push, record the workspace's "
                                "new state in amlvc.lock (a second commit).")


def edit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that edits service.json: --push, --remote, --dry-run, --token-env, --json."""
    for option in reversed((push_option, workspace_option, dry_run_option, token_option, json_option)):
        command = option(command)
    return command


def show_plan(plans: Sequence[ServicePlan]) -> None:
    """The plan of a web-service push, on stderr."""
    for plan in plans:
        if not plan.actions:
            note(f"{plan.name}: unchanged in '{plan.remote}'")
        for action in plan.actions:
            note(f"{plan.name}: {action.verb} {action.target}: {action.detail}")
        for model in plan.models:
            note(f"{plan.name}: put model {model} into storage")


def _options(push: bool, dry_run: bool, remote: str | None, token_env: str | None, as_json: bool,
             bar: Callable[[str, int, int], None] | None) -> Options:
    from amlvc.sync.endpoints import Options

    return Options(push=push, dry_run=dry_run, remote=remote, token_env=token_env, progress=bar,
                   show_plan=None if as_json else show_plan)


def _edit(service: str, change: Edit, push: bool, dry_run: bool, remote: str | None, token_env: str | None,
          as_json: bool) -> None:
    """Run one edit of service.json (with --push: planned, committed, pushed) and report it."""
    from amlvc.sync.endpoints import edit

    with progress_bar(not as_json) as bar:
        result = edit(Path.cwd(), service, change, _options(push, dry_run, remote, token_env, as_json, bar))
    _edit_report(result, as_json, push, dry_run)


def _edit_report(result: EditResult, as_json: bool, push: bool, dry_run: bool) -> None:
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(json.dumps(list(result.patch), indent=2, ensure_ascii=False))
    if dry_run:
        note(f"Dry run: {result.change}; nothing was written.")
    elif not push:
        note(f"{result.change}: written to {result.to_json()['file']}; review (`git diff`), commit, then "
             f"`amlvc webservice push {result.name}` (or use --push).")
    else:
        pushed = result.pushed.commit if result.pushed else None
        note(f"{result.change}: committed {result.commit[:12] if result.commit else '(no change)'}; pushed and "
             f"recorded {pushed[:12] if pushed else '(nothing to push)'}.")


def _recorded(result: Recorded, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json())
    elif result.dry_run:
        note(f"Dry run: would {result.action} web service {result.name}; nothing was changed.")
    else:
        click.echo(f"{result.name}  {result.service_id}")
        note(f"{result.action} {result.name}: " + (f"recorded in {result.to_json()['file']}, commit "
                                                   f"{result.commit[:12]}." if result.commit else "nothing changed."))


@cli.group("webservice")
def webservice_group() -> None:
    """Deployed web services in git: webservices/<name>/service.json, classic or new (ARM).

    \b
    Classic: the service's properties and its endpoints, each endpoint's trained models as model
    versions of models/ ("churn-model@4"). ARM: the definition without read-only fields, the per-remote
    parts (subscription, resource group, commitment plan, storage account) in amlvc.toml
    [remotes.NAME.webservices], the storage key as ${secret:STORAGE_ACCOUNT_KEY}.
    """


@webservice_group.command("list")
@workspace_option
@token_option
@json_option
def webservice_list(remote: str | None, token_env: str | None, as_json: bool) -> None:
    """The workspace's web services beside webservices/: tracked, untracked, local-only.

    \b
    Examples:
      amlvc webservice list
      amlvc webservice list --remote prod --json
    """
    from amlvc.sync.webservices import list_services

    rows = list_services(Path.cwd(), remote=remote, token_env=token_env)
    if as_json:
        emit_json({"services": [r.to_json() for r in rows]})
        return
    for r in rows:
        click.echo(f"{r.name or '-'}  {r.kind}  {r.state}  {r.title}")
    if not rows:
        note("No web services in the workspace or under webservices/.")


@webservice_group.command("pull")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@workspace_option
@token_option
@json_option
def webservice_pull(names: tuple[str, ...], remote: str | None, token_env: str | None, as_json: bool) -> None:
    """Mirror the workspace's web services into webservices/ and one commit (amlvc pull does it too, once tracked).

    Only services whose fingerprint moved since amlvc.lock are fetched. A trained model met for the
    first time is downloaded, stored by sha256 and added to models/. A service changed both here and
    in the workspace is merged member by member; a conflict stops with exit 4, nothing written.

    \b
    Examples:
      amlvc webservice pull
      amlvc webservice pull kundigung-scoring --remote prod
    """
    from amlvc.sync.webservices import pull

    with progress_bar(not as_json) as bar:
        result = pull(Path.cwd(), names, remote=remote, token_env=token_env, progress=bar)
    if as_json:
        emit_json(result.to_json())
        return
    for verb in ("added", "changed", "merged", "recorded"):
        for name in getattr(result, verb):
            note(f"  {verb:<8} {name}")
    for name in result.gone:
        note(f"  deleted in the workspace: {name} (its folder stays)")
    for model in result.models:
        note(f"  + model {model}")
    note(f"Committed {result.commit[:12]}." if result.commit else "Web services already up to date.")


@webservice_group.command("show")
@click.argument("name", metavar="NAME")
@json_option
def webservice_show(name: str, as_json: bool) -> None:
    """A service's file, the model versions it uses and whether their bytes are stored intact (offline).

    \b
    Examples:
      amlvc webservice show kundigung-scoring
      amlvc webservice show kundigung-scoring --json
    """
    from amlvc.errors import ValidationError
    from amlvc.sync.webservices import show

    shown = show(Path.cwd(), name)
    if as_json:
        emit_json(shown.to_json())
    else:
        click.echo(f"{shown.name}  ({shown.canon['$kind']}, {shown.to_json()['file']})")
        for where, model, state in shown.models:
            click.echo(f"  {where}: {model}  stored: {state}")
        for remote, entry in shown.remotes.items():
            click.echo(f"  remote {remote}: {entry.get('id') or entry.get('resource')}")
    bad = [f"{w}: {m} ({s})" for w, m, s in shown.models if s != "ok"]
    if bad:
        raise ValidationError(f"{name}: {'; '.join(bad)}; `amlvc webservice pull` fetches the models a classic "
                              "service serves, `amlvc model pull` a workspace's trained model")


@webservice_group.command("push")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@workspace_option
@dry_run_option
@token_option
@json_option
def webservice_push(names: tuple[str, ...], remote: str | None, dry_run: bool, token_env: str | None,
                    as_json: bool) -> None:
    """Make the workspace's services what the committed service.json files say, safely.

    The plan is printed first. Refused with nothing written: a service changed in the workspace
    since the last pull (exit 4), a change to the default endpoint's model (exit 6: it follows the
    experiment), a model version that does not exist or whose stored bytes differ from its manifest
    (exit 6), uncommitted edits (exit 3). Models are put into the remote's storage account by sha256
    (needs $AMLVC_SECRET_STORAGE_ACCOUNT_KEY); ARM operations are polled to the end: Failed is exit 7
    with the service's message, nothing recorded.

    \b
    Examples:
      amlvc webservice push kundigung-scoring --dry-run
      amlvc webservice push kundigung-scoring --remote prod
    """
    from amlvc.sync.servicepush import push

    with progress_bar(not as_json) as bar:
        result = push(Path.cwd(), names, remote=remote, dry_run=dry_run, token_env=token_env, progress=bar,
                      show_plan=None if as_json else show_plan)
    if as_json:
        emit_json(result.to_json())
    elif dry_run:
        note("Dry run: nothing was written.")
    else:
        note(f"Recorded in amlvc.lock: commit {result.commit[:12]}." if result.commit else "Nothing to push.")


@webservice_group.command("deploy")
@click.argument("experiment", metavar="EXP")
@click.option("--name", help="The folder under webservices/ (default: the slug of the experiment's name).")
@click.option("--update", is_flag=True, help="Redeploy into the experiment's existing service (its default endpoint "
                                              "takes the experiment's current graph; other endpoints keep theirs).")
@workspace_option
@dry_run_option
@token_option
@json_option
def webservice_deploy(experiment: str, name: str | None, update: bool, remote: str | None, dry_run: bool,
                      token_env: str | None, as_json: bool) -> None:
    """Deploy EXP as a classic web service (New-AmlWebService) and record it in webservices/.

    A predictive experiment becomes a scoring service whose trained models are endpoint resources;
    a training experiment whose web-service output is its trained model becomes a training service
    for `amlvc retrain`. EXP's latest run must be Finished (exit 6 otherwise).

    \b
    Examples:
      amlvc webservice deploy kundigung-training-predictive-exp --name kundigung-scoring
      amlvc webservice deploy kundigung-training --name kundigung-training-svc
      amlvc webservice deploy kundigung-training-predictive-exp --update
    """
    from amlvc.sync.endpoints import deploy

    with progress_bar(not as_json) as bar:
        result = deploy(Path.cwd(), experiment, name=name, update=update,
                        options=_options(False, dry_run, remote, token_env, as_json, bar))
    _recorded(result, as_json)


@webservice_group.command("patch")
@click.argument("name", metavar="NAME")
@click.option("--model", "model", required=True, metavar="NAME@VERSION", help="The model version to deploy.")
@click.option("--asset", metavar="ID", help="The trained-model asset (when the definition has several).")
@edit_options
def webservice_patch(name: str, model: str, asset: str | None, push_: bool, remote: str | None, dry_run: bool,
                     token_env: str | None, as_json: bool) -> None:
    """Point an ARM service's trained-model asset at NAME@VERSION; the change is printed as RFC 6902.

    \b
    Examples:
      amlvc webservice patch kundigung-scoring --model churn-model@5
      amlvc webservice patch kundigung-scoring --model churn-model@5 --push
    """
    from amlvc.sync.endpoints import patch_model

    _edit(name, patch_model(name, model, asset), push_, dry_run, remote, token_env, as_json)


@cli.group("endpoint")
def endpoint_group() -> None:
    """Endpoints of a classic web service, as edits of webservices/<SERVICE>/service.json."""


@endpoint_group.command("add")
@click.argument("service", metavar="SERVICE")
@click.argument("endpoint", metavar="NAME")
@click.option("--description", default="", help="The endpoint's description.")
@click.option("--throttle", type=click.Choice(["High", "Low"]), default="High", show_default=True,
              help="Throttle level (Low fixes the concurrent calls at 4).")
@click.option("--max-calls", type=click.IntRange(1, 200), help="Maximum concurrent calls (High; default 20).")
@edit_options
def endpoint_add(service: str, endpoint: str, description: str, throttle: str, max_calls: int | None, push_: bool,
                 remote: str | None, dry_run: bool, token_env: str | None, as_json: bool) -> None:
    """Add endpoint NAME (Add-AmlWebServiceEndpoint); it starts with the default endpoint's models.

    \b
    Examples:
      amlvc endpoint add kundigung-scoring ep2
      amlvc endpoint add kundigung-scoring ep2 --throttle High --max-calls 50 --push
    """
    from amlvc.sync.endpoints import add_endpoint

    _edit(service, add_endpoint(service, endpoint, description=description, throttle=throttle, max_calls=max_calls),
          push_, dry_run, remote, token_env, as_json)


@endpoint_group.command("patch")
@click.argument("service", metavar="SERVICE")
@click.argument("endpoint", metavar="NAME")
@click.option("--model", "model", required=True, metavar="NAME@VERSION", help="The model version to serve.")
@click.option("--resource", metavar="RESOURCE", help="The endpoint resource (when it has several).")
@edit_options
def endpoint_patch(service: str, endpoint: str, model: str, resource: str | None, push_: bool, remote: str | None,
                   dry_run: bool, token_env: str | None, as_json: bool) -> None:
    """Serve NAME@VERSION on endpoint NAME (Patch-AmlWebServiceEndpoint); never the default endpoint (exit 6).

    Going back is the same command with the previous version.

    \b
    Examples:
      amlvc endpoint patch kundigung-scoring ep2 --model churn-model@5 --push
      amlvc endpoint patch kundigung-scoring ep2 --model churn-model@4 --push
    """
    from amlvc.sync.endpoints import patch_endpoint

    _edit(service, patch_endpoint(service, endpoint, model, resource), push_, dry_run, remote, token_env, as_json)


@endpoint_group.command("rm")
@click.argument("service", metavar="SERVICE")
@click.argument("endpoint", metavar="NAME")
@edit_options
def endpoint_rm(service: str, endpoint: str, push_: bool, remote: str | None, dry_run: bool,
                token_env: str | None, as_json: bool) -> None:
    """Remove endpoint NAME (never the default endpoint: exit 6).

    \b
    Examples:
      amlvc endpoint rm kundigung-scoring ep3 --push
    """
    from amlvc.sync.endpoints import remove_endpoint

    _edit(service, remove_endpoint(service, endpoint), push_, dry_run, remote, token_env, as_json)


@endpoint_group.command("refresh")
@click.argument("service", metavar="SERVICE")
@click.argument("endpoint", metavar="NAME")
@workspace_option
@dry_run_option
@token_option
@json_option
def endpoint_refresh(service: str, endpoint: str, remote: str | None, dry_run: bool, token_env: str | None,
                     as_json: bool) -> None:
    """Give endpoint NAME the default endpoint's graph and models (Refresh-AmlWebServiceEndpoint), and record it.

    A refresh acts at once (service.json cannot say "the default's graph"); the endpoint's new
    state is committed. Refused when the service changed since the last pull (exit 4).

    \b
    Examples:
      amlvc endpoint refresh kundigung-scoring ep2
    """
    from amlvc.sync.endpoints import refresh

    result = refresh(Path.cwd(), service, endpoint, _options(False, dry_run, remote, token_env, as_json, None))
    _recorded(result, as_json)

