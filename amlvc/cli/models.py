"""`amlvc model list|pull|promote|show`: trained models in git (manifests), their bytes in the object store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from amlvc.cli.base import cli, emit_json, json_option, note, progress_bar, token_option, workspace_option

if TYPE_CHECKING:
    from amlvc.review.models import ModelChange
    from amlvc.review.revisions import LogEntry

_STATES = {"tracked": "tracked", "newer": "newer version available", "untracked": "untracked",
           "local-only": "only in models/ (not in this workspace)"}


@cli.group("model")
def model_group() -> None:
    """Trained models: manifests in models/<name>.json (git), bytes in .amlvc/objects/ (not in git)."""


@model_group.command("list")
@workspace_option
@token_option
@json_option
def model_list(remote: str | None, token_env: str | None, as_json: bool) -> None:
    """The workspace's trained models beside the manifests: tracked, newer version available, untracked.

    \b
    Examples:
      amlvc model list
      amlvc model list --remote prod --json
    """
    from amlvc.sync.models import list_models

    result = list_models(Path.cwd(), remote=remote, token_env=token_env)
    if as_json:
        emit_json(result.to_json())
        return
    for m in result.models:
        ws = f"workspace version {m.workspace.version}" if m.workspace else "not in the workspace"
        mine = f", models/ version {m.tracked}" if m.tracked is not None else ""
        click.echo(f"{m.name}  {_STATES[m.state]}  ({ws}{mine})")
    if not result.models:
        note(f"No trained models in workspace '{result.remote}' or under models/.")


@model_group.command("pull")
@click.argument("names", nargs=-1, metavar="[NAME[@VERSION]]...")
@click.option("--all", "all_", is_flag=True, help="Every trained model of the workspace (its latest version).")
@workspace_option
@token_option
@json_option
def model_pull(names: tuple[str, ...], all_: bool, remote: str | None, token_env: str | None, as_json: bool) -> None:
    """Download model versions, store them by sha256, write their manifests and commit.

    Without NAME, the latest version of every model that already has a manifest. The bytes come
    from the node output the model was promoted from (found in its experiment's run history) or
    the asset's download location; stored objects are verified and fetched again when damaged.

    \b
    Examples:
      amlvc model pull "Kündigung – Logistische Regression"
      amlvc model pull kundigung-logistische-regression@2
      amlvc model pull --all
    """
    from amlvc.sync.models import pull

    with progress_bar(not as_json) as bar:
        result = pull(Path.cwd(), names, all_=all_, remote=remote, token_env=token_env, progress=bar)
    if as_json:
        emit_json(result.to_json())
        return
    for p in result.pulled:
        how = "downloaded" if p.downloaded else "already stored"
        click.echo(f"{p.name}@{p.version.version}  sha256 {p.version.sha256}  {p.version.size} B  ({how})")
    for model, why in result.unavailable:
        note(f"skipped {model}: {why}")
    note(f"Committed {result.commit[:12]}." if result.commit else "The manifests already record these versions.")


@model_group.command("promote")
@click.argument("experiment", metavar="EXP")
@click.argument("node", metavar="NODE")
@click.option("--output", metavar="PORT", help="The output port (default: the node's one trained-model output).")
@click.option("--name", required=True, help="The model's name; an existing name gets a new version.")
@click.option("--description", default="", help="The model's description.")
@click.option("--dry-run", "-n", is_flag=True, help="Say what would be promoted; change nothing.")
@workspace_option
@token_option
@json_option
def model_promote(experiment: str, node: str, output: str | None, name: str, description: str, dry_run: bool,
                  remote: str | None, token_env: str | None, as_json: bool) -> None:
    """Promote NODE's trained model from EXP's latest finished run (Promote-AmlTrainedModel), then pull it.

    NODE is a node id or the module name of one node (e.g. "Train Model"). An existing model name
    gets a new version of that model. The bytes are stored, the manifest committed with the run
    they came from. Refused (exit 6, nothing changed) when the run is not Finished or the node has
    no trained-model output.

    \b
    Examples:
      amlvc model promote kundigung-training 8c2e4a6b-…-47 --name "Kündigung – Logistische Regression"
      amlvc model promote kundigung-training "Train Model" --name churn-model --dry-run
    """
    from amlvc.sync.promote import promote

    result = promote(Path.cwd(), experiment, node, name=name, output=output, description=description,
                     remote=remote, token_env=token_env, dry_run=dry_run)
    if as_json:
        emit_json(result.to_json())
        return
    p = result.plan
    source = f"{p.module} [{p.node}] {p.port!r} of {p.experiment.slug or p.experiment.name} run {p.run_id}"
    if result.pulled is None:
        note(f"Dry run: {source} would become {name}@{p.version} in '{p.remote}'; nothing was changed.")
        return
    v = result.pulled.version
    click.echo(f"{name}@{v.version}  {v.id}  sha256 {v.sha256}")
    note(f"Promoted {source}; committed {result.commit[:12] if result.commit else '(no change)'}.")


@model_group.command("show")
@click.argument("name", metavar="NAME[@VERSION]")
@json_option
def model_show(name: str, as_json: bool) -> None:
    """A model's manifest, the experiments using each version, and whether the stored bytes match (offline).

    Exit 6 when a stored object's bytes no longer hash to the manifest's sha256 (both are named).

    \b
    Examples:
      amlvc model show kundigung-logistische-regression
      amlvc model show "Kündigung – Logistische Regression@2" --json
    """
    from amlvc.sync.models import refuse_mismatch, show

    shown = show(Path.cwd(), name)
    if as_json:
        emit_json(shown.to_json())
    else:
        m = shown.manifest
        click.echo(f"{m.name}  (models/{m.slug}.json, family {m.family})")
        for v in shown.versions:
            version = v.version
            click.echo(f"  @{version.version}  {version.id}  {version.size} B  created {version.created or '?'}")
            click.echo(f"      sha256 {version.sha256}  stored: {v.stored.state}")
            click.echo(f"      {version.source.describe()}" + (f" node {version.source.node} {version.source.port!r}"
                                                               if version.source.node else ""))
            click.echo(f"      used by: {', '.join(v.used_by) or 'no experiment'}")
    refuse_mismatch(shown)


# -- model changes in `amlvc diff` and `amlvc log` (cli/review.py calls these) ------------------------------------


def model_section(changes: Sequence[ModelChange], fmt: str) -> str:
    """The trained-model versions a diff adds or drops, after the experiments (text and markdown; else nothing)."""
    if not changes or fmt not in ("text", "markdown"):
        return ""
    if fmt == "markdown":
        return "\n".join(["", "### Trained models", "", *(f"- `{c.text}`" for c in changes), ""])
    return "\n".join(["trained models:", *(c.text for c in changes), ""])


def diff_changes(root: Path, revs: Sequence[str], slugs: Sequence[str]) -> list[ModelChange]:
    """Model manifest changes between the diff's revisions (those of the named experiments' models only)."""
    from amlvc.review.models import diff_models

    changes = diff_models(root, revs[0] if revs else None, revs[1] if len(revs) > 1 else None)
    return [c for c in changes if not slugs or c.version.source.experiment_slug in slugs]


def log_rows(root: Path, experiment: str, entries: Sequence[LogEntry], max_count: int | None,
             ) -> list[tuple[str, str, str, str, LogEntry | None, list[ModelChange]]]:
    """`amlvc log EXP` rows: (commit, date, author, subject, experiment entry, model changes), newest first."""
    from amlvc.review.models import log_models

    rows: dict[str, tuple[str, str, str, str, LogEntry | None, list[ModelChange]]] = {
        e.commit: (e.commit, e.date, e.author, e.subject, e, []) for e in entries}
    for info, changes in log_models(root, experiment, max_count):
        entry = rows[info.commit][4] if info.commit in rows else None
        rows[info.commit] = (info.commit, info.date, info.author, info.subject, entry, changes)
    ordered = sorted(rows.values(), key=lambda r: r[1], reverse=True)
    return ordered[:max_count] if max_count is not None else ordered
