"""Start and stop a local workspace in-process: a threaded Werkzeug server on loopback in a daemon thread."""

from __future__ import annotations

import secrets
import socket
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from amlvc.server.app import create_app
from amlvc.server.blobstore import BlobStore
from amlvc.server.faults import FaultInjector, FaultMiddleware
from amlvc.server.state import ServerState, Tokens
from amlvc.server.store import CORE_SCHEMA, Store
from amlvc.server.wire import WORKSPACE_ID_RE, now_ms


class QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request (tests and benchmarks make thousands); errors still go to logging."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def parse_workspaces(workspaces: Sequence[tuple[str, str | None]]) -> dict[str, Tokens]:
    """Workspace ids (32 lowercase hex) -> tokens; a missing primary token is generated, the secondary always is."""
    result: dict[str, Tokens] = {}
    for ws_id, token in workspaces:
        ws = ws_id.lower()
        if not WORKSPACE_ID_RE.match(ws):
            raise ValueError(f"workspace id {ws_id!r} is not 32 hexadecimal characters")
        if ws in result:
            raise ValueError(f"workspace id {ws_id!r} is given twice")
        result[ws] = Tokens(token or secrets.token_hex(16), secrets.token_hex(16))
    return result


class ServerHandle:
    """A running local workspace: `.url`, `.workspaces` [(id, primary, secondary)], `.state`, `.stop()`."""

    def __init__(self, server: BaseWSGIServer, state: ServerState, data_dir: Path) -> None:
        self._server = server
        self.state = state
        self.data_dir = data_dir
        host, port = server.server_address[0], server.server_address[1]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host_text}]" if ":" in host_text else host_text
        self.host = host_text
        self.port = int(port)
        self.url = f"http://{shown}:{port}"
        self.workspaces = [(ws, t.primary, t.secondary) for ws, t in state.workspaces.items()]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"amlvc-serve-{port}", daemon=True)
        self._thread.start()

    def token(self, ws_id: str | None = None) -> str:
        """The primary token of a workspace (the first one by default)."""
        return self.state.workspaces[ws_id or self.workspaces[0][0]].primary

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.state.store.close()

    def wait(self) -> None:
        """Block until the server stops (the foreground `amlvc serve`)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def build_state(data_dir: Path, workspaces: Sequence[tuple[str, str | None]], seed: Path | str | None = None,
                latency_ms: int = 0, fault_rate: float = 0.0, fault_seed: int = 0) -> ServerState:
    """Open the data directory, register the workspaces and apply the seed; no socket yet."""
    from amlvc.server import catalog
    from amlvc.server import seed as seeding

    tokens = parse_workspaces(workspaces)
    store = Store(Path(data_dir))
    store.ensure_schema(CORE_SCHEMA)
    store.ensure_schema(catalog.SCHEMA)
    blobs = BlobStore(store)
    faults = FaultInjector(fault_rate, fault_seed) if fault_rate > 0 else None
    state = ServerState(store=store, blobs=blobs, workspaces=tokens, latency_ms=max(0, latency_ms), faults=faults)
    try:
        for ws in tokens:
            with store.tx() as conn:
                register_workspace(conn, ws)
            seeding.install_builtins(state, ws)
        if seed == "demo":
            seed = seeding.demo_seed_dir()
        if seed is not None and tokens:
            seeding.seed_directory(state, Path(seed), list(tokens))
    except BaseException:
        store.close()
        raise
    return state


def start_server(data_dir: Path, workspaces: Sequence[tuple[str, str | None]] = (), seed: Path | str | None = None,
                 latency_ms: int = 0, fault_rate: float = 0.0, fault_seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Start a local workspace in a daemon thread; returns once it accepts connections.

    Without workspaces, one demo workspace (`amlvc.server.DEMO_WORKSPACE_ID`) with a generated token.
    `seed` is a directory (seed.py) or "demo" for the built-in demo seed (the project's fixtures).
    A failing seed raises `seed.SeedError` (a ValueError naming the file) before any socket is opened.
    """
    from amlvc.server import DEMO_WORKSPACE_ID

    state = build_state(Path(data_dir), list(workspaces) or [(DEMO_WORKSPACE_ID, None)], seed,
                        latency_ms, fault_rate, fault_seed)
    app = create_app(state)
    wsgi = FaultMiddleware(app.wsgi_app, state.latency_ms, state.faults)
    app.wsgi_app = wsgi  # type: ignore[method-assign]
    try:
        # Bind here: werkzeug's own bind failure prints and calls sys.exit; an OSError is the caller's to report.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family, backlog=128)
    except OSError:
        state.store.close()
        raise
    try:
        server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler,
                             fd=listener.fileno())
    finally:
        listener.close()  # werkzeug holds its own duplicate of the descriptor
    server.daemon_threads = True  # type: ignore[attr-defined]
    return ServerHandle(server, state, Path(data_dir))


def register_workspace(conn: sqlite3.Connection, ws: str) -> None:
    """Create the workspace row once (inside a tx); tokens are never stored."""
    conn.execute("INSERT OR IGNORE INTO workspaces(id, friendly_name, created_ms) VALUES(?, ?, ?)",
                 (ws, f"amlvc local workspace {ws[:8]}", now_ms()))
