"""Runs of the local workspace: run-history snapshots, node statuses, outputs and the status transitions.

Reference §4.2 (recommended emulator behaviour) with these choices:
* A run (`IsDraft:false`) stores an immutable snapshot `{ws}.s-id.{guid}.{reverse timestamp}` holding
  the final status and NodeStatuses of the run (reference §7 Q25); the leaf gets `RunId` = the new
  snapshot, `ParentExperimentId` = the previous `RunId`, and `Status` NotStarted.
* The leaf's status advances one step per GET of that leaf: NotStarted -> Running -> Finished (or
  Failed), each step a write with a new Etag. Deterministic, no timers: `Start-AmlExperiment`-style
  polling sees Running then Finished.
* A node whose module (custom module by exact id; built-in by family) or referenced dataset,
  trained model or transform does not exist fails, and with it the run; nodes downstream of a
  failed node stay NotStarted.
* Outputs: a dataset input (or the upstream output) flows through; learners get deterministic
  bytes from the node's signature. A node whose signature (module, parameters, inputs,
  upstream signatures) equals the previous run's is a cache hit (StatusDetail "Task output was
  present in output cache", reference §3.8) and reuses that output.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from typing import Any

from amlvc.server import assetdb, catalog, ilearner
from amlvc.server.blobs import endpoint, virtual_content
from amlvc.server.blobstore import BlobInfo, BlobStore
from amlvc.server.wire import (
    GLOBAL_WORKSPACE_ID,
    MIN_DATE_MS,
    RESOURCE_ID_RE,
    SNAPSHOT_ID_RE,
    date,
    new_guid,
    now_ms,
    reverse_timestamp,
)

CACHE_DETAIL = "Task output was present in output cache"
# Stored endpoints name their blob and leave the host open; both are filled in per GET (render_statuses).
BLOB_PREFIX = "$blob:"
BASE_PLACEHOLDER = "$base"
PORT_ASSET_KINDS = {"DataSourceId": "datasources", "TrainedModelId": "trainedmodels",
                    "TransformModuleId": "transformmodules"}
MODEL_EXTENSIONS = (".ilearner", ".itransform")  # outputs that are models, not datasets to carry through


def status(code: str, created: int, start: int = MIN_DATE_MS, end: int = MIN_DATE_MS,
           detail: str | None = None, metadata: Any = None) -> dict[str, Any]:
    return {"StatusCode": code, "StatusDetail": detail, "CreationTime": date(created), "StartTime": date(start),
            "EndTime": date(end), "Metadata": metadata}


def _node_inputs(graph: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    """node id -> [(source node id, source port, input port)] from EdgesInternal."""
    inputs: dict[str, list[tuple[str, str, str]]] = {}
    for edge in graph.get("EdgesInternal") or []:
        src, dst = str(edge.get("SourceOutputPortId") or ""), str(edge.get("DestinationInputPortId") or "")
        src_node, _, src_port = src.partition(":")
        dst_node, _, dst_port = dst.partition(":")
        inputs.setdefault(dst_node, []).append((src_node, src_port, dst_port))
    return inputs


def signatures(graph: dict[str, Any]) -> dict[str, str]:
    """A stable hash per node of everything that determines its output."""
    nodes = {str(n.get("Id")): n for n in graph.get("ModuleNodes") or []}
    inputs = _node_inputs(graph)
    memo: dict[str, str] = {}

    def sig(node_id: str, seen: frozenset[str]) -> str:
        if node_id in memo:
            return memo[node_id]
        node = nodes.get(node_id)
        if node is None or node_id in seen:
            return "missing"
        upstream = sorted(f"{sig(src, seen | {node_id})}:{port}" for src, port, _ in inputs.get(node_id, []))
        material = json.dumps([node.get("ModuleId"), node.get("ModuleParameters"),
                               [[p.get(k) for k in ("Name", *PORT_ASSET_KINDS)] for p in node.get("InputPortsInternal")
                                or []], upstream], sort_keys=True)
        memo[node_id] = hashlib.sha256(material.encode()).hexdigest()
        return memo[node_id]

    for node_id in nodes:
        sig(node_id, frozenset())
    return memo


def _output_keys(doc: dict[str, Any] | None) -> dict[tuple[str, str], tuple[str, int]]:
    """(node, port) -> (blob key, size) of a stored run's outputs."""
    found: dict[tuple[str, str], tuple[str, int]] = {}
    for ns in (doc or {}).get("NodeStatuses") or []:
        for ep in ns.get("OutputEndpoints") or []:
            cred = ep.get("AccessCredential")
            if isinstance(cred, str) and cred.startswith(BLOB_PREFIX):
                size = int(ep.get("Size") or 0)
                found[(str(ns.get("NodeId")), str(ep.get("Name")))] = (cred[len(BLOB_PREFIX):], size)
    return found


