"""Stored classic web services and endpoints of the local workspace, and their views.

A classic web service row holds what a deploy froze from the experiment (its graph hash, web-service
inputs/outputs and trained-model resources); its endpoints are rows of their own holding keys,
settings, their trained-model resources and the graph hash they were locked to (reference
web-services.md §3.2-3.4). No HTTP here except the request's base URL for derived locations.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import request

from amlvc.server import blobs, storage
from amlvc.server.state import get_state

SCHEMA = """
CREATE TABLE IF NOT EXISTS ws_services (
    workspace TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (workspace, id));
CREATE TABLE IF NOT EXISTS ws_endpoints (
    workspace TEXT NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL, guid TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (workspace, service, name));
CREATE TABLE IF NOT EXISTS ws_deploy_activities (
    workspace TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (workspace, id))
"""

DEFAULT_ENDPOINT = "default"
TRAINED_MODEL_KIND = "TrainedModel"


def iso_now(epoch: float | None = None) -> str:
    """UTC ISO-8601 with seven fractional digits, the .NET round-trip form (`2017-03-09T08:14:36.8400351Z`)."""
    t = time.time() if epoch is None else epoch
    stamp = datetime.fromtimestamp(t, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{stamp.microsecond:06d}0Z"


def new_key() -> str:
    """An API key of the observed shape: 64 random bytes in base64 (88 characters)."""
    return base64.b64encode(secrets.token_bytes(64)).decode("ascii")


def base_url() -> str:
    """The server root as the client addressed it (one server answers every "host")."""
    return request.host_url


# -- rows -----------------------------------------------------------------------------------


def load_service(conn: sqlite3.Connection, ws: str, service_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT doc FROM ws_services WHERE workspace = ? AND id = ?", (ws, service_id)).fetchone()
    return None if row is None else dict(json.loads(row["doc"]))


def list_services(conn: sqlite3.Connection, ws: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT doc FROM ws_services WHERE workspace = ? ORDER BY created_ms, id", (ws,))
    return [dict(json.loads(row["doc"])) for row in rows]


def save_service(conn: sqlite3.Connection, ws: str, doc: Mapping[str, Any]) -> None:
    conn.execute("INSERT INTO ws_services(workspace, id, doc, created_ms) VALUES(?, ?, ?, ?) "
                 "ON CONFLICT(workspace, id) DO UPDATE SET doc = excluded.doc",
                 (ws, doc["Id"], json.dumps(doc), int(time.time() * 1000)))


def delete_service(conn: sqlite3.Connection, ws: str, service_id: str) -> None:
    conn.execute("DELETE FROM ws_endpoints WHERE workspace = ? AND service = ?", (ws, service_id))
    conn.execute("DELETE FROM ws_services WHERE workspace = ? AND id = ?", (ws, service_id))


def load_endpoint(conn: sqlite3.Connection, ws: str, service_id: str, name: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT doc FROM ws_endpoints WHERE workspace = ? AND service = ? AND name = ?",
                       (ws, service_id, name)).fetchone()
    return None if row is None else dict(json.loads(row["doc"]))


def list_endpoints(conn: sqlite3.Connection, ws: str, service_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT doc FROM ws_endpoints WHERE workspace = ? AND service = ? ORDER BY created_ms, name",
                        (ws, service_id))
    return [dict(json.loads(row["doc"])) for row in rows]


def endpoint_by_guid(conn: sqlite3.Connection, ws: str, guid: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT doc FROM ws_endpoints WHERE workspace = ? AND guid = ?", (ws, guid)).fetchone()
    return None if row is None else dict(json.loads(row["doc"]))


def save_endpoint(conn: sqlite3.Connection, ws: str, doc: Mapping[str, Any]) -> None:
    conn.execute("INSERT INTO ws_endpoints(workspace, service, name, guid, doc, created_ms) VALUES(?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT(workspace, service, name) DO UPDATE SET doc = excluded.doc",
                 (ws, doc["WebServiceId"], doc["Name"], doc["Guid"], json.dumps(doc), int(time.time() * 1000)))


def delete_endpoint(conn: sqlite3.Connection, ws: str, service_id: str, name: str) -> None:
    conn.execute("DELETE FROM ws_endpoints WHERE workspace = ? AND service = ? AND name = ?", (ws, service_id, name))


def new_endpoint(ws: str, service: Mapping[str, Any], name: str, *, description: str = "",
                 throttle: str = "High", max_calls: int = 20, prevent_update: bool = False) -> dict[str, Any]:
    """A new endpoint locked to the service's current graph, carrying the default resources."""
    now = iso_now()
    return {
        "Name": name, "Description": description, "CreationTime": now, "WorkspaceId": ws,
        "WebServiceId": service["Id"], "Guid": secrets.token_hex(16),
        "PrimaryKey": new_key(), "SecondaryKey": new_key(), "Version": now,
        "PreventUpdate": prevent_update, "SampleDataEnabled": False, "MaxConcurrentCalls": max_calls,
        "DiagnosticsTraceLevel": "None", "ThrottleLevel": throttle,
        "Resources": [dict(r) for r in service.get("Resources", [])],
        "GraphVersion": service["GraphVersion"],
    }


