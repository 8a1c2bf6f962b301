"""Regenerate docs/cli.md from the commands' own --help: `python docs/gen_cli.py > docs/cli.md`."""

from __future__ import annotations

from typing import Any

import click

from amlvc.cli import cli

# Fixed width and the CLI's own help names, so the page never depends on the terminal.
LAYOUT: dict[str, Any] = {"terminal_width": 100, "max_content_width": 100, "help_option_names": ["-h", "--help"]}


def render() -> str:
    lines = [
        "# amlvc command reference",
        "",
        "Generated from each command's `--help` by `python docs/gen_cli.py > docs/cli.md`;",
        "`tests/test_docs.py` fails when this page and the commands drift apart.",
        "",
    ]
    ctx = click.Context(cli, info_name="amlvc", **LAYOUT)
    lines += ["## amlvc", "", "```text", cli.get_help(ctx).rstrip(), "```", ""]
    lines += _commands(cli, ctx, "##")
    return "\n".join(lines)


def _commands(group: click.Group, ctx: click.Context, level: str) -> list[str]:
    """The help of each command of `group`, and of the commands of a subgroup one level down."""
    lines = []
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx, **LAYOUT)
        lines += [f"{level} {sub.command_path}", "", "```text", command.get_help(sub).rstrip(), "```", ""]
        if isinstance(command, click.Group):  # `amlvc webservice deploy` as its own section
            lines += _commands(command, sub, level + "#")
    return lines


if __name__ == "__main__":
    print(render(), end="")
