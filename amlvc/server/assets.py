"""Studio API asset routes: datasources, trainedmodels, transformmodules, modules; upload commit and promotion.

Reference §2.3 (datasets and uploads), §2.4 (trained models, transforms), §2.5 (modules), §5 (items).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Blueprint, Response, request

from amlvc.server import assetdb, runs
from amlvc.server.auth import check_workspace
from amlvc.server.blobs import endpoint
from amlvc.server.errors import ApiFault
from amlvc.server.experiments import stored_or_404
from amlvc.server.model import field
from amlvc.server.state import get_state
from amlvc.server.uploads import assemble
from amlvc.server.wire import HEX32_RE, RESOURCE_ID_RE, json_body, json_response, new_guid

bp = Blueprint("assets", __name__, url_prefix="/api/workspaces/<ws>")

# Promotion wrapper key and default DataTypeId per collection (reference §2.3, §2.4).
PROMOTE = {"datasources": ("DataSource", "Dataset"), "trainedmodels": ("TrainedModel", "ILearnerDotNet"),
           "transformmodules": ("Transform", "ITransformDotNet")}
NOUN = {"datasources": "dataset", "trainedmodels": "trained model", "transformmodules": "transform",
        "modules": "module"}


def render_item(kind: str, item: dict[str, Any], base_url: str) -> dict[str, Any]:
    """An asset item as listed: datasets get download/visualize/schema endpoints with fresh SAS credentials."""
    state = get_state()
    item = dict(item)
    key = item.pop("$blob", None)
    if kind == "datasources" and key:
        name = str(item.get("Name") or "")
        size = int(item.get("Size") or 0)
        ep = endpoint(base_url, name, size, "?" + state.blobs.sas_query(str(key)), f"blobs/{key}")
        item["DownloadLocation"] = ep
        item["VisualizeEndPoint"] = item.get("VisualizeEndPoint") or ep
        item["SchemaEndPoint"] = item.get("SchemaEndPoint") or ep
    return assetdb.ordered(kind, item)


def _list(ws: str, kind: str) -> Response:
    check_workspace(ws)
    state = get_state()
    with state.store.read() as conn:
        items = assetdb.latest(conn, ws, kind)
    return json_response([render_item(kind, item, request.host_url) for item in items])


def _get(ws: str, kind: str, asset_id: str) -> Response:
    check_workspace(ws)
    if not RESOURCE_ID_RE.match(asset_id):
        raise ApiFault(404, None, f"{NOUN[kind]} {asset_id!r} does not exist")
    state = get_state()
    with state.store.read() as conn:
        item = assetdb.get(conn, ws, kind, asset_id)
    if item is None:
        raise ApiFault(404, None, f"{NOUN[kind]} {asset_id!r} does not exist in workspace {ws!r}")
    return json_response(render_item(kind, item, request.host_url))


def _delete_family(ws: str, kind: str, family: str) -> Response:
    check_workspace(ws)
    if not HEX32_RE.match(family):
        raise ApiFault(404, None, f"{NOUN[kind]} family {family!r} does not exist")
    state = get_state()
    with state.store.tx() as conn:
        if assetdb.delete_family(conn, ws, kind, family) == 0:
            raise ApiFault(404, None, f"{NOUN[kind]} family {family!r} does not exist in workspace {ws!r}")
    return Response(status=204)


def _family(conn: Any, ws: str, kind: str, spec: dict[str, Any], name: str, path: str) -> str | None:
    """The family a new version goes into: the given FamilyId, else None; 409 when the name is taken."""
    family = field(spec, "FamilyId", "string", path)
    if family:
        family = family.strip().lower()
        if not HEX32_RE.match(family) or assetdb.latest_in_family(conn, ws, kind, family) is None:
            raise ApiFault(404, None, f"{NOUN[kind]} family {family!r} does not exist in workspace {ws!r}",
                           target=f"{path}/FamilyId")
        return str(family)
    if assetdb.family_by_name(conn, ws, kind, name) is not None:
        # ISS #37, verbatim message shape
        raise ApiFault(409, "UserError", f"Duplicate found for asset name: workspace: {ws}")
    return None


def _spec(body: dict[str, Any], kind: str) -> tuple[dict[str, Any], str]:
    """The asset object of a commit or promotion body (`DataSource`, `TrainedModel`, `Transform`) and its name."""
    key = PROMOTE[kind][0]
    spec = field(body, key, "object", "")
    if not isinstance(spec, dict):
        raise ApiFault(400, None, f"/{key}: an object is required", target=f"/{key}")
    name = field(spec, "Name", "string", f"/{key}")
    if not name or not name.strip():
        raise ApiFault(400, None, f"/{key}/Name: a name is required", target=f"/{key}/Name")
    forbidden = assetdb.forbidden_in_name(kind, name)
    if forbidden:
        shown, rule = ", ".join(repr(c) for c in forbidden), " ".join(assetdb.FORBIDDEN_NAME_CHARACTERS[kind])
        raise ApiFault(400, None, f"The {NOUN[kind]} name {name!r} contains forbidden characters ({shown}); a "
                                  f"{NOUN[kind]} name may not contain {rule} or control characters. Rename it "
                                  "and send the request again.", target=f"/{key}/Name")
    return spec, name


def _data_type(spec: dict[str, Any], path: str, default: str) -> str:
    raw = field(spec, "DataTypeId", "string", path) or default
    data_type = assetdb.canonical_data_type(raw)
    if data_type is None:
        raise ApiFault(400, None, f"{path}/DataTypeId: unknown data type {raw!r}", target=f"{path}/DataTypeId")
    return data_type


def _promote(ws: str, kind: str, body: dict[str, Any]) -> Response:
    """Promote a node output of the experiment's latest run to a new asset version (PS Promote-*)."""
    wrapper, default_type = PROMOTE[kind]
    spec, name = _spec(body, kind)
    exp_id = field(body, "ExperimentId", "string", "")
    node_id = field(body, "ModuleNodeId", "string", "")
    port = field(body, "OutputName", "string", "")
    if not (exp_id and node_id and port):
        raise ApiFault(400, None, "ExperimentId, ModuleNodeId and OutputName are required to promote an output")
    data_type = _data_type(spec, f"/{wrapper}", default_type)
    state = get_state()
    with state.store.tx() as conn:
        stored = stored_or_404(conn, ws, exp_id)
        key = runs.output_blob(conn, ws, stored, node_id, port)
        if key is None:
            raise ApiFault(400, None,
                           f"node {node_id!r} of {exp_id!r} has no output {port!r}; run the experiment first")
        family = _family(conn, ws, kind, spec, name, f"/{wrapper}")
        info = state.blobs.info(conn, key)
        item = assetdb.create_version(
            conn, ws, kind, name=name, data_type_id=data_type, family=family, new_family=new_guid(),
            description=field(spec, "Description", "string", f"/{wrapper}") or "",
            owner=field(spec, "Owner", "string", f"/{wrapper}") or "local-user@amlvc",
            source_origin="FromOutputPromotion", experiment_id=exp_id, promoted_from=f"{exp_id}.{node_id}.{port}",
            upload_id=new_guid(), blob_key=key, size=info.size if info else 0)
    return json_response(item["Id"])


