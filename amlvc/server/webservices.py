"""Classic web-service management API of the local workspace: `/workspaces/{ws}/webservices/…` and their endpoints.

Reference web-services.md §3: Bearer auth (workspace token, or the endpoint's own API key for
endpoint-level calls), PascalCase bodies, error body `{"error": {"code", "message"}}` with an
`x-ms-request-id` header. The default endpoint tracks the experiment and can be neither patched,
refreshed nor deleted; other endpoints are locked copies updated by PATCH (trained-model
resources) and refresh (304 when nothing changed).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response
from flask.blueprints import BlueprintSetupState

from amlvc.server import blobs, wsmodel
from amlvc.server.auth import bearer_token, require_bearer
from amlvc.server.errors import ApiFault
from amlvc.server.state import STATE_KEY, get_state
from amlvc.server.wire import HEX32_RE, WORKSPACE_ID_RE, json_body, json_response, same_secret

bp = Blueprint("webservices", __name__)

ENDPOINT_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")
MAX_DESCRIPTION = 2000
MAX_ENDPOINTS = 10_000  # reference §3.2: "up to 10,000 endpoints"
THROTTLE_LEVELS = {"low": "Low", "high": "High"}
TRACE_LEVELS = {"none": "None", "error": "Error", "all": "All"}
LOW_THROTTLE_CALLS = 4  # Low throttle forces 4 concurrent calls (reference §3.4)
DEFAULT_HIGH_CALLS = 20
NO_UPDATABLE_RESOURCES = ("Sorry, but this feature is not supported or available in this context. "
                          "This Web Service has no updatable resources.")


@bp.record_once
def _schema(setup: BlueprintSetupState) -> None:
    setup.app.extensions[STATE_KEY].store.ensure_schema(wsmodel.SCHEMA)


@bp.after_request
def _request_id(resp: Response) -> Response:
    resp.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
    return resp


def fault(status: int, code: str, message: str) -> ApiFault:
    return ApiFault(status, code, message, "mgmt")


def ci_get(body: Mapping[str, Any], name: str) -> Any:
    """A member of a request body, matched case-insensitively (Json.NET on the real service)."""
    lowered = name.lower()
    found = None
    for key, value in body.items():
        if str(key).lower() == lowered:
            found = value
    return found


def _authorize(ws: str, endpoint: Mapping[str, Any] | None = None) -> None:
    """Workspace token, or for endpoint-level calls that endpoint's own API key (reference §3.1)."""
    if not WORKSPACE_ID_RE.match(ws):
        raise fault(404, "WorkspaceNotFound", f"workspace {ws!r} does not exist")
    token = bearer_token()
    if endpoint is not None and token:
        for key in (endpoint["PrimaryKey"], endpoint["SecondaryKey"]):
            if same_secret(token, key):
                return
    require_bearer(ws, "mgmt")
    if ws not in get_state().workspaces:
        raise fault(404, "WorkspaceNotFound", f"workspace {ws!r} does not exist")


def _service(conn: sqlite3.Connection, ws: str, sid: str) -> dict[str, Any]:
    service = wsmodel.load_service(conn, ws, sid) if HEX32_RE.match(sid) else None
    if service is None:
        raise fault(404, "WebServiceNotFound", f"web service {sid!r} does not exist in workspace {ws}")
    return service


def _endpoint(conn: sqlite3.Connection, ws: str, sid: str, name: str) -> dict[str, Any]:
    endpoint = wsmodel.load_endpoint(conn, ws, sid, name)
    if endpoint is None:
        raise fault(404, "EndpointNotFound", f"endpoint {name!r} does not exist on web service {sid}")
    return endpoint


def _lookup_endpoint_for_auth(ws: str, sid: str, name: str) -> dict[str, Any] | None:
    if not (WORKSPACE_ID_RE.match(ws) and HEX32_RE.match(sid)):
        return None
    with get_state().store.read() as conn:
        return wsmodel.load_endpoint(conn, ws, sid, name)


def _endpoint_json(endpoint: Mapping[str, Any], service: Mapping[str, Any]) -> dict[str, Any]:
    return wsmodel.endpoint_view(endpoint, service.get("ExperimentId"))


