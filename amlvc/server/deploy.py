"""Studio-side web-service routes: deploy a classic web service from an experiment, and its `webservicedefinition`.

`POST /api/workspaces/{ws}/experiments/{id}/webservice?generateNewPortNames=false[&updateExistingWebService=true]`
deploys a *Finished* experiment with web-service ports as a classic web service with a default
endpoint and answers `{ActivityId, WebServiceGroupId, EndpointId, Status}`; the activity is polled
with `GET …/experiments/{activityId}/webservice` (reference studio-api.md §2.2, web-services.md §3.3).
`GET …/experiments/{id}/webservicedefinition` builds the ARM definition (PascalCase, as the Studio
export; web-services.md §2.10, §8.1). A predictive experiment (IsWebServiceExperiment) deploys as
a scoring service whose trained models are endpoint resources; any other experiment deploys as a
training service whose BES jobs write `.ilearner` blobs.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request

from amlvc import rules
from amlvc.server import assetdb, blobs, catalog, storage, wsmodel
from amlvc.server.auth import check_workspace
from amlvc.server.errors import ApiFault
from amlvc.server.state import get_state
from amlvc.server.wire import HEX32_RE, json_response

bp = Blueprint("deploy", __name__, url_prefix="/api")

TRAIN_MODEL_FAMILY = "5cc7053eaa30450d96c0dae4be720977"
PREDICTIVE_SUFFIX = " [Predictive Exp.]"
DEFAULT_REGION = "South Central US"  # the region of the management host without prefix (reference §1.1)
# Which input-port reference becomes which Resource asset of a definition: (port member, asset kind, name suffix).
PORT_RESOURCES = (("TrainedModelId", "trainedmodels", "[trained model]"),
                  ("TransformModuleId", "transformmodules", "[transform]"))


def _stored_finished(conn: sqlite3.Connection, ws: str, exp_id: str) -> dict[str, Any]:
    """The experiment document, if it exists, is a leaf, finished its last run and has web-service ports."""
    stored = catalog.get(conn, ws, exp_id)
    if stored is None:
        raise ApiFault(404, None, f"experiment {exp_id!r} does not exist in workspace {ws}")
    if not stored.is_leaf:
        raise ApiFault(400, None, f"experiment {exp_id!r} is a run-history snapshot; deploy the experiment itself")
    doc = stored.doc
    status = (doc.get("Status") or {}).get("StatusCode")
    if stored.run_step != 0 or status != "Finished":
        raise ApiFault(400, None, f"Experiment must be in Finished state. The current state is: {status}")
    web = doc.get("WebService") or {}
    if not (web.get("Inputs") or web.get("Outputs")):
        raise ApiFault(400, None, f"experiment {exp_id!r} has no web service input or output; add them and run it")
    return doc


def _nodes(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [n for n in (doc.get("Graph") or {}).get("ModuleNodes") or [] if isinstance(n, dict)]


def graph_version(doc: Mapping[str, Any]) -> str:
    """Hash of what a web service runs: nodes, edges and web-service contract, not the canvas layout."""
    graph = doc.get("Graph") or {}
    web = doc.get("WebService") or {}
    frozen = {"nodes": graph.get("ModuleNodes"), "edges": graph.get("EdgesInternal"),
              "inputs": web.get("Inputs"), "outputs": web.get("Outputs"), "parameters": web.get("Parameters")}
    return hashlib.sha256(json.dumps(frozen, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _output_kinds(doc: Mapping[str, Any]) -> dict[str, str]:
    """Web-service output name -> "ilearner" when it is wired to a trained-model port, else "dataset"."""
    ports: dict[str, str] = {}
    for node in _nodes(doc):
        family = str(node.get("ModuleId") or "").split(".")[1:2]
        for port in node.get("OutputPortsInternal") or []:
            is_model = port.get("OutputType") == "TrainedModel" or (
                family == [TRAIN_MODEL_FAMILY] and port.get("Name") == "Trained model")
            ports[f"{node.get('Id')}:{port.get('Name')}"] = "ilearner" if is_model else "dataset"
    return {str(o.get("Name")): ports.get(str(o.get("PortId")), "dataset")
            for o in (doc.get("WebService") or {}).get("Outputs") or []}


def _asset_row(conn: sqlite3.Connection, ws: str, kind: str, asset_id: str) -> sqlite3.Row | None:
    # Read straight from the core's `assets` table: the blob key is not part of assetdb's item view.
    row: sqlite3.Row | None = conn.execute(
        "SELECT name, blob_key FROM assets WHERE workspace = ? AND kind = ? AND id = ?",
        (ws, kind, asset_id)).fetchone()
    return row


def resource_blob(conn: sqlite3.Connection, ws: str, kind: str, asset_id: str) -> str:
    """The blob key of a trained model or transform; a stand-in model (assetdb.content_blob) when it has none."""
    content = assetdb.content_blob(conn, get_state().blobs, ws, kind, asset_id)
    assert content is not None  # models and transforms always have content
    return content.key


def _resource_name(conn: sqlite3.Connection, ws: str, kind: str, asset_id: str, doc: Mapping[str, Any],
                   suffix: str) -> str:
    row = _asset_row(conn, ws, kind, asset_id)
    if row is not None and row["name"]:
        return str(row["name"])
    name = str(doc.get("Description") or "experiment")
    if name.endswith(PREDICTIVE_SUFFIX):
        name = name[: -len(PREDICTIVE_SUFFIX)]
    return f"{name} {suffix}"


def port_resources(conn: sqlite3.Connection, ws: str, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """(port key, asset id, kind, resource name, blob key) of every trained model / transform the graph uses."""
    found: dict[str, dict[str, Any]] = {}
    for node in _nodes(doc):
        for port in node.get("InputPortsInternal") or []:
            for port_key, kind, suffix in PORT_RESOURCES:
                asset_id = port.get(port_key)
                if isinstance(asset_id, str) and asset_id and asset_id not in found:
                    found[asset_id] = {"id": asset_id, "kind": kind, "port_key": port_key,
                                       "name": _resource_name(conn, ws, kind, asset_id, doc, suffix),
                                       "blob": resource_blob(conn, ws, kind, asset_id)}
    return list(found.values())


def input_columns(conn: sqlite3.Connection, ws: str, doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """Web-service input name -> its columns: those of the dataset on the port it feeds (as Studio derived the
    input schema), where that dataset is a CSV or TSV; inputs whose columns cannot be known are left out."""
    datasets = {f"{n.get('Id')}:{p.get('Name')}": p.get("DataSourceId")
                for n in _nodes(doc) for p in n.get("InputPortsInternal") or [] if p.get("DataSourceId")}
    found: dict[str, list[str]] = {}
    for web_input in (doc.get("WebService") or {}).get("Inputs") or []:
        dataset = datasets.get(str(web_input.get("PortId")))
        columns = assetdb.dataset_columns(conn, get_state().blobs, ws, str(dataset)) if dataset else None
        if columns:
            found[str(web_input.get("Name"))] = columns
    return found


@bp.post("/workspaces/<ws>/experiments/<exp_id>/webservice")
def deploy(ws: str, exp_id: str) -> Response:
    check_workspace(ws)
    update = request.args.get("updateExistingWebService", "false").lower() == "true"
    state = get_state()
    with state.store.tx() as conn:
        doc = _stored_finished(conn, ws, exp_id)
        predictive = bool((doc.get("WebService") or {}).get("IsWebServiceExperiment"))
        models = [r for r in port_resources(conn, ws, doc) if r["kind"] == "trainedmodels"] if predictive else []
        resources = [{"Name": r["name"], "Kind": wsmodel.TRAINED_MODEL_KIND, "Key": r["blob"],
                      "Fingerprint": blobs.model_fingerprint(conn, r["blob"]),
                      "Location": {"BaseLocation": storage.account_base(), "RelativeLocation": r["blob"],
                                   "SasBlobToken": None}} for r in models]
        web = doc.get("WebService") or {}
        existing_id = web.get("WebServiceGroupId")
        service = wsmodel.load_service(conn, ws, existing_id) if update and isinstance(existing_id, str) else None
        frozen = {"Name": doc.get("Description") or exp_id, "Description": doc.get("Summary") or "",
                  "ExperimentId": exp_id, "Kind": "predictive" if predictive else "training",
                  "GraphVersion": graph_version(doc), "Resources": resources,
                  "Inputs": [str(i.get("Name")) for i in web.get("Inputs") or []],
                  "Outputs": _output_kinds(doc),
                  "Parameters": {str(p.get("Name")): p.get("Value") for p in web.get("Parameters") or []},
                  "InputColumns": input_columns(conn, ws, doc)}
        if service is None:
            service = {"Id": secrets.token_hex(16), "CreationTime": wsmodel.iso_now(), "WorkspaceId": ws,
                       "DefaultEndpointName": wsmodel.DEFAULT_ENDPOINT, **frozen}
            wsmodel.save_service(conn, ws, service)
            endpoint = wsmodel.new_endpoint(ws, service, wsmodel.DEFAULT_ENDPOINT, description=service["Name"])
        else:
            service.update(frozen)
            wsmodel.save_service(conn, ws, service)
            endpoint = wsmodel.load_endpoint(conn, ws, service["Id"], service["DefaultEndpointName"]) \
                or wsmodel.new_endpoint(ws, service, wsmodel.DEFAULT_ENDPOINT)
            endpoint.update({"GraphVersion": service["GraphVersion"], "Resources": resources,
                             "Version": wsmodel.iso_now()})
        wsmodel.save_endpoint(conn, ws, endpoint)
        catalog.set_webservice_ids(conn, ws, exp_id, WebServiceGroupId=service["Id"],
                                   ModelPackageId=secrets.token_hex(16))
        activity = {"ActivityId": secrets.token_hex(16), "WebServiceGroupId": service["Id"],
                    "EndpointId": endpoint["Guid"], "Status": "Pending"}
        conn.execute("INSERT INTO ws_deploy_activities(workspace, id, doc) VALUES(?, ?, ?)",
                     (ws, activity["ActivityId"], json.dumps(activity)))
    return json_response(activity)


@bp.get("/workspaces/<ws>/experiments/<activity_id>/webservice")
def deploy_status(ws: str, activity_id: str) -> Response:
    """The deploy activity; the service was created by the POST, so every poll reports `Completed`."""
    check_workspace(ws)
    row = None
    if HEX32_RE.match(activity_id):
        with get_state().store.read() as conn:
            row = conn.execute("SELECT doc FROM ws_deploy_activities WHERE workspace = ? AND id = ?",
                               (ws, activity_id)).fetchone()
    if row is None:
        raise ApiFault(404, None, f"deployment activity {activity_id!r} does not exist in workspace {ws}")
    return json_response({**json.loads(row["doc"]), "Status": "Completed"})


@bp.get("/workspaces/<ws>/experiments/<exp_id>/webservicedefinition")
def webservice_definition(ws: str, exp_id: str) -> Response:
    check_workspace(ws)
    state = get_state()
    with state.store.tx() as conn:
        doc = _stored_finished(conn, ws, exp_id)
        resources = port_resources(conn, ws, doc)
        module_names = _module_names(conn, ws, doc)
    return json_response(build_definition(ws, doc, resources, module_names))


def _module_names(conn: sqlite3.Connection, ws: str, doc: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in _nodes(doc):
        module_id = str(node.get("ModuleId") or "")
        row = _asset_row(conn, ws, "modules", module_id)
        parts = module_id.split(".")
        family = parts[1] if len(parts) == 3 else ""
        names[module_id] = str(row["name"]) if row is not None and row["name"] else \
            rules.MODULE_FAMILIES.get(family, module_id)
    return names


def build_definition(ws: str, doc: Mapping[str, Any], resources: list[dict[str, Any]],
                     module_names: Mapping[str, str]) -> dict[str, Any]:
    """The Studio export of an experiment as an ARM web-service definition, PascalCase (fixture `studio-export`)."""
    web = doc.get("WebService") or {}
    inputs = {str(i.get("PortId")): str(i.get("Name")) for i in web.get("Inputs") or []}
    package = _Package({r["id"]: r for r in resources}, inputs)
    for module in _nodes(doc):
        package.module(module, module_names)
    package.graph_edges(doc)
    package.outputs(web)
    parameters = {str(p.get("Name")): {"Value": p.get("Value")} for p in web.get("Parameters") or []
                  if p.get("Value") not in (None, "")}
    properties = {
        "Title": doc.get("Description") or "", "Description": doc.get("Summary") or "", "ReadOnly": False,
        "ExposeSampleData": True, "RealtimeConfiguration": {"MaxConcurrentCalls": 20},
        "Diagnostics": {"Level": "None"}, "MachineLearningWorkspace": {"Id": ws},
        "Input": _schema(list(inputs.values())),
        "Output": _schema([str(o.get("Name")) for o in web.get("Outputs") or []]),
        "ExampleRequest": {"Inputs": {name: [] for name in inputs.values()},
                           "GlobalParameters": {k: v["Value"] for k, v in parameters.items()}},
        "Assets": package.assets, "Parameters": parameters, "PayloadsInBlobStorage": False, "PackageType": "Graph",
        "Package": {"Nodes": package.nodes, "Edges": package.edges,
                    "GraphParameters": package.graph_parameters(doc, web)},
    }
    return {"Location": DEFAULT_REGION, "Tags": {}, "Properties": properties}


def _schema(names: list[str]) -> dict[str, Any]:
    return {"Title": "", "Description": "", "Type": "object",
            "Properties": {n: {"Title": "", "Description": "", "Type": "object", "Properties": {}} for n in names}}


class _Package:
    """The graph package of a definition as it is built: assets and nodes numbered in order of first use."""

    def __init__(self, resources: Mapping[str, dict[str, Any]], inputs: Mapping[str, str]) -> None:
        self.resources, self.inputs = resources, inputs
        self.assets: dict[str, Any] = {}
        self.nodes: dict[str, Any] = {}
        self.edges: list[dict[str, Any]] = []
        self.asset_of: dict[str, str] = {}
        self.node_of: dict[str, str] = {}
        for port_id, name in inputs.items():
            self.node(f"input:{port_id}", {"InputId": name})

    def asset(self, key: str, value: dict[str, Any]) -> str:
        if key not in self.asset_of:
            self.asset_of[key] = f"asset{len(self.asset_of) + 1}"
            self.assets[self.asset_of[key]] = value
        return self.asset_of[key]

    def node(self, key: str, value: dict[str, Any]) -> str:
        if key not in self.node_of:
            self.node_of[key] = f"node{len(self.node_of) + 1}"
            self.nodes[self.node_of[key]] = value
        return self.node_of[key]

    def _resources_of(self, port: Mapping[str, Any]) -> list[dict[str, Any]]:
        found = [self.resources.get(port.get(port_key) or "") for port_key, *_ in PORT_RESOURCES]
        return [resource for resource in found if resource is not None]

    def module(self, module: Mapping[str, Any], module_names: Mapping[str, str]) -> None:
        module_id = str(module.get("ModuleId") or "")
        for port in module.get("InputPortsInternal") or []:
            for resource in self._resources_of(port):
                # A host-independent URI without SAS: the definition of an unchanged experiment is the same
                # bytes on every GET and on every server, so pulling it twice changes nothing.
                rid = self.asset(resource["id"], {
                    "Name": resource["name"], "Type": "Resource",
                    "LocationInfo": {"Uri": storage.account_url(resource["blob"]), "Credentials": ""},
                    "OutputPorts": {"Results dataset": {"Type": "Dataset"}}})
                self.node(f"resource:{resource['id']}", {"AssetId": rid})
        aid = self.asset(f"module:{module_id}", {"Name": module_names.get(module_id, module_id), "Type": "Module",
                                                 "LocationInfo": {"Uri": f"aml://module/{module_id}",
                                                                  "Credentials": ""}})
        params = {str(p.get("Name")): {"Value": p.get("Value"), "CertificateThumbprint": ""}
                  for p in module.get("ModuleParameters") or []}
        this = self.node(f"module:{module.get('Id')}", {"AssetId": aid, "Parameters": params})
        for port in module.get("InputPortsInternal") or []:
            port_id = f"{module.get('Id')}:{port.get('Name')}"
            if port_id in self.inputs:
                self.edges.append({"SourceNodeId": self.node_of[f"input:{port_id}"], "TargetNodeId": this,
                                   "TargetPortId": port.get("Name")})
                continue
            for resource in self._resources_of(port):
                self.edges.append({"SourceNodeId": self.node_of[f"resource:{resource['id']}"],
                                   "SourcePortId": "Results dataset", "TargetNodeId": this,
                                   "TargetPortId": port.get("Name")})

    def graph_edges(self, doc: Mapping[str, Any]) -> None:
        for edge in (doc.get("Graph") or {}).get("EdgesInternal") or []:
            source, _, source_port = str(edge.get("SourceOutputPortId")).partition(":")
            target, _, target_port = str(edge.get("DestinationInputPortId")).partition(":")
            if f"module:{source}" in self.node_of and f"module:{target}" in self.node_of:
                self.edges.append({"SourceNodeId": self.node_of[f"module:{source}"], "SourcePortId": source_port,
                                   "TargetNodeId": self.node_of[f"module:{target}"], "TargetPortId": target_port})

    def outputs(self, web: Mapping[str, Any]) -> None:
        for output in web.get("Outputs") or []:
            source, _, source_port = str(output.get("PortId")).partition(":")
            out_node = self.node(f"output:{output.get('Id')}", {"OutputId": output.get("Name")})
            if f"module:{source}" in self.node_of:
                self.edges.append({"SourceNodeId": self.node_of[f"module:{source}"], "SourcePortId": source_port,
                                   "TargetNodeId": out_node})

    def graph_parameters(self, doc: Mapping[str, Any], web: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for parameter in web.get("Parameters") or []:
            name = str(parameter.get("Name"))
            links = [{"NodeId": self.node_of[f"module:{m.get('Id')}"], "ParameterKey": p.get("Name")}
                     for m in _nodes(doc) for p in m.get("ModuleParameters") or []
                     if p.get("LinkedGlobalParameter") == name]
            definition = parameter.get("ParameterDefinition") or {}
            out[name] = {"Description": definition.get("Description") or name,
                         "Type": definition.get("ParameterType") or "String", "Links": links}
        return out
