"""Studio API experiment routes: list, GET (leaf or snapshot), save, create/copy, run, delete, node outputs.

Reference §2.2 (routes), §3 (document), §4 (save body and run history), §5.5 (list items).
"""

from __future__ import annotations

import json
import sqlite3
import time

from flask import Blueprint, Response, request

from amlvc.server import catalog, runs
from amlvc.server.auth import check_workspace
from amlvc.server.blobs import send_blob
from amlvc.server.errors import ApiFault
from amlvc.server.model import new_document, parse_save_body, shape_webservice
from amlvc.server.state import get_state
from amlvc.server.wire import (
    GLOBAL_WORKSPACE_ID,
    LEAF_ID_RE,
    SNAPSHOT_ID_RE,
    json_body,
    json_response,
    new_guid,
    now_ms,
)

bp = Blueprint("experiments", __name__, url_prefix="/api/workspaces/<ws>")

LOCAL_CREATOR = "local-user@amlvc"
_TRUE = ("true", "1", "yes")


def parse_experiment_id(ws: str, exp_id: str) -> tuple[str, bool]:
    """(guid, is_snapshot) of an id of this workspace (or of a sample); 404 for anything else."""
    for pattern, snapshot in ((LEAF_ID_RE, False), (SNAPSHOT_ID_RE, True)):
        match = pattern.match(exp_id)
        if match and match.group(1) in (ws, GLOBAL_WORKSPACE_ID):
            return match.group(2), snapshot
    raise missing(ws, exp_id)


def missing(ws: str, exp_id: str) -> ApiFault:
    """The 404 of an experiment this workspace does not have."""
    return ApiFault(404, None, f"experiment {exp_id!r} does not exist in workspace {ws!r}")


def stored_or_404(conn: sqlite3.Connection, ws: str, exp_id: str) -> catalog.StoredExperiment:
    stored = catalog.get(conn, ws, exp_id)
    if stored is None:
        raise missing(ws, exp_id)
    return stored


def _if_match(etag: str) -> None:
    """Optional precondition (reference §7 Q2): a stale If-Match gets 412, a missing one passes."""
    wanted = request.headers.get("If-Match")
    if wanted is None or wanted.strip() in ("", "*"):
        return
    if wanted.strip() != etag:
        raise ApiFault(412, None, f"the experiment changed since Etag {wanted.strip()}; its Etag is now {etag}")


def render(ws: str, head: str, etag: str, statuses: str, tail: str) -> bytes:
    """The GET document: stored wire text, the current Etag, node-output SAS credentials generated now."""
    state = get_state()
    text = catalog.join(head, etag, runs.render_statuses(statuses, ws, request.host_url, state.blobs), tail)
    return text.encode("utf-8")


def load(ws: str, exp_id: str) -> catalog.StoredExperiment:
    """The stored experiment, advancing a running leaf by one status step (runs.py)."""
    parse_experiment_id(ws, exp_id)
    state = get_state()
    with state.store.read() as conn:
        stored = stored_or_404(conn, ws, exp_id)
    if stored.run_step:
        with state.store.tx() as conn:
            current = stored_or_404(conn, ws, exp_id)
            stored = runs.advance(conn, ws, current) if current.run_step else current
    return stored


@bp.get("/experiments")
def list_experiments(ws: str) -> Response:
    """Leaves only by default (reference §2.2, DTS includeNonLeaf, §7 Q19); summaries per §5.5."""
    check_workspace(ws)
    args = {k.lower(): v for k, v in request.args.items()}
    include_non_leaf = args.get("includenonleaf", "").lower() in _TRUE
    state = get_state()
    with state.store.read() as conn:
        rows = catalog.summaries(conn, ws)
        if include_non_leaf:
            snaps = conn.execute("SELECT id, etag, summary FROM experiments WHERE workspace = ? AND is_leaf = 0 "
                                 "ORDER BY id", (ws,)).fetchall()
            rows += [(r["id"], r["etag"], json.loads(r["summary"])) for r in snaps]
    items = []
    for exp_id, etag, s in rows:
        items.append({
            "ExperimentId": exp_id, "Description": s.get("Description"), "Etag": etag, "Creator": s.get("Creator"),
            "IsArchived": False, "JobId": None, "VersionId": None, "RunId": s.get("RunId"),
            "OriginalExperimentDocumentationLink": s.get("OriginalExperimentDocumentationLink"),
            "Summary": s.get("Summary"), "Category": s.get("Category"), "Tags": s.get("Tags") or [],
            "Status": s.get("Status"),
        })
    return json_response(items)


MEMO_LIMIT = 256


MEMO_LIMIT = 64


