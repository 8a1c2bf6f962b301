"""The ARM web-service resource schema as data, the case-insensitive reader that turns a body into camelCase, views.

The real resource provider deserialises with Json.NET: property names match case-insensitively,
unknown members are dropped, and responses are written in the swagger's camelCase, in class
order (reference web-services.md §2.2-2.6). User-named maps (assets, nodes, parameters, inputs,
columns) keep their keys exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from amlvc.server.wire import pointer_token

# A kind is a scalar name, ("object", {camelName: kind}), ("map", kind), ("list", kind) or "param"
# (a WebServiceParameter object in 2017-01-01, a bare string in 2016-05-01-preview).
Kind = str | tuple[str, Any]

STR, BOOL, INT, ANY, PARAM = "str", "bool", "int", "any", "param"


def obj(fields: dict[str, Kind]) -> Kind:
    return ("object", fields)


def mapping(kind: Kind) -> Kind:
    return ("map", kind)


def array(kind: Kind) -> Kind:
    return ("list", kind)


BLOB_LOCATION = obj({"uri": STR, "credentials": STR})
PORT = obj({"type": STR})
ASSET_PARAMETER = obj({"name": STR, "parameterType": STR, "modeValuesInfo": ANY})
ASSET_ITEM = obj({
    "name": STR, "id": STR, "type": STR, "locationInfo": BLOB_LOCATION,
    "inputPorts": mapping(PORT), "outputPorts": mapping(PORT),
    "metadata": mapping(ANY), "parameters": array(ASSET_PARAMETER),
})
COLUMN = obj({"type": STR, "format": STR, "enum": ANY, "x-ms-isnullable": BOOL, "x-ms-isordered": BOOL})
TABLE = obj({"title": STR, "description": STR, "type": STR, "format": STR, "properties": mapping(COLUMN)})
IO_SPEC = obj({"title": STR, "description": STR, "type": STR, "properties": mapping(TABLE)})
GRAPH_NODE = obj({"assetId": STR, "inputId": STR, "outputId": STR, "parameters": mapping(PARAM)})
GRAPH_EDGE = obj({"sourceNodeId": STR, "sourcePortId": STR, "targetNodeId": STR, "targetPortId": STR})
GRAPH_PARAMETER = obj({"description": STR, "type": STR,
                       "links": array(obj({"nodeId": STR, "parameterKey": STR}))})
PACKAGE = obj({"nodes": mapping(GRAPH_NODE), "edges": array(GRAPH_EDGE),
               "graphParameters": mapping(GRAPH_PARAMETER)})

PROPERTIES_FIELDS: dict[str, Kind] = {
    "title": STR,
    "description": STR,
    "createdOn": STR,
    "modifiedOn": STR,
    "provisioningState": STR,
    "keys": obj({"primary": STR, "secondary": STR}),
    "readOnly": BOOL,
    "swaggerLocation": STR,
    "exposeSampleData": BOOL,
    "realtimeConfiguration": obj({"maxConcurrentCalls": INT}),
    "diagnostics": obj({"level": STR, "expiry": STR}),
    "storageAccount": obj({"name": STR, "key": STR}),
    "machineLearningWorkspace": obj({"id": STR}),
    "commitmentPlan": obj({"id": STR}),
    "input": IO_SPEC,
    "output": IO_SPEC,
    "exampleRequest": obj({"inputs": mapping(ANY), "globalParameters": mapping(ANY)}),
    "assets": mapping(ASSET_ITEM),
    "parameters": mapping(PARAM),
    "packageType": STR,
    "package": PACKAGE,
    "payloadsInBlobStorage": BOOL,
    "payloadsLocation": BLOB_LOCATION,
}
PROPERTIES = obj(PROPERTIES_FIELDS)
RESOURCE_TYPE = "Microsoft.MachineLearning/webServices"
RESOURCE = obj({"id": STR, "name": STR, "type": STR, "location": STR, "tags": mapping(STR),
                "properties": PROPERTIES})

# Read-only members: whatever a client sends for them is ignored (the service computes them).
READ_ONLY_PROPERTIES = ("createdOn", "modifiedOn", "provisioningState", "swaggerLocation")
# Members a GET never returns (write-only secrets, the billing plan) — §2.2, §5.3.
HIDDEN_PROPERTIES = ("keys", "commitmentPlan")
# Members a payload kept in blob storage carries (payloadsInBlobStorage, SPEC17).
PAYLOAD_PROPERTIES = ("assets", "input", "output", "parameters", "exampleRequest", "package")
# Members left out of list results ("sparsely populated", SPEC17).
HEAVY_PROPERTIES = ("assets", "input", "output", "exampleRequest", "parameters", "package")


class SchemaError(ValueError):
    """A body member has the wrong JSON type; `path` is a JSON Pointer into the body."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or '/'}: {problem}")
        self.path = path
        self.problem = problem


