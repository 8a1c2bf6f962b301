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
    for name in sorted(cli.list_commands(ctx)):
        command = cli.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx, **LAYOUT)
        lines += [f"## amlvc {name}", "", "```text", command.get_help(sub).rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
