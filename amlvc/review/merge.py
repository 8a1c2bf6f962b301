"""Three-way merge of canonical experiment files by node id, port, parameter and edge; validation of the result."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amlvc import rules
from amlvc.canonical.paths import pointer
from amlvc.review import labels

CONFLICT = rules.CONFLICT_KEY
_MISSING: Any = object()
# Lists whose items have identity: merged item by item (path suffix -> identity key of the items).
# Annotations derived from other fields: they follow the merged field and never conflict by themselves.
_DERIVED = ("$module", "$asset")


@dataclass(frozen=True)
class Conflict:
    """One place both sides changed differently; `path` is a JSON Pointer into the merged file."""

    path: str
    reason: str
    base: Any
    ours: Any
    theirs: Any


@dataclass(frozen=True)
class MergeResult:
    """The merged document (with `$conflict` markers where `conflicts` says) and any notes on auto-resolutions."""

    merged: dict[str, Any]
    conflicts: tuple[Conflict, ...]
    notes: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.conflicts


def marker(base: Any, ours: Any, theirs: Any, reason: str) -> dict[str, Any]:
    """The conflict marker written into the file: sides that deleted the value are left out."""
    sides = {name: value for name, value in (("base", base), ("ours", ours), ("theirs", theirs))
             if value is not _MISSING}
    return {CONFLICT: {**sides, "reason": reason}}


class _Merger:
    def __init__(self, describe: Callable[[str, Any, Any, Any], str]) -> None:
        self.conflicts: list[Conflict] = []
        self.describe = describe

    def conflict(self, path: str, base: Any, ours: Any, theirs: Any) -> Any:
        reason = self.describe(path, base, ours, theirs)
        self.conflicts.append(Conflict(path, reason, _plain(base), _plain(ours), _plain(theirs)))
        return marker(base, ours, theirs, reason)

    def merge(self, base: Any, ours: Any, theirs: Any, path: str) -> Any:
        if _equal(ours, theirs):
            return ours
        if _equal(ours, base):
            return theirs
        if _equal(theirs, base):
            return ours
        if isinstance(ours, dict) and isinstance(theirs, dict) and (base is _MISSING or isinstance(base, dict)):
            return self.merge_dicts(base if isinstance(base, dict) else {}, ours, theirs, path)
        last = path.rsplit("/", 1)[-1]
        if isinstance(ours, list) and isinstance(theirs, list) and isinstance(base, list):
            if last == "EdgesInternal":
                return self.merge_edges(base, ours, theirs, path)
            if last in rules.LIST_KEYS:
                return self.merge_keyed(base, ours, theirs, path, rules.LIST_KEYS[last])
        return self.conflict(path, base, ours, theirs)

    def merge_dicts(self, base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any], path: str) -> Any:
        out: dict[str, Any] = {}
        for key in [*ours, *(k for k in theirs if k not in ours), *(k for k in base if k not in ours and k
                                                                      not in theirs)]:
            b, o, t = base.get(key, _MISSING), ours.get(key, _MISSING), theirs.get(key, _MISSING)
            if key in _DERIVED:
                value = o if not _equal(o, b) or t is _MISSING else t
            else:
                value = self.merge(b, o, t, path + pointer(key))
            if value is not _MISSING:
                out[key] = value
        return out

    def merge_keyed(self, base: list[Any], ours: list[Any], theirs: list[Any], path: str, key: str) -> list[Any]:
        """Items matched by identity; the order is ours, with their new items after their predecessor."""
        bm, om, tm = _by_key(base, key), _by_key(ours, key), _by_key(theirs, key)
        order = list(om)
        for index, ident in enumerate(tm):
            if ident in om or ident in bm:
                continue
            after = next((p for p in reversed(list(tm)[:index]) if p in order), None)
            order.insert(order.index(after) + 1 if after is not None else 0, ident)
        order += [ident for ident in bm if ident not in order]
        out: list[Any] = []
        for ident in order:
            value = self.merge(bm.get(ident, _MISSING), om.get(ident, _MISSING), tm.get(ident, _MISSING),
                               f"{path}/{len(out)}")
            if value is not _MISSING:
                out.append(value)
        return out

    def merge_edges(self, base: list[Any], ours: list[Any], theirs: list[Any], path: str) -> list[Any]:
        """An edge survives unless a side removed it; edges are kept in (source, destination) order."""
        bm, om, tm = (_by_edge(x) for x in (base, ours, theirs))
        out: list[Any] = []
        for ident in sorted(set(bm) | set(om) | set(tm)):
            value = self.merge(bm.get(ident, _MISSING), om.get(ident, _MISSING), tm.get(ident, _MISSING),
                               f"{path}/{len(out)}")
            if value is not _MISSING:
                out.append(value)
        return out


def _equal(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return bool(a == b)


def _plain(value: Any) -> Any:
    return None if value is _MISSING else value


def _by_key(items: Sequence[Any], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        ident = str(item.get(key)) if isinstance(item, Mapping) else json.dumps(item, sort_keys=True)
        n = 0
        while f"{ident}#{n}" in out:
            n += 1
        out[f"{ident}#{n}"] = item
    return out


def _by_edge(items: Sequence[Any]) -> dict[tuple[str, str], Any]:
    return {difftree_edge(item): item for item in items if isinstance(item, Mapping)}


def difftree_edge(edge: Mapping[str, Any]) -> tuple[str, str]:
    return str(edge.get("SourceOutputPortId")), str(edge.get("DestinationInputPortId"))


# --- experiment.json ---


def merge_experiment(base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> MergeResult:
    """Merge three canonical experiment.json values; conflicts and an invalid result are reported."""
    merger = _Merger(_describe_experiment(base, ours, theirs))
    merged = merger.merge_dicts(dict(base), dict(ours), dict(theirs), "")
    _sort_ports(merged)
    _reject_dangling(merged, base, ours, theirs, merger)
    problems = [] if merger.conflicts else validate_experiment(merged)
    merger.conflicts.extend(Conflict("", f"the merged graph is invalid: {p}", None, None, None) for p in problems)
    _mark_document(merged, merger.conflicts, problems)
    return MergeResult(merged, tuple(merger.conflicts))


def _mark_document(merged: dict[str, Any], conflicts: Sequence[Conflict], problems: Sequence[str]) -> None:
    """A conflicted file also gets a top-level marker: any canonical check rejects it until it is deleted."""
    if not conflicts:
        return
    merged[CONFLICT] = {"reason": "unresolved merge: resolve every $conflict marker (or the problems), then "
                                  "delete this key",
                        "conflicts": [c.path or "/" for c in conflicts if not c.reason.startswith("the merged graph")],
                        **({"problems": list(problems)} if problems else {})}


def _sort_ports(merged: dict[str, Any]) -> None:
    """Web-service ports in canonical order (by Id, then PortId and Name), as normalize writes them."""
    ws = merged.get("WebService")
    for key in ("Inputs", "Outputs"):
        ports = ws.get(key) if isinstance(ws, dict) else None
        if isinstance(ports, list) and all(isinstance(p, dict) for p in ports):
            ports.sort(key=lambda p: (str(p.get("Id", "")), str(p.get("PortId", "")), str(p.get("Name", "")),
                                      json.dumps(p, sort_keys=True)))


def _nodes(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    graph = doc.get("Graph")
    nodes = graph.get("ModuleNodes") if isinstance(graph, Mapping) else None
    return nodes if isinstance(nodes, Mapping) else {}


def _describe_experiment(base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any]
                         ) -> Callable[[str, Any, Any, Any], str]:
    nodes = {**_nodes(base), **_nodes(theirs), **_nodes(ours)}

    def describe(path: str, b: Any, o: Any, t: Any) -> str:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        subject = "/".join(parts) or "the document"
        if len(parts) >= 3 and parts[:2] == ["Graph", "ModuleNodes"]:
            node = nodes.get(parts[2], {})
            subject = f"node {labels.node_label(parts[2], node)}"
            if len(parts) == 3:
                side = "ours" if o is _MISSING else "theirs"
                other = "theirs" if side == "ours" else "ours"
                if b is _MISSING:
                    return f"{subject} added differently on both sides"
                return f"{subject} was deleted by {side} and edited by {other}"
            if len(parts) >= 5 and parts[3] == "ModuleParameters":
                name = _param_name(o, t, b, nodes.get(parts[2], {}), parts[4])
                return (f"parameter {name!r} of {subject} changed differently: ours {_show(o)}, theirs {_show(t)} "
                        f"(base {_show(b)})")
            return f"{subject}: {'/'.join(parts[3:])} changed differently: ours {_show(o)}, theirs {_show(t)}"
        return f"{subject} changed differently: ours {_show(o)}, theirs {_show(t)} (base {_show(b)})"

    return describe


def _param_name(o: Any, t: Any, b: Any, node: Any, index: str) -> str:
    for side in (o, t, b):
        if isinstance(side, Mapping) and "Name" in side:
            return str(side["Name"])
    params = node.get("ModuleParameters") if isinstance(node, Mapping) else None
    if isinstance(params, list) and index.isdigit() and int(index) < len(params):
        return str(params[int(index)].get("Name"))
    return index


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(deleted)"
    if isinstance(value, Mapping) and "Value" in value and "Name" in value:
        value = value["Value"]
    text = labels.display(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _reject_dangling(merged: dict[str, Any], base: Mapping[str, Any], ours: Mapping[str, Any],
                     theirs: Mapping[str, Any], merger: _Merger) -> None:
    """An edge or web-service port one side added on a node the other side removed is a conflict."""
    nodes = _nodes(merged)
    removed_by = {n: "ours" for n in _nodes(base) if n not in _nodes(ours)}
    removed_by.update({n: "theirs" for n in _nodes(base) if n not in _nodes(theirs)})
    graph = merged.get("Graph")
    edges = graph.get("EdgesInternal") if isinstance(graph, dict) else None
    if not isinstance(edges, list):
        edges = []
    for index, edge in enumerate(edges):
        if not isinstance(edge, dict) or CONFLICT in edge:
            continue
        for end in ("SourceOutputPortId", "DestinationInputPortId"):
            node_id = labels.port_node(edge.get(end))
            if node_id not in nodes and node_id in removed_by:
                side = removed_by[node_id]
                other = "theirs" if side == "ours" else "ours"
                known = {**_nodes(base), **_nodes(ours), **_nodes(theirs)}
                reason = (f"edge {labels.edge_label(edge, known)} was added by {other} to node "
                          f"{labels.short_id(node_id)}, which {side} removed")
                edges[index] = marker(_MISSING, edge if other == "ours" else _MISSING,
                                      edge if other == "theirs" else _MISSING, reason)
                merger.conflicts.append(Conflict(f"/Graph/EdgesInternal/{index}", reason, None, edge, edge))
                break
    ws = merged.get("WebService")
    for key in ("Inputs", "Outputs"):
        ports = ws.get(key) if isinstance(ws, dict) else None
        if not isinstance(ports, list):
            continue
        for index, port in enumerate(ports):
            if not isinstance(port, dict) or CONFLICT in port:
                continue
            node_id = labels.port_node(port.get("PortId"))
            if node_id not in nodes and node_id in removed_by:
                reason = (f"web-service {key[:-1].lower()} {port.get('Name')!r} points at node "
                          f"{labels.short_id(node_id)}, which {removed_by[node_id]} removed")
                ports[index] = marker(_MISSING, port, port, reason)
                merger.conflicts.append(Conflict(f"/WebService/{key}/{index}", reason, None, port, port))


def validate_experiment(doc: Mapping[str, Any]) -> list[str]:
    """Problems of a merged graph: dangling edges, cycles, web-service ports on missing nodes or ports."""
    problems: list[str] = []
    nodes = _nodes(doc)

    def port_exists(port_id: Any, ports: str) -> bool:
        node_id, _, name = str(port_id).rpartition(":")
        node = nodes.get(node_id)
        if not isinstance(node, Mapping):
            return False
        listed = node.get(ports)
        # A node without the port list (not in this canonical form) cannot be checked port by port.
        return not isinstance(listed, list) or any(isinstance(p, Mapping) and p.get("Name") == name for p in listed)

    graph = doc.get("Graph")
    edges = graph.get("EdgesInternal") if isinstance(graph, Mapping) else None
    successors: dict[str, set[str]] = {n: set() for n in nodes}
    for edge in edges if isinstance(edges, list) else []:
        if not isinstance(edge, Mapping):
            continue
        src, dst = edge.get("SourceOutputPortId"), edge.get("DestinationInputPortId")
        if not port_exists(src, "OutputPortsInternal"):
            problems.append(f"edge from {src} starts at a node or output port that does not exist")
        elif not port_exists(dst, "InputPortsInternal"):
            problems.append(f"edge to {dst} ends at a node or input port that does not exist")
        else:
            successors[labels.port_node(src)].add(labels.port_node(dst))
    cycle = _find_cycle(successors)
    if cycle:
        problems.append("the graph has a cycle: " + " → ".join(labels.short_id(n) for n in cycle))
    ws = doc.get("WebService")
    for key, ports in (("Inputs", "InputPortsInternal"), ("Outputs", "OutputPortsInternal")):
        items = ws.get(key) if isinstance(ws, Mapping) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and not port_exists(item.get("PortId"), ports):
                problems.append(f"web-service {key[:-1].lower()} {item.get('Name')!r} is connected to "
                                f"{item.get('PortId')}, which does not exist")
    return problems


def _find_cycle(successors: Mapping[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    for start in sorted(successors):
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(successors[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(successors.get(nxt, ()))))
    return []


# --- layout.json and other JSON files ---


def merge_layout(base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> MergeResult:
    """Positions merge per node; where both sides moved a node differently ours wins (layout is cosmetic)."""
    notes: list[str] = []

    def describe(path: str, b: Any, o: Any, t: Any) -> str:
        return f"{path} changed differently"

    merger = _Merger(describe)
    merged: dict[str, Any] = {}
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        b, o, t = base.get(key, _MISSING), ours.get(key, _MISSING), theirs.get(key, _MISSING)
        if key in ("Graph", "WebService") and all(isinstance(x, Mapping) for x in (o, t)):
            merged[key] = _merge_canvas(b if isinstance(b, Mapping) else {}, o, t, key, notes)
            continue
        value = merger.merge(b, o, t, pointer(key))
        if isinstance(value, dict) and CONFLICT in json.dumps(value):
            value = o
            notes.append(f"{key}: both sides changed it; kept ours")
        if value is not _MISSING:
            merged[key] = value
    return MergeResult(merged, (), tuple(notes))


def _merge_canvas(base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any], canvas: str,
                  notes: list[str]) -> dict[str, Any]:
    def table(section: Mapping[str, Any]) -> dict[str, Any]:
        items = section.get("positions")
        return {str(i.get("node")): i for i in items if isinstance(i, Mapping)} if isinstance(items, list) else {}

    bt, ot, tt = table(base), table(ours), table(theirs)
    order = list(ot) + [n for n in tt if n not in ot and n not in bt]
    positions = []
    for node in order:
        b, o, t = bt.get(node, _MISSING), ot.get(node, _MISSING), tt.get(node, _MISSING)
        if _equal(o, b) and not _equal(t, b):
            value = t
        else:
            value = o
            if not _equal(t, b) and not _equal(o, t) and o is not _MISSING:
                notes.append(f"{canvas} position of {labels.short_id(node)} moved on both sides; kept ours")
        if value is not _MISSING:
            positions.append(value)
    out = {k: v for k, v in ours.items() if k != "positions"}
    for key, value in theirs.items():
        if key != "positions" and key not in ours and key not in base:
            out[key] = value
    # Raw XML only stands for the positions it was parsed with; a changed position list makes layout.py rebuild it.
    if "raw" in out and positions != ours.get("positions"):
        out.pop("raw")
    out["positions"] = positions
    return out


def merge_json(base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> MergeResult:
    """Any other JSON file (webservice.json): objects merge key by key, anything else must agree."""
    def describe(path: str, b: Any, o: Any, t: Any) -> str:
        return f"{path or '/'} changed differently: ours {_show(o)}, theirs {_show(t)} (base {_show(b)})"

    merger = _Merger(describe)
    merged = merger.merge_dicts(dict(base), dict(ours), dict(theirs), "")
    _mark_document(merged, merger.conflicts, ())
    return MergeResult(merged, tuple(merger.conflicts))


def report(result: MergeResult, path: str) -> str:
    """The conflict report git shows when the merge driver stops."""
    if result.clean:
        return "".join(f"amlvc merge: {path}: {note}\n" for note in result.notes)
    lines = [f"CONFLICT (amlvc): {path}: {len(result.conflicts)} conflict(s); the file holds "
             f'"{CONFLICT}" markers that `amlvc normalize --check` rejects until you resolve them:']
    lines += [f"  {c.path or '/'}: {c.reason}" for c in result.conflicts]
    lines.append("Resolve: replace each {\"$conflict\": …} object by the value to keep, then `git add` the file.")
    return "\n".join(lines) + "\n"