def service_view(service: Mapping[str, Any], endpoint_count: int) -> dict[str, Any]:
    """The management API's WebService object (reference §3.2)."""
    return {"Id": service["Id"], "Name": service["Name"], "Description": service["Description"],
            "CreationTime": service["CreationTime"], "WorkspaceId": service["WorkspaceId"],
            "DefaultEndpointName": service["DefaultEndpointName"], "EndpointCount": endpoint_count}


def resource_key(resource: Mapping[str, Any]) -> str | None:
    """The local blob an endpoint resource names: recorded when it was deployed or patched (`Key`); for rows
    of older data directories, read from its location (`{server}/blobs/` on whichever port it was)."""
    if resource.get("Key"):
        return str(resource["Key"])
    location = resource.get("Location") or {}
    ref = blobs.resolve_location(location)
    if ref is not None:
        return ref.key
    relative = location.get("RelativeLocation")
    if str(location.get("BaseLocation") or "").rstrip("/").endswith("/blobs") and isinstance(relative, str):
        return relative
    return None


def resource_view(resource: Mapping[str, Any]) -> dict[str, Any]:
    """An endpoint resource: its location in the account form with a SAS made now (a location patched in with
    an account-form BaseLocation keeps that BaseLocation and RelativeLocation)."""
    location = dict(resource.get("Location") or {})
    key = resource_key(resource)
    if key is not None:
        sas = "?" + get_state().blobs.sas_query(key)
        if storage.is_account_base(location.get("BaseLocation")):
            location["SasBlobToken"] = sas
        else:
            location = {"BaseLocation": storage.account_base(), "RelativeLocation": key, "SasBlobToken": sas}
    return {"Name": resource["Name"], "Kind": resource.get("Kind", TRAINED_MODEL_KIND),
            "Location": {"BaseLocation": location.get("BaseLocation"),
                         "RelativeLocation": location.get("RelativeLocation"),
                         "SasBlobToken": location.get("SasBlobToken")}}


def endpoint_view(endpoint: Mapping[str, Any], experiment_id: str | None) -> dict[str, Any]:
    """The management API's Endpoint object (reference §3.2, field order of the synthesized §6.2)."""
    ws, service, guid = endpoint["WorkspaceId"], endpoint["WebServiceId"], endpoint["Guid"]
    root = base_url()
    experiment_location = None
    if experiment_id:
        experiment_location = (f"{root}Home/ViewWorkspaceCached/{ws}#Workspaces/Experiments/Experiment/"
                               f"{experiment_id}/ViewExperiment")
    return {
        "Name": endpoint["Name"],
        "Description": endpoint["Description"],
        "CreationTime": endpoint["CreationTime"],
        "WorkspaceId": ws,
        "WebServiceId": service,
        "HelpLocation": f"{root}apihelp/workspaces/{ws}/webservices/{service}/endpoints/{guid}",
        "PrimaryKey": endpoint["PrimaryKey"],
        "SecondaryKey": endpoint["SecondaryKey"],
        "ApiLocation": f"{root}workspaces/{ws}/services/{guid}",
        "ExperimentLocation": experiment_location,
        "Version": endpoint["Version"],
        "PreventUpdate": endpoint["PreventUpdate"],
        "SampleDataEnabled": endpoint["SampleDataEnabled"],
        "MaxConcurrentCalls": endpoint["MaxConcurrentCalls"],
        "DiagnosticsTraceLevel": endpoint["DiagnosticsTraceLevel"],
        "ThrottleLevel": endpoint["ThrottleLevel"],
        "Resources": [resource_view(r) for r in endpoint.get("Resources", [])],
    }
