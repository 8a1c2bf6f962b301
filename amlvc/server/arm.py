"""ARM `Microsoft.MachineLearning/webServices` routes of the local workspace (reference web-services.md §2).

PUT 201 create / 200 update with a sparse body and `Azure-AsyncOperation`; the operation status
document; GET without keys, storage key and commitment plan; PATCH merging at property level
(`packageType` required); DELETE 202 (+Location, Azure-AsyncOperation) or 204 when absent;
`GET …/listKeys`; lists by resource group and subscription. Bodies are read case-insensitively
and written camelCase, pretty-printed with CRLF as the real resource provider. The asynchronous
operation is decided when it is submitted: a `Resource` asset whose blob is missing makes it
fail and the stored definition stays the old one (§2.7, §8.5).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from amlvc.server import armassets, armrules, armschema, wsmodel
from amlvc.server.armrules import ArmFault, invalid
from amlvc.server.auth import bearer_token
from amlvc.server.state import STATE_KEY, get_state
from amlvc.server.wire import WORKSPACE_ID_RE, json_body, same_secret

bp = Blueprint("arm", __name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS arm_services (
    key TEXT PRIMARY KEY, subscription TEXT NOT NULL, service_id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS arm_services_subscription ON arm_services (subscription);
CREATE TABLE IF NOT EXISTS arm_operations (id TEXT PRIMARY KEY, doc TEXT NOT NULL)
"""

API_VERSIONS = ("2016-05-01-preview", "2017-01-01")
PROVIDER = "providers/microsoft.machinelearning"
SUBSCRIPTION_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
GROUP_RE = re.compile(r"^[-\w._()]{1,90}$")
# A region's display or short name ("West Europe", "westeurope"); it ends up in the operation URLs.
LOCATION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 ]{0,63}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ROUTES = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in (
    ("service", rf"^(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/{PROVIDER}/webservices/(?P<name>[^/]+)$"),
    ("keys", rf"^(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/{PROVIDER}/webservices/(?P<name>[^/]+)/listkeys$"),
    ("regional", rf"^(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/{PROVIDER}/webservices/(?P<name>[^/]+)"
                 r"/createregionalblob$"),
    ("group", rf"^(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/{PROVIDER}/webservices$"),
    ("subscription", rf"^(?P<sub>[^/]+)/{PROVIDER}/webservices$"),
    ("operation", rf"^(?P<sub>[^/]+)/{PROVIDER}/locations/(?P<region>[^/]+)/"
                  r"(?P<kind>operationsstatus|operationresults)/(?P<op>[^/]+)$"),
)]


@bp.record_once
def _schema(setup: BlueprintSetupState) -> None:
    setup.app.extensions[STATE_KEY].store.ensure_schema(SCHEMA)


