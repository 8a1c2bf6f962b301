"""The root click group, shared options and output helpers of the command line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from amlvc import __version__
from amlvc.errors import AmlvcError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
REPORT_URL = "https://github.com/amlvc/amlvc/issues"


class AmlvcGroup(click.Group):
    """The root group; its `invoke` is the one error boundary of every command.

    Commands return an int exit code (or None for 0); AmlvcError becomes `Error: ...` plus its
    code; anything else is an internal error (70). CliRunner tests go through the same path.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
        except AmlvcError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            ctx.exit(0)
        except Exception as exc:  # the boundary: anything else is a bug
            click.echo(
                f"Error: internal error ({type(exc).__name__}: {exc}). This is a bug in amlvc; "
                f"please report it at {REPORT_URL} with the command you ran.",
                err=True,
            )
            ctx.exit(int(ExitCode.INTERNAL))
        if isinstance(result, int) and result:
            ctx.exit(result)
        return result


@click.group(cls=AmlvcGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="amlvc")
def cli() -> None:
    """Version control for Azure ML Studio (classic) experiments, in git.

    \b
    Typical session:
      amlvc init --remote dev --endpoint http://127.0.0.1:8765 --workspace-id WS
      amlvc pull                 # workspace -> normalized files -> one commit
      amlvc diff HEAD~1          # what changed, semantically
      amlvc push churn           # checked, conflict-safe write back

    Exit codes: 0 ok, 1 differences, 2 usage, 3 local problem, 4 conflict,
    5 workspace/API error, 6 validation failed, 7 run or job failed in the workspace,
    70 internal error, 130 interrupted.
    """


def emit_json(value: Any) -> None:
    """Write one JSON document to stdout (the `--json` output of every command)."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def note(message: str) -> None:
    """A human message on stderr (data goes to stdout)."""
    click.echo(message, err=True)


def write_output(path: Path, data: bytes) -> None:
    """A file asked for with -o: written atomically, with the mode a shell redirection gives it (the existing
    file's, else 0666 less the umask; the temporary file alone would leave it 0600)."""
    from amlvc.worktree.files import atomic_write

    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    atomic_write(path, data, mode=mode)


def is_terminal() -> bool:
    return sys.stderr.isatty()


color_option = click.option(
    "--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
    help="Colour the output: auto = on a terminal unless $NO_COLOR is set; $FORCE_COLOR (non-empty) means always.")


def use_color(choice: str = "auto", stream: Any = None) -> bool:
    """--color, then $FORCE_COLOR (force-color.org), then $NO_COLOR (no-color.org), then whether it is a terminal."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR"):
        return False
    return bool((stream or sys.stdout).isatty())


def remote_option(help_text: str) -> Callable[[F], F]:
    """`-r/--remote R`, the same spelling on every command that talks to (or compares with) a workspace."""
    return click.option("--remote", "-r", "remote", metavar="R", help=help_text)


# Options every workspace command spells the same way.
workspace_option = remote_option("The workspace (a remote of amlvc.toml).")
token_option = click.option("--token-env", metavar="NAME",
                            help="Read the workspace token from $NAME (the variable's name, never the token).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """Click progress bars on stderr, one per stage (`update(stage, done, total)`), when stderr is a terminal."""
    if not enabled or not is_terminal():
        yield None
        return
    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            label = {"fetch": "Fetching experiments", "history": "Reading run history"}.get(stage, stage)
            bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr)
            bar.__enter__()
            bars[stage] = bar
        if done > bar.pos:
            bar.update(done - bar.pos)

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.__exit__(None, None, None)
