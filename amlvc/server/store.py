"""SQLite persistence of the local workspace: one database in the data directory, WAL, one transaction per write."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Store:
    """Owns the database file; hands out one connection per thread.

    `tx()` is the only way to write: BEGIN IMMEDIATE ... COMMIT, so concurrent writers
    serialise in SQLite instead of tearing each other's rows. Modules that own tables
    (studio state, web services, BES jobs) add their schema with `ensure_schema`.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "workspace.sqlite3"
        self.blob_dir = self.data_dir / "blobs"
        self.blob_dir.mkdir(exist_ok=True)
        self._local = threading.local()
        with self.tx() as conn:
            conn.execute("PRAGMA journal_mode=WAL")

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE); rolled back on any exception."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def ensure_schema(self, ddl: str) -> None:
        with self.tx() as conn:
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(statement)
