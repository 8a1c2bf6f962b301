"""The experiment graph as inline SVG, laid out as in Studio: module nodes, the assets feeding them, web-service
ports, with the changed nodes' neighbourhood marked as the view to open on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from amlvc.render.common import AssetNode, WebPort, asset_nodes, graph_edges, graph_nodes, node_states, web_ports
from amlvc.review import labels
from amlvc.review.records import ExperimentDiff

NODE_W, NODE_H = 200, 40
PORT_H = 28
MARGIN = 40


@dataclass(frozen=True)
class Box:
    """One node drawn: a module (`kind` "module") or an asset (`dataset`, `trained-model`, `transform`)."""

    key: str  # module node id, or "asset:<owner.family>"
    kind: str
    label: str
    title: str
    state: str


def svg(d: ExperimentDiff) -> str:
    """The union of both graphs; positions from layout.json (new side first), missing ones laid out by depth."""
    old_exp = d.old.experiment if d.old else {}
    new_exp = d.new.experiment if d.new else {}
    modules: dict[str, Any] = {**graph_nodes(old_exp), **graph_nodes(new_exp)}
    if not modules:
        return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 40"></svg>'
    states = node_states(d)
    boxes = {n: Box(n, "module", labels.module_name(node), labels.node_label(n, node), states.get(n, "unchanged"))
             for n, node in modules.items()}
    old_edges = {labels.edge_key_nodes(e) for e in graph_edges(old_exp)}
    new_edges = {labels.edge_key_nodes(e) for e in graph_edges(new_exp)}
    edges = {(s, t): "removed" if (s, t) not in new_edges else "added" if (s, t) not in old_edges else ""
             for s, t in old_edges | new_edges if s in boxes and t in boxes}
    assets = asset_nodes(d)
    for asset in assets:
        key = f"asset:{asset.key}"
        boxes[key] = Box(key, asset.kind, asset.label, f"{asset.kind} {asset.label}", asset.state)
        edges.update({(key, n): "" if s == "unchanged" else s for n, s in asset.feeds if n in boxes})
    places = _layout(boxes, set(edges), d, assets)
    ports = [p for p in web_ports(d) if p.node in places]
    pills = _place_ports(ports, places)
    full = _bounds([*places.values(), *pills.values()])
    focus, first = _focus(boxes, edges, places, pills, ports) or (full, full)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="canvas" viewBox="{_box(focus)}" data-full="{_box(full)}" '
           f'data-focus="{_box(focus)}" data-first="{_box(first)}" style="height:min(70vh,{full[3]:g}px)" '
           f'role="img" aria-label="experiment graph"><g class="edges">']
    for (src, dst), state in sorted(edges.items()):
        (x1, y1), (x2, y2) = places[src], places[dst]
        sx, sy, tx, ty = x1 + NODE_W / 2, y1 + NODE_H, x2 + NODE_W / 2, y2
        mid = (sy + ty) / 2
        out.append(f'<path class="edge {state}" data-source="{escape(src)}" data-target="{escape(dst)}" '
                   f'd="M{sx:g},{sy:g} C{sx:g},{mid:g} {tx:g},{mid:g} {tx:g},{ty:g}"/>')
    out.append("</g>")
    out += [_node(box, places[key]) for key, box in sorted(boxes.items())]
    out += [_port(port, pills[port.port_id], places[port.node]) for port in ports]
    out.append("</svg>")
    return "".join(out)


def _node(box: Box, place: tuple[float, float]) -> str:
    x, y = place
    most = 26 if box.kind == "module" else 30  # asset labels are set smaller
    shown = box.label if len(box.label) <= most else box.label[:most - 1] + "…"
    cls, round_ = ("node", 6) if box.kind == "module" else (f"node asset {box.kind}", NODE_H / 2)
    return (f'<g class="{cls} {box.state}" data-node-id="{escape(box.key)}" data-state="{box.state}">'
            f"<title>{escape(box.title)} ({box.state})</title>"
            f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="{round_:g}"/>'
            f'<text x="{x + 10:g}" y="{y + 25:g}">{escape(shown)}</text></g>')


def _port(port: WebPort, pill: tuple[float, float], node: tuple[float, float]) -> str:
    (px, py), (nx, ny) = pill, node
    top, bottom = (py + PORT_H, ny) if port.direction == "input" else (ny + NODE_H, py)
    cls = f"port {port.direction} {port.state}{' breaking' if port.breaking else ''}"
    return (f'<g class="{cls}" data-port-id="{escape(port.port_id)}" data-state="{port.state}">'
            f"<title>web-service {port.direction} {escape(port.name)} ({port.state}"
            f"{', breaking' if port.breaking else ''})</title>"
            f'<path class="wire" d="M{nx + NODE_W / 2:g},{top:g} L{nx + NODE_W / 2:g},{bottom:g}"/>'
            f'<rect x="{px:g}" y="{py:g}" width="{NODE_W}" height="{PORT_H}" rx="{PORT_H / 2:g}"/>'
            f'<text x="{px + 14:g}" y="{py + 19:g}">{escape(port.direction)}: {escape(port.name[:30])}</text></g>')


Bounds = tuple[float, float, float, float]  # x, y, width, height


def _box(b: Bounds) -> str:
    return " ".join(f"{v:g}" for v in b)


def _bounds(corners: list[tuple[float, float]]) -> Bounds:
    min_x, min_y = min(x for x, _ in corners) - MARGIN / 2, min(y for _, y in corners) - MARGIN / 2
    return (min_x, min_y, max(x for x, _ in corners) + NODE_W + MARGIN / 2 - min_x,
            max(y for _, y in corners) + NODE_H + MARGIN / 2 - min_y)


def _focus(boxes: Mapping[str, Box], edges: Mapping[tuple[str, str], str], places: Mapping[str, tuple[float, float]],
           pills: Mapping[str, tuple[float, float]], ports: list[WebPort]) -> tuple[Bounds, Bounds] | None:
    """Where the eye should land: the changed nodes, ports and edges with the nodes next to them, and (when
    they lie far apart) the top-most changed node with its neighbours."""
    changed = {k for k, b in boxes.items() if b.state != "unchanged"}
    changed |= {k for edge, state in edges.items() if state for k in edge}
    changed |= {p.node for p in ports if p.state != "unchanged"}
    if not changed:
        return None

    def around(keys: set[str]) -> Bounds:
        near = keys | {k for edge in edges for k in edge if set(edge) & keys}
        return _bounds([places[k] for k in near] + [pills[p.port_id] for p in ports if p.node in keys])

    top = min(changed, key=lambda k: (places[k][1], places[k][0], k))
    return around(changed), around({top})


def _place_ports(ports: list[WebPort], places: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Web-service ports sit straight above (inputs) or below (outputs) the module they connect to."""
    placed: dict[str, tuple[float, float]] = {}
    stacked: dict[tuple[str, str], int] = {}
    for port in ports:
        x, y = places[port.node]
        slot = stacked.get((port.node, port.direction), 0)
        stacked[(port.node, port.direction)] = slot + 1
        step = (PORT_H + 40) * (slot + 1)
        placed[port.port_id] = (x + slot * 12, y - step) if port.direction == "input" else (x + slot * 12,
                                                                                             y + NODE_H + step - PORT_H)
    return placed


