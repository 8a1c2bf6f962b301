"""SQLite persistence of the local workspace: one database in the data directory, WAL, one transaction per write.

How a module adds its tables: define its DDL as a module constant (`CREATE TABLE IF NOT EXISTS …;`
statements separated by `;`) and call `state.store.ensure_schema(DDL)` once at start-up. For a
blueprint, do it when the blueprint is registered:

    @bp.record_once
    def _schema(setup: BlueprintSetupState) -> None:
        setup.app.extensions[STATE_KEY].store.ensure_schema(DDL)

(`amlvc.server.state.STATE_KEY`; create_app stores the ServerState before registering blueprints.)
Prefix table names with the module's area (`ws_…`, `arm_…`, `bes_…`) so they never clash. Write
only inside `with store.tx() as conn:` (BEGIN IMMEDIATE … COMMIT; rolled back on any exception);
read with `with store.read() as conn:` (one consistent snapshot). The core tables (`meta`,
`workspaces`, `experiments`, `assets`, `counters`, `uploads`, `upload_blocks`, `blobs`) belong to
the studio modules; read them through their helpers (`catalog.py`, `assets.py`, `blobs.py`).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POOL_SIZE = 48


class Store:
    """Owns the database file; lends pooled connections to `tx()` and `read()`.

    `tx()` is the only way to write: BEGIN IMMEDIATE ... COMMIT, so concurrent writers
    serialise in SQLite instead of tearing each other's rows. The threaded server starts a
    thread per request, so connections are pooled rather than kept per thread.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "workspace.sqlite3"
        self.blob_dir = self.data_dir / "blobs"
        self.blob_dir.mkdir(exist_ok=True)
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._count = 0
        self._closed = False
        with self._borrow() as conn:
            conn.execute("PRAGMA journal_mode=WAL")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
            with self._lock:
                self._count += 1
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if self._closed or self._pool.qsize() >= POOL_SIZE:
                conn.close()
                with self._lock:
                    self._count -= 1
            else:
                self._pool.put(conn)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE); rolled back on any exception."""
        with self._borrow() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every SELECT inside sees the same snapshot."""
        with self._borrow() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def ensure_schema(self, ddl: str) -> None:
        with self.tx() as conn:
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def close(self) -> None:
        """Close pooled connections (connections still lent out close when returned)."""
        self._closed = True
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break


CORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY, friendly_name TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    workspace TEXT NOT NULL, kind TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (workspace, kind))
"""


def next_counter(conn: sqlite3.Connection, workspace: str, kind: str, floor: int = 0) -> int:
    """The next value of a per-workspace, per-kind sequence (asset batches, reference §7 Q24); inside a tx."""
    row = conn.execute("SELECT value FROM counters WHERE workspace = ? AND kind = ?", (workspace, kind)).fetchone()
    value = max(int(row[0]) if row else 0, floor) + 1
    conn.execute("INSERT INTO counters(workspace, kind, value) VALUES(?, ?, ?) "
                 "ON CONFLICT(workspace, kind) DO UPDATE SET value = excluded.value", (workspace, kind, value))
    return value


def bump_counter(conn: sqlite3.Connection, workspace: str, kind: str, at_least: int) -> None:
    """Make sure the next `next_counter` is above a batch that came from seeding."""
    conn.execute("INSERT INTO counters(workspace, kind, value) VALUES(?, ?, ?) "
                 "ON CONFLICT(workspace, kind) DO UPDATE SET value = MAX(value, excluded.value)",
                 (workspace, kind, at_least))
