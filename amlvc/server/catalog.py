"""Stored experiments of the local workspace: rows of leaves and run-history snapshots (no HTTP here).

A row holds the document in its wire form, split around `Etag` and `NodeStatuses` (`head`, `statuses`,
`tail`) so a GET only splices in the Etag and the per-GET SAS credentials instead of re-encoding
300 kB of JSON; plus the Etag, a summary JSON for the list route, and the run state of a leaf
(`run_step`: 0 settled, 1 NotStarted, 2 Running). Other
modules (deploy, web services) read experiments with `get` and write with `replace`/`set_webservice_ids`,
always inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from amlvc import rules
from amlvc.server.wire import dumps, next_etag, now_ms

_BEFORE = rules.TOP_LEVEL_ORDER[: rules.TOP_LEVEL_ORDER.index("Etag")]
_AFTER = rules.TOP_LEVEL_ORDER[rules.TOP_LEVEL_ORDER.index("NodeStatuses") + 1:]

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    workspace TEXT NOT NULL, id TEXT NOT NULL, guid TEXT NOT NULL, is_leaf INTEGER NOT NULL,
    head TEXT NOT NULL, statuses TEXT NOT NULL, tail TEXT NOT NULL, summary TEXT NOT NULL, etag TEXT NOT NULL,
    run_step INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (workspace, id));
CREATE INDEX IF NOT EXISTS experiments_guid ON experiments (workspace, guid, is_leaf);
CREATE TABLE IF NOT EXISTS assets (
    workspace TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, family TEXT NOT NULL, batch INTEGER NOT NULL,
    name TEXT, doc TEXT NOT NULL, blob_key TEXT, created_ms INTEGER NOT NULL, PRIMARY KEY (workspace, kind, id));
CREATE INDEX IF NOT EXISTS assets_family ON assets (workspace, kind, family, batch);
CREATE TABLE IF NOT EXISTS uploads (
    workspace TEXT NOT NULL, id TEXT NOT NULL, data_type_id TEXT NOT NULL, blocks INTEGER NOT NULL DEFAULT 0,
    committed INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, PRIMARY KEY (workspace, id))
"""

SUMMARY_KEYS = ("Description", "Creator", "RunId", "OriginalExperimentDocumentationLink", "Summary", "Category",
                "Tags", "Status")


@dataclass(frozen=True)
class StoredExperiment:
    workspace: str
    id: str
    guid: str
    is_leaf: bool
    doc: dict[str, Any]
    etag: str
    run_step: int


def _summary(doc: dict[str, Any]) -> str:
    return json.dumps({key: doc.get(key) for key in SUMMARY_KEYS}, ensure_ascii=False)


def split(doc: dict[str, Any]) -> tuple[str, str, str]:
    """(head, statuses, tail): the wire JSON of the document with `"Etag":…,"NodeStatuses":…` cut out."""
    head = dumps({key: doc.get(key) for key in _BEFORE})[:-1] + ","
    tail = "," + dumps({key: doc.get(key) for key in _AFTER})[1:]
    return head, dumps(doc.get("NodeStatuses") or []), tail


def join(head: str, etag: str | None, statuses: str, tail: str) -> str:
    return f'{head}"Etag":{json.dumps(etag)},"NodeStatuses":{statuses}{tail}'


def _row(row: sqlite3.Row) -> StoredExperiment:
    doc = json.loads(join(row["head"], None, row["statuses"], row["tail"]))
    doc.pop("Etag", None)
    return StoredExperiment(row["workspace"], row["id"], row["guid"], bool(row["is_leaf"]), doc, row["etag"],
                            int(row["run_step"]))


def get_text(conn: sqlite3.Connection, ws: str, exp_id: str) -> sqlite3.Row | None:
    """The raw row (head, statuses, tail, etag, run_step) for serving a GET without parsing the document."""
    row: sqlite3.Row | None = conn.execute("SELECT head, statuses, tail, etag, run_step FROM experiments "
                                           "WHERE workspace = ? AND id = ?", (ws, exp_id)).fetchone()
    return row


