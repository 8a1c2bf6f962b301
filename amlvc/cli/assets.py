"""`amlvc dataset`, `amlvc model`, `amlvc outdated` and `amlvc bump`: parse options, call the core, render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from amlvc.cli.base import cli, emit_json, json_option, note, progress_bar, token_option, workspace_option
from amlvc.errors import ExitCode
from amlvc.rules import UPLOAD_DATA_TYPES

if TYPE_CHECKING:
    from amlvc.sync.assets import Outdated
    from amlvc.sync.versions import VersionInfo



def _version(info: VersionInfo) -> str:
    when = f" ({info.created[:10]})" if info.created else ""
    return f"{info.version if info.version is not None else '?'}{when}"


def change_line(c: Outdated) -> str:
    """`~ dataset Kundenstamm 2016.csv: version 1 → 2` (the diff's wording of a version bump)."""
    from amlvc.worktree.catalog import change_words

    return "~ " + change_words(c.kind, c.name, c.current.known(), c.latest.known(), c.current.id, c.latest.id)


# -- dataset --------------------------------------------------------------------------------------------------


@cli.group("dataset")
def dataset_group() -> None:
    """The workspace's datasets: list them, upload a file as a new dataset or a new version."""


@dataset_group.command("list")
@workspace_option
@click.option("--samples", is_flag=True, help="Also list Microsoft's sample datasets.")
@token_option
@json_option
def dataset_list(remote: str | None, samples: bool, token_env: str | None, as_json: bool) -> None:
    """The workspace's datasets: name, version, format, size, family and id (latest version of each).

    \b
    Examples:
      amlvc dataset list
      amlvc dataset list --remote prod --json
    """
    from amlvc.sync.datasets import list_datasets

    result = list_datasets(Path.cwd(), remote=remote, token_env=token_env, samples=samples)
    if as_json:
        emit_json(result.to_json())
        return
    for d in result.datasets:
        size = f"{d.size} B" if d.size is not None else "?"
        click.echo(f"{d.info.name}  version {_version(d.info)}  {d.data_type}  {size}  family {d.info.family}  "
                   f"{d.info.id}")
    if not result.datasets:
        note(f"No datasets in workspace '{result.remote}'.")


@dataset_group.command("upload")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE")
@click.option("--name", required=True, help="The dataset's name; an existing name gets a new version.")
@click.option("--format", "data_type", type=click.Choice(UPLOAD_DATA_TYPES, case_sensitive=False),
              help="The DataTypeId; default from the file's extension (.csv, .tsv, .txt, .arff, .zip, .rdata).")
@click.option("--description", default="", help="The dataset's description.")
@click.option("--dry-run", "-n", is_flag=True, help="Say what the upload would create; upload nothing.")
@workspace_option
@token_option
@json_option
def dataset_upload(file: Path, name: str, data_type: str | None, description: str, dry_run: bool,
                   remote: str | None, token_env: str | None, as_json: bool) -> None:
    """Upload FILE as dataset NAME (Upload-AmlUserDataSetFromFile), in 2 MiB blocks with a progress bar.

    A name the workspace already has gets a new version of that dataset (same family); the
    schema generation is polled until done. Prints the new id, family and version. Experiments
    keep their pinned version: `amlvc outdated` lists them, `amlvc bump` moves them.

    \b
    Examples:
      amlvc dataset upload kunden-2017.csv --name "Kundenstamm 2016.csv"
      amlvc dataset upload scores.tsv --name Scores --format GenericTSV --json
    """
    from amlvc.sync.datasets import upload

    with progress_bar(not as_json) as bar:
        def sent(done: int, total: int) -> None:
            if bar is not None:
                bar(f"Uploading {file.name}", done, total)

        result = upload(Path.cwd(), file, name=name, data_type=data_type, description=description, remote=remote,
                        token_env=token_env, dry_run=dry_run, progress=sent)
    if as_json:
        emit_json(result.to_json())
        return
    p = result.plan
    what = f"version {p.version} of {p.name!r} (family {p.family})" if p.family else f"new dataset {p.name!r}"
    if result.info is None:
        note(f"Dry run: {p.file} ({p.size} bytes, {p.data_type}, {p.blocks} block(s)) would become {what} in "
             f"'{p.remote}'; nothing was uploaded.")
        return
    click.echo(f"{result.info.id}  family {result.info.family}  version {result.info.version}")
    note(f"Uploaded {p.file} as {what} in '{p.remote}' (schema: {result.schema_status}).")


# -- outdated and bump ----------------------------------------------------------------------------------------


@cli.command("outdated")
@click.argument("experiments", nargs=-1, metavar="[EXP]...")
@workspace_option
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything is outdated (CI).")
@token_option
@json_option
def outdated_command(experiments: tuple[str, ...], remote: str | None, exit_code: bool, token_env: str | None,
                     as_json: bool) -> int:
    """Referenced datasets, trained models, transforms and custom modules with a newer version.

    Like `pip list --outdated`: for each experiment (the files of your work tree), every asset it
    pins whose family has a newer version in the workspace, with the current and the latest
    version and their dates. `amlvc bump` moves the references.

    \b
    Examples:
      amlvc outdated
      amlvc outdated kundigung-training --remote prod
      amlvc outdated --exit-code --json      # CI: exit 1 when something is outdated
    """
    from amlvc.rules import ASSET_KIND_WORDS
    from amlvc.sync.assets import outdated

    report = outdated(Path.cwd(), experiments, remote=remote, token_env=token_env)
    if as_json:
        emit_json(report.to_json())
    elif report.items:
        rows = [("Experiment", "Kind", "Name", "Current", "Latest")]
        rows += [(i.experiment, ASSET_KIND_WORDS[i.kind], i.name, _version(i.current), _version(i.latest))
                 for i in report.items]
        widths = [max(len(r[col]) for r in rows) for col in range(5)]
        for r in rows:
            click.echo("  ".join(text.ljust(w) for text, w in zip(r, widths, strict=True)).rstrip())
    else:
        note(f"Every referenced asset of {len(report.experiments)} experiment(s) is at its latest version in "
             f"'{report.remote}'.")
    return int(ExitCode.DIFFERENCES) if exit_code and report.items else 0


@cli.command("bump")
@click.argument("experiments", nargs=-1, metavar="[EXP]...")
@click.option("--datasets", is_flag=True, help="Move dataset references.")
@click.option("--models", is_flag=True, help="Move trained-model references.")
@click.option("--transforms", is_flag=True, help="Move transform references.")
@click.option("--modules", is_flag=True, help="Move custom-module references.")
@click.option("--to", "to", multiple=True, metavar="NAME@VERSION",
              help="Move the asset called NAME to VERSION (repeatable; also older versions).")
@workspace_option
@token_option
@json_option
def bump_command(experiments: tuple[str, ...], datasets: bool, models: bool, transforms: bool, modules: bool,
                 to: tuple[str, ...], remote: str | None, token_env: str | None, as_json: bool) -> None:
    """Move asset references to their latest version (Update-AmlExperimentUserAsset), as a local edit.

    Rewrites the input ports and the layout XML exactly as the service writes them, in the files of
    the work tree; nothing is committed or pushed: review with `amlvc diff`, commit, `amlvc push`.
    Without a kind flag every kind moves; without EXP every experiment. A --to version that does
    not exist changes nothing (exit 6).

    \b
    Examples:
      amlvc bump kundigung-training --datasets
      amlvc bump --models && amlvc diff
      amlvc bump kundigung-training --to "Kundenstamm 2016.csv@3"
    """
    from amlvc.sync.assets import bump

    kinds = [k for k, on in (("dataset", datasets), ("trainedmodel", models), ("transform", transforms),
                             ("module", modules)) if on]
    result = bump(Path.cwd(), experiments, kinds=kinds, to=to, remote=remote, token_env=token_env)
    if as_json:
        emit_json(result.to_json())
        return
    for c in result.changes:
        click.echo(f"{c.experiment}: {change_line(c)}")
    if result.changes:
        note(f"Rewrote {len(result.written)} file(s); review with `amlvc diff`, commit, then `amlvc push`.")
    elif to:
        note(f"Nothing to bump: the references already pin the versions asked for in '{result.remote}'.")
    else:
        note(f"Nothing to bump: the references are at their latest versions in '{result.remote}'.")