def arm_json(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Pretty-printed, 2-space indent, CRLF line breaks, as the real resource provider (§2.6)."""
    text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\r\n")
    resp = Response(text.encode("utf-8"), status=status, content_type="application/json; charset=utf-8")
    for key, val in (headers or {}).items():
        resp.headers[key] = val
    return resp


@bp.after_request
def _request_ids(resp: Response) -> Response:
    request_id = str(uuid.uuid4())
    resp.headers.setdefault("x-ms-request-id", request_id)
    resp.headers.setdefault("x-ms-correlation-request-id", request_id)
    resp.headers.setdefault("x-ms-routing-request-id", f"LOCAL:{wsmodel.iso_now()[:19].replace('-', '')}:{request_id}")
    return resp


# -- auth and request checks ------------------------------------------------------------------


def _token_workspaces() -> set[str]:
    """Workspaces whose token is the Bearer token; 401 when it is missing or matches none."""
    token = bearer_token()
    if not token:
        raise ArmFault(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    owned = {ws for ws, tokens in get_state().workspaces.items()
             if same_secret(token, tokens.primary) or same_secret(token, tokens.secondary)}
    if not owned:
        raise ArmFault(401, "InvalidAuthenticationToken", "The access token is invalid.")
    return owned


def _check_workspace_access(owned: set[str], props: Mapping[str, Any]) -> None:
    """403/400 unless the workspace named by `props.machineLearningWorkspace.id` (if any) is the caller's."""
    ws = (props.get("machineLearningWorkspace") or {}).get("id")
    if isinstance(ws, str) and ws and ws.lower() not in owned:
        if ws.lower() in get_state().workspaces:
            raise ArmFault(403, "AuthorizationFailed",
                           f"The client does not have authorization to use Machine Learning workspace '{ws}'.")
        raise invalid("WorkspaceNotFound", f"Machine Learning workspace '{ws}' does not exist.")


def _owned(conn: sqlite3.Connection, owned: set[str], a: Mapping[str, str]) -> dict[str, Any]:
    """The stored service the route names: 404 when there is none, 403/400 when its workspace is not the caller's."""
    doc = _load(conn, a["sub"], a["rg"], a["name"])
    if doc is None:
        raise _not_found(a["name"])
    _check_workspace_access(owned, doc["properties"])
    return doc


def _api_version() -> str:
    version = request.args.get("api-version")
    if not version:
        raise ArmFault(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.")
    if version not in API_VERSIONS:
        raise ArmFault(400, "InvalidApiVersionParameter",
                       f"The api-version '{version}' is invalid. "
                       f"The supported versions are '{', '.join(API_VERSIONS)}'.")
    return version


def _check_names(sub: str, rg: str | None = None, name: str | None = None) -> None:
    if not SUBSCRIPTION_RE.match(sub):
        raise ArmFault(400, "InvalidSubscriptionId",
                       f"The provided subscription identifier '{sub}' is malformed or invalid.")
    if rg is not None and (not GROUP_RE.match(rg) or rg.endswith(".")):
        raise ArmFault(400, "InvalidResourceGroup", f"The resource group name '{rg}' is invalid.")
    if name is not None and not NAME_RE.match(name):
        raise ArmFault(400, "InvalidResourceName", f"The resource name '{name}' is invalid.")


def _not_found(name: str) -> ArmFault:
    return ArmFault(404, "NotFound", "The specified resource was not found.",
                    [{"code": "WebServiceNotFound",
                      "message": f"No Web Service could be found with the provided name: {name}."}])


def _read_body() -> dict[str, Any]:
    body = json_body("arm")
    try:
        resource = armschema.read(body, armschema.RESOURCE)
    except armschema.SchemaError as exc:
        raise ArmFault(400, "InvalidRequestContent",
                       f"The request content was invalid and could not be deserialized: {exc}") from None
    assert isinstance(resource, dict)
    return resource


# -- storage ----------------------------------------------------------------------------------


def _key(sub: str, rg: str, name: str) -> str:
    return f"{sub.lower()}/{rg.lower()}/{name.lower()}"


def _load(conn: sqlite3.Connection, sub: str, rg: str, name: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT doc FROM arm_services WHERE key = ?", (_key(sub, rg, name),)).fetchone()
    return None if row is None else dict(json.loads(row["doc"]))


def _save(conn: sqlite3.Connection, doc: Mapping[str, Any], created_ms: int) -> None:
    key = _key(doc["subscription"], doc["resourceGroup"], doc["name"])
    conn.execute("INSERT INTO arm_services(key, subscription, service_id, doc, created_ms) VALUES(?, ?, ?, ?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET doc = excluded.doc",
                 (key, doc["subscription"].lower(), doc["serviceId"], json.dumps(doc), created_ms))


def load_by_service_id(conn: sqlite3.Connection, service_id: str) -> dict[str, Any] | None:
    """A stored ARM web service by its 32-hex service id (the BES route's `{id}`)."""
    row = conn.execute("SELECT doc FROM arm_services WHERE service_id = ?", (service_id,)).fetchone()
    return None if row is None else dict(json.loads(row["doc"]))


def _region(location: str) -> str:
    return quote(re.sub(r"\s+", "", location).lower(), safe="")


def _operation_url(sub: str, region: str, op: str, kind: str, version: str) -> str:
    return (f"{wsmodel.base_url()}subscriptions/{sub}/providers/Microsoft.MachineLearning/locations/{region}"
            f"/{kind}/{op}?api-version={version}")


# -- validation and the asynchronous outcome --------------------------------------------------


def _record_operation(conn: sqlite3.Connection, doc: Mapping[str, Any], error: dict[str, Any] | None) -> str:
    op = str(uuid.uuid4())
    now = wsmodel.iso_now()
    status: dict[str, Any] = {
        "id": f"/subscriptions/{doc['subscription']}/providers/Microsoft.MachineLearning/locations/"
              f"{_region(doc['location'])}/operationsStatus/{op}",
        "name": op, "status": "Failed" if error else "Succeeded", "startTime": now, "endTime": now,
        "percentComplete": 1.0,
    }
    if error:
        status["error"] = error
    conn.execute("INSERT INTO arm_operations(id, doc) VALUES(?, ?)", (op, json.dumps(status)))
    return op


def _lro_headers(doc: Mapping[str, Any], op: str, version: str, *, location: bool = False) -> dict[str, str]:
    region = _region(doc["location"])
    headers = {"Azure-AsyncOperation": _operation_url(doc["subscription"], region, op, "operationsStatus", version),
               "Azure-AsyncOperationPercentComplete": "0"}
    if location:
        headers["Location"] = _operation_url(doc["subscription"], region, op, "operationresults", version)
    return headers


def _apply(conn: sqlite3.Connection, old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Store the outcome of a create/update; returns (stored doc, operation id).

    A SAS on a URL of the local storage that does not verify is refused at once (403, nothing stored); a blob
    that cannot be read fails the asynchronous operation instead.
    """
    refusal = armassets.sas_refusal(new["properties"])
    if refusal is not None:
        raise ArmFault(403, "AuthenticationFailed", refusal)
    error = armassets.inline_payload(conn, new["properties"]) or armassets.asset_failure(conn, new["properties"])
    now = wsmodel.iso_now()
    if error and old is not None:
        stored = old
        stored["properties"]["provisioningState"] = "Failed"
    else:
        stored = new
        stored["properties"]["modifiedOn"] = now
        stored["properties"]["provisioningState"] = "Failed" if error else "Succeeded"
        # the service reads its models when the operation runs (ISS-37715: deleting the blob later does not
        # break scoring): scores follow these bytes, not the uri text
        stored["models"] = armassets.model_fingerprints(conn, stored["properties"])
    _save(conn, stored, int(time.time() * 1000))
    return stored, _record_operation(conn, stored, error)


def _keys(given: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> dict[str, str]:
    given, old = given or {}, old or {}
    return {"primary": given.get("primary") or old.get("primary") or wsmodel.new_key(),
            "secondary": given.get("secondary") or old.get("secondary") or wsmodel.new_key()}


# -- routes -----------------------------------------------------------------------------------


@bp.route("/subscriptions/<path:rest>", methods=["GET", "PUT", "PATCH", "DELETE", "POST"])
def dispatch(rest: str) -> Response:
    for kind, pattern in _ROUTES:
        match = pattern.match(rest)
        if match is None:
            continue
        args = match.groupdict()
        handlers = _HANDLERS[kind]
        if request.method not in handlers:
            raise ArmFault(405, "MethodNotAllowed", f"The HTTP method '{request.method}' is not supported "
                                                    f"on '{request.path}'.")
        owned = _token_workspaces()
        version = _api_version()
        response: Response = handlers[request.method](owned, version, args)
        return response
    raise ArmFault(404, "InvalidResourceType", f"No route {request.method} {request.path} in this local workspace.")


@bp.get("/providers/Microsoft.MachineLearning/operations")
def operations() -> Response:
    _token_workspaces()
    _api_version()
    names = [("webServices/read", "Read web service"), ("webServices/write", "Create or update web service"),
             ("webServices/delete", "Delete web service"), ("webServices/listKeys/read", "List web service keys")]
    return arm_json({"value": [{"name": f"Microsoft.MachineLearning/{n}",
                                "display": {"provider": "Microsoft Machine Learning", "resource": "Web Service",
                                            "operation": d, "description": d}} for n, d in names]})


def _get(owned: set[str], version: str, a: dict[str, str]) -> Response:
    _check_names(a["sub"], a["rg"], a["name"])
    with get_state().store.read() as conn:
        doc = _owned(conn, owned, a)
    region = request.args.get("region")
    if region and _region(region) not in {_region(doc["location"]), *doc.get("regions", [])}:
        raise ArmFault(404, "NotFound", "The specified resource was not found.", [{
            "code": "PerRegionPayloadNotFound",
            "message": f"Web Service Definition for region {_region(region)} was not found. Please use the same URL "
                       "making a POST call and wait for it succeeded, then try GET again."}])
    return arm_json(armschema.full_view(doc))


def _create_regional(owned: set[str], version: str, a: dict[str, str]) -> Response:
    """`POST P/CreateRegionalBlob?region=…` (REC-REGION): 202, a body whose `id` is the bare name."""
    _check_names(a["sub"], a["rg"], a["name"])
    region = request.args.get("region")
    if not region:
        raise ArmFault(400, "InvalidRequestParameter", "The query parameter 'region' is required.")
    with get_state().store.tx() as conn:
        doc = _owned(conn, owned, a)
        doc["regions"] = sorted({*doc.get("regions", []), _region(region)})
        _save(conn, doc, int(time.time() * 1000))
        op = _record_operation(conn, doc, None)
    body = {"id": doc["name"], "name": doc["name"], "type": armschema.RESOURCE_TYPE, "location": doc["location"],
            "properties": {"payloadsInBlobStorage": False, "provisioningState": "Provisioning"}}
    return arm_json(body, 202, _lro_headers(doc, op, version))


def _put(owned: set[str], version: str, a: dict[str, str]) -> Response:
    _check_names(a["sub"], a["rg"], a["name"])
    body = _read_body()
    if not body.get("location"):
        raise ArmFault(400, "LocationRequired", "The location property is required for this definition.")
    if not LOCATION_RE.match(body["location"]):
        raise ArmFault(400, "LocationNotAvailableForResourceType",
                       f"The provided location '{body['location']}' is not available for resource type "
                       f"'{armschema.RESOURCE_TYPE}'.")
    if "properties" not in body:
        raise ArmFault(400, "InvalidRequestContent", "The properties member is required.")
    props = body["properties"]
    _check_workspace_access(owned, props)
    with get_state().store.tx() as conn:
        old = _load(conn, a["sub"], a["rg"], a["name"])
        if old is not None:
            _check_workspace_access(owned, old["properties"])
            if _region(old["location"]) != _region(body["location"]):
                raise ArmFault(400, "InvalidResourceLocation",
                               f"The resource '{old['name']}' already exists in location '{old['location']}'.")
        armrules.validate(props, old)
        if old is None:
            armrules.validate_create(props)
        for read_only in armschema.READ_ONLY_PROPERTIES:
            props.pop(read_only, None)
        old_props = old["properties"] if old else {}
        props["keys"] = _keys(props.get("keys"), old_props.get("keys"))
        if old_props.get("storageAccount", {}).get("key") and "storageAccount" in props:
            props["storageAccount"].setdefault("key", old_props["storageAccount"]["key"])
        if old_props.get("commitmentPlan") and "commitmentPlan" not in props:
            props["commitmentPlan"] = old_props["commitmentPlan"]
        service_id = old["serviceId"] if old else secrets.token_hex(16)
        props["createdOn"] = old_props.get("createdOn") or wsmodel.iso_now()
        props["swaggerLocation"] = (f"{wsmodel.base_url()}subscriptions/{a['sub'].replace('-', '').lower()}"
                                    f"/services/{service_id}/swagger.json")
        props.setdefault("payloadsInBlobStorage", False)
        new = {"subscription": old["subscription"] if old else a["sub"],
               "resourceGroup": old["resourceGroup"] if old else a["rg"],
               "name": old["name"] if old else a["name"], "serviceId": service_id,
               "location": old["location"] if old else body["location"], "tags": body.get("tags", {}),
               "properties": props}
        stored, op = _apply(conn, old, new)
    sparse = armschema.envelope(stored, {"payloadsInBlobStorage": bool(props.get("payloadsInBlobStorage")),
                                "provisioningState": "Provisioning"})
    return arm_json(sparse, 200 if old is not None else 201, _lro_headers(stored, op, version))


def _patch(owned: set[str], version: str, a: dict[str, str]) -> Response:
    _check_names(a["sub"], a["rg"], a["name"])
    body = _read_body()
    props = body.get("properties")
    if props is None or "packageType" not in props:
        raise ArmFault(400, "InvalidRequestContent",
                       "properties.packageType is required in a PATCH body (the polymorphic discriminator).")
    with get_state().store.tx() as conn:
        old = _owned(conn, owned, a)
        if body.get("location") and _region(body["location"]) != _region(old["location"]):
            raise ArmFault(400, "InvalidResourceLocation",
                           f"The resource '{old['name']}' already exists in location '{old['location']}'.")
        _check_workspace_access(owned, props)
        armrules.validate(props, old)
        merged = armschema.merge_properties(old["properties"], props)
        armrules.validate(merged, None)
        new = {**copy.deepcopy(old), "properties": merged}
        if "tags" in body:
            new["tags"] = body["tags"]
        stored, op = _apply(conn, copy.deepcopy(old), new)
    sparse = armschema.envelope(stored, {"provisioningState": "Provisioning"})
    return arm_json(sparse, 200, _lro_headers(stored, op, version))


def _delete(owned: set[str], version: str, a: dict[str, str]) -> Response:
    _check_names(a["sub"], a["rg"], a["name"])
    with get_state().store.tx() as conn:
        old = _load(conn, a["sub"], a["rg"], a["name"])
        if old is None:
            return Response(status=204)
        _check_workspace_access(owned, old["properties"])
        conn.execute("DELETE FROM arm_services WHERE key = ?", (_key(a["sub"], a["rg"], a["name"]),))
        op = _record_operation(conn, old, None)
    resp = Response(status=202)
    for key, value in _lro_headers(old, op, version, location=True).items():
        resp.headers[key] = value
    return resp


def _list_keys(owned: set[str], version: str, a: dict[str, str]) -> Response:
    _check_names(a["sub"], a["rg"], a["name"])
    with get_state().store.read() as conn:
        doc = _owned(conn, owned, a)
    keys = doc["properties"]["keys"]
    return arm_json({"primary": keys["primary"], "secondary": keys["secondary"]})


def _visible(owned: set[str], doc: Mapping[str, Any]) -> bool:
    ws = (doc["properties"].get("machineLearningWorkspace") or {}).get("id")
    return not (isinstance(ws, str) and ws and WORKSPACE_ID_RE.match(ws.lower()) and ws.lower() not in owned)


def _list(owned: set[str], version: str, a: dict[str, str]) -> Response:
    _check_names(a["sub"], a.get("rg"))
    with get_state().store.read() as conn:
        rows = conn.execute("SELECT doc FROM arm_services WHERE subscription = ? ORDER BY created_ms, key",
                            (a["sub"].lower(),)).fetchall()
    docs = [json.loads(row["doc"]) for row in rows]
    if a.get("rg"):
        docs = [d for d in docs if d["resourceGroup"].lower() == a["rg"].lower()]
    return arm_json({"value": [armschema.sparse_view(d) for d in docs if _visible(owned, d)]})


def _operation(owned: set[str], version: str, a: dict[str, str]) -> Response:
    _check_names(a["sub"])
    with get_state().store.read() as conn:
        row = conn.execute("SELECT doc FROM arm_operations WHERE id = ?", (a["op"],)).fetchone()
    if row is None:
        raise ArmFault(404, "NotFound", f"The operation '{a['op']}' was not found.")
    return arm_json(json.loads(row["doc"]))


_HANDLERS: dict[str, dict[str, Any]] = {
    "service": {"GET": _get, "PUT": _put, "PATCH": _patch, "DELETE": _delete},
    "keys": {"GET": _list_keys},
    "regional": {"POST": _create_regional},
    "group": {"GET": _list},
    "subscription": {"GET": _list},
    "operation": {"GET": _operation},
}
