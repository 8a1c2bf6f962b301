"""Batch Execution Service (BES, api-version 2.0) of the local workspace: submit, start, status, cancel.

Routes: classic `/workspaces/{ws}/services/{endpointGuid}/jobs…` and ARM
`/subscriptions/{sub without dashes}/services/{serviceId}/jobs…` (reference web-services.md §4.1),
authorised by the endpoint's / service's API key as a Bearer token. Submit answers the job id as
a JSON string; start 204; cancel (DELETE) 204. A started job reports `Running` on its first status
poll and runs on the next: each output is written to the local blob store — an `.ilearner` for an
output wired to a trained model (ilearner.py: trained on the graph, the inputs' contents and the global
parameters), a small CSV of scores otherwise (derived from those and the fingerprints of the target's
trained models, targets.py) — and `Results` carry BaseLocation + RelativeLocation + SasBlobToken in
the storage account's form (storage.py), with a SAS made on every GET.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState

from amlvc.server import blobs, ilearner, rrs, storage
from amlvc.server.state import STATE_KEY, get_state
from amlvc.server.targets import API_VERSION, ServiceFault, Target, arm_target, bad, classic_target, load_target
from amlvc.server.wire import json_body, json_response

bp = Blueprint("bes", __name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS bes_jobs (
    target TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (target, id))
"""

EXTENSIONS = {"ilearner": (".ilearner",), "dataset": (".csv", ".tsv", ".arff")}
REFERENCE_MEMBERS = ("ConnectionString", "RelativeLocation", "BaseLocation", "SasBlobToken")


@bp.record_once
def _schema(setup: BlueprintSetupState) -> None:
    setup.app.extensions[STATE_KEY].store.ensure_schema(SCHEMA)


# -- request parsing --------------------------------------------------------------------------


def _ci(body: Mapping[str, Any], name: str) -> Any:
    found = None
    for key, value in body.items():
        if str(key).lower() == name.lower():
            found = value
    return found


def _reference(value: Any, where: str) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise bad("InvalidBlobReference", f"{where} must be an object with {', '.join(REFERENCE_MEMBERS)}")
    ref: dict[str, str | None] = {}
    for member in REFERENCE_MEMBERS:
        item = _ci(value, member)
        if item is not None and not isinstance(item, str):
            raise bad("InvalidBlobReference", f"{where}.{member} must be a string")
        ref[member] = item
    return ref


def resolve_reference(ref: Mapping[str, str | None]) -> storage.BlobRef | None:
    """The local blob an AzureBlobDataReference names (every storage account is the local blob store): its
    BaseLocation + RelativeLocation (+ SasBlobToken), else its RelativeLocation (with a ConnectionString)."""
    relative = (ref.get("RelativeLocation") or "").strip()
    if not relative:
        return None
    if ref.get("BaseLocation"):
        return blobs.resolve_location(ref)
    key = relative.lstrip("/")
    return storage.BlobRef(key, None) if storage.valid_key(key) else None


def reference_key(ref: Mapping[str, str | None]) -> str | None:
    found = resolve_reference(ref)
    return found.key if found is not None else None


def _parse_request(body: Any, target: Target) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("InvalidRequest", "the request body must be a JSON object")
    single, multiple = _ci(body, "Input"), _ci(body, "Inputs")
    if single is not None and multiple is not None:
        raise bad("DuplicateInputInBatchCall", "Cannot specify both single and multiple input at the same time.")
    if single is not None:
        multiple = {target.inputs[0] if target.inputs else "input1": single}
    inputs: dict[str, Any] = {}
    for name, value in _map(multiple, "Inputs").items():
        if target.inputs and name not in target.inputs:
            raise bad("InputNotFound", f"input {name!r} is not an input of this web service: {list(target.inputs)}")
        ref = _reference(value, f"Inputs.{name}")
        found = resolve_reference(ref)
        if found is None:
            raise bad("InvalidBlobReference", f"Inputs.{name} names no blob (RelativeLocation is required)")
        problem = get_state().blobs.ref_problem(found)
        if problem is not None:
            raise ServiceFault(403, "Forbidden", "The request is forbidden.",
                           ("AuthenticationFailed", f"Inputs.{name}: the SAS does not grant reading it: {problem}"))
        # the job reads its input with the account key: no SAS or connection string is kept with the job
        inputs[name] = {"RelativeLocation": found.key}
    outputs: dict[str, Any] = {}
    for name, value in _map(_ci(body, "Outputs"), "Outputs").items():
        if name not in target.outputs:
            raise bad("OutputNotFound", f"output {name!r} is not an output of this web service: {list(target.outputs)}")
        ref = _reference(value, f"Outputs.{name}")
        key = reference_key(ref)
        if key is None:
            raise bad("InvalidBlobReference", f"Outputs.{name} names no valid blob (RelativeLocation)")
        allowed = EXTENSIONS[target.outputs[name]]
        if not key.lower().endswith(allowed):
            raise bad("InvalidBlobExtension", f"Outputs.{name}: the blob {key!r} must end with "
                                              f"{' or '.join(allowed)} for this output")
        outputs[name] = {"key": key, "base": ref.get("BaseLocation")}
    parameters = _map(_ci(body, "GlobalParameters"), "GlobalParameters")
    for name, value in parameters.items():
        if isinstance(value, dict | list):
            raise bad("InvalidGlobalParameter", f"GlobalParameters.{name} must be a string")
    return {"Inputs": inputs, "Outputs": outputs, "GlobalParameters": {k: str(v) for k, v in parameters.items()}}