# -- web services ---------------------------------------------------------------------------


@bp.get("/workspaces/<ws>/webservices")
def list_webservices(ws: str) -> Response:
    _authorize(ws)
    with get_state().store.read() as conn:
        services = wsmodel.list_services(conn, ws)
        body = [wsmodel.service_view(s, len(wsmodel.list_endpoints(conn, ws, s["Id"]))) for s in services]
    return json_response(body)


@bp.get("/workspaces/<ws>/webservices/<sid>")
def get_webservice(ws: str, sid: str) -> Response:
    _authorize(ws)
    with get_state().store.read() as conn:
        service = _service(conn, ws, sid)
        count = len(wsmodel.list_endpoints(conn, ws, sid))
    return json_response(wsmodel.service_view(service, count))


@bp.delete("/workspaces/<ws>/webservices/<sid>")
def delete_webservice(ws: str, sid: str) -> Response:
    _authorize(ws)
    with get_state().store.tx() as conn:
        _service(conn, ws, sid)
        wsmodel.delete_service(conn, ws, sid)
    return Response(status=204)


# -- endpoints ------------------------------------------------------------------------------


@bp.get("/workspaces/<ws>/webservices/<sid>/endpoints")
def list_endpoints(ws: str, sid: str) -> Response:
    _authorize(ws)
    with get_state().store.read() as conn:
        service = _service(conn, ws, sid)
        endpoints = wsmodel.list_endpoints(conn, ws, sid)
    return json_response([_endpoint_json(e, service) for e in endpoints])


@bp.get("/workspaces/<ws>/webservices/<sid>/endpoints/<name>")
def get_endpoint(ws: str, sid: str, name: str) -> Response:
    _authorize(ws, _lookup_endpoint_for_auth(ws, sid, name))
    with get_state().store.read() as conn:
        service = _service(conn, ws, sid)
        endpoint = _endpoint(conn, ws, sid, name)
    return json_response(_endpoint_json(endpoint, service))


