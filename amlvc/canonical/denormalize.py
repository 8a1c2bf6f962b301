"""The inverse of normalize: canonical files (experiment.json, layout.json, scripts/) back to the GET document."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from amlvc import rules
from amlvc.canonical import columns, layout
from amlvc.canonical.checks import expect_dict, expect_list, expect_str, fail
from amlvc.canonical.jsonio import load_canonical
from amlvc.canonical.normalize import gc_paused, port_key
from amlvc.canonical.paths import Where
from amlvc.canonical.secrets import fill, fill_strings

__all__ = ["denormalize", "recorded_module_names"]

_GIT_CONFLICT = re.compile(r"^<<<<<<< .*^=======\r?$.*^>>>>>>> ", re.MULTILINE | re.DOTALL)


def _plain_port(order: tuple[str, ...], table: Mapping[str, Any]) -> dict[str, Any]:
    return {key: table.get(key) for key in order}  # Name and NodeId are filled per port


_PLAIN_INPUT_PORT = _plain_port(rules.INPUT_PORT_ORDER, rules.REDUNDANT_INPUT_PORT)
_PLAIN_OUTPUT_PORT = _plain_port(rules.OUTPUT_PORT_ORDER, rules.REDUNDANT_OUTPUT_PORT)


class _Denormalizer:
    """One denormalize run over the canonical files of an experiment."""

    def __init__(self, files: Mapping[str, bytes], layout_doc: dict[str, Any], volatile: Mapping[str, Any] | None,
                 secrets: Mapping[str, str] | None, source: str) -> None:
        self.files = files
        self.layout = layout_doc
        self.volatile = volatile or {}
        self.secrets = secrets
        self.source = f"{source}/{rules.EXPERIMENT_FILE}"
        self.layout_source = f"{source}/{rules.LAYOUT_FILE}"
        self.root = source

    def _restore(self, canon: Any, order: tuple[str, ...], table: Mapping[str, Any], owner: str,
                 path: Where) -> dict[str, Any]:
        """Keys in the service's order with redundant defaults put back (unless listed in "$absent")."""
        if type(canon) is not dict:
            expect_dict(canon, self.source, path)
        absent = canon.get("$absent", ())
        if absent and (not isinstance(absent, list) or not all(isinstance(k, str) for k in absent)):
            fail(self.source, (path, "$absent"), "expected a list of key names")
        out: dict[str, Any] = {}
        for key in order:
            if key in canon:
                out[key] = canon[key]
            elif key in table and key not in absent:
                default = table[key]
                out[key] = owner if default is rules.NODE_ID_DEFAULT else default
        extra = canon.keys() - out.keys()
        if extra:
            for key in sorted(extra):
                if key[:1] != "$":
                    out[key] = canon[key]
        return out

    def document(self, canon: Any) -> dict[str, Any]:
        canon = expect_dict(canon, self.source, "")
        if canon.get("$format") != rules.EXPERIMENT_FORMAT:
            fail(self.source, "/$format", f"expected {rules.EXPERIMENT_FORMAT!r}; is this an amlvc experiment file?")
        doc: dict[str, Any] = {}
        for key, value in canon.items():
            if key.startswith("$"):
                continue
            if key == "Graph":
                doc[key] = self.graph(value, ("", key))
            elif key == "WebService":
                doc[key] = self.webservice(value, ("", key))
            else:
                doc[key] = value
        for key, value in self.volatile.items():
            if "." not in key:
                doc[key] = value
        return doc

    def graph(self, canon: Any, path: Where) -> Any:
        if canon is None:
            return None
        canon = expect_dict(canon, self.source, path)
        out: dict[str, Any] = {}
        order = layout.node_order(self.layout.get("Graph"))
        node_index: dict[str, int] = {}
        for key, value in canon.items():
            if key.startswith("$"):
                continue
            if key == "ModuleNodes":
                nodes = expect_dict(value, self.source, (path, key))
                ids = sorted(nodes, key=lambda node_id: (order.get(node_id, len(order)), node_id))
                node_index = {node_id: index for index, node_id in enumerate(ids)}
                out[key] = [self.node(node_id, nodes[node_id], ((path, key), node_id)) for node_id in ids]
            elif key != "EdgesInternal":
                out[key] = value
        if "EdgesInternal" in canon:
            out["EdgesInternal"] = self.edges(canon["EdgesInternal"], (path, "EdgesInternal"), node_index)
        out = {**self._restore({**canon, **out}, rules.GRAPH_ORDER, rules.REDUNDANT_GRAPH, "", path)}
        if "Graph" in self.layout:
            out[rules.LAYOUT_XML_KEY] = self.layout_xml(self.layout["Graph"], "/Graph")
        return reorder(out, rules.GRAPH_ORDER)

    def layout_xml(self, entry: Any, path: Where) -> str | None:
        if entry is None:
            return None
        return layout.unparse(entry, self.layout_source, path)

    def node(self, node_id: str, canon: Any, path: Where) -> dict[str, Any]:
        merged = {**expect_dict(canon, self.source, path), "Id": node_id}
        for key in rules.LAYOUT_NODE:
            values = self.layout.get(key)
            if isinstance(values, dict) and node_id in values:
                merged[key] = values[node_id]
        for key in rules.VOLATILE_NODE:
            values = self.volatile.get(rules.VOLATILE_NODE_PREFIX + key)
            if isinstance(values, dict) and node_id in values:
                merged[key] = values[node_id]
        out = self._restore(merged, rules.NODE_ORDER, rules.REDUNDANT_NODE, node_id, path)
        if "ModuleParameters" in out:
            where = (path, "ModuleParameters")
            out["ModuleParameters"] = [
                self.parameter(node_id, item, (where, index))
                for index, item in enumerate(expect_list(out["ModuleParameters"], self.source, where))
            ]
        for key, order, table, plain in (
            ("InputPortsInternal", rules.INPUT_PORT_ORDER, rules.REDUNDANT_INPUT_PORT, _PLAIN_INPUT_PORT),
            ("OutputPortsInternal", rules.OUTPUT_PORT_ORDER, rules.REDUNDANT_OUTPUT_PORT, _PLAIN_OUTPUT_PORT),
        ):
            if key in out:
                where = (path, key)
                ports = []
                for index, port in enumerate(expect_list(out[key], self.source, where)):
                    if type(port) is dict and len(port) == 1 and type(port.get("Name")) is str:
                        # the common case: only the name differs from the defaults
                        restored = dict(plain)
                        restored["Name"] = port["Name"]
                        restored["NodeId"] = node_id
                        ports.append(restored)
                    else:
                        ports.append(self._restore(port, order, table, node_id, (where, index)))
                out[key] = ports
        return out

    def parameter(self, node_id: str, canon: Any, path: Where) -> dict[str, Any]:
        if type(canon) is dict and len(canon) == 2 and "Name" in canon and "Value" in canon:
            out = {"ValueType": "Literal", "LinkedGlobalParameter": None, "Name": canon["Name"],
                   "Value": canon["Value"]}
        else:
            out = self._restore(canon, rules.PARAMETER_ORDER, rules.REDUNDANT_PARAMETER, node_id, path)
        if "Value" in out:
            value = out["Value"]
            if type(value) is str:
                if self.secrets is not None and "${secret:" in value:
                    out["Value"] = fill(value, self.secrets, self.source, (path, "Value"))
            elif value is not None:
                out["Value"] = self.value(value, (path, "Value"))
        return out

    def value(self, value: Any, path: Where) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return fill(value, self.secrets, self.source, path)
        value = expect_dict(value, self.source, path)
        if "$columns" in value:
            picker = expect_dict(value["$columns"], self.source, (path, "$columns"))
            try:
                return columns.encode(picker)
            except ValueError:
                fail(self.source, (path, "$columns"), "column picker cannot be encoded as JSON")
        if "$script" in value:
            return self.script(value, path)
        fail(self.source, path, "expected a string, {'$columns': …} or {'$script': …}")

    def script(self, entry: dict[str, Any], path: Where) -> str:
        name = expect_str(entry["$script"], self.source, (path, "$script"))
        if name not in self.files:
            fail(self.source, (path, "$script"), f"script file {name!r} is missing")
        data = self.files[name]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            fail(f"{self.root}/{name}", "", f"not valid UTF-8 at byte {exc.start}; save the script as UTF-8")
        if b"<<<<<<< " in data and _GIT_CONFLICT.search(text):
            fail(f"{self.root}/{name}", "", "unresolved merge conflict (<<<<<<< … >>>>>>> lines); resolve it first")
        newline = entry.get("newline")
        if newline == "\r\n":
            # An editor or git may have turned the file's LF into CRLF; both mean the same script.
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        elif newline is not None:
            fail(self.source, (path, "newline"), "expected \"\\r\\n\" or no 'newline'")
        return fill(text, self.secrets, f"{self.root}/{name}", "")

    def edges(self, value: Any, path: Where, node_index: dict[str, int]) -> list[dict[str, Any]]:
        result = [self._restore(edge, rules.EDGE_ORDER, rules.REDUNDANT_EDGE, "", (path, index))
                  for index, edge in enumerate(expect_list(value, self.source, path))]
        last = len(node_index)

        def service_order(edge: dict[str, Any]) -> tuple[int, int, str, str]:
            source = str(edge.get("SourceOutputPortId", ""))
            target = str(edge.get("DestinationInputPortId", ""))
            return (node_index.get(source.split(":", 1)[0], last), node_index.get(target.split(":", 1)[0], last),
                    source, target)

        result.sort(key=service_order)
        return result

    def webservice(self, canon: Any, path: Where) -> Any:
        if canon is None:
            return None
        canon = expect_dict(canon, self.source, path)
        out: dict[str, Any] = {}
        order = layout.node_order(self.layout.get("WebService"))
        for key, value in canon.items():
            if key.startswith("$"):
                continue
            if key in ("Inputs", "Outputs"):
                ports = [reorder(expect_dict(port, self.source, ((path, key), index)),
                                  rules.WEBSERVICE_PORT_ORDER)
                         for index, port in enumerate(expect_list(value, self.source, (path, key)))]
                out[key] = sorted(ports, key=lambda port: (order.get(str(port.get("Id")), len(order)),
                                                           port_key(port)))
            elif key == "Parameters":
                out[key] = [self.webservice_parameter(item, ((path, key), index))
                            for index, item in enumerate(expect_list(value, self.source, (path, key)))]
            else:
                out[key] = value
        for key in rules.VOLATILE_WEBSERVICE:
            if rules.VOLATILE_WEBSERVICE_PREFIX + key in self.volatile:
                out[key] = self.volatile[rules.VOLATILE_WEBSERVICE_PREFIX + key]
        if "WebService" in self.layout:
            out[rules.LAYOUT_XML_KEY] = self.layout_xml(self.layout["WebService"], "/WebService")
        return reorder(out, rules.WEBSERVICE_ORDER)

    def webservice_parameter(self, canon: Any, path: Where) -> Any:
        canon = expect_dict(canon, self.source, path)
        out = dict(canon)
        if isinstance(out.get("Value"), str):
            out["Value"] = fill(out["Value"], self.secrets, self.source, (path, "Value"))
        definition = out.get("ParameterDefinition")
        if isinstance(definition, dict):
            definition = dict(definition)
            if isinstance(definition.get("DefaultValue"), str):
                definition["DefaultValue"] = fill(definition["DefaultValue"], self.secrets, self.source,
                                                  ((path, "ParameterDefinition"), "DefaultValue"))
            if isinstance(definition.get("ParameterRules"), list):
                definition["ParameterRules"] = [
                    reorder(rule, rules.PARAMETER_RULE_ORDER) if isinstance(rule, dict) else rule
                    for rule in definition["ParameterRules"]
                ]
            out["ParameterDefinition"] = reorder(definition, rules.PARAMETER_DEFINITION_ORDER)
        return reorder(out, rules.WEBSERVICE_PARAMETER_ORDER)


