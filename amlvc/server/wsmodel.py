"""Stored classic web services and endpoints of the local workspace, and the blob addressing shared with ARM and BES.

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
from urllib.parse import quote, unquote, urlsplit

from flask import request

from amlvc.server.blobstore import valid_key
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
BLOB_HOST_SUFFIX = ".blob.core.windows.net"
# The storage account name of blob URLs that must not depend on this server's host and port (definitions
# that users keep in git): `https://amlvclocal.blob.core.windows.net/{key}` names the local blob `{key}`.
LOCAL_ACCOUNT = "amlvclocal"


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


def blob_base() -> str:
    """BaseLocation of blobs on this server: BaseLocation + RelativeLocation + SasBlobToken is a readable URL."""
    return f"{base_url()}blobs/"


def blob_key_of_url(url: str) -> str | None:
    """The local blob key an https/http blob URL stands for, or None when it names no blob.

    Every storage account is emulated by the one local blob store: a URL of this server
    (`…/blobs/{key}`) maps to `{key}`; `https://{account}.blob.core.windows.net/{container}/{path}`
    maps to `{container}/{path}` — the same key a BES output `RelativeLocation` writes to.
    """
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    path = unquote(parts.path)
    if (parts.hostname or "").endswith(BLOB_HOST_SUFFIX):
        key = path.lstrip("/")
    elif path.startswith("/blobs/"):
        key = path[len("/blobs/"):]
    else:
        return None
    return key if valid_key(key) else None


def account_url(key: str) -> str:
    """A host-independent URL of a local blob, in the shape of an Azure storage URL (no SAS)."""
    return f"https://{LOCAL_ACCOUNT}{BLOB_HOST_SUFFIX}/{quote(key)}"


def blob_location(key: str) -> dict[str, str]:
    """`{BaseLocation, RelativeLocation, SasBlobToken}` of a local blob with a fresh read SAS."""
    return {"BaseLocation": blob_base(), "RelativeLocation": key,
            "SasBlobToken": "?" + get_state().blobs.sas_query(key)}


def blob_exists(conn: sqlite3.Connection, key: str) -> bool:
    return get_state().blobs.info(conn, key) is not None


def location_key(location: Mapping[str, Any]) -> str | None:
    """The blob key of a classic `{BaseLocation, RelativeLocation, SasBlobToken}`, or None if it is not a blob URL."""
    base = location.get("BaseLocation")
    relative = location.get("RelativeLocation")
    if not isinstance(base, str) or not isinstance(relative, str) or not relative.strip():
        return None
    return blob_key_of_url(base.rstrip("/") + "/" + relative.strip().lstrip("/"))


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


def resource_view(resource: Mapping[str, Any]) -> dict[str, Any]:
    """An endpoint resource; a location on the local blob store gets a fresh SAS on every GET."""
    location = dict(resource.get("Location") or {})
    key = location_key(location)
    if key is not None and location.get("BaseLocation", "").rstrip("/").endswith("/blobs"):
        location = blob_location(key)
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
