"""The server's model of an experiment document: posted graphs re-serialised in the service's key order.

Reference §7 Q21 (guess, chosen): the service re-serialises a posted graph from its own classes,
so keys missing from a request come back as null/false/[]/the observed constant, unknown keys
are dropped and the key order is the class order of reference §3 (taken from `amlvc.rules`).
Wrong JSON types are refused with 400 naming the path (`Target`). Values are never validated
against modules or assets (reference §3.9, ISS #15).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amlvc import rules
from amlvc.server.errors import ApiFault

EMPTY_LAYOUT_XML = (
    "<?xml version='1.0' encoding='utf-16'?><DataV1 xmlns:xsd='http://www.w3.org/2001/XMLSchema' "
    "xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'><Meta /><NodePositions /><NodeGroups /></DataV1>"
)
MAX_NAME_LENGTH = 4096

_STR, _BOOL, _INT, _LIST, _OBJ, _ANY = "string", "boolean", "integer", "array", "object", "any"


def _bad(path: str, problem: str) -> ApiFault:
    return ApiFault(400, None, f"{path}: {problem}", target=path)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def field(obj: dict[str, Any], key: str, kind: str, path: str, default: Any = None) -> Any:
    """obj[key] checked against a JSON kind (null always allowed); a missing key gives `default`."""
    if key not in obj:
        return default
    value = obj[key]
    if value is None or kind == _ANY:
        return value
    ok = {
        _STR: isinstance(value, str),
        _BOOL: isinstance(value, bool),
        _INT: isinstance(value, int) and not isinstance(value, bool),
        _LIST: isinstance(value, list),
        _OBJ: isinstance(value, dict),
    }[kind]
    if not ok:
        raise _bad(f"{path}/{key}", f"expected {kind}, got {_type_name(value)}")
    return value


def _objects(value: Any, path: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(path, f"expected array, got {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _bad(f"{path}/{i}", f"expected object, got {_type_name(item)}")
    return value


def _shape_list(value: Any, path: str, shape: Callable[[dict[str, Any], str], dict[str, Any]]) -> list[dict[str, Any]]:
    return [shape(item, f"{path}/{i}") for i, item in enumerate(_objects(value, path))]


def shape_parameter(p: dict[str, Any], path: str) -> dict[str, Any]:
    return {
        "ValueType": field(p, "ValueType", _STR, path, "Literal"),
        "LinkedGlobalParameter": field(p, "LinkedGlobalParameter", _STR, path),
        "Name": field(p, "Name", _STR, path),
        "Value": field(p, "Value", _STR, path),
    }


def _shape_input(port: dict[str, Any], path: str, node_id: Any) -> dict[str, Any]:
    return {
        "Name": field(port, "Name", _STR, path),
        "DataSourceId": field(port, "DataSourceId", _STR, path),
        "TrainedModelId": field(port, "TrainedModelId", _STR, path),
        "TransformModuleId": field(port, "TransformModuleId", _STR, path),
        "Language": field(port, "Language", _STR, path, "DotNet"),
        "Version": field(port, "Version", _STR, path, "4.5.0"),
        "PortIndex": field(port, "PortIndex", _INT, path),
        "NodeId": field(port, "NodeId", _STR, path, node_id),
    }


def _shape_output(port: dict[str, Any], path: str, node_id: Any) -> dict[str, Any]:
    return {
        "Name": field(port, "Name", _STR, path),
        "NodeId": field(port, "NodeId", _STR, path, node_id),
        "OutputType": field(port, "OutputType", _STR, path),
    }


def shape_node(n: dict[str, Any], path: str) -> dict[str, Any]:
    node_id = field(n, "Id", _STR, path)
    return {
        "Id": node_id,
        "ModuleId": field(n, "ModuleId", _STR, path),
        "Comment": field(n, "Comment", _STR, path, ""),
        "CommentCollapsed": bool(field(n, "CommentCollapsed", _BOOL, path, False)),
        "Language": field(n, "Language", _STR, path, "DotNet"),
        "Version": field(n, "Version", _STR, path, "4.5.0"),
        "UsePreviousResults": bool(field(n, "UsePreviousResults", _BOOL, path, False)),
        "ModuleParameters": _shape_list(n.get("ModuleParameters"), f"{path}/ModuleParameters", shape_parameter),
        "IsPartOfPartialRun": field(n, "IsPartOfPartialRun", _BOOL, path, False),
        "InputPortsInternal": [_shape_input(p, f"{path}/InputPortsInternal/{i}", node_id)
                               for i, p in enumerate(_objects(n.get("InputPortsInternal"),
                                                              f"{path}/InputPortsInternal"))],
        "OutputPortsInternal": [_shape_output(p, f"{path}/OutputPortsInternal/{i}", node_id)
                                for i, p in enumerate(_objects(n.get("OutputPortsInternal"),
                                                               f"{path}/OutputPortsInternal"))],
    }


def shape_edge(e: dict[str, Any], path: str) -> dict[str, Any]:
    return {
        "SourceOutputPortId": field(e, "SourceOutputPortId", _STR, path),
        "DestinationInputPortId": field(e, "DestinationInputPortId", _STR, path),
        "DestinationInputPortIndex": field(e, "DestinationInputPortIndex", _INT, path),
    }


def shape_graph(g: Any, path: str = "/ExperimentGraph") -> dict[str, Any]:
    if g is None:
        g = {}
    if not isinstance(g, dict):
        raise _bad(path, f"expected object, got {_type_name(g)}")
    publish = field(g, "PublishInfo", _OBJ, path)
    return {
        "ModuleNodes": _shape_list(g.get("ModuleNodes"), f"{path}/ModuleNodes", shape_node),
        "SerializedClientData": field(g, "SerializedClientData", _STR, path, EMPTY_LAYOUT_XML),
        "PublishInfo": publish,
        "Parameters": field(g, "Parameters", _ANY, path),
        "EdgesInternal": _shape_list(g.get("EdgesInternal"), f"{path}/EdgesInternal", shape_edge),
    }


def _shape_ws_port(p: dict[str, Any], path: str) -> dict[str, Any]:
    return {key: field(p, key, _STR, path) for key in rules.WEBSERVICE_PORT_ORDER}


def _ordered(obj: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """Known keys first in class order, then any others as given (pass-through of nested descriptors)."""
    out = {key: obj[key] for key in order if key in obj}
    out.update({key: value for key, value in obj.items() if key not in out})
    return out


def _shape_ws_parameter(p: dict[str, Any], path: str) -> dict[str, Any]:
    definition = field(p, "ParameterDefinition", _OBJ, path)
    if isinstance(definition, dict):
        definition = _ordered(definition, rules.PARAMETER_DEFINITION_ORDER)
        rules_list = definition.get("ParameterRules")
        if isinstance(rules_list, list):
            definition["ParameterRules"] = [_ordered(r, rules.PARAMETER_RULE_ORDER) if isinstance(r, dict) else r
                                            for r in rules_list]
    return {"Name": field(p, "Name", _STR, path), "Value": field(p, "Value", _STR, path),
            "ParameterDefinition": definition}


def shape_webservice(w: Any, path: str = "/WebService", keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The WebService object; deploy ids (WebServiceGroupId, ModelPackageId, RunId, ArmWebServiceId) are
    server-owned: taken from `keep` (the stored document) when given, else from the body."""
    if w is None:
        w = {}
    if not isinstance(w, dict):
        raise _bad(path, f"expected object, got {_type_name(w)}")
    source = keep if keep is not None else w
    ids = {key: field(source, key, _STR, path) for key in rules.VOLATILE_WEBSERVICE}
    return {
        "IsWebServiceExperiment": bool(field(w, "IsWebServiceExperiment", _BOOL, path, False)),
        "Inputs": _shape_list(w.get("Inputs"), f"{path}/Inputs", _shape_ws_port),
        "Outputs": _shape_list(w.get("Outputs"), f"{path}/Outputs", _shape_ws_port),
        "Parameters": _shape_list(w.get("Parameters"), f"{path}/Parameters", _shape_ws_parameter),
        "WebServiceGroupId": ids["WebServiceGroupId"],
        "ModelPackageId": ids["ModelPackageId"],
        "RunId": ids["RunId"],
        "SerializedClientData": field(w, "SerializedClientData", _STR, path, EMPTY_LAYOUT_XML),
        "ArmWebServiceId": ids["ArmWebServiceId"],
    }