def _settings(body: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """Description, ThrottleLevel, MaxConcurrentCalls, PreventUpdate, DiagnosticsTraceLevel of a PUT/PATCH body."""
    out: dict[str, Any] = {}
    description = ci_get(body, "Description")
    if description is not None:
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise fault(400, "BadArgument", f"Description must be a string of at most {MAX_DESCRIPTION} characters")
        out["Description"] = description
    throttle_raw = ci_get(body, "ThrottleLevel")
    throttle = current["ThrottleLevel"] if current else "High"
    if throttle_raw is not None:
        if not isinstance(throttle_raw, str) or throttle_raw.lower() not in THROTTLE_LEVELS:
            raise fault(400, "BadArgument", "ThrottleLevel must be 'Low' or 'High'")
        throttle = THROTTLE_LEVELS[throttle_raw.lower()]
        out["ThrottleLevel"] = throttle
    calls = ci_get(body, "MaxConcurrentCalls")
    if throttle == "Low":
        if calls is not None and calls != LOW_THROTTLE_CALLS:
            raise fault(400, "BadArgument", "MaxConcurrentCalls is fixed at 4 when ThrottleLevel is 'Low'")
        out["MaxConcurrentCalls"] = LOW_THROTTLE_CALLS
    elif calls is not None:
        if not isinstance(calls, int) or isinstance(calls, bool) or not 1 <= calls <= 200:
            raise fault(400, "BadArgument", "MaxConcurrentCalls must be an integer from 1 to 200")
        out["MaxConcurrentCalls"] = calls
    elif throttle_raw is not None and (current is None or current["ThrottleLevel"] != "High"):
        out["MaxConcurrentCalls"] = DEFAULT_HIGH_CALLS
    prevent = ci_get(body, "PreventUpdate")
    if prevent is not None:
        if not isinstance(prevent, bool):
            raise fault(400, "BadArgument", "PreventUpdate must be true or false")
        out["PreventUpdate"] = prevent
    trace = ci_get(body, "DiagnosticsTraceLevel")
    if trace is not None:
        if not isinstance(trace, str) or trace.lower() not in TRACE_LEVELS:
            raise fault(400, "BadArgument", "DiagnosticsTraceLevel must be 'None', 'Error' or 'All'")
        out["DiagnosticsTraceLevel"] = TRACE_LEVELS[trace.lower()]
    return out


def _object_body(*, allow_empty: bool) -> dict[str, Any]:
    body = json_body("mgmt", allow_empty=allow_empty)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise fault(400, "BadArgument", "the request body must be a JSON object")
    return body


@bp.put("/workspaces/<ws>/webservices/<sid>/endpoints/<name>")
def put_endpoint(ws: str, sid: str, name: str) -> Response:
    _authorize(ws)
    body = _object_body(allow_empty=True)
    if not ENDPOINT_NAME_RE.match(name):
        raise fault(400, "BadArgument", f"endpoint name {name!r} is invalid: use at most 24 lower-case letters, "
                                        "digits and hyphens, not starting or ending with a hyphen")
    for member, expected in (("WebServiceId", sid), ("EndpointName", name)):
        given = ci_get(body, member)
        if given is not None and given != expected:
            raise fault(400, "BadArgument", f"{member} {given!r} in the body does not match the URL ({expected!r})")
    with get_state().store.tx() as conn:
        service = _service(conn, ws, sid)
        existing = wsmodel.load_endpoint(conn, ws, sid, name)
        settings = _settings(body, existing)
        if existing is not None:
            existing.update(settings)
            wsmodel.save_endpoint(conn, ws, existing)
            return json_response(_endpoint_json(existing, service), 200)
        if len(wsmodel.list_endpoints(conn, ws, sid)) >= MAX_ENDPOINTS:
            raise fault(400, "BadArgument", f"web service {sid} already has {MAX_ENDPOINTS} endpoints")
        endpoint = wsmodel.new_endpoint(ws, service, name)
        endpoint.update(settings)
        wsmodel.save_endpoint(conn, ws, endpoint)
    return json_response(_endpoint_json(endpoint, service), 201)


def _checked_location(conn: sqlite3.Connection, resource_name: str, location: Any) -> tuple[dict[str, Any], str]:
    """A PATCHed resource location and its blob key: a readable `.ilearner` blob, else 400 (403 for a SAS that does
    not verify). The location is kept without its SAS: a GET makes a new one."""
    if not isinstance(location, dict):
        raise fault(400, "BadArgument", f"resource {resource_name!r}: Location must be an object")
    loc = {member: ci_get(location, member) for member in ("BaseLocation", "RelativeLocation", "SasBlobToken")}
    for member in ("BaseLocation", "RelativeLocation"):
        if not isinstance(loc[member], str) or not loc[member].strip():
            raise fault(400, "BadArgument", f"resource {resource_name!r}: Location.{member} is required")
    if loc["SasBlobToken"] is not None and not isinstance(loc["SasBlobToken"], str):
        raise fault(400, "BadArgument", f"resource {resource_name!r}: Location.SasBlobToken must be a string")
    # shown in messages without its query: a SAS signature is never echoed
    url = (loc["BaseLocation"].rstrip("/") + "/" + loc["RelativeLocation"].lstrip("/")).split("?")[0]
    if not loc["RelativeLocation"].split("?")[0].lower().endswith(".ilearner"):
        raise fault(400, "InvalidBlobExtension",
                    f"resource {resource_name!r}: a trained model must be an '.ilearner' blob, got {url!r}")
    ref = blobs.resolve_location(loc)
    if ref is None or get_state().blobs.info(conn, ref.key) is None:
        raise fault(400, "BadArgument", f"resource {resource_name!r}: the URL {url!r} is invalid: no such blob")
    problem = get_state().blobs.ref_problem(ref)
    if problem is not None:
        raise fault(403, "AuthenticationFailed", f"resource {resource_name!r}: the SAS of {url!r} does not grant "
                                                 f"reading it: {problem}")
    return {**loc, "SasBlobToken": None}, ref.key


@bp.patch("/workspaces/<ws>/webservices/<sid>/endpoints/<name>")
def patch_endpoint(ws: str, sid: str, name: str) -> Response:
    _authorize(ws, _lookup_endpoint_for_auth(ws, sid, name))
    body = _object_body(allow_empty=False)
    with get_state().store.tx() as conn:
        service = _service(conn, ws, sid)
        endpoint = _endpoint(conn, ws, sid, name)
        settings = _settings(body, endpoint)
        resources = ci_get(body, "Resources")
        if resources is not None:
            endpoint["Resources"] = _patched_resources(conn, service, endpoint, resources)
            endpoint["Version"] = wsmodel.iso_now()
        endpoint.update(settings)
        wsmodel.save_endpoint(conn, ws, endpoint)
    return json_response(_endpoint_json(endpoint, service))


def _patched_resources(conn: sqlite3.Connection, service: Mapping[str, Any], endpoint: Mapping[str, Any],
                       resources: Any) -> list[dict[str, Any]]:
    if not service.get("Resources"):
        raise fault(400, "BadArgument", NO_UPDATABLE_RESOURCES)
    if endpoint["Name"] == service["DefaultEndpointName"]:
        raise fault(400, "BadArgument", "the trained model of the default endpoint cannot be updated; "
                                        "add an endpoint (PUT …/endpoints/{name}) and patch that one")
    if not isinstance(resources, list) or not resources:
        raise fault(400, "BadArgument", "Resources must be a non-empty array")
    current = [dict(r) for r in endpoint["Resources"]]
    names = [r["Name"] for r in current]
    for index, item in enumerate(resources):
        if not isinstance(item, dict):
            raise fault(400, "BadArgument", f"Resources[{index}] must be an object")
        rname = ci_get(item, "Name")
        if rname not in names:
            raise fault(400, "BadArgument", f"Resources[{index}].Name {rname!r} is not an updatable resource "
                                            f"of this endpoint; updatable resources: {names}")
        location, key = _checked_location(conn, str(rname), ci_get(item, "Location"))
        # the model is read now (the service copies it): scores follow these bytes, not the URL
        current[names.index(rname)].update(Location=location, Key=key, Fingerprint=blobs.model_fingerprint(conn, key))
    return current


@bp.post("/workspaces/<ws>/webservices/<sid>/endpoints/<name>/refresh")
def refresh_endpoint(ws: str, sid: str, name: str) -> Response:
    _authorize(ws, _lookup_endpoint_for_auth(ws, sid, name))
    body = _object_body(allow_empty=True)
    overwrite_raw = ci_get(body, "OverwriteResources")
    if overwrite_raw is None:
        overwrite = False
    elif isinstance(overwrite_raw, bool):
        overwrite = overwrite_raw
    elif isinstance(overwrite_raw, str) and overwrite_raw.lower() in ("true", "false"):
        overwrite = overwrite_raw.lower() == "true"
    else:
        raise fault(400, "BadArgument", "OverwriteResources must be \"True\" or \"False\"")
    with get_state().store.tx() as conn:
        service = _service(conn, ws, sid)
        endpoint = _endpoint(conn, ws, sid, name)
        if name == service["DefaultEndpointName"]:
            raise fault(400, "BadArgument", "the default endpoint always tracks the experiment and cannot be refreshed")
        graph_same = endpoint["GraphVersion"] == service["GraphVersion"]
        resources_same = not overwrite or endpoint["Resources"] == service.get("Resources", [])
        if graph_same and resources_same:
            return Response(status=304)
        endpoint["GraphVersion"] = service["GraphVersion"]
        if overwrite:
            endpoint["Resources"] = [dict(r) for r in service.get("Resources", [])]
        endpoint["Version"] = wsmodel.iso_now()
        wsmodel.save_endpoint(conn, ws, endpoint)
    return json_response(_endpoint_json(endpoint, service))


@bp.delete("/workspaces/<ws>/webservices/<sid>/endpoints/<name>")
def delete_endpoint(ws: str, sid: str, name: str) -> Response:
    _authorize(ws, _lookup_endpoint_for_auth(ws, sid, name))
    with get_state().store.tx() as conn:
        service = _service(conn, ws, sid)
        _endpoint(conn, ws, sid, name)
        if name == service["DefaultEndpointName"]:
            raise fault(400, "BadArgument", "the default endpoint cannot be deleted; delete the web service instead")
        wsmodel.delete_endpoint(conn, ws, sid, name)
    return Response(status=204)
