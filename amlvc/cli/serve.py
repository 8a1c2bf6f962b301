"""`amlvc serve`: run the local workspace service in the foreground (SPEC section 5)."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from pathlib import Path
from types import FrameType

import click

from amlvc.cli.base import cli, note
from amlvc.errors import LocalError, UsageError

DEFAULT_PORT = 8765


def _workspace_option(values: tuple[str, ...]) -> list[tuple[str, str | None]]:
    result: list[tuple[str, str | None]] = []
    for value in values:
        ws, sep, token = value.partition(":")
        if sep and not token:
            raise UsageError(f"--workspace {value!r}: the token after ':' is empty; give ID or ID:TOKEN")
        result.append((ws.strip(), token or None))
    return result


def _seed_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--seed` takes a value; one that looks like an option means the value was forgotten (`--seed --port 0`)."""
    if value is not None and value.startswith("-"):
        raise click.BadParameter(f"needs DIR or 'demo', got the option {value!r}; write `--seed demo` "
                                 "(or the flag `--demo`) or `--seed PATH/TO/DIR`")
    return value


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@cli.command("serve")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the workspace state (SQLite + blobs); kept across restarts. "
                   "Default: a temporary directory removed on exit.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback by default).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on; 0 picks a free one.")
@click.option("--workspace", "workspaces", multiple=True, metavar="ID[:TOKEN]",
              help="A workspace to host (32 hex characters), repeatable; a token not given is generated. "
                   "Default: one demo workspace seeded with the project's fixtures.")
@click.option("--seed", "seed", metavar="DIR|demo", callback=_seed_value,
              help="Load GET-experiment documents, asset lists and blobs from DIR (once per data directory); "
                   "'demo' for the built-in demo seed. Takes a value: `--seed --port 0` is refused.")
@click.option("--demo", "demo", is_flag=True, help="Seed the built-in demo (the same as `--seed demo`).")
@click.option("--latency-ms", default=0, show_default=True, type=click.IntRange(0, 60_000),
              help="Delay added to every request.")
@click.option("--fault-rate", default=0.0, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Share of requests that fail (500, 503, 429 with Retry-After, reset, truncated body).")
@click.option("--fault-seed", default=0, show_default=True, type=int, help="Seed of the fault sequence.")
@click.option("--json", "as_json", is_flag=True,
              help='First stdout line: {"url": ..., "workspaces": [{"id": ..., "token": ...}]}.')
def serve(data_dir: Path | None, host: str, port: int, workspaces: tuple[str, ...], seed: str | None,
          demo: bool, latency_ms: int, fault_rate: float, fault_seed: int, as_json: bool) -> int:
    """Run a local Studio (classic) workspace: Studio API, web-service management, ARM and BES.

    \b
    The Studio API is under URL/api/, the management API under URL/ (use
    `--endpoint URL` in amlvc.toml). Stop it with Ctrl-C.

    \b
    Examples:
      amlvc serve                                  the demo workspace on port 8765
      amlvc serve --port 0 --json                  a free port; the URL and token as one JSON line
      amlvc serve --demo --port 0 --workspace ID   your workspace id, seeded with the demo
      amlvc serve --seed ./exports --data ./state  documents from ./exports, state kept in ./state
    """
    if demo and seed not in (None, "demo"):
        raise UsageError(f"--demo and --seed {seed} name two seeds; give one of them")
    seed = "demo" if demo else seed
    from amlvc.server import DEMO_WORKSPACE_ID
    from amlvc.server.runner import start_server
    from amlvc.server.seed import SeedError

    given = _workspace_option(workspaces)
    if not given:
        given = [(DEMO_WORKSPACE_ID, None)]
        seed = seed or "demo"
    seed_arg: Path | str | None = seed if seed in (None, "demo") else Path(str(seed))
    if isinstance(seed_arg, Path) and not seed_arg.is_dir():
        raise LocalError(f"seed directory {seed_arg} does not exist; pass a folder of GET-experiment documents")
    temporary = data_dir is None
    where = Path(tempfile.mkdtemp(prefix="amlvc-serve-")) if data_dir is None else data_dir
    try:
        handle = start_server(where, workspaces=given, seed=seed_arg, latency_ms=latency_ms, fault_rate=fault_rate,
                              fault_seed=fault_seed, host=host, port=port)
    except ValueError as exc:
        if temporary:
            shutil.rmtree(where, ignore_errors=True)
        if isinstance(exc, SeedError):
            raise LocalError(f"{exc}; fix or remove that file, or seed from another directory") from None
        raise UsageError(f"{exc}; give --workspace as 32 hexadecimal characters, optionally :TOKEN") from None
    except OSError as exc:
        if temporary:
            shutil.rmtree(where, ignore_errors=True)
        raise LocalError(f"cannot serve on {host}:{port} with data in {where}: {exc.strerror or exc}; "
                         "choose another --port (0 picks a free one) or --data directory") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        note(f"Warning: listening on {host}, beyond loopback; tokens travel in clear over plain HTTP.")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        listed = [{"id": ws, "token": primary} for ws, primary, _ in handle.workspaces]
        if as_json:
            click.echo(json.dumps({"url": handle.url, "workspaces": listed}))
        else:
            generated = {ws for ws, token in given if token is None}
            click.echo(f"amlvc local workspace listening on {handle.url}")
            click.echo(f"  Studio API {handle.url}/api/   management {handle.url}/")
            for item in listed:
                shown = item["token"] if item["id"].lower() in generated else "(as given)"
                click.echo(f"  workspace {item['id']}  token {shown}")
            state_note = "temporary, removed on exit" if temporary else "kept"
            click.echo(f"  data {where} ({state_note}); press Ctrl-C to stop")
        handle.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()
        if temporary:
            shutil.rmtree(where, ignore_errors=True)
    note("Stopped.")
    return 0
