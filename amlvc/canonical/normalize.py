"""Canonical form of a GET-experiment document (experiment.json, layout.json, scripts/); denormalize.py inverts it."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from amlvc import rules
from amlvc.canonical import columns, layout
from amlvc.canonical.checks import (
    check_no_reserved,
    check_tree,
    classify,
    expect_dict,
    expect_list,
    expect_opt_str,
    expect_str,
    fail,
    find_surrogate,
)
from amlvc.canonical.jsonio import content_hash, dumps
from amlvc.canonical.paths import Where
from amlvc.canonical.secrets import (
    SecretNamer,
    is_credential_definition,
    is_secret_name,
    scrub,
    scrub_shapes,
    scrub_strings,
)
from amlvc.errors import InvalidDocument

__all__ = ["Normalized", "content_hash", "dumps", "gc_paused", "normalize", "port_key", "to_push_body"]

_SLUG = re.compile(r"[^a-z0-9-]+")


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
        self.pickers: dict[str, dict[str, Any] | None] = {}

    # --- top level ---------------------------------------------------------------------------------------------

    def document(self, doc: Any) -> dict[str, Any]:
        if classify(doc, self.source) == "wsd":
            fail(self.source, "", "this is a web-service definition, not an experiment; normalize it with wsd.py")
        check_no_reserved(doc, self.source, "")
        if doc.get("Graph") is None:
            fail(self.source, "/Graph", "missing: an experiment document holds its graph here (an export without "
                                        "one would delete every node)")
        expect_dict(doc["Graph"], self.source, ("", "Graph"))
        for key in rules.TEXT_FIELDS:
            check_tree(doc.get(key), self.source, ("", key))
            expect_opt_str(doc.get(key), self.source, ("", key))
        self.credential_parameters = self._credential_parameters(doc.get("WebService"))
        canon: dict[str, Any] = {"$format": rules.EXPERIMENT_FORMAT}
        for key, value in doc.items():
            path = ("", key)
            if key in rules.IDENTITY_TOP_LEVEL:
                check_tree(value, self.source, path)
                self.identity[key] = scrub_strings(value, self.namer, key)
            elif key in rules.VOLATILE_TOP_LEVEL:
                self.volatile[key] = value
            elif key == "Graph":
                canon[key] = self.graph(value, path)
            elif key == "WebService":
                canon[key] = self.webservice(value, path)
            else:
                check_tree(value, self.source, path)
                canon[key] = value
        # Secrets by shape in any other string (free text, comments, unknown keys): none may reach git.
        for key in canon.keys() - {"Graph"}:
            canon[key] = scrub_strings(canon[key], self.namer, key)
        if isinstance(canon.get("Graph"), dict):
            canon["Graph"] = self._scrub_graph(canon["Graph"])
        return canon

    def _scrub_graph(self, graph: dict[str, Any]) -> dict[str, Any]:
        """The graph's strings scrubbed by shape, each node's under its own id (so NAMEs carry its counter)."""
        out = {key: value if key == "ModuleNodes" else scrub_strings(value, self.namer, key)
               for key, value in graph.items()}
        nodes = graph.get("ModuleNodes")
        if isinstance(nodes, dict):
            out["ModuleNodes"] = {node_id: {key: value if key == "ModuleParameters" else
                                            scrub_strings(value, self.namer, key, node_id)
                                            for key, value in node.items()}
                                  for node_id, node in nodes.items()}
        return out

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
        picker = self.column_picker(text)
        if picker is not None:
            return picker
        whole = is_secret_name(name) or (linked is not None and linked in self.credential_parameters)
        return scrub(text, name, node_id, self.namer, whole=whole)

    def column_picker(self, text: str) -> dict[str, Any] | None:
        # The same picker recurs across nodes; decoding checks it by re-encoding, so it is worth doing once.
        # The entry is only written out, never mutated, so nodes may share it.
        if text in self.pickers:
            return self.pickers[text]
        picker = columns.decode(text)
        entry = None if picker is None else {"$columns": picker}
        self.pickers[text] = entry
        return entry

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
                out[key] = sorted(ports, key=port_key)
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


def port_key(port: dict[str, Any]) -> tuple[str, str, str, str]:
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
def gc_paused() -> Iterator[None]:
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
    with gc_paused():
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


def resource_annotation(resource_id: str) -> dict[str, Any]:
    """owner, family and batch of a '{owner}.{family}.v1-default-{batch}' id (empty when it has another shape)."""
    match = rules.RESOURCE_ID.match(resource_id)
    if match is None:
        return {}
    return {"owner": match.group("owner"), "family": match.group("family"), "batch": int(match.group("batch"))}