_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def read(value: Any, kind: Kind, path: str = "") -> Any:
    """Return `value` read as `kind`: camelCase member names, unknown members and nulls dropped."""
    if isinstance(kind, str):
        return _scalar(value, kind, path)
    form, inner = kind
    if form == "object":
        if not isinstance(value, Mapping):
            raise SchemaError(path, f"expected an object, got {_type_name(value)}")
        by_lower = {name.lower(): name for name in inner}
        found: dict[str, Any] = {}
        for key, item in value.items():
            name = by_lower.get(str(key).lower())
            if name is None or item is None:
                continue
            found[name] = read(item, inner[name], f"{path}/{name}")
        return {name: found[name] for name in inner if name in found}
    if form == "map":
        if not isinstance(value, Mapping):
            raise SchemaError(path, f"expected an object, got {_type_name(value)}")
        return {str(key): read(item, inner, f"{path}/{pointer_token(str(key))}")
                for key, item in value.items() if item is not None}
    if form == "list":
        if not isinstance(value, list):
            raise SchemaError(path, f"expected an array, got {_type_name(value)}")
        return [read(item, inner, f"{path}/{index}") for index, item in enumerate(value)]
    raise AssertionError(f"unknown schema form {form!r}")


def ci_get(value: Any, name: str) -> Any:
    """A member of a stored object whose casing may be the client's (a blob-sourced payload), else None."""
    if not isinstance(value, Mapping):
        return None
    found = None
    for key, item in value.items():
        if str(key).lower() == name.lower():
            found = item
    return found


def _scalar(value: Any, kind: str, path: str) -> Any:
    if kind == ANY:
        return value
    if kind == PARAM:
        if isinstance(value, str):
            return value
        return read(value, obj({"value": ANY, "certificateThumbprint": STR}), path)
    expected: tuple[type, ...] = {STR: (str,), BOOL: (bool,), INT: (int,)}[kind]
    if not isinstance(value, expected) or (kind == INT and isinstance(value, bool)):
        want = {STR: "a string", BOOL: "a boolean", INT: "an integer"}[kind]
        raise SchemaError(path, f"expected {want}, got {_type_name(value)}")
    return value



# -- views of a stored resource (its doc: subscription, resourceGroup, name, location, tags, properties) --


def resource_id(doc: Mapping[str, Any]) -> str:
    return (f"/subscriptions/{doc['subscription']}/resourceGroups/{doc['resourceGroup']}"
            f"/providers/{RESOURCE_TYPE}/{doc['name']}")


def envelope(doc: Mapping[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"id": resource_id(doc), "name": doc["name"], "type": RESOURCE_TYPE,
            "location": doc["location"], "tags": dict(doc.get("tags") or {}), "properties": properties}


def full_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """GET: the definition without keys, storage key and commitment plan (§2.2, §5.3)."""
    props = copy.deepcopy(doc["properties"])
    for hidden in HIDDEN_PROPERTIES:
        props.pop(hidden, None)
    if isinstance(props.get("storageAccount"), dict):
        props["storageAccount"].pop("key", None)
    return envelope(doc, {k: props[k] for k in PROPERTIES_FIELDS if k in props})


def sparse_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    view = full_view(doc)
    for heavy in HEAVY_PROPERTIES:
        view["properties"].pop(heavy, None)
    return view


def merge_properties(old_props: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Property-level merge (REC-PATCH): a given property replaces the old one; keys and storageAccount merge."""
    merged = copy.deepcopy(dict(old_props))
    for name, value in patch.items():
        if name in READ_ONLY_PROPERTIES:
            continue
        if name in ("keys", "storageAccount") and isinstance(value, dict):
            merged[name] = {**merged.get(name, {}), **value}
        else:
            merged[name] = value
    return merged
