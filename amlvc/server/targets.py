"""What BES jobs and RRS calls run on: a classic endpoint or an ARM web service, its keys, graph and trained models.

Classic: `/workspaces/{ws}/services/{endpoint id}` (the endpoint's ApiLocation); ARM:
`/subscriptions/{sub without dashes}/services/{service id}` (beside its swaggerLocation). Both are
authorised by one of the target's API keys as a Bearer token (web-services.md §4). Scores depend on
the graph and on the *bytes* of the trained models the target uses: the fingerprints captured when its
models were deployed, patched or PUT (ilearner.py), never the URL text that named them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import request

from amlvc.server import arm, armassets, armschema, blobs, wsmodel
from amlvc.server.auth import bearer_token
from amlvc.server.errors import ApiFault
from amlvc.server.state import get_state
from amlvc.server.wire import HEX32_RE, WORKSPACE_ID_RE, same_secret

API_VERSION = "2.0"
TRAIN_MODEL_FAMILY = "5cc7053eaa30450d96c0dae4be720977"


class ServiceFault(ApiFault):
    """BES and RRS error body `{"error": {"code", "message", "details": [{code, message}]}}` (DOC-ERRORS)."""

    def __init__(self, status: int, code: str, message: str, detail: tuple[str, str] | None = None) -> None:
        super().__init__(status, code, message, "mgmt")
        self.details = [{"code": detail[0], "message": detail[1]}] if detail else []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def bad(detail_code: str, message: str) -> ServiceFault:
    return ServiceFault(400, "BadArgument", "Invalid argument provided.", (detail_code, message))


@dataclass(frozen=True)
class Target:
    """What a job or a request-response call runs on: a classic endpoint or an ARM web service."""

    key: str  # the bes_jobs.target column: "ws/{ws}/{guid}" or "arm/{serviceId}"
    api_keys: tuple[str, str]
    graph: str  # what it runs, without where its trained models are stored
    inputs: tuple[str, ...]
    outputs: Mapping[str, str]  # output name -> "ilearner" | "dataset"
    models: tuple[str, ...] = ()  # the fingerprints of its trained models (ilearner.py): what scores depend on
    # input name -> its column names, where the service knows them (else any columns are taken)
    input_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parameters: tuple[str, ...] = ()  # the web-service (global) parameters it takes


# -- targets ----------------------------------------------------------------------------------


def classic_target(conn: sqlite3.Connection, ws: str, guid: str) -> Target | None:
    if not (WORKSPACE_ID_RE.match(ws) and HEX32_RE.match(guid)):
        return None
    endpoint = wsmodel.endpoint_by_guid(conn, ws, guid)
    if endpoint is None:
        return None
    service = wsmodel.load_service(conn, ws, endpoint["WebServiceId"])
    if service is None:
        return None
    models = tuple(resource.get("Fingerprint") or _fingerprint(conn, wsmodel.resource_key(resource))
                   for resource in sorted(endpoint.get("Resources", []), key=lambda r: str(r.get("Name"))))
    columns = {name: tuple(cols) for name, cols in service.get("InputColumns", {}).items()}
    return Target(f"ws/{ws}/{guid}", (endpoint["PrimaryKey"], endpoint["SecondaryKey"]),
                  endpoint["GraphVersion"], tuple(service.get("Inputs", [])), dict(service.get("Outputs", {})),
                  models, columns, tuple(service.get("Parameters", {})))


def _fingerprint(conn: sqlite3.Connection, key: str | None) -> str:
    """A model's fingerprint read now (resources of data directories older than captured fingerprints)."""
    return (blobs.model_fingerprint(conn, key) if key else None) or "missing"


def arm_target(conn: sqlite3.Connection, sub: str, service_id: str) -> Target | None:
    if not HEX32_RE.match(service_id):
        return None
    doc = arm.load_by_service_id(conn, service_id)
    if doc is None or doc["subscription"].replace("-", "").lower() != sub.lower():
        return None
    try:  # a payload that came from blob storage keeps its client's casing: read it as the schema
        props = armschema.read(doc["properties"], armschema.PROPERTIES)
    except armschema.SchemaError:
        props = {}
    package = props.get("package") or {}
    nodes = package.get("nodes") or {}
    assets = props.get("assets") or {}
    outputs: dict[str, str] = {}
    for node_id, node in nodes.items():
        if "outputId" not in node:
            continue
        kind = "dataset"
        for edge in package.get("edges") or []:
            if edge.get("targetNodeId") != node_id:
                continue
            source = assets.get((nodes.get(edge.get("sourceNodeId")) or {}).get("assetId", ""), {})
            uri = str((source.get("locationInfo") or {}).get("uri", ""))
            if TRAIN_MODEL_FAMILY in uri and edge.get("sourcePortId") == "Trained model":
                kind = "ilearner"
        outputs[node["outputId"]] = kind
    inputs = tuple(node["inputId"] for node in nodes.values() if "inputId" in node)
    # where a Resource asset is stored is not what the service runs: its model's fingerprint is
    located = {name: {k: v for k, v in asset.items()
                      if k != "locationInfo" or str(asset.get("type", "")).lower() != "resource"}
               for name, asset in assets.items()}
    graph = hashlib.sha256(json.dumps([located, package], sort_keys=True).encode()).hexdigest()
    fingerprints = doc.get("models")
    if fingerprints is None:  # a service stored before fingerprints were captured
        fingerprints = armassets.model_fingerprints(conn, props)
    keys = props.get("keys") or {}
    tables = (props.get("input") or {}).get("properties") or {}
    columns = {name: tuple((tables.get(name) or {}).get("properties") or {}) for name in inputs}
    return Target(f"arm/{service_id}", (keys.get("primary", ""), keys.get("secondary", "")), graph, inputs, outputs,
                  tuple(fingerprints[name] for name in sorted(fingerprints)),
                  {name: cols for name, cols in columns.items() if cols}, tuple(props.get("parameters") or {}))


def authorize(target: Target | None) -> Target:
    """401 unless the Bearer token is one of the target's API keys; 404 (after auth) when there is no target."""
    token = bearer_token()
    if not token:
        raise ServiceFault(401, "Unauthorized", "The request is unauthorized.",
                           ("ScoreRequestUnauthorized", "Authorization header with a Bearer API key is required."))
    if target is None or not any(k and same_secret(token, k) for k in target.api_keys):
        raise ServiceFault(401, "Unauthorized", "The request is unauthorized.",
                           ("ScoreRequestUnauthorized", "Invalid credentials provided."))
    if request.args.get("api-version") != API_VERSION:
        raise bad("InvalidApiVersion", f"api-version must be {API_VERSION}")
    return target


def load_target(ws: str | None, service: str, sub: str | None) -> Target:
    with get_state().store.read() as conn:
        target = classic_target(conn, ws, service) if ws is not None else arm_target(conn, sub or "", service)
    return authorize(target)