def _load_file(files: Mapping[str, bytes], name: str, source: str) -> Any:
    data = files.get(name)
    if data is None:
        fail(f"{source}/{name}", "", "file is missing")
    if len(data) > rules.MAX_DOCUMENT_BYTES:
        fail(f"{source}/{name}", "", f"file is over the limit of {rules.MAX_DOCUMENT_BYTES:,} bytes")
    return load_canonical(data, f"{source}/{name}")


def recorded_module_names(files: Mapping[str, bytes]) -> dict[str, str]:
    """Module id -> name from the `$module` annotations of experiment.json (names normalize was given once);
    nodes whose annotation is malformed are skipped."""
    try:
        data = json.loads(files.get(rules.EXPERIMENT_FILE, b"{}"))
    except ValueError:
        return {}
    nodes = (data.get("Graph") or {}).get("ModuleNodes") if isinstance(data, dict) else None
    items = nodes.values() if isinstance(nodes, dict) else nodes if isinstance(nodes, list) else []
    names: dict[str, str] = {}
    for node in items:
        if isinstance(node, dict) and isinstance(node.get("$module"), dict):
            name, module_id = node["$module"].get("name"), node.get("ModuleId")
            if isinstance(name, str) and isinstance(module_id, str):
                names[module_id] = name
    return names