def _extension(port: dict[str, Any]) -> str:
    name = str(port.get("Name") or "").lower()
    if port.get("OutputType") == "TrainedModel" or "model" in name:
        return ".ilearner"
    if "transform" in name:
        return ".itransform"
    return ".dataset"


def _missing_reference(conn: sqlite3.Connection, ws: str, node: dict[str, Any],
                       cache: dict[str, set[str]]) -> str | None:
    """The first id this node references that the workspace does not have, else None."""
    def ids(kind: str) -> set[str]:
        if kind not in cache:
            cache[kind] = assetdb.known_ids(conn, ws, kind)
            if kind == "modules":
                cache["module-families"] = assetdb.known_families(conn, ws, kind)
        return cache[kind]

    module_id = str(node.get("ModuleId") or "")
    match = RESOURCE_ID_RE.match(module_id)
    modules = ids("modules")
    if match is None:
        return module_id or "(no ModuleId)"
    if module_id not in modules and not (match.group(1) == GLOBAL_WORKSPACE_ID
                                         and match.group(2) in cache["module-families"]):
        return module_id
    for port in node.get("InputPortsInternal") or []:
        for key, kind in PORT_ASSET_KINDS.items():
            value = port.get(key)
            if value and value not in ids(kind):
                return str(value)
    return None


def execute(conn: sqlite3.Connection, blobs: BlobStore, ws: str, doc: dict[str, Any],
            previous: dict[str, Any] | None, started: int) -> tuple[str, list[dict[str, Any]]]:
    """Run a graph: (final status code, NodeStatuses); output blobs are written in the caller's tx."""
    graph = doc.get("Graph") or {}
    nodes = [n for n in graph.get("ModuleNodes") or [] if isinstance(n, dict)]
    by_id = {str(n.get("Id")): n for n in nodes}
    inputs = _node_inputs(graph)
    sigs = signatures(graph)
    old_sigs = signatures(previous.get("Graph") or {}) if previous else {}
    old_outputs = _output_keys(previous)
    produced: dict[tuple[str, str], BlobInfo] = {}
    failed: set[str] = set()
    cache: dict[str, set[str]] = {}
    results: dict[str, dict[str, Any]] = {}

    def run(node: dict[str, Any], seen: frozenset[str]) -> None:
        node_id = str(node.get("Id"))
        if node_id in results or node_id in seen:
            return
        for src, _, _ in inputs.get(node_id, []):
            if src in by_id:
                run(by_id[src], seen | {node_id})
        t = started
        if any(src in failed for src, _, _ in inputs.get(node_id, [])):
            failed.add(node_id)
            results[node_id] = _node_status(node_id, status("NotStarted", t), None, [], {})
            return
        missing = _missing_reference(conn, ws, node, cache)
        if missing is not None:
            failed.add(node_id)
            results[node_id] = _node_status(node_id, status("Failed", t, t, t, f"Resource {missing} not found"),
                                            None, [], {})
            return
        hit = sigs.get(node_id) == old_sigs.get(node_id) and all(
            (node_id, str(p.get("Name"))) in old_outputs for p in node.get("OutputPortsInternal") or [])
        outputs, meta_status, meta_eps = [], {}, {}
        for port in node.get("OutputPortsInternal") or []:
            name = str(port.get("Name"))
            if hit:
                key, size = old_outputs[(node_id, name)]
                # a seeded run's output is served as a stand-in; downstream nodes read it, so store it now
                stored = blobs.info(conn, key) or blobs.put(conn, key, virtual_content(key) or b"")
            else:
                guid = new_guid()
                key = f"experimentoutput/{guid}/{guid}{_extension(port)}"
                stored = _write_output(conn, blobs, ws, node, (name, port, key), inputs.get(node_id, []), produced,
                                       sigs.get(node_id, ""))
                size = stored.size
            produced[(node_id, name)] = stored
            outguid = key.split("/")[1]
            kinds = ("visualization", "runtimeinfo") if key.endswith(".ilearner") else ("visualization", "schema")
            meta_keys = [(k, f"experimentoutput/{outguid}/{new_guid()}") for k in kinds]
            meta_status[name] = [{"Name": k, "Value": v} for k, v in meta_keys]
            meta_eps[name] = [{"Key": k, "Value": _blob_endpoint(name, -1, v)} for k, v in meta_keys]
            outputs.append(_blob_endpoint(name, size, key))
        detail = CACHE_DETAIL if hit else "None"
        logs = None if hit else (_blob_endpoint("defaultSasName", 0, f"logs/{new_guid()}/stderr.txt"),
                                 _blob_endpoint("defaultSasName", 0, f"logs/{new_guid()}/stdout.txt"))
        st = status("Finished", t, t, t, detail, meta_status or None)
        results[node_id] = _node_status(node_id, st, logs, outputs, meta_eps)

    for node in nodes:
        run(node, frozenset())
    ordered = [results[str(n.get("Id"))] for n in nodes if str(n.get("Id")) in results]
    return ("Failed" if failed else "Finished"), ordered