def _commit_upload(ws: str, body: dict[str, Any]) -> Response:
    """Commit a finished upload as a new dataset (family), or a new version with FamilyId (PS-HIST PR #29)."""
    spec, name = _spec(body, "datasources")
    upload_id = str(field(body, "UploadId", "string", "") or "").lower()
    data_type = _data_type(spec, "/DataSource", "GenericCSV")
    state = get_state()
    with state.store.tx() as conn:
        family = _family(conn, ws, "datasources", spec, name, "/DataSource")
        key = f"userdata/{upload_id}{assetdb.EXTENSIONS.get(data_type, '.bin')}"
        stored = assemble(conn, ws, upload_id, key)
        conn.execute("UPDATE uploads SET committed = 1 WHERE workspace = ? AND id = ?", (ws, upload_id))
        # Schema generation is instant here: tabular types are Complete, others NotSupported.
        item = assetdb.create_version(
            conn, ws, "datasources", name=name, data_type_id=data_type, family=family, new_family=new_guid(),
            description=field(spec, "Description", "string", "/DataSource") or "",
            owner=field(spec, "Owner", "string", "/DataSource") or "local-user@amlvc",
            source_origin="FromResourceUpload", upload_id=upload_id,
            uploaded_from=field(body, "UploadedFromFileName", "string", "") or None, blob_key=key, size=stored.size,
            schema_status="Complete" if data_type in assetdb.TABULAR else "NotSupported")
    return json_response(item["Id"])


def _post(ws: str, kind: str) -> Response:
    check_workspace(ws)
    body = json_body()
    if not isinstance(body, dict):
        raise ApiFault(400, None, "expected a JSON object")
    if kind == "datasources" and "UploadId" in body:
        return _commit_upload(ws, body)
    return _promote(ws, kind, body)


# The same four routes for every collection (list, get; POST and DELETE family where assets can be promoted).
for _kind in NOUN:
    bp.add_url_rule(f"/{_kind}", f"list_{_kind}", partial(_list, kind=_kind), methods=["GET"])
    bp.add_url_rule(f"/{_kind}/<asset_id>", f"get_{_kind}", partial(_get, kind=_kind), methods=["GET"])
    if _kind in PROMOTE:
        bp.add_url_rule(f"/{_kind}", f"post_{_kind}", partial(_post, kind=_kind), methods=["POST"])
        bp.add_url_rule(f"/{_kind}/family/<family>", f"delete_{_kind}_family", partial(_delete_family, kind=_kind),
                        methods=["DELETE"])