def denormalize(files: Mapping[str, bytes], *, identity: Mapping[str, Any] | None = None,
                volatile: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None,
                source: str = "<files>") -> dict[str, Any]:
    """The GET-experiment document of canonical files, keys in the service's order.

    identity/volatile given: restored; missing: those keys absent. secrets given: placeholders filled
    (MissingSecret when one has no value); None: placeholders left as they are.
    """
    with gc_paused():
        return _denormalize(files, identity, volatile, secrets, source)


def _denormalize(files: Mapping[str, bytes], identity: Mapping[str, Any] | None, volatile: Mapping[str, Any] | None,
                 secrets: Mapping[str, str] | None, source: str) -> dict[str, Any]:
    canon = _load_file(files, rules.EXPERIMENT_FILE, source)
    layout_doc: dict[str, Any] = {}
    if rules.LAYOUT_FILE in files:
        layout_doc = expect_dict(_load_file(files, rules.LAYOUT_FILE, source), f"{source}/{rules.LAYOUT_FILE}", "")
        if layout_doc.get("$format") != rules.LAYOUT_FORMAT:
            fail(f"{source}/{rules.LAYOUT_FILE}", "/$format", f"expected {rules.LAYOUT_FORMAT!r}")
    doc = _Denormalizer(files, layout_doc, volatile, secrets, source).document(canon)
    if identity:
        doc.update(identity)
    if secrets is not None:  # placeholders in free text and identity (the fields above filled their own)
        doc = fill_strings(doc, secrets, source)
    return reorder(doc, rules.TOP_LEVEL_ORDER)


def reorder(obj: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """Known keys in the service's order, then unknown keys (sorted, as they come back from git)."""
    result = {key: obj[key] for key in order if key in obj}
    if len(result) != len(obj):
        for key in sorted(obj):
            if key not in result:
                result[key] = obj[key]
    return result
