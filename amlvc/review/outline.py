"""git textconv: one canonical file as an outline with one value per line, so line diffs read semantically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from amlvc.canonical.paths import pointer
from amlvc.review import labels


def outline(kind: str, doc: Mapping[str, Any]) -> str:
    """experiment / layout / webservice file -> text; a one-parameter change is a one-line change here."""
    if kind == "experiment":
        lines = _experiment(doc)
    elif kind == "layout":
        lines = _layout(doc)
    else:
        lines = [f"{path} = {value}" for path, value in _leaves(doc, "")]
    return "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\r", "\\r").replace("\n", "\\n")
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _experiment(doc: Mapping[str, Any]) -> list[str]:
    lines = [f"experiment {_text(doc.get('Description', ''))}"]
    for key in sorted(doc):
        if key not in ("Graph", "WebService", "Description") and not key.startswith("$"):
            lines.append(f"  {key}: {_text(doc[key])}")
    graph = doc.get("Graph") if isinstance(doc.get("Graph"), Mapping) else {}
    assert isinstance(graph, Mapping)
    nodes = graph.get("ModuleNodes") if isinstance(graph.get("ModuleNodes"), Mapping) else {}
    assert isinstance(nodes, Mapping)
    for key in sorted(graph):
        if key not in ("ModuleNodes", "EdgesInternal"):
            lines.append(f"  Graph.{key}: {_text(graph[key])}")
    for node_id in sorted(nodes):
        lines += _node(node_id, nodes[node_id])
    edges = graph.get("EdgesInternal")
    lines.append("edges")
    for edge in edges if isinstance(edges, list) else []:
        if isinstance(edge, Mapping):
            extra = {k: v for k, v in edge.items() if k not in ("SourceOutputPortId", "DestinationInputPortId")}
            lines.append(f"  {labels.edge_label(edge, nodes)}" + (f" {_text(extra)}" if extra else ""))
    ws = doc.get("WebService")
    if isinstance(ws, Mapping):
        lines.append("web service")
        for key in sorted(ws):
            items = ws[key]
            if key in ("Inputs", "Outputs") and isinstance(items, list):
                for item in items:
                    if isinstance(item, Mapping):
                        node_id, _, port = str(item.get("PortId")).rpartition(":")
                        node = nodes.get(node_id)
                        where = labels.node_label(node_id, node) if isinstance(node, Mapping) else node_id
                        lines.append(f"  {key[:-1].lower()} {item.get('Name')} ({item.get('Id')}) ↔ {where}.{port}")
            elif key == "Parameters" and isinstance(items, list):
                for item in items:
                    if isinstance(item, Mapping):
                        lines.append(f"  parameter {item.get('Name')} = {_text(item.get('Value'))}")
                        rest = {k: v for k, v in item.items() if k not in ("Name", "Value")}
                        lines += [f"    {path} = {value}" for path, value in _leaves(rest, "")]
            else:
                lines.append(f"  {key}: {_text(items)}")
    return lines


def _node(node_id: str, node: Any) -> list[str]:
    if not isinstance(node, Mapping):
        return [f"node {node_id}: {_text(node)}"]
    lines = [f"node {labels.module_ref(node)} [{node_id}]", f"  module: {node.get('ModuleId')}"]
    if node.get("Comment"):
        lines.append(f"  comment: {_text(node['Comment'])}")
    for param in node.get("ModuleParameters") or []:
        if not isinstance(param, Mapping):
            continue
        value = param.get("Value")
        shown = labels.display(value) if isinstance(value, Mapping) else _text(value)
        extra = "".join(f" [{k}: {_text(v)}]" for k, v in sorted(param.items()) if k not in ("Name", "Value"))
        lines.append(f"  parameter {param.get('Name')}: {shown}{extra}")
    for ports, word in (("InputPortsInternal", "input"), ("OutputPortsInternal", "output")):
        for port in node.get(ports) or []:
            if not isinstance(port, Mapping):
                continue
            extra = " ".join(f"{k}={_text(v)}" for k, v in sorted(port.items())
                             if k != "Name" and not k.startswith("$"))
            lines.append(f"  {word} {port.get('Name')}" + (f" {extra}" if extra else ""))
    skip = {"ModuleId", "Comment", "ModuleParameters", "InputPortsInternal", "OutputPortsInternal", "$module"}
    lines += [f"  {key}: {_text(node[key])}" for key in sorted(node) if key not in skip]
    return lines


def _layout(doc: Mapping[str, Any]) -> list[str]:
    lines = []
    for canvas in ("Graph", "WebService"):
        section = doc.get(canvas)
        if isinstance(section, Mapping):
            for item in section.get("positions") or []:
                if isinstance(item, Mapping):
                    lines.append(f"{canvas} position {item.get('node')} {item.get('position')}")
            lines += [f"{canvas} {k}: {_text(v)[:80]}" for k, v in sorted(section.items()) if k != "positions"]
    rest = {k: v for k, v in doc.items() if k not in ("Graph", "WebService")}
    lines += [f"{path} = {value}" for path, value in _leaves(rest, "")]
    return lines


def _leaves(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, Mapping) and value:
        out: list[tuple[str, str]] = []
        for key in sorted(value):
            out += _leaves(value[key], path + pointer(key))
        return out
    if isinstance(value, list) and value:
        out = []
        for index, item in enumerate(value):
            out += _leaves(item, f"{path}/{index}")
        return out
    return [(path or "/", _text(value))]
