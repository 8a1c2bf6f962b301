"""Canonical form of a GET-experiment document (experiment.json, layout.json, scripts/) and its exact inverse."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from amlvc import columns, layout, rules
from amlvc.document import (
    Where,
    check_no_reserved,
    check_tree,
    classify,
    compare,
    content_hash,
    dumps,
    expect_dict,
    expect_list,
    expect_opt_str,
    expect_str,
    fail,
    find_surrogate,
    loads_canonical,
    reorder,
    resource_annotation,
)
from amlvc.errors import InvalidDocument
from amlvc.secrets import (
    SecretNamer,
    fill,
    is_credential_definition,
    is_secret_name,
    placeholder,
    placeholder_names,
    scrub,
    scrub_shapes,
)

__all__ = ["Normalized", "content_hash", "denormalize", "dumps", "normalize", "to_push_body", "verify_roundtrip"]

_SLUG = re.compile(r"[^a-z0-9-]+")
_GIT_CONFLICT = re.compile(r"^<<<<<<< .*^=======\r?$.*^>>>>>>> ", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Normalized:
    """The canonical files of one document and what was taken out of it."""

    files: dict[str, bytes]  # paths relative to the experiment directory
    identity: dict[str, Any]  # per-workspace provenance (goes to amlvc.lock)
    volatile: dict[str, Any]  # server state dropped from the files (Etag and RunId go to amlvc.lock)
    secrets: dict[str, str]  # NAME -> value replaced by ${secret:NAME}


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")[:80] or "x"


_MISSING = object()
# The redundant-key tables as plain dicts (a MappingProxy lookup costs more in the per-value loops).
_INPUT_PORT = dict(rules.REDUNDANT_INPUT_PORT)
_OUTPUT_PORT = dict(rules.REDUNDANT_OUTPUT_PORT)
_EDGE = dict(rules.REDUNDANT_EDGE)
_PARAMETER = dict(rules.REDUNDANT_PARAMETER)
_PORT_STRINGS = frozenset({"Name", *rules.ASSET_PORT_KEYS})
_EDGE_STRINGS = ("SourceOutputPortId", "DestinationInputPortId")


class _Normalizer:
    """One normalize run: collects files, identity, volatile fields, layout and secrets."""

    def __init__(self, source: str, module_names: Mapping[str, str] | None) -> None:
        self.source = source
        self.module_names = module_names or {}
        self.identity: dict[str, Any] = {}
        self.volatile: dict[str, Any] = {}
        self.layout: dict[str, Any] = {"$format": rules.LAYOUT_FORMAT}
        self.scripts: dict[str, bytes] = {}
        self.namer = SecretNamer()
        self.credential_parameters: set[str] = set()
        self.modules: dict[str, dict[str, Any]] = {}

    # --- top level ---------------------------------------------------------------------------------------------

    def document(self, doc: Any) -> dict[str, Any]:
        if classify(doc, self.source) == "wsd":
            fail(self.source, "", "this is a web-service definition, not an experiment; normalize it with wsd.py")
        check_no_reserved(doc, self.source, "")
        self.credential_parameters = self._credential_parameters(doc.get("WebService"))
        canon: dict[str, Any] = {"$format": rules.EXPERIMENT_FORMAT}
        for key, value in doc.items():
            path = ("", key)
            if key in rules.IDENTITY_TOP_LEVEL:
                check_tree(value, self.source, path)
                self.identity[key] = value
            elif key in rules.VOLATILE_TOP_LEVEL:
                self.volatile[key] = value
            elif key == "Graph":
                canon[key] = self.graph(value, path)
            elif key == "WebService":
                canon[key] = self.webservice(value, path)
            else:
                check_tree(value, self.source, path)
                canon[key] = value
        return canon

    def _credential_parameters(self, webservice: Any) -> set[str]:
        names: set[str] = set()
        if isinstance(webservice, dict) and isinstance(webservice.get("Parameters"), list):
            for item in webservice["Parameters"]:
                if (isinstance(item, dict) and is_credential_definition(item.get("ParameterDefinition"))
                        and isinstance(item.get("Name"), str)):
                    names.add(item["Name"])
        return names

    def _redundant(self, obj: dict[str, Any], out: dict[str, Any], table: Mapping[str, Any], owner: str) -> None:
        """Keep redundant keys only when they differ from their default; record the ones that were missing."""
        for key, default in table.items():
            if key in obj:
                value = obj[key]
                if default is None:
                    if value is not None:
                        out[key] = value
                elif type(value) is not str or value != (owner if default is rules.NODE_ID_DEFAULT else default):
                    out[key] = value
        if not table.keys() <= obj.keys():
            out["$absent"] = [key for key in table if key not in obj]

    def _plain(self, key: str, value: Any, path: Where) -> None:
        """Check a value that passes through unchanged (reserved key names, string length, nesting)."""
        if key[:1] == "$":
            check_no_reserved((key,), self.source, path)
        kind = type(value)
        if kind is str:
            if len(value) > rules.MAX_STRING_LENGTH:
                expect_str(value, self.source, (path, key))
        elif kind is dict or kind is list or kind is float:
            check_tree(value, self.source, (path, key))

    def _split(self, obj: dict[str, Any], table: dict[str, Any], owner: str, path: Where,
               strings: frozenset[str] = frozenset()) -> dict[str, Any]:
        """One pass over a service object: check every value, drop redundant keys holding their default,
        list the redundant keys that were missing in "$absent". `strings` must be strings (or null)."""
        out: dict[str, Any] = {}
        present = 0
        for key, value in obj.items():
            kind = type(value)
            if kind is str:
                if len(value) > rules.MAX_STRING_LENGTH:
                    expect_str(value, self.source, (path, key))
            elif value is not None:
                if key in strings:
                    expect_str(value, self.source, (path, key))
                if kind is dict or kind is list or kind is float:
                    check_tree(value, self.source, (path, key))
            default = table.get(key, _MISSING)
            if default is _MISSING:
                if key[:1] == "$":
                    check_no_reserved((key,), self.source, path)
                out[key] = value
                continue
            present += 1
            if default is rules.NODE_ID_DEFAULT:
                default = owner
            if default is None:
                if value is not None:
                    out[key] = value
            elif kind is not str or value != default:
                out[key] = value
        if present < len(table):
            out["$absent"] = [key for key in table if key not in obj]
        return out

    # --- graph -------------------------------------------------------------------------------------------------

    def graph(self, graph: Any, path: Where) -> Any:
        if graph is None:
            return None
        graph = expect_dict(graph, self.source, path)
        check_no_reserved(graph, self.source, path)
        out: dict[str, Any] = {}
        for key, value in graph.items():
            where = (path, key)
            if key == "ModuleNodes":
                out[key] = self.nodes(value, where)
            elif key == "EdgesInternal":
                out[key] = self.edges(value, where)
            elif key == rules.LAYOUT_XML_KEY:
                self.layout["Graph"] = self.layout_entry(value, where)
            elif key in rules.REDUNDANT_GRAPH:
                check_tree(value, self.source, where)
            else:
                check_tree(value, self.source, where)
                out[key] = value
        self._redundant(graph, out, rules.REDUNDANT_GRAPH, "")
        return out

    def layout_entry(self, value: Any, path: Where) -> Any:
        if value is None:
            return None
        return layout.parse(expect_str(value, self.source, path), self.source, path)

    def nodes(self, value: Any, path: Where) -> dict[str, Any]:
        by_id: dict[str, tuple[int, dict[str, Any]]] = {}
        for index, node in enumerate(expect_list(value, self.source, path)):
            where = (path, index)
            node = expect_dict(node, self.source, where)
            if "Id" not in node:
                fail(self.source, where, "a module node needs an 'Id'")
            node_id = expect_str(node["Id"], self.source, (where, "Id"))
            if node_id in by_id:
                fail(self.source, (where, "Id"), f"duplicate node id {node_id!r}")
            by_id[node_id] = (index, node)
        return {node_id: self.node(node_id, *by_id[node_id], path) for node_id in sorted(by_id)}

    def node(self, node_id: str, index: int, node: dict[str, Any], path: Where) -> dict[str, Any]:
        path = (path, index)
        out: dict[str, Any] = {}
        for key, value in node.items():
            where = (path, key)
            if key == "Id" or key in rules.REDUNDANT_NODE:
                continue
            if key in rules.VOLATILE_NODE:
                self.volatile.setdefault(rules.VOLATILE_NODE_PREFIX + key, {})[node_id] = value
            elif key in rules.LAYOUT_NODE:
                check_tree(value, self.source, where)
                self.layout.setdefault(key, {})[node_id] = value
            elif key == "ModuleId":
                out[key] = expect_opt_str(value, self.source, where)
                if value is not None:
                    out["$module"] = self.module_annotation(value)
            elif key == "ModuleParameters":
                out[key] = self.parameters(node_id, value, where)
            elif key in ("InputPortsInternal", "OutputPortsInternal"):
                out[key] = self.ports(node_id, value, where, key == "InputPortsInternal")
            else:
                self._plain(key, value, path)
                out[key] = value
        self._redundant(node, out, rules.REDUNDANT_NODE, node_id)
        return out

    def module_annotation(self, module_id: str) -> dict[str, Any]:
        # Module ids repeat across nodes; the annotation is never mutated, so one object can be shared.
        cached = self.modules.get(module_id)
        if cached is None:
            cached = self.modules[module_id] = self._module_annotation(module_id)
        return cached

    def _module_annotation(self, module_id: str) -> dict[str, Any]:
        annotation = resource_annotation(module_id)
        family = annotation.get("family")
        name = self.module_names.get(module_id)
        if name is None and family is not None:
            name = self.module_names.get(family) or rules.MODULE_FAMILIES.get(family.lower())
        annotation.pop("owner", None)
        annotation["name"] = name
        return annotation

    def parameters(self, node_id: str, value: Any, path: Where) -> list[dict[str, Any]]:
        result = []
        for index, param in enumerate(expect_list(value, self.source, path)):
            where = (path, index)
            if type(param) is not dict:
                expect_dict(param, self.source, where)
            name = param.get("Name", "")
            if type(name) is not str:
                expect_str(name, self.source, (where, "Name"))
            linked = param.get("LinkedGlobalParameter")
            if linked is not None and type(linked) is not str:
                expect_str(linked, self.source, (where, "LinkedGlobalParameter"))
            if "Value" in param:
                item = param["Value"]
                out = self._split({k: v for k, v in param.items() if k != "Value"}, _PARAMETER, node_id, where)
                out["Value"] = self.parameter_value(node_id, name, linked, item, (where, "Value"))
            else:
                out = self._split(param, _PARAMETER, node_id, where)
            result.append(out)
        return result

    def parameter_value(self, node_id: str, name: str, linked: str | None, value: Any, path: Where) -> Any:
        if value is None:
            return None
        text = expect_str(value, self.source, path)
        language = rules.SCRIPT_PARAMETERS.get(name.lower())
        if language is not None:
            return self.script(node_id, name, language, text, path)
        picker = columns.decode(text)
        if picker is not None:
            return {"$columns": picker}
        whole = is_secret_name(name) or (linked is not None and linked in self.credential_parameters)
        return scrub(text, name, node_id, self.namer, whole=whole)

    def script(self, node_id: str, name: str, language: str, text: str, path: Where) -> dict[str, Any]:
        stem = f"{rules.SCRIPTS_DIR}/{_slug(node_id)}--{_slug(name)}"
        extension = rules.SCRIPT_EXTENSIONS[language]
        file = stem + extension
        counter = 2
        while file in self.scripts:
            file = f"{stem}-{counter}{extension}"
            counter += 1
        text = scrub_shapes(text, name, node_id, self.namer)
        entry: dict[str, Any] = {"$script": file}
        crlf = text.count("\r\n")
        if crlf and crlf == text.count("\n") == text.count("\r"):
            text = text.replace("\r\n", "\n")
            entry["newline"] = "\r\n"
        try:
            self.scripts[file] = text.encode("utf-8")
        except UnicodeEncodeError:
            fail(self.source, path, "script holds an unpaired surrogate, which UTF-8 cannot store")
        return entry

    def ports(self, node_id: str, value: Any, path: Where, inputs: bool) -> list[dict[str, Any]]:
        table = _INPUT_PORT if inputs else _OUTPUT_PORT
        result = []
        for index, port in enumerate(expect_list(value, self.source, path)):
            where = (path, index)
            if type(port) is not dict:
                expect_dict(port, self.source, where)
            out = self._split(port, table, node_id, where, _PORT_STRINGS)
            if inputs:
                assets = [
                    {"kind": kind, **resource_annotation(port[key])}
                    for key, kind in rules.ASSET_PORT_KEYS.items()
                    if type(port.get(key)) is str
                ]
                if assets:
                    out["$asset"] = assets[0] if len(assets) == 1 else assets
            result.append(out)
        return result

    def edges(self, value: Any, path: Where) -> list[dict[str, Any]]:
        result = []
        for index, edge in enumerate(expect_list(value, self.source, path)):
            where = (path, index)
            if type(edge) is not dict:
                expect_dict(edge, self.source, where)
            for key in _EDGE_STRINGS:
                if key in edge and type(edge[key]) is not str:
                    expect_str(edge[key], self.source, (where, key))
            result.append(self._split(edge, _EDGE, "", where))
        result.sort(key=_edge_key)
        return result

    # --- web service -------------------------------------------------------------------------------------------

    def webservice(self, value: Any, path: Where) -> Any:
        if value is None:
            return None
        ws = expect_dict(value, self.source, path)
        check_no_reserved(ws, self.source, path)
        out: dict[str, Any] = {}
        for key, item in ws.items():
            where = (path, key)
            if key in rules.VOLATILE_WEBSERVICE:
                self.volatile[rules.VOLATILE_WEBSERVICE_PREFIX + key] = item
            elif key == rules.LAYOUT_XML_KEY:
                self.layout["WebService"] = self.layout_entry(item, where)
            elif key in ("Inputs", "Outputs"):
                ports = expect_list(item, self.source, where)
                for index, port in enumerate(ports):
                    expect_dict(port, self.source, (where, index))
                    check_no_reserved(port, self.source, (where, index))
                    check_tree(port, self.source, (where, index))
                out[key] = sorted(ports, key=_port_key)
            elif key == "Parameters":
                out[key] = self.webservice_parameters(item, where)
            else:
                check_tree(item, self.source, where)
                out[key] = item
        return out

    def webservice_parameters(self, value: Any, path: Where) -> list[Any]:
        result = []
        for index, param in enumerate(expect_list(value, self.source, path)):
            where = (path, index)
            param = expect_dict(param, self.source, where)
            check_tree(param, self.source, where)
            name = expect_str(param.get("Name", ""), self.source, (where, "Name"))
            definition = param.get("ParameterDefinition")
            whole = is_secret_name(name) or is_credential_definition(definition)
            out = dict(param)
            if isinstance(param.get("Value"), str):
                out["Value"] = scrub(param["Value"], name, None, self.namer, whole=whole, suffix="_WEBSERVICE")
            if isinstance(definition, dict) and isinstance(definition.get("DefaultValue"), str):
                definition = dict(definition)
                definition["DefaultValue"] = scrub(definition["DefaultValue"], name, None, self.namer, whole=whole,
                                                   suffix="_WEBSERVICE_DEFAULT")
                out["ParameterDefinition"] = definition
            result.append(out)
        return result


def _edge_key(edge: dict[str, Any]) -> tuple[str, str, str]:
    # The full text only breaks ties between edges with extra keys, so a duplicate edge sorts deterministically.
    return (str(edge.get("SourceOutputPortId", "")), str(edge.get("DestinationInputPortId", "")),
            "" if len(edge) <= 2 else json.dumps(edge, sort_keys=True))


def _port_key(port: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(port.get("Id", "")), str(port.get("PortId", "")), str(port.get("Name", "")),
            "" if len(port) <= 3 else json.dumps(port, sort_keys=True))


def _dump_checked(value: Any, source: str) -> bytes:
    try:
        return dumps(value)
    except UnicodeEncodeError:
        where = find_surrogate(value, "") or ""
        raise InvalidDocument(source, where, "holds an unpaired surrogate, which UTF-8 cannot store") from None
    except ValueError as exc:  # an infinite number somewhere the checks did not reach
        raise InvalidDocument(source, "", f"cannot be written as JSON: {exc}") from None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: these passes allocate many small acyclic objects, and with a large document in
    memory every full collection rescans it (the 20,000-module case spent a third of its time there)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def normalize(doc: Mapping[str, Any], *, source: str = "<document>",
              module_names: Mapping[str, str] | None = None) -> Normalized:
    """The canonical files of a GET-experiment document (SPEC 2); raises InvalidDocument with a JSON path."""
    with _gc_paused():
        return _normalize(doc, source, module_names)


def _normalize(doc: Mapping[str, Any], source: str, module_names: Mapping[str, str] | None) -> Normalized:
    run = _Normalizer(source, module_names)
    canon = run.document(doc)
    files = {
        rules.EXPERIMENT_FILE: _dump_checked(canon, source),
        rules.LAYOUT_FILE: _dump_checked(run.layout, source),
        **run.scripts,
    }
    return Normalized(files=files, identity=run.identity, volatile=run.volatile, secrets=run.namer.found)



# --- the inverse ---------------------------------------------------------------------------------------------------


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
                                                           _port_key(port)))
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
    return loads_canonical(data, f"{source}/{name}")


def denormalize(files: Mapping[str, bytes], *, identity: Mapping[str, Any] | None = None,
                volatile: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None,
                source: str = "<files>") -> dict[str, Any]:
    """The GET-experiment document of canonical files, keys in the service's order.

    identity/volatile given: restored; missing: those keys absent. secrets given: placeholders filled
    (MissingSecret when one has no value); None: placeholders left as they are.
    """
    with _gc_paused():
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
    return reorder(doc, rules.TOP_LEVEL_ORDER)


def to_push_body(doc: Mapping[str, Any], *, is_draft: bool = True, parent_id: str | None = None) -> dict[str, Any]:
    """The save body of reference 4.1: the graph goes under ExperimentGraph; nothing volatile is sent."""
    return {
        "Description": doc.get("Description", ""),
        "Summary": doc.get("Summary", ""),
        "IsDraft": is_draft,
        "ParentExperimentId": parent_id,
        "DisableNodesUpdate": doc.get("DisableNodesUpdate"),
        "Category": doc.get("Category") or "user",
        "ExperimentGraph": doc.get("Graph"),
        "WebService": doc.get("WebService"),
    }


def verify_roundtrip(doc: Mapping[str, Any], source: str = "<document>") -> list[str]:
    """One line per field of `doc` that would not survive normalize + denormalize ([] = lossless).

    Web-service definitions are compared modulo key case; lists with identity (rules.IDENTITY_LISTS) as sets.
    A second normalize of the restored document must give the same files (idempotence).
    """
    from amlvc import wsd  # wsd builds on this module

    if classify(doc, source) == "wsd":
        return wsd.verify_wsd(doc, source)
    result = normalize(doc, source=source)
    # Placeholders already in the input stay placeholders: fill them with themselves.
    secrets = {name: placeholder(name) for name in _placeholders_in(doc)}
    secrets.update(result.secrets)
    back = denormalize(result.files, identity=result.identity, volatile=result.volatile, secrets=secrets,
                       source=source)
    problems = compare(doc, back, identity_lists=rules.IDENTITY_LISTS)
    again = normalize(back, source=source)
    for name in sorted(set(result.files) | set(again.files)):
        if result.files.get(name) != again.files.get(name):
            problems.append(f"{name}: normalizing the restored document changes this file (not idempotent)")
    return problems


def _placeholders_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(placeholder_names(value))
    if isinstance(value, dict):
        return set().union(*(_placeholders_in(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders_in(item) for item in value)) if value else set()
    return set()