def _map(value: Any, member: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad("InvalidRequest", f"{member} must be an object")
    return value


# -- running ----------------------------------------------------------------------------------


def _run(conn: sqlite3.Connection, target: Target, job: dict[str, Any]) -> None:
    """Write the job's outputs (or fail it when an input blob is missing); inside the caller's transaction."""
    req = job["Request"]
    store = get_state().blobs
    digests: dict[str, Any] = {}
    for name, ref in sorted(req["Inputs"].items()):
        key = reference_key(ref)
        info = store.info(conn, key) if key else None
        if info is None:
            job.update(Status="Failed", Details=f"Input '{name}': the blob '{key}' does not exist or is not readable.")
            return
        # the content, not where it is stored: a model is a function of its data and parameters
        digests[name] = info.sha256
    results: dict[str, Any] = {}
    for name, kind in sorted(target.outputs.items()):
        given = req["Outputs"].get(name)
        extension = ".ilearner" if kind == "ilearner" else ".csv"
        key = given["key"] if given else f"bes/{job['Id']}/{name}{extension}"
        meta = {"graph": target.graph, "models": list(target.models), "output": name, "inputs": digests,
                "globalParameters": req["GlobalParameters"]}
        if kind == "ilearner":
            data = ilearner.model_bytes(meta)
        else:
            digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
            data = f"output,digest\r\n{name},{digest}\r\n".encode()
        store.put(conn, key, data)
        results[name] = key
    job.update(Status="Finished", Results=results, Details=None)


def _status_body(job: Mapping[str, Any]) -> dict[str, Any]:
    results = None
    if job["Status"] == "Finished":
        results = {}
        for name, key in job["Results"].items():
            location = blobs.signed_location(key)
            results[name] = {"ConnectionString": None, "RelativeLocation": location["RelativeLocation"],
                             "BaseLocation": location["BaseLocation"], "SasBlobToken": location["SasBlobToken"]}
    return {"StatusCode": job["Status"], "Results": results, "Details": job.get("Details")}


def _load_job(conn: sqlite3.Connection, target: Target, job_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT doc FROM bes_jobs WHERE target = ? AND id = ?", (target.key, job_id)).fetchone()
    if row is None:
        raise ServiceFault(404, "NotFound", "The specified resource was not found.",
                           ("JobNotFound", f"No job could be found with the id {job_id!r}."))
    return dict(json.loads(row["doc"]))


def _save_job(conn: sqlite3.Connection, target: Target, job: Mapping[str, Any]) -> None:
    conn.execute("INSERT INTO bes_jobs(target, id, doc) VALUES(?, ?, ?) "
                 "ON CONFLICT(target, id) DO UPDATE SET doc = excluded.doc", (target.key, job["Id"], json.dumps(job)))


# -- handlers (shared by the classic and ARM routes) -------------------------------------------


def submit(target: Target) -> Response:
    req = _parse_request(json_body("mgmt"), target)
    job = {"Id": secrets.token_hex(16), "Status": "NotStarted", "Request": req, "Results": {}, "Details": None,
           "Polls": 0}
    with get_state().store.tx() as conn:
        _save_job(conn, target, job)
    return json_response(job["Id"])


def start(target: Target, job_id: str) -> Response:
    with get_state().store.tx() as conn:
        job = _load_job(conn, target, job_id)
        if job["Status"] != "NotStarted":
            raise ServiceFault(400, "InvalidOperation", "The requested operation is invalid.",
                               ("CannotStartJob", f"The job cannot be started: it is {job['Status']}."))
        job.update(Status="Running", Polls=0)
        _save_job(conn, target, job)
    return Response(status=204)


def status(target: Target, job_id: str) -> Response:
    with get_state().store.tx() as conn:
        job = _load_job(conn, target, job_id)
        if job["Status"] == "Running":
            if job["Polls"] == 0:
                job["Polls"] = 1
            else:
                _run(conn, target, job)
            _save_job(conn, target, job)
    return json_response(_status_body(job))


def cancel(target: Target, job_id: str) -> Response:
    with get_state().store.tx() as conn:
        job = _load_job(conn, target, job_id)
        if job["Status"] in ("NotStarted", "Running"):
            job["Status"] = "Cancelled"
            _save_job(conn, target, job)
    return Response(status=204)


def swagger(target: Target | None) -> Response:
    """A minimal per-service swagger of the BES and RRS routes, with the RRS input columns where known."""
    if target is None:
        raise ServiceFault(404, "NotFound", "The specified resource was not found.")
    ref = {"type": "object", "properties": {m: {"type": "string"} for m in REFERENCE_MEMBERS}}
    jobs = {"post": {"operationId": "SubmitJob", "responses": {"200": {"description": "job id (a JSON string)"}}}}
    job = {"get": {"operationId": "GetJobStatus", "responses": {"200": {"description": "BatchExecutionStatus"}}},
           "delete": {"operationId": "CancelJob", "responses": {"204": {"description": "cancelled"}}}}
    start_op = {"post": {"operationId": "StartJob", "responses": {"204": {"description": "started"}}}}
    return json_response({
        "swagger": "2.0", "info": {"title": "Batch Execution and Request-Response Service", "version": API_VERSION},
        "host": request.host, "basePath": request.path.rsplit("/", 1)[0], "schemes": [request.scheme],
        "paths": {"/jobs": jobs, "/jobs/{jobId}": job, "/jobs/{jobId}/start": start_op,
                  "/execute": rrs.swagger_path()},
        "definitions": {"AzureBlobDataReference": ref,
                        "BatchExecutionRequest": {"type": "object", "properties": {
                            "Inputs": {"type": "object", "x-ms-inputs": list(target.inputs)},
                            "Outputs": {"type": "object", "x-ms-outputs": dict(target.outputs)},
                            "GlobalParameters": {"type": "object"}}},
                        **rrs.swagger_definitions(target)},
    })


@bp.get("/workspaces/<ws>/services/<guid>/swagger.json")
def classic_swagger(ws: str, guid: str) -> Response:
    with get_state().store.read() as conn:
        return swagger(classic_target(conn, ws, guid))


@bp.get("/subscriptions/<sub>/services/<sid>/swagger.json")
def arm_swagger(sub: str, sid: str) -> Response:
    with get_state().store.read() as conn:
        return swagger(arm_target(conn, sub, sid))


@bp.post("/workspaces/<ws>/services/<guid>/jobs")
def classic_submit(ws: str, guid: str) -> Response:
    return submit(load_target(ws, guid, None))


@bp.post("/workspaces/<ws>/services/<guid>/jobs/<job_id>/start")
def classic_start(ws: str, guid: str, job_id: str) -> Response:
    return start(load_target(ws, guid, None), job_id)


@bp.get("/workspaces/<ws>/services/<guid>/jobs/<job_id>")
def classic_status(ws: str, guid: str, job_id: str) -> Response:
    return status(load_target(ws, guid, None), job_id)


@bp.delete("/workspaces/<ws>/services/<guid>/jobs/<job_id>")
def classic_cancel(ws: str, guid: str, job_id: str) -> Response:
    return cancel(load_target(ws, guid, None), job_id)


@bp.post("/subscriptions/<sub>/services/<sid>/jobs")
def arm_submit(sub: str, sid: str) -> Response:
    return submit(load_target(None, sid, sub))


@bp.post("/subscriptions/<sub>/services/<sid>/jobs/<job_id>/start")
def arm_start(sub: str, sid: str, job_id: str) -> Response:
    return start(load_target(None, sid, sub), job_id)


@bp.get("/subscriptions/<sub>/services/<sid>/jobs/<job_id>")
def arm_status(sub: str, sid: str, job_id: str) -> Response:
    return status(load_target(None, sid, sub), job_id)


@bp.delete("/subscriptions/<sub>/services/<sid>/jobs/<job_id>")
def arm_cancel(sub: str, sid: str, job_id: str) -> Response:
    return cancel(load_target(None, sid, sub), job_id)