def shape_status(s: Any, path: str = "/Status") -> dict[str, Any] | None:
    if not isinstance(s, dict):
        return None
    return {
        "StatusCode": field(s, "StatusCode", _STR, path),
        "StatusDetail": field(s, "StatusDetail", _STR, path),
        "CreationTime": field(s, "CreationTime", _STR, path),
        "StartTime": field(s, "StartTime", _STR, path),
        "EndTime": field(s, "EndTime", _STR, path),
        "Metadata": field(s, "Metadata", _ANY, path),
    }


def parse_save_body(body: Any) -> dict[str, Any]:
    """The fields of a save/run/create body (reference §4.1), type-checked; graph and web service shaped."""
    if not isinstance(body, dict):
        raise _bad("/", f"expected a JSON object, got {_type_name(body)}")
    description = field(body, "Description", _STR, "")
    if description is None or not description.strip():
        raise _bad("/Description", "the experiment name (Description) must not be empty")  # reference §7 Q22
    if len(description) > MAX_NAME_LENGTH:
        raise _bad("/Description", f"longer than {MAX_NAME_LENGTH} characters")
    is_draft = field(body, "IsDraft", _BOOL, "", True)
    # reference §7 Q5: PS sends the singular DisableNodeUpdate (as a bool or a string); the plural wins.
    disable = body.get("DisableNodesUpdate", body.get("DisableNodeUpdate"))
    if isinstance(disable, str):
        disable = {"true": True, "false": False, "": None}.get(disable.strip().lower())
    elif disable is not None and not isinstance(disable, bool):
        raise _bad("/DisableNodesUpdate", f"expected boolean, got {_type_name(disable)}")
    graph_key = "ExperimentGraph" if "ExperimentGraph" in body else "Graph"
    tags = field(body, "Tags", _LIST, "")
    return {
        "Description": description,
        "Summary": field(body, "Summary", _STR, "", "") or "",
        "IsDraft": True if is_draft is None else bool(is_draft),
        "ParentExperimentId": field(body, "ParentExperimentId", _STR, ""),
        "DisableNodesUpdate": disable,
        "Category": field(body, "Category", _STR, "", "user") or "user",
        "Graph": shape_graph(body.get(graph_key), f"/{graph_key}"),
        "WebService": body.get("WebService"),
        "Tags": [t for t in tags if isinstance(t, str)] if tags else [],
    }


