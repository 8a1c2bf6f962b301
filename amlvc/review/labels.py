"""How change records name and show the parts of an experiment: nodes, modules, edges, assets, values, canvas."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from amlvc.review.parsed import Parsed

# {owner}.{family}.v1-default-{batch} (reference §1.6): the family says "same thing", the batch "which version".
_ASSET_ID = re.compile(r"^(?P<owner>[^.]+)\.(?P<family>[^.]+)\.(?P<tag>.*?)(?P<batch>\d+)$")
_MAX_SHOWN = 200


def experiment_name(tree: Parsed | None) -> str:
    if tree is None:
        return ""
    name = tree.experiment.get("Description")
    return name if isinstance(name, str) else ""


def split_id(value: Any) -> tuple[str, str, int] | None:
    """(owner, family, batch) of a module or asset id, or None when it is not of that shape."""
    if not isinstance(value, str):
        return None
    match = _ASSET_ID.match(value)
    if match is None:
        return None
    return match["owner"], match["family"], int(match["batch"])


def same_family(a: Any, b: Any) -> bool:
    pa, pb = split_id(a), split_id(b)
    return pa is not None and pb is not None and pa[:2] == pb[:2]


def version_detail(a: Any, b: Any) -> str:
    pa, pb = split_id(a), split_id(b)
    if pa is None or pb is None:
        return ""
    return f"batch {pa[2]} → {pb[2]}"


def module_name(node: Mapping[str, Any]) -> str:
    module = node.get("$module")
    if isinstance(module, Mapping) and isinstance(module.get("name"), str):
        return str(module["name"])
    parts = split_id(node.get("ModuleId"))
    return f"module {parts[1][:8]}" if parts else "module"


def module_ref(node: Mapping[str, Any]) -> str:
    """The module a node runs, as a reviewer reads it: name and batch."""
    parts = split_id(node.get("ModuleId"))
    name = module_name(node)
    return f"{name} (batch {parts[2]})" if parts else f"{name} ({node.get('ModuleId')})"


def short_id(node_id: str) -> str:
    """`8c2e4a6b…-45`: the first GUID block and the node counter identify a node at a glance."""
    head, _, tail = node_id.rpartition("-")
    return f"{node_id[:8]}…-{tail}" if head and len(node_id) > 16 else node_id


def node_label(node_id: str, node: Mapping[str, Any]) -> str:
    return f"{module_name(node)} [{short_id(node_id)}]"


def port_node(port_id: Any) -> str:
    return str(port_id).rpartition(":")[0]


def edge_label(edge: Mapping[str, Any], nodes: Mapping[str, Any]) -> str:
    def end(port_id: Any) -> str:
        node_id, _, port = str(port_id).rpartition(":")
        node = nodes.get(node_id)
        name = node_label(node_id, node) if isinstance(node, Mapping) else short_id(node_id)
        return f"{name}.{port}"

    return f"{end(edge.get('SourceOutputPortId'))} → {end(edge.get('DestinationInputPortId'))}"


def script_path(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("$script"), str):
        return str(value["$script"])
    return None


def display(value: Any) -> str:
    """A parameter value as a reviewer reads it: column pickers decoded into rules, long text cut."""
    if isinstance(value, Mapping) and "$columns" in value:
        return columns_text(value["$columns"])
    if isinstance(value, Mapping) and "$script" in value:
        return f"script {value['$script']}"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"… ({len(text)} characters)"


def columns_text(picker: Any) -> str:
    """`columns: include names [labels]; exclude types [String]` from a decoded column picker."""
    if not isinstance(picker, Mapping) or not isinstance(picker.get("rules"), list):
        return "columns: " + json.dumps(picker, sort_keys=True, ensure_ascii=False)
    parts = []
    for rule in picker["rules"]:
        if not isinstance(rule, Mapping):
            parts.append(json.dumps(rule, ensure_ascii=False))
            continue
        verb = "exclude" if rule.get("exclude") else "include"
        kind = str(rule.get("ruleType", "?")).removeprefix("Column").lower() or "?"
        if rule.get("ruleType") == "AllColumns":
            parts.append(f"{verb} all")
            continue
        items = rule.get("columns", rule.get("columnTypes", rule.get("columnKinds", [])))
        shown = ", ".join(str(i) for i in items) if isinstance(items, list) else json.dumps(items)
        parts.append(f"{verb} {kind} [{shown}]")
    return "columns: " + "; ".join(parts)


def has_default(parameter: Mapping[str, Any]) -> bool:
    """A web-service parameter callers may omit: it has a non-empty default value."""
    definition = parameter.get("ParameterDefinition")
    if isinstance(definition, Mapping) and definition.get("IsOptional") is True:
        return True
    return parameter.get("Value") not in (None, "")


def positions(layout: Mapping[str, Any]) -> dict[str, str]:
    """node id -> "x,y,w,h" over both canvases (Graph first, then WebService)."""
    out: dict[str, str] = {}
    for canvas in ("WebService", "Graph"):
        section = layout.get(canvas)
        items = section.get("positions") if isinstance(section, Mapping) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and "node" in item:
                out[str(item["node"])] = str(item.get("position", ""))
    return out


def canvas_key(node: str) -> str:
    """A canvas node as the layout keeps it across versions: an asset placed on the canvas is named by its id,
    which a version bump changes; its owner and family stay (`{owner}.{family}`)."""
    parts = split_id(node)
    return f"{parts[0]}.{parts[1]}" if parts else node


def layout_moves(old: Mapping[str, Any], new: Mapping[str, Any]) -> int:
    """Canvas nodes that moved, appeared or disappeared, plus comment bubbles toggled (an asset node whose
    version was bumped in place has not moved)."""
    pa = {canvas_key(k): v for k, v in positions(old).items()}
    pb = {canvas_key(k): v for k, v in positions(new).items()}
    moved = sum(1 for key in set(pa) | set(pb) if pa.get(key) != pb.get(key))
    ca, cb = old.get("CommentCollapsed") or {}, new.get("CommentCollapsed") or {}
    if isinstance(ca, Mapping) and isinstance(cb, Mapping):
        moved += sum(1 for key in set(ca) | set(cb) if ca.get(key) != cb.get(key))
    return moved


def edge_key_nodes(edge: Mapping[str, Any]) -> tuple[str, str]:
    """(source node id, destination node id) of an edge."""
    return port_node(edge.get("SourceOutputPortId")), port_node(edge.get("DestinationInputPortId"))