def _blob_endpoint(name: str, size: int, key: str) -> dict[str, Any]:
    return endpoint(BASE_PLACEHOLDER, name, size, BLOB_PREFIX + key, "api/sharedaccess")


def _node_status(node_id: str, st: dict[str, Any], logs: tuple[dict[str, Any], dict[str, Any]] | None,
                 outputs: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    return {"NodeId": node_id, "Status": st, "StandardErrorEndpoint": logs[0] if logs else None,
            "StandardOutEndpoint": logs[1] if logs else None, "OutputEndpoints": outputs,
            "MetadataOutputEndpoints": meta}


def _arriving(conn: sqlite3.Connection, blobs: BlobStore, ws: str, node: dict[str, Any],
              edges: list[tuple[str, str, str]],
              produced: dict[tuple[str, str], BlobInfo]) -> dict[str, list[BlobInfo]]:
    """Input port name -> the content arriving there: referenced assets first, then upstream outputs."""
    arriving: dict[str, list[BlobInfo]] = {}
    for port in node.get("InputPortsInternal") or []:
        for key, kind in PORT_ASSET_KINDS.items():
            asset_id = port.get(key)
            content = assetdb.content_blob(conn, blobs, ws, kind, str(asset_id)) if asset_id else None
            if content is not None:
                arriving.setdefault(str(port.get("Name")), []).append(content)
    for src, src_port, dst_port in edges:
        if (src, src_port) in produced:
            arriving.setdefault(dst_port, []).append(produced[(src, src_port)])
    return arriving


def _write_output(conn: sqlite3.Connection, blobs: BlobStore, ws: str, node: dict[str, Any],
                  output: tuple[str, dict[str, Any], str], edges: list[tuple[str, str, str]],
                  produced: dict[tuple[str, str], BlobInfo], signature: str) -> BlobInfo:
    """Store one output (name, port, blob key) of a node that ran: a learner's model, else the first dataset
    arriving (no copy), else stand-in rows derived from the node's signature."""
    name, port, key = output
    arriving = _arriving(conn, blobs, ws, node, edges, produced)
    if _extension(port) != ".dataset":
        # What the model derives from: the module, its parameters and the bytes (sha256) of its inputs.
        trained_on = {"module": node.get("ModuleId"), "output": name,
                      "parameters": {str(p.get("Name")): p.get("Value") for p in node.get("ModuleParameters") or []},
                      "inputs": {port_name: sorted(c.sha256 for c in contents)
                                 for port_name, contents in sorted(arriving.items())}}
        return blobs.put(conn, key, ilearner.model_bytes(trained_on))
    for contents in arriving.values():
        for content in contents:
            if not content.key.endswith(MODEL_EXTENSIONS) and content.path.exists():
                return blobs.alias(conn, key, content)
    return blobs.put(conn, key, f"Column 0\r\n{signature}\r\n".encode())


def snapshot_id(conn: sqlite3.Connection, ws: str, guid: str, started: int) -> tuple[str, int]:
    """A free snapshot id for a run created at `started`; a clash within one second moves the time on."""
    t = started
    while True:
        candidate = f"{ws}.s-id.{guid}.{reverse_timestamp(t)}"
        if not catalog.exists(conn, ws, candidate):
            return candidate, t
        t += 1000


def start_run(conn: sqlite3.Connection, blobs: BlobStore, ws: str, leaf: dict[str, Any], guid: str) -> dict[str, Any]:
    """Create the snapshot of a run and return the leaf document to store (status NotStarted, run_step 1)."""
    previous = catalog.get(conn, ws, leaf["RunId"]) if leaf.get("RunId") else None
    sid, started = snapshot_id(conn, ws, guid, now_ms())
    outcome, node_statuses = execute(conn, blobs, ws, leaf, previous.doc if previous else None, started)
    snap = dict(leaf)
    snap.update({"ExperimentId": sid, "RunId": sid, "ParentExperimentId": leaf.get("RunId"), "IsLeaf": False,
                 "Status": status(outcome, started, started, started, "None"), "NodeStatuses": node_statuses,
                 "IsPartialRun": False})
    catalog.insert(conn, ws, sid, guid, False, snap)
    leaf = dict(leaf)
    leaf.update({"ParentExperimentId": leaf.get("RunId"), "RunId": sid,
                 "Status": status("NotStarted", started), "NodeStatuses": [], "IsPartialRun": False})
    return leaf


def advance(conn: sqlite3.Connection, ws: str, stored: catalog.StoredExperiment) -> catalog.StoredExperiment:
    """One status step of a running leaf (NotStarted -> Running -> final); a new Etag per step."""
    doc = dict(stored.doc)
    snap = catalog.get(conn, ws, str(doc.get("RunId"))) if doc.get("RunId") else None
    if snap is None:
        step, doc["Status"] = 0, status("Failed", now_ms(), detail="the run's snapshot is missing")
    elif stored.run_step == 1:
        created = (doc.get("Status") or {}).get("CreationTime")
        step = 2
        doc["Status"] = dict(snap.doc["Status"], StatusCode="Running", CreationTime=created,
                             EndTime=date(MIN_DATE_MS), StatusDetail=None)
    else:
        step = 0
        doc["Status"], doc["NodeStatuses"] = snap.doc["Status"], snap.doc["NodeStatuses"]
    etag = catalog.replace(conn, ws, stored.id, doc, run_step=step)
    return catalog.StoredExperiment(stored.workspace, stored.id, stored.guid, stored.is_leaf, doc, etag, step)


_CREDENTIAL = re.compile(r'"AccessCredential":"\$blob:([^"\\]*)"')


def render_statuses(text: str, ws: str, base_url: str, blobs: BlobStore) -> str:
    """Stored NodeStatuses (wire JSON) with this host as BaseUri and SAS credentials generated now (§3.8).

    Credentials are percent-encoded ASCII (no quote or backslash), so they go into the JSON text as is.
    """
    if BLOB_PREFIX not in text:
        return text
    text = text.replace(f'"BaseUri":"{BASE_PLACEHOLDER}"', '"BaseUri":' + json.dumps(base_url))
    return _CREDENTIAL.sub(
        lambda m: f'"AccessCredential":"{blobs.shared_access(ws, m.group(1))}"', text)


def output_blob(conn: sqlite3.Connection, ws: str, stored: catalog.StoredExperiment, node_id: str,
                port: str) -> str | None:
    """Blob key of a node output: from the document, else from its latest run's snapshot."""
    key = _output_keys(stored.doc).get((node_id, port))
    if key is None and stored.doc.get("RunId") and not SNAPSHOT_ID_RE.match(stored.id):
        snap = catalog.get(conn, ws, str(stored.doc["RunId"]))
        key = _output_keys(snap.doc if snap else None).get((node_id, port))
    return key[0] if key else None