def new_document(exp_id: str, fields: dict[str, Any], creator: str, status: dict[str, Any]) -> dict[str, Any]:
    """A leaf document in the observed top-level key order (Etag is filled in when served)."""
    return {
        "ExperimentId": exp_id,
        "RunId": None,
        "ParentExperimentId": None,
        "OriginalExperimentDocumentationLink": None,
        "Summary": fields["Summary"],
        "Description": fields["Description"],
        "Graph": fields["Graph"],
        "Status": status,
        "Etag": None,
        "NodeStatuses": [],
        "Creator": creator,
        "IsLeaf": True,
        "DisableNodesUpdate": fields["DisableNodesUpdate"],
        "WebService": shape_webservice(fields["WebService"], keep={}),
        "Category": fields["Category"],
        "Tags": fields["Tags"],
        "IsPartialRun": False,
    }


def shape_document(doc: dict[str, Any], path: str = "") -> dict[str, Any]:
    """A whole GET document (seeding): every part re-shaped, top-level keys in observed order."""
    out: dict[str, Any] = {}
    for key in rules.TOP_LEVEL_ORDER:
        if key == "Graph":
            out[key] = shape_graph(doc.get("Graph"), f"{path}/Graph")
        elif key == "WebService":
            out[key] = shape_webservice(doc.get("WebService"), f"{path}/WebService")
        elif key == "Status":
            out[key] = shape_status(doc.get("Status"))
        elif key == "NodeStatuses":
            out[key] = [n for n in doc.get("NodeStatuses") or [] if isinstance(n, dict)]
        elif key == "Tags":
            out[key] = doc.get("Tags") if isinstance(doc.get("Tags"), list) else []
        elif key in ("IsLeaf", "IsPartialRun"):
            out[key] = bool(doc.get(key, key == "IsLeaf"))
        else:
            out[key] = doc.get(key)
    return out
