"""Semantic change records between two canonical experiments (experiment.json + layout.json + scripts)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from amlvc.canonical.paths import pointer
from amlvc.review import labels
from amlvc.review.parsed import Parsed
from amlvc.review.records import Change, ExperimentDiff, sort_changes
from amlvc.review.webservice import diff_webservice_file
from amlvc.rules import LAYOUT_FILE, LIST_KEYS

ASSET_FIELDS = ("DataSourceId", "TrainedModelId", "TransformModuleId")
LINE_ENDINGS_ONLY = "line endings only"  # a script saved with other line breaks: no line of it changed


def diff_trees(old: Parsed | None, new: Parsed | None, slug: str = "") -> ExperimentDiff:
    """Compare two experiments (either may be absent) and return their ordered records."""
    if old is None and new is None:
        return ExperimentDiff(slug, "unchanged", ())
    if old is None or new is None:
        # A whole experiment came or went: its status says it (and the JSON patch carries it), not a record per
        # node, and nothing in it is "breaking": a deployed service outlives the files that described it.
        present = new if new is not None else old
        assert present is not None
        return ExperimentDiff(slug, "added" if old is None else "removed", (), labels.experiment_name(present),
                              old, new)
    changes = diff_experiment(old.experiment, new.experiment, old.scripts, new.scripts)
    changes.extend(diff_layout(old.layout, new.layout))
    changes.extend(diff_webservice_file(old.webservice, new.webservice))
    records = sort_changes(changes)
    return ExperimentDiff(slug, "modified" if records else "unchanged", records, labels.experiment_name(new),
                          old, new)


def diff_experiment(old: Mapping[str, Any], new: Mapping[str, Any], old_scripts: Mapping[str, str] | None = None,
                    new_scripts: Mapping[str, str] | None = None) -> list[Change]:
    """Records for experiment.json (scripts are compared through the files their parameters name)."""
    out: list[Change] = []
    for key in sorted(set(old) | set(new)):
        if key in ("Graph", "WebService") or key.startswith("$"):
            continue
        a, b = old.get(key), new.get(key)
        if a != b:
            kind = {"Description": "experiment.renamed", "Summary": "experiment.summary_changed"}.get(
                key, "experiment.property_changed")
            out.append(Change(kind, pointer(key), label=key, old=a, new=b))
    old_graph, new_graph = old.get("Graph") or {}, new.get("Graph") or {}
    old_nodes, new_nodes = old_graph.get("ModuleNodes") or {}, new_graph.get("ModuleNodes") or {}
    scripts_changed = {path for path in set(old_scripts or {}) | set(new_scripts or {})
                       if (old_scripts or {}).get(path) != (new_scripts or {}).get(path)}
    for node_id in sorted(set(old_nodes) | set(new_nodes)):
        a, b = old_nodes.get(node_id), new_nodes.get(node_id)
        if a == b and not (scripts_changed and _script_paths(a) & scripts_changed):
            continue  # most nodes of a big graph are untouched: one C-level comparison each
        out.extend(_diff_node(node_id, old_nodes.get(node_id), new_nodes.get(node_id), old_scripts or {},
                              new_scripts or {}))
    for key in sorted((set(old_graph) | set(new_graph)) - {"ModuleNodes", "EdgesInternal"}):
        if old_graph.get(key) != new_graph.get(key):
            out.append(Change("experiment.property_changed", pointer("Graph", key), label=f"Graph.{key}",
                              old=old_graph.get(key), new=new_graph.get(key)))
    out.extend(_diff_edges(old_graph.get("EdgesInternal") or [], new_graph.get("EdgesInternal") or [],
                           old_nodes, new_nodes))
    old_ws = old.get("WebService") or {}
    out.extend(_diff_webservice(old_ws, new.get("WebService") or {}, published=_published(old_ws)))
    return out


def _published(web_service: Mapping[str, Any]) -> bool:
    """Only a web-service (predictive) experiment has callers: its inputs, outputs and parameters are a contract."""
    return isinstance(web_service, Mapping) and web_service.get("IsWebServiceExperiment") is True


def _script_paths(node: Any) -> set[str]:
    params = node.get("ModuleParameters") if isinstance(node, Mapping) else None
    return {p for p in (labels.script_path(x.get("Value")) for x in params or [] if isinstance(x, Mapping)) if p}


def _diff_node(node_id: str, a: Mapping[str, Any] | None, b: Mapping[str, Any] | None,
               old_scripts: Mapping[str, str], new_scripts: Mapping[str, str]) -> Iterator[Change]:
    base = pointer("Graph", "ModuleNodes", node_id)
    if a is None or b is None:
        present = b if b is not None else a
        assert present is not None
        kind = "node.added" if a is None else "node.removed"
        yield Change(kind, base, node=node_id, label=labels.node_label(node_id, present),
                     old=None if a is None else labels.module_ref(a), new=None if b is None else labels.module_ref(b))
        return
    label = labels.node_label(node_id, b)
    if a.get("ModuleId") != b.get("ModuleId"):
        same = labels.same_family(a.get("ModuleId"), b.get("ModuleId"))
        yield Change("node.module_version_changed" if same else "node.module_replaced", base + "/ModuleId",
                     node=node_id, label=label, old=labels.module_ref(a), new=labels.module_ref(b),
                     detail=labels.version_detail(a.get("ModuleId"), b.get("ModuleId")) if same else "")
    if a.get("Comment") != b.get("Comment"):
        yield Change("node.comment_changed", base + "/Comment", node=node_id, label=label, old=a.get("Comment"),
                     new=b.get("Comment"))
    yield from _diff_parameters(node_id, label, a.get("ModuleParameters") or [], b.get("ModuleParameters") or [],
                                old_scripts, new_scripts)
    for ports in ("InputPortsInternal", "OutputPortsInternal"):
        yield from _diff_ports(node_id, label, ports, a.get(ports) or [], b.get(ports) or [])
    skip = {"ModuleId", "Comment", "ModuleParameters", "InputPortsInternal", "OutputPortsInternal"}
    for key in sorted((set(a) | set(b)) - skip):
        if key.startswith("$") and key != "$absent":
            continue
        if a.get(key) != b.get(key):
            yield Change("node.property_changed", base + pointer(key), node=node_id, label=f"{label} {key}",
                         old=a.get(key), new=b.get(key))


def keyed(items: Sequence[Any], key: str) -> dict[tuple[str, int], tuple[int, Any]]:
    """List items by (identity, occurrence) so duplicate names still pair up in order."""
    seen: dict[str, int] = {}
    out: dict[tuple[str, int], tuple[int, Any]] = {}
    for index, item in enumerate(items):
        ident = str(item.get(key)) if isinstance(item, Mapping) else json.dumps(item, sort_keys=True)
        n = seen.get(ident, 0)
        seen[ident] = n + 1
        out[(ident, n)] = (index, item)
    return out


def _diff_parameters(node_id: str, label: str, old: Sequence[Any], new: Sequence[Any],
                     old_scripts: Mapping[str, str], new_scripts: Mapping[str, str]) -> Iterator[Change]:
    base = pointer("Graph", "ModuleNodes", node_id, "ModuleParameters")
    a_map, b_map = keyed(old, LIST_KEYS["ModuleParameters"]), keyed(new, LIST_KEYS["ModuleParameters"])
    for ident in sorted(set(a_map) | set(b_map), key=lambda k: (b_map.get(k, a_map.get(k, (0, None)))[0], k)):
        name = ident[0]
        if ident not in b_map:
            index, param = a_map[ident]
            yield Change("parameter.removed", pointer_index(base, index), node=node_id, label=f"{label}: {name}",
                         old=labels.display(param.get("Value")))
            continue
        if ident not in a_map:
            index, param = b_map[ident]
            yield Change("parameter.added", pointer_index(base, index), node=node_id, label=f"{label}: {name}",
                         new=labels.display(param.get("Value")))
            continue
        (_, pa), (index, pb) = a_map[ident], b_map[ident]
        yield from _diff_parameter(node_id, f"{label}: {name}", pointer_index(base, index), pa, pb, old_scripts,
                                   new_scripts)


def pointer_index(base: str, index: int) -> str:
    return f"{base}/{index}"


def _diff_parameter(node_id: str, label: str, path: str, a: Mapping[str, Any], b: Mapping[str, Any],
                    old_scripts: Mapping[str, str], new_scripts: Mapping[str, str]) -> Iterator[Change]:
    va, vb = a.get("Value"), b.get("Value")
    sa, sb = labels.script_path(va), labels.script_path(vb)
    if sa is not None or sb is not None:
        text_a = old_scripts.get(sa, "") if sa else labels.display(va)
        text_b = new_scripts.get(sb, "") if sb else labels.display(vb)
        if va != vb or text_a != text_b:
            detail = unified(text_a, text_b, sa or "(inline)", sb or "(inline)") or LINE_ENDINGS_ONLY
            yield Change("script.changed", path + "/Value", node=node_id, label=label, old=sa or "", new=sb or "",
                         detail=detail)
    elif va != vb:
        yield Change("parameter.changed", path + "/Value", node=node_id, label=label, old=labels.display(va),
                     new=labels.display(vb))
    for key in sorted((set(a) | set(b)) - {"Value", "Name"}):
        if a.get(key) != b.get(key):
            yield Change("parameter.changed", path + pointer(key), node=node_id, label=f"{label} [{key}]",
                         old=a.get(key), new=b.get(key))


def unified(a: str, b: str, name_a: str, name_b: str) -> str:
    lines = difflib.unified_diff(a.splitlines(), b.splitlines(), "a/" + name_a, "b/" + name_b, lineterm="")
    return "\n".join(lines)


def _diff_ports(node_id: str, label: str, ports: str, old: Sequence[Any], new: Sequence[Any]) -> Iterator[Change]:
    base = pointer("Graph", "ModuleNodes", node_id, ports)
    a_map, b_map = keyed(old, LIST_KEYS[ports]), keyed(new, LIST_KEYS[ports])
    if set(a_map) != set(b_map):
        yield Change("node.property_changed", base, node=node_id, label=f"{label} {ports}",
                     old=[k[0] for k in a_map], new=[k[0] for k in b_map])
    for ident in sorted(set(a_map) & set(b_map), key=lambda k: b_map[k][0]):
        (_, pa), (index, pb) = a_map[ident], b_map[ident]
        for key in sorted(set(pa) | set(pb)):
            if key.startswith("$") or pa.get(key) == pb.get(key):
                continue
            path = f"{base}/{index}" + pointer(key)
            port_label = f"{label} ← {ident[0]}"
            if key in ASSET_FIELDS:
                same = labels.same_family(pa.get(key), pb.get(key))
                yield Change("asset.version_changed" if same else "asset.replaced", path, node=node_id,
                             label=port_label, old=pa.get(key), new=pb.get(key),
                             detail=labels.version_detail(pa.get(key), pb.get(key)) if same else "")
            else:
                yield Change("node.property_changed", path, node=node_id, label=f"{port_label} {key}",
                             old=pa.get(key), new=pb.get(key))


def edge_key(edge: Mapping[str, Any]) -> tuple[str, str]:
    return (str(edge.get("SourceOutputPortId")), str(edge.get("DestinationInputPortId")))


def _diff_edges(old: Sequence[Any], new: Sequence[Any], old_nodes: Mapping[str, Any],
                new_nodes: Mapping[str, Any]) -> Iterator[Change]:
    a_map = {json.dumps(e, sort_keys=True): (i, e) for i, e in enumerate(old)}
    b_map = {json.dumps(e, sort_keys=True): (i, e) for i, e in enumerate(new)}
    for ident in a_map.keys() - b_map.keys():
        index, edge = a_map[ident]
        yield Change("edge.removed", pointer("Graph", "EdgesInternal", index), label=labels.edge_label(edge, old_nodes),
                     old=dict(edge))
    for ident in b_map.keys() - a_map.keys():
        index, edge = b_map[ident]
        yield Change("edge.added", pointer("Graph", "EdgesInternal", index), label=labels.edge_label(edge, new_nodes),
                     new=dict(edge))


_WS_WORDS = {"Name": "renamed", "PortId": "connected to another port", "Value": "default value changed",
             "ParameterDefinition": "definition changed"}
_WS_LISTS = (("Inputs", "webservice.input"), ("Outputs", "webservice.output"), ("Parameters", "webservice.parameter"))


def _diff_webservice(old: Mapping[str, Any], new: Mapping[str, Any], *, published: bool) -> Iterator[Change]:
    for key, kind in _WS_LISTS:
        a_map, b_map = keyed(old.get(key) or [], LIST_KEYS[key]), keyed(new.get(key) or [], LIST_KEYS[key])
        for ident in sorted(set(a_map) | set(b_map), key=lambda k: (k not in b_map, (b_map.get(k) or a_map[k])[0])):
            if ident not in b_map:
                index, item = a_map[ident]
                yield Change(kind + "_removed", pointer("WebService", key, index), label=str(item.get("Name")),
                             old=item, breaking=published)
            elif ident not in a_map:
                index, item = b_map[ident]
                yield Change(kind + "_added", pointer("WebService", key, index), label=str(item.get("Name")),
                             new=item, breaking=published and _breaking_addition(kind, item))
            elif a_map[ident][1] != b_map[ident][1]:
                (_, ia), (index, ib) = a_map[ident], b_map[ident]
                yield Change(kind + "_changed", pointer("WebService", key, index), label=_ws_label(ia, ib),
                             old=ia, new=ib, breaking=published and _breaking_change(kind, ia, ib),
                             detail=", ".join(_WS_WORDS.get(k, k) for k in sorted(set(ia) | set(ib))
                                              if ia.get(k) != ib.get(k)))
    for key in sorted((set(old) | set(new)) - {"Inputs", "Outputs", "Parameters"}):
        if old.get(key) != new.get(key):
            yield Change("webservice.property_changed", pointer("WebService", key), label=f"WebService.{key}",
                         old=old.get(key), new=new.get(key))


def _ws_label(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    return str(b.get("Name")) if a.get("Name") == b.get("Name") else f"{a.get('Name')} → {b.get('Name')}"


def _breaking_addition(kind: str, item: Mapping[str, Any]) -> bool:
    """A new input, or a new parameter without a default, must be sent by every caller."""
    if kind == "webservice.input":
        return True
    return kind == "webservice.parameter" and not labels.has_default(item)


def _breaking_change(kind: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if kind in ("webservice.input", "webservice.output"):
        return a.get("Name") != b.get("Name")
    type_a = (a.get("ParameterDefinition") or {}).get("ParameterType")
    type_b = (b.get("ParameterDefinition") or {}).get("ParameterType")
    return (labels.has_default(a) and not labels.has_default(b)) or type_a != type_b


def diff_layout(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Layout changes collapse into one record that counts the canvas nodes that moved, came or went."""
    if old == new:
        return []
    moved = labels.layout_moves(old, new)
    if not moved and _renamed_assets_only(old, new):
        return []  # a version bump renames an asset node in place: the asset record says it
    detail = f"{moved} canvas position{'s' if moved != 1 else ''} changed" if moved else "layout metadata changed"
    return [Change("layout.changed", "", file=LAYOUT_FILE, label="layout", old=None, new=moved, detail=detail)]


def _renamed_assets_only(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """The two layouts differ only in the ids of asset nodes (same family, same place on the canvas)."""
    def shape(layout: Mapping[str, Any]) -> Any:
        canvases = {}
        for canvas in ("Graph", "WebService"):
            section = layout.get(canvas)
            if isinstance(section, Mapping):
                items = section.get("positions")
                keyed = [dict(item, node=labels.canvas_key(str(item.get("node")))) if isinstance(item, Mapping)
                         else item for item in (items if isinstance(items, list) else [])]
                canvases[canvas] = {**section, "positions": keyed}
        return {**layout, **canvases}

    return bool(shape(old) == shape(new))
