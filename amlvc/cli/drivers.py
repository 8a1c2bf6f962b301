"""git's hooks into amlvc: `config-git`, and the hidden commands git runs (merge-driver, textconv, diff-driver)."""

from __future__ import annotations

from pathlib import Path

import click

from amlvc.cli.base import cli, note, use_color
from amlvc.errors import LocalError, UsageError
from amlvc.render import render

# amlvc.repo and amlvc.review import GitPython: each command imports them when it runs, so that the commands
# git runs per file (textconv, diff-driver) do not pay for what they do not use.


@cli.command("config-git")
@click.option("--global", "global_scope", is_flag=True, help="Configure git for every repository of this user.")
@click.option("--portable", is_flag=True,
              help="Write the bare command `amlvc` (found on git's PATH) instead of this installation's absolute path.")
def config_git_command(global_scope: bool, portable: bool) -> None:
    """Make plain git diff/log/show print semantic diffs and git merge use amlvc's merge (like nbdime config-git).

    The drivers are written with the absolute path of this installation, so git started by an editor or a
    GUI client finds them without the virtual environment on its PATH; --portable writes `amlvc` instead
    (for a config shared between machines). A driver that cannot start says so, and what to run.

    \b
    Examples:
      amlvc config-git                  # this repository, this installation
      amlvc config-git --global         # every repository of this user
      amlvc config-git --portable       # `amlvc` from git's PATH
    """
    from amlvc import repo
    from amlvc.review import drivers

    root = None if global_scope else repo.git_root(Path.cwd())
    if root is None and not global_scope:
        raise LocalError(f"{Path.cwd()}: not inside a git repository; run it in one, or use --global")
    result = drivers.config_git(root, global_scope, portable=portable)
    for key, value in result.settings.items():
        note(f"git config ({result.scope}) {key} = {value}")
    if result.attributes_changed:
        hint = "" if global_scope else " (commit it so every clone uses the drivers once configured)"
        note(f"Updated {result.attributes_file}{hint}")
    else:
        note(f"Already set up: {result.attributes_file}")


@cli.command("merge-driver", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False))
@click.argument("ours", type=click.Path(dir_okay=False))
@click.argument("theirs", type=click.Path(dir_okay=False))
@click.argument("path", required=False, default="")
def merge_driver_command(base: str, ours: str, theirs: str, path: str) -> None:
    """git merge driver: `amlvc merge-driver %O %A %B %P`; writes the result to %A, non-zero on conflict."""
    from amlvc.review import drivers

    merged = drivers.merge_file(base, ours, theirs, path)
    if merged.report:
        click.echo(merged.report, err=True, nl=False)
    drivers.write_merge(ours, path, merged)


@cli.command("textconv", hidden=True)
@click.argument("file", type=click.Path(dir_okay=False))
def textconv_command(file: str) -> None:
    """git textconv: print a canonical file as a one-value-per-line outline."""
    from amlvc.review import drivers

    click.echo(drivers.textconv(file), nl=False)


@cli.command("diff-driver", hidden=True)
@click.argument("args", nargs=-1)
def diff_driver_command(args: tuple[str, ...]) -> None:
    """git external diff: `path old-file old-hex old-mode new-file new-hex new-mode`; prints the records."""
    from amlvc.review import drivers

    if len(args) == 1:  # git passes only the path of an unmerged file
        click.echo(f"* Unmerged path {args[0]} (resolve the $conflict markers; `amlvc diff` works again after)")
        return
    if len(args) < 7:
        raise UsageError("diff-driver expects the 7 arguments git passes to an external diff command")
    path, old_file, new_file = args[0], args[1], args[4]
    result = drivers.driver_diff(path, old_file, new_file)
    color = use_color()
    header = f"diff --amlvc a/{path} b/{path}"
    click.echo(click.style(header, bold=True) if color else header, color=color)
    if not result.changes and result.status not in ("added", "removed"):
        click.echo("(no semantic change: formatting only)")
        return
    body = render([result], "text", color=color).splitlines()
    click.echo("\n".join(line for line in body if line), color=color)