@bp.get("/experiments/<exp_id>")
def get_experiment(ws: str, exp_id: str) -> Response:
    """The document (leaf or snapshot); a running leaf first advances one status step (runs.py)."""
    check_workspace(ws)
    parse_experiment_id(ws, exp_id)
    state = get_state()
    with state.store.read() as conn:
        row = catalog.get_text(conn, ws, exp_id)
    if row is not None and row["run_step"]:
        load(ws, exp_id)
        with state.store.read() as conn:
            row = catalog.get_text(conn, ws, exp_id)
    if row is None:
        raise missing(ws, exp_id)
    # The bytes depend only on the Etag, the host and the second (SAS times have one-second resolution),
    # so clients polling one experiment share one rendering per second.
    memo_key = (ws, exp_id, row["etag"], request.host_url, int(time.time()))
    body = state.memo.get(memo_key)
    if body is None:
        body = render(ws, row["head"], row["etag"], row["statuses"], row["tail"])
        if len(state.memo) >= MEMO_LIMIT:
            state.memo.clear()
        state.memo[memo_key] = body
    resp = Response(body, status=200, content_type="application/json; charset=utf-8")
    resp.headers["ETag"] = row["etag"]
    return resp


@bp.post("/experiments/<exp_id>")
def save_experiment(ws: str, exp_id: str) -> Response:
    """Save (`IsDraft:true`) or save and run (`IsDraft:false`) in place (reference §4.2 steps 2 and 3)."""
    check_workspace(ws)
    guid, snapshot = parse_experiment_id(ws, exp_id)
    if snapshot:
        raise ApiFault(400, None, f"experiment {exp_id!r} is a run-history snapshot and is locked; "
                                  "save it as a new experiment instead")
    fields = parse_save_body(json_body())
    state = get_state()
    with state.store.tx() as conn:
        stored = stored_or_404(conn, ws, exp_id)
        _if_match(stored.etag)
        doc = dict(stored.doc)
        # Lineage (ExperimentId, Creator, RunId, ParentExperimentId) and the last run's Status and
        # NodeStatuses are kept; the body's ParentExperimentId is ignored (reference §7 Q4, Q6).
        doc.update({"Description": fields["Description"], "Summary": fields["Summary"], "Graph": fields["Graph"],
                    "DisableNodesUpdate": fields["DisableNodesUpdate"], "Category": fields["Category"],
                    "WebService": shape_webservice(fields["WebService"], keep=doc.get("WebService") or {})})
        if fields["IsDraft"]:
            etag = catalog.replace(conn, ws, exp_id, doc)
            return json_response(etag)
        doc = runs.start_run(conn, state.blobs, ws, doc, guid)
        etag = catalog.replace(conn, ws, exp_id, doc, run_step=1)
    return json_response({"ExperimentId": exp_id, "Etag": etag})


@bp.post("/experiments")
def create_experiment(ws: str) -> Response:
    """`POST experiments/` (Save As, copy, import as new): a new leaf with an empty run history (§4.2 step 1)."""
    check_workspace(ws)
    fields = parse_save_body(json_body())
    state = get_state()
    guid = new_guid()
    exp_id = f"{ws}.f-id.{guid}"
    doc = new_document(exp_id, fields, LOCAL_CREATOR, runs.status("InDraft", now_ms()))
    # reference §7 Q4: lineage only; "" (PS copies) and null mean none.
    doc["ParentExperimentId"] = fields["ParentExperimentId"] or None
    with state.store.tx() as conn:
        if fields["IsDraft"]:
            etag = catalog.insert(conn, ws, exp_id, guid, True, doc)
        else:
            catalog.insert(conn, ws, exp_id, guid, True, doc)
            doc = runs.start_run(conn, state.blobs, ws, doc, guid)
            etag = catalog.replace(conn, ws, exp_id, doc, run_step=1)
    return json_response({"ExperimentId": exp_id, "Etag": etag})


@bp.delete("/experiments/<exp_id>")
def delete_experiment(ws: str, exp_id: str) -> Response:
    """`deleteAncestors=true` (PS always) removes the leaf and its whole run history; false only the named row."""
    check_workspace(ws)
    guid, snapshot = parse_experiment_id(ws, exp_id)
    args = {k.lower(): v for k, v in request.args.items()}
    ancestors = args.get("deleteancestors", "").lower() in _TRUE
    state = get_state()
    with state.store.tx() as conn:
        stored = stored_or_404(conn, ws, exp_id)
        _if_match(stored.etag)
        if ancestors and not snapshot:
            catalog.delete_family(conn, ws, guid, leaf_only=False)
        else:
            conn.execute("DELETE FROM experiments WHERE workspace = ? AND id = ?", (ws, exp_id))
    return Response(status=204)


@bp.get("/experiments/<exp_id>/outputdata/<node_id>/<path:port>")
def output_data(ws: str, exp_id: str, node_id: str, port: str) -> Response:
    """Raw bytes of a node output of the experiment's latest run (reference §2.2; PY, R clients)."""
    check_workspace(ws)
    parse_experiment_id(ws, exp_id)
    state = get_state()
    with state.store.read() as conn:
        stored = stored_or_404(conn, ws, exp_id)
        key = runs.output_blob(conn, ws, stored, node_id, port)
    if key is None:
        raise ApiFault(404, None, f"node {node_id!r} of experiment {exp_id!r} has no output {port!r}; run it first")
    return send_blob(key)


@bp.get("/experiments/<exp_id>/annotations")
def get_annotations(ws: str, exp_id: str) -> Response:
    """Canvas annotations (PS-HIST): not modelled, always an empty list."""
    check_workspace(ws)
    load(ws, exp_id)
    return json_response([])
