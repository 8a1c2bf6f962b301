"""`amlvc init`, `import`, `export`, `normalize` and `verify`: the commands that need no workspace."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from amlvc.cli.base import cli, emit_json, is_terminal, json_option, note, write_output
from amlvc.errors import ExitCode, UsageError


@cli.command()
@click.option("--remote", "-r", "remote_name", metavar="NAME",
              help="Add (or update) a remote: a workspace this repository pulls from and pushes to.")
@click.option("--location", metavar="REGION", help="The remote's Azure region, e.g. 'West Europe'.")
@click.option("--endpoint", metavar="URL", help="The remote's base URL (e.g. a local `amlvc serve`).")
@click.option("--workspace-id", metavar="ID", help="The remote's workspace id (32 hex characters).")
@click.option("--token-env", metavar="VAR",
              help="Name of the environment variable that holds the remote's token (never the token itself).")
@json_option
def init(remote_name: str | None, location: str | None, endpoint: str | None, workspace_id: str | None,
         token_env: str | None, as_json: bool) -> int:
    """Make or adopt a git repository and set amlvc up in it.

    Writes amlvc.toml, amlvc.lock, .gitattributes and .gitignore (which keeps .amlvc/, the local
    secrets, out of git) and commits them. Without --remote the repository is offline: import,
    export, normalize and verify work, pull and push need a remote. Run it again with another
    --remote to add one, or with the same name to change how it is reached (--token-env is kept
    unless given; the workspace id cannot change once amlvc.lock records experiments of it). It
    never touches other files.

    \b
    Examples:
      amlvc init                                        # offline repository
      amlvc init --remote dev --endpoint http://127.0.0.1:8765 \\
                 --workspace-id 0123456789abcdef0123456789abcdef --token-env DEV_TOKEN
      amlvc init --remote prod --location "West Europe" --workspace-id <id>
    """
    from amlvc.config import Remote
    from amlvc.offline.init import init as run_init

    remote = None
    if remote_name is not None:
        if workspace_id is None or (location is None) == (endpoint is None):
            raise UsageError("--remote needs --workspace-id and exactly one of --location or --endpoint")
        remote = Remote(remote_name, workspace_id.strip().lower(), endpoint=endpoint, location=location,
                        token_env=token_env)  # ids are lowercase hex; a copy from elsewhere may not be
    elif any(v is not None for v in (location, endpoint, workspace_id, token_env)):
        raise UsageError("--location, --endpoint, --workspace-id and --token-env describe a remote; add --remote NAME")
    result = run_init(Path.cwd(), remote)
    if as_json:
        emit_json(result.to_json())
        return 0
    what = "Initialized" if result.created_config else "Updated"
    note(f"{what} amlvc repository in {result.root}" + (" (new git repository)" if result.created_git else ""))
    if result.remote is not None:
        where = result.remote.endpoint or result.remote.location
        note(f"Remote {result.remote.name!r}: workspace {result.remote.workspace_id} at {where}")
        for twin in result.same_workspace:
            note(f"Note: remote {twin!r} is the same workspace. Each remote keeps its own record of its experiments, "
                 f"so pulling from both writes them twice, under new names; to reach {twin!r} another way, run "
                 f"`amlvc init --remote {twin} …` with the new endpoint or region instead.")
    elif result.created_config:
        note("Offline repository; add a workspace later with `amlvc init --remote NAME …`.")
    return 0


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="FILE...")
@json_option
def import_(files: tuple[Path, ...], as_json: bool) -> int:
    """Import exported JSON files into the repository, normalized, in one commit.

    FILE is what `Export-AmlExperimentGraph` wrote (a GET-experiment document or a run-history
    snapshot) or a web-service definition (ARM `Export-AzMlWebService`, or Studio's PascalCase
    `webservicedefinition`). Each experiment goes to experiments/<slug>/ (slug from its name, the
    same slug again when its ExperimentId was imported or pulled before). A web-service definition
    goes beside the experiment whose name equals its title, else to experiments/<slug of the
    title>/webservice.json. Secret values (keys, passwords, SAS signatures) are replaced by
    ${secret:NAME} and kept in .amlvc/secrets.json, outside git. Every file is checked first: one
    bad file and nothing is written.

    \b
    Examples:
      amlvc import Churn.json
      amlvc import exports/*.json
      amlvc import churn-scoring-wsd.json --json
    """
    from amlvc.offline.importer import import_files

    def advance(done: int, total: int) -> None:
        click.echo(f"\rImporting {done}/{total}", err=True, nl=done == total)

    terminal = len(files) > 1 and is_terminal()
    result = import_files(Path.cwd(), list(files), progress=advance if terminal else None)
    if as_json:
        emit_json(result.to_json())
        return 0
    for item in result.imported:
        secrets = f", {item.secrets} secret(s) to .amlvc/secrets.json" if item.secrets else ""
        state = "unchanged" if not item.changed else f"{len(item.changed)} file(s) changed"
        note(f"{item.source} -> experiments/{item.slug}/ ({item.kind}, {state}{secrets})")
    note(f"Committed {result.commit[:12]}." if result.commit else "Nothing changed; no commit.")
    return 0


@cli.command()
@click.argument("experiment", metavar="EXP")
@click.option("--rev", metavar="REV", help="Export the experiment as committed in this git revision "
                                           "(default: the files in the work tree).")
@click.option("--remote", "-r", metavar="R",
              help="Take ExperimentId, Etag and RunId from this remote's entry in amlvc.lock "
                   "(default: the import entry, else any).")
@click.option("--webservice", is_flag=True, help="Export the experiment's web-service definition instead.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Where to write the document ('-' for stdout).")
@json_option
def export(experiment: str, rev: str | None, remote: str | None, webservice: bool, output: Path,
           as_json: bool) -> int:
    """Write one experiment back as the raw document Studio exports and imports.

    EXP is the experiment's slug (its directory under experiments/), its name or its id.
    The result is what `Import-AmlExperimentGraph` accepts: the service's key order, nulls and
    encodings restored, ExperimentId from amlvc.lock when known. Secrets are filled from
    AMLVC_SECRET_<NAME> or .amlvc/secrets.json; any without a value stay ${secret:NAME} and are
    listed as a warning.

    \b
    Examples:
      amlvc export churn-training -o churn.json
      amlvc export churn-training --rev HEAD~2 -o churn-old.json
      amlvc export churn-scoring --webservice -o wsd.json
    """
    from amlvc.offline.exporter import export as run_export

    result = run_export(Path.cwd(), experiment, rev=rev, remote=remote, webservice=webservice)
    if str(output) == "-":
        sys.stdout.buffer.write(result.data)
        sys.stdout.buffer.flush()
    else:
        if output.is_dir():
            raise UsageError(f"{output}: is a directory; give a file name with -o")
        write_output(output, result.data)
    if result.missing_secrets:
        note(f"Warning: no value for {', '.join(result.missing_secrets)}; left as ${{secret:NAME}} placeholders. "
             f"Set AMLVC_SECRET_<NAME> or add them to .amlvc/secrets.json.")
    if as_json and str(output) != "-":
        emit_json({**result.to_json(), "output": str(output)})
    elif str(output) != "-":
        note(f"Wrote {output} ({result.kind} {result.experiment_id or experiment}).")
    return 0


@cli.command("normalize")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]...")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 and list the files not in canonical form.")
@json_option
def normalize_cmd(paths: tuple[Path, ...], check: bool, as_json: bool) -> int:
    """Check or rewrite the experiments' files in canonical form.

    With --check it is silent and exits 0 when every file is canonical, else lists the files and
    exits 1: a pre-commit hook. Without --check it rewrites the files that are not canonical (no
    commit). PATHs limit it to the experiments holding those files (what pre-commit passes).

    \b
    Examples:
      amlvc normalize --check
      amlvc normalize                                # fix hand edits, then review with git diff
      amlvc normalize --check experiments/churn/experiment.json
    """
    from amlvc.offline.verify import normalize_tree

    result = normalize_tree(Path.cwd(), fix=not check, paths=[str(p) for p in paths])
    if as_json:
        emit_json(result.to_json())
    elif check:
        for path in result.not_canonical:
            click.echo(path)
    else:
        for path in result.rewritten:
            note(f"rewrote {path}")
    if check and result.not_canonical:
        if not as_json:
            note(f"{len(result.not_canonical)} file(s) not in canonical form; run `amlvc normalize` to fix them.")
        return int(ExitCode.DIFFERENCES)
    return 0


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path), metavar="[FILE]...")
@json_option
def verify(files: tuple[Path, ...], as_json: bool) -> int:
    """Prove the round trip is lossless; exit 6 if any field would not survive.

    FILEs are raw exports (experiment, snapshot or WSD JSON): each is normalized and rebuilt, and
    every field that would change is printed with its JSON path. Without FILEs, every experiment
    and web-service definition of the repository is rebuilt from its files and checked the same way;
    FILEs under experiments/ limit that to the experiments holding them (what pre-commit passes).

    \b
    Examples:
      amlvc verify Churn.json
      amlvc verify                      # everything in the repository
      amlvc verify experiments/churn/experiment.json
      amlvc verify --json exports/*.json
    """
    from amlvc.offline.verify import verify as run_verify

    result = run_verify(Path.cwd(), list(files))
    if as_json:
        emit_json(result.to_json())
    else:
        for item in result.items:
            for problem in item.problems:
                click.echo(f"{item.source}: {problem}")
        bad = sum(1 for item in result.items if item.problems)
        if bad:
            note(f"{bad} of {len(result.items)} document(s) would not round-trip exactly.")
        else:
            note(f"{len(result.items)} document(s) round-trip exactly.")
    return 0 if result.ok else int(ExitCode.VALIDATION)