def _layout(boxes: Mapping[str, Box], edges: set[tuple[str, str]], d: ExperimentDiff,
            assets: list[AssetNode]) -> dict[str, tuple[float, float]]:
    """Studio's positions (layout.json; assets by their ids), the rest by depth below them."""
    known: dict[str, tuple[float, float]] = {}
    for tree in (d.old, d.new):  # the new side wins where both have a position
        if tree is None:
            continue
        for node_id, position in labels.positions(tree.layout).items():
            parts = position.split(",")
            try:
                known[node_id] = (float(parts[0]), float(parts[1]))
            except (ValueError, IndexError):
                continue
    placed = {k: known[k] for k in boxes if k in known}
    for asset in assets:
        where = next((known[i] for i in asset.ids if i in known), None)
        if where is not None:
            placed[f"asset:{asset.key}"] = where
    missing = [n for n in sorted(boxes) if n not in placed]
    if missing:
        depth = _depths(boxes, edges)
        base_y = max((y for _, y in placed.values()), default=-NODE_H * 3) + NODE_H * 3
        row_count: dict[int, int] = {}
        for node_id in missing:
            level = depth.get(node_id, 0)
            column = row_count.get(level, 0)
            row_count[level] = column + 1
            placed[node_id] = (column * (NODE_W + 40), base_y + level * NODE_H * 2.5)
    return placed


def _depths(nodes: Mapping[str, Any], edges: set[tuple[str, str]]) -> dict[str, int]:
    """Longest-path depth of each node (cycles, impossible in a valid graph, are cut)."""
    incoming: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        if src in incoming and dst in incoming:
            incoming[dst].append(src)
    depth: dict[str, int] = {}
    for start in sorted(nodes):
        stack = [(start, False)]
        visiting: set[str] = set()
        while stack:
            node_id, done = stack.pop()
            if node_id in depth:
                continue
            if done:
                visiting.discard(node_id)
                depth[node_id] = 1 + max((depth.get(p, 0) for p in incoming[node_id]), default=-1)
                continue
            visiting.add(node_id)
            stack.append((node_id, True))
            stack.extend((p, False) for p in incoming[node_id] if p not in depth and p not in visiting)
    return depth