def get(conn: sqlite3.Connection, ws: str, exp_id: str) -> StoredExperiment | None:
    row = conn.execute("SELECT * FROM experiments WHERE workspace = ? AND id = ?", (ws, exp_id)).fetchone()
    return _row(row) if row is not None else None


def exists(conn: sqlite3.Connection, ws: str, exp_id: str) -> bool:
    return conn.execute("SELECT 1 FROM experiments WHERE workspace = ? AND id = ?", (ws, exp_id)).fetchone() is not None


def summaries(conn: sqlite3.Connection, ws: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, etag, summary fields) of every leaf, oldest first."""
    rows = conn.execute("SELECT id, etag, summary FROM experiments WHERE workspace = ? AND is_leaf = 1 "
                        "ORDER BY created_ms, id", (ws,)).fetchall()
    return [(r["id"], r["etag"], json.loads(r["summary"])) for r in rows]


def insert(conn: sqlite3.Connection, ws: str, exp_id: str, guid: str, is_leaf: bool, doc: dict[str, Any],
           run_step: int = 0, etag: str | None = None) -> str:
    """Store a new leaf or snapshot; returns its Etag (a fresh one unless seeding passes the document's own)."""
    tag = etag or next_etag(conn)
    stamp = now_ms()
    head, statuses, tail = split(doc)
    conn.execute("INSERT INTO experiments(workspace, id, guid, is_leaf, head, statuses, tail, summary, etag, "
                 "run_step, created_ms, updated_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (ws, exp_id, guid, int(is_leaf), head, statuses, tail, _summary(doc), tag, run_step, stamp, stamp))
    return tag


def replace(conn: sqlite3.Connection, ws: str, exp_id: str, doc: dict[str, Any], run_step: int | None = None) -> str:
    """Overwrite a stored document; every write gets a new Etag (reference §3.1 #9)."""
    tag = next_etag(conn)
    head, statuses, tail = split(doc)
    conn.execute("UPDATE experiments SET head = ?, statuses = ?, tail = ?, summary = ?, etag = ?, "
                 "run_step = COALESCE(?, run_step), updated_ms = ? WHERE workspace = ? AND id = ?",
                 (head, statuses, tail, _summary(doc), tag, run_step, now_ms(), ws, exp_id))
    return tag


def set_webservice_ids(conn: sqlite3.Connection, ws: str, exp_id: str, **ids: str | None) -> str | None:
    """Set deploy ids in `WebService` (WebServiceGroupId, ModelPackageId, RunId, ArmWebServiceId); new Etag.

    Returns the new Etag, or None when the experiment does not exist. For the deploy routes.
    """
    stored = get(conn, ws, exp_id)
    if stored is None:
        return None
    doc = stored.doc
    web = doc.get("WebService") or {}
    for key, value in ids.items():
        if key not in ("WebServiceGroupId", "ModelPackageId", "RunId", "ArmWebServiceId"):
            raise KeyError(f"{key} is not a deploy id of WebService")
        web[key] = value
    doc["WebService"] = web
    return replace(conn, ws, exp_id, doc)


def delete_family(conn: sqlite3.Connection, ws: str, guid: str, leaf_only: bool) -> int:
    """Delete the leaf of an experiment (and, unless leaf_only, its whole run history); returns rows deleted."""
    if leaf_only:
        cur = conn.execute("DELETE FROM experiments WHERE workspace = ? AND guid = ? AND is_leaf = 1", (ws, guid))
    else:
        cur = conn.execute("DELETE FROM experiments WHERE workspace = ? AND guid = ?", (ws, guid))
    return int(cur.rowcount)


def snapshots(conn: sqlite3.Connection, ws: str, guid: str) -> list[str]:
    """Snapshot ids of an experiment, newest first (reverse timestamps sort newest first)."""
    rows = conn.execute("SELECT id FROM experiments WHERE workspace = ? AND guid = ? AND is_leaf = 0 ORDER BY id",
                        (ws, guid)).fetchall()
    return [r["id"] for r in rows]
