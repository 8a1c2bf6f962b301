"""Studio API upload routes: `resourceuploads` (start, or whole file) and `blobuploads` (chunks), reference §2.3.

An upload is a row plus blobs `uploads/{id}/data` or `uploads/{id}/block-{n}`; `POST datasources`
with its `UploadId` (assets.py) assembles it into a dataset. Chunk ids are 0-based (PY client).
"""

from __future__ import annotations

import sqlite3

from flask import Blueprint, Response, request

from amlvc.server import assetdb
from amlvc.server.auth import check_workspace
from amlvc.server.blobstore import BlobInfo
from amlvc.server.bodies import spool_body
from amlvc.server.errors import ApiFault
from amlvc.server.state import get_state
from amlvc.server.wire import HEX32_RE, json_response, new_guid, now_ms

bp = Blueprint("uploads", __name__, url_prefix="/api")

MAX_BLOCKS = 50_000


def _data_type() -> str:
    raw = request.args.get("dataTypeId") or request.args.get("datatypeid") or "GenericCSV"
    data_type = assetdb.canonical_data_type(raw)
    if data_type is None:
        raise ApiFault(400, None, f"unknown dataTypeId {raw!r}; one of {', '.join(assetdb.UPLOAD_DATA_TYPES)}")
    return data_type


def _info(ws: str, upload_id: str, data_type: str, committed: bool = False) -> dict[str, object]:
    return {"Id": upload_id, "DataTypeId": data_type, "ContentType": "application/octet-stream",
            "Committed": committed, "WorkspaceId": ws, "SharedAccessUri": None}


@bp.post("/resourceuploads/workspaces/<ws>/")
def start_upload(ws: str) -> Response:
    """Start an upload; a non-empty body is the whole file (R), an empty one starts a chunked upload (PY, PS)."""
    check_workspace(ws)
    data_type = _data_type()
    state = get_state()
    body = spool_body(state.blobs.incoming)
    upload_id = new_guid()
    try:
        with state.store.tx() as conn:
            conn.execute("INSERT INTO uploads(workspace, id, data_type_id, blocks, committed, created_ms) "
                         "VALUES(?, ?, ?, 0, 0, ?)", (ws, upload_id, data_type, now_ms()))
            if body.size:
                state.blobs.put_spooled(conn, f"uploads/{upload_id}/data", body)
    finally:
        body.path.unlink(missing_ok=True)
    return json_response(_info(ws, upload_id, data_type))


def _int_arg(name: str, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise ApiFault(400, None, f"query parameter {name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiFault(400, None, f"query parameter {name} must be between {low} and {high}, got {value}")
    return value


@bp.post("/blobuploads/workspaces/<ws>/")
def upload_block(ws: str) -> Response:
    """One chunk of a chunked upload: `numberOfBlocks`, 0-based `blockId`, `uploadId`, `dataTypeId`."""
    check_workspace(ws)
    blocks = _int_arg("numberOfBlocks", 1, MAX_BLOCKS)
    block = _int_arg("blockId", 0, blocks - 1)
    upload_id = (request.args.get("uploadId") or "").lower()
    if not HEX32_RE.match(upload_id):
        raise ApiFault(400, None, "query parameter uploadId must be the Id returned by resourceuploads")
    state = get_state()
    body = spool_body(state.blobs.incoming)
    try:
        with state.store.tx() as conn:
            row = conn.execute("SELECT data_type_id, committed FROM uploads WHERE workspace = ? AND id = ?",
                               (ws, upload_id)).fetchone()
            if row is None:
                raise ApiFault(404, None, f"upload {upload_id!r} does not exist in workspace {ws!r}")
            if row["committed"]:
                raise ApiFault(409, "UserError", f"upload {upload_id!r} is already committed")
            conn.execute("UPDATE uploads SET blocks = ? WHERE workspace = ? AND id = ?", (blocks, ws, upload_id))
            state.blobs.put_spooled(conn, f"uploads/{upload_id}/block-{block:06d}", body)
    finally:
        body.path.unlink(missing_ok=True)
    info = _info(ws, upload_id, row["data_type_id"])
    info.update({"NumberOfBlocks": blocks, "BlockId": block, "BlockSize": body.size})
    return json_response(info)


def assemble(conn: sqlite3.Connection, ws: str, upload_id: str, key: str) -> BlobInfo:
    """Store the uploaded bytes of an uncommitted upload under `key` (inside the committing transaction).

    A whole-file upload is stored once more under `key` without a copy; blocks are joined into a spool
    file piece by piece, never held in memory together.
    """
    upload_id = upload_id.lower()
    row = conn.execute("SELECT blocks, committed FROM uploads WHERE workspace = ? AND id = ?",
                       (ws, upload_id)).fetchone() if HEX32_RE.match(upload_id) else None
    if row is None:
        raise ApiFault(404, None, f"upload {upload_id!r} does not exist in workspace {ws!r}", target="/UploadId")
    if row["committed"]:
        raise ApiFault(409, "UserError", f"upload {upload_id!r} is already committed", target="/UploadId")
    blobs = get_state().blobs
    blocks = int(row["blocks"])
    if blocks == 0:
        whole = blobs.info(conn, f"uploads/{upload_id}/data")
        return blobs.alias(conn, key, whole) if whole is not None else blobs.put(conn, key, b"")
    parts = [blobs.info(conn, f"uploads/{upload_id}/block-{i:06d}") for i in range(blocks)]
    missing = [i for i, part in enumerate(parts) if part is None]
    if missing:
        raise ApiFault(400, None, f"upload {upload_id!r} is missing block {missing[0]} of {blocks}",
                       target="/UploadId")
    spool = blobs.spool()
    try:
        for part in parts:
            assert part is not None
            spool.copy_from(part.path)
    except BaseException:
        spool.discard()
        raise
    return blobs.put_spooled(conn, key, spool.finish())
