"""The standalone report: per experiment the graph as inline SVG laid out from layout.json, changes beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from amlvc.render.common import WebPort, active, describe, graph_edges, graph_nodes, node_states, summary, web_ports
from amlvc.review import labels
from amlvc.review.records import ExperimentDiff

NODE_W, NODE_H = 200, 40
PORT_H = 28
_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#fff}
header{padding:12px 20px;border-bottom:1px solid #d0d7de;background:#f6f8fa}h1{font-size:20px;margin:0}
section.experiment{padding:12px 20px;border-bottom:1px solid #d0d7de}h2{font-size:17px;margin:4px 0 8px}
.cols{display:flex;gap:16px;align-items:flex-start}.graph{flex:3;min-width:0;border:1px solid #d0d7de;
border-radius:6px;overflow:auto;max-height:80vh}.graph svg{display:block;width:100%;height:auto}
ol.changes{flex:2;margin:0;padding:0 0 0 4px;list-style:none;max-height:80vh;overflow:auto}
li.change{padding:4px 8px;margin:2px 0;border-left:4px solid #d4a72c;background:#fff8c5;border-radius:3px;
cursor:pointer}li.added{border-color:#1a7f37;background:#dafbe1}li.removed{border-color:#cf222e;background:#ffebe9}
li.breaking .flag{color:#fff;background:#cf222e;border-radius:3px;padding:0 4px;font-weight:600;margin-left:6px}
li pre{margin:4px 0 0;font-size:12px;white-space:pre-wrap}.sigil{font-family:monospace;font-weight:700;margin-right:6px}
g.node rect{fill:#fff;stroke:#8c959f;stroke-width:1.5}g.node text{font-size:13px;fill:#1f2328}
g.node.added rect{fill:#dafbe1;stroke:#1a7f37;stroke-width:3}g.node.removed rect{fill:#ffebe9;stroke:#cf222e;
stroke-width:3;stroke-dasharray:6 4}g.node.changed rect{fill:#fff8c5;stroke:#9a6700;stroke-width:3}
g.node.focus rect{stroke:#0969da;stroke-width:5}path.edge{fill:none;stroke:#8c959f;stroke-width:1.5}
path.edge.added{stroke:#1a7f37;stroke-width:2.5}path.edge.removed{stroke:#cf222e;stroke-width:2.5;stroke-dasharray:6 4}
g.port rect{fill:#ddf4ff;stroke:#0969da;stroke-width:1.5}g.port text{font-size:12px;fill:#0550ae}
g.port path.wire{stroke:#0969da;stroke-dasharray:3 3;fill:none}g.port.added rect{fill:#dafbe1;stroke:#1a7f37}
g.port.removed rect{fill:#ffebe9;stroke:#cf222e;stroke-dasharray:6 4}g.port.changed rect{fill:#fff8c5;stroke:#9a6700}
g.port.breaking rect{stroke:#cf222e;stroke-width:4}
.legend span{margin-right:12px}.sw{display:inline-block;width:12px;height:12px;border:2px solid #9a6700;
background:#fff8c5;margin-right:4px;vertical-align:-2px;border-radius:2px}.sw.added{border-color:#1a7f37;
background:#dafbe1}.sw.removed{border-color:#cf222e;background:#ffebe9}.meta{color:#59636e}
"""
# Clicking a change outlines its node; the page works without it.
_JS = """
document.querySelectorAll('li.change[data-node]').forEach(function(li){li.addEventListener('click',function(){
var s=li.closest('section');s.querySelectorAll('g.node.focus').forEach(function(g){g.classList.remove('focus')});
var g=s.querySelector('g.node[data-node-id="'+li.dataset.node+'"]');if(g){g.classList.add('focus');
g.scrollIntoView({block:'center',inline:'center'});}});});
"""


def render_html(diffs: Sequence[ExperimentDiff], *, title: str = "") -> str:
    shown = active(diffs)
    heading = escape(title or "amlvc diff")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{heading}</title>",
             f"<style>{_CSS}</style></head><body>", f"<header><h1>{heading}</h1>",
             f'<div class="meta">{len(shown)} experiment(s) changed'
             f'{"; <strong>breaking web-service changes</strong>" if any(d.breaking for d in shown) else ""}</div>',
             "</header>"]
    if not shown:
        parts.append('<section class="experiment empty"><p>No experiment changed.</p></section>')
    parts += [_section(d) for d in shown]
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _section(d: ExperimentDiff) -> str:
    name = f" — {escape(d.name)}" if d.name and d.name != d.slug else ""
    items = []
    for change in d.changes:
        line = describe(change)
        cls = {"+": "added", "-": "removed"}.get(line.sigil, "changed")
        flag = '<span class="flag">BREAKING</span>' if line.breaking else ""
        node = f' data-node="{escape(change.node)}"' if change.node else ""
        text = f": {escape(line.text)}" if line.text else ""
        extra = f"<pre>{escape(change.detail)}</pre>" if change.kind == "script.changed" and change.detail else ""
        items.append(f'<li class="change {cls}{" breaking" if line.breaking else ""}" data-kind="{change.kind}" '
                     f'data-path="{escape(change.path)}" data-file="{change.file}"{node}>'
                     f'<span class="sigil">{escape(line.sigil)}</span>{escape(line.subject)}{text}{flag}{extra}</li>')
    return (f'<section class="experiment{" breaking" if d.breaking else ""}" data-slug="{escape(d.slug)}">'
            f"<h2>{escape(d.slug)}{name} <small>({d.status}: {escape(summary(d))})</small></h2>"
            '<div class="legend"><span><i class="sw added"></i>added</span>'
            '<span><i class="sw removed"></i>removed</span><span><i class="sw changed"></i>changed</span></div>'
            f'<div class="cols"><div class="graph">{svg(d)}</div><ol class="changes">{"".join(items)}</ol></div>'
            "</section>")


def svg(d: ExperimentDiff) -> str:
    """The union of both graphs; positions from layout.json (new side first), missing ones laid out by depth."""
    old_exp = d.old.experiment if d.old else {}
    new_exp = d.new.experiment if d.new else {}
    nodes: dict[str, Any] = {**graph_nodes(old_exp), **graph_nodes(new_exp)}
    if not nodes:
        return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 40"></svg>'
    old_edges = {labels.edge_key_nodes(e) for e in graph_edges(old_exp)}
    new_edges = {labels.edge_key_nodes(e) for e in graph_edges(new_exp)}
    boxes = _layout(nodes, old_edges | new_edges, d)
    states = node_states(d)
    ports = [p for p in web_ports(d) if p.node in boxes]
    pills = _place_ports(ports, boxes, d)
    corners = [*boxes.values(), *pills.values()]
    min_x = min(x for x, _ in corners) - 20
    min_y = min(y for _, y in corners) - 20
    width = max(x for x, _ in corners) + NODE_W + 20 - min_x
    height = max(y for _, y in corners) + NODE_H + 20 - min_y
    # Never drawn larger than life: a 4-node graph would otherwise fill the screen.
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{min_x:g} {min_y:g} {width:g} {height:g}" '
           f'style="max-width:{width:g}px" role="img" aria-label="experiment graph">']
    for src, dst in sorted(old_edges | new_edges):
        if src not in boxes or dst not in boxes:
            continue
        cls = "removed" if (src, dst) not in new_edges else "added" if (src, dst) not in old_edges else ""
        (x1, y1), (x2, y2) = boxes[src], boxes[dst]
        sx, sy, tx, ty = x1 + NODE_W / 2, y1 + NODE_H, x2 + NODE_W / 2, y2
        mid = (sy + ty) / 2
        out.append(f'<path class="edge {cls}" data-source="{escape(src)}" data-target="{escape(dst)}" '
                   f'd="M{sx:g},{sy:g} C{sx:g},{mid:g} {tx:g},{mid:g} {tx:g},{ty:g}"/>')
    for node_id in sorted(nodes):
        x, y = boxes[node_id]
        state = states.get(node_id, "unchanged")
        label = labels.module_name(nodes[node_id])
        shown = label if len(label) <= 26 else label[:25] + "…"
        out.append(f'<g class="node {state}" data-node-id="{escape(node_id)}" data-state="{state}">'
                   f"<title>{escape(labels.node_label(node_id, nodes[node_id]))} ({state})</title>"
                   f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
                   f'<text x="{x + 10:g}" y="{y + 25:g}">{escape(shown)}</text></g>')
    for port in ports:
        (px, py), (nx, ny) = pills[port.port_id], boxes[port.node]
        top, bottom = (py + PORT_H, ny) if port.direction == "input" else (ny + NODE_H, py)
        cls = f"port {port.direction} {port.state}{' breaking' if port.breaking else ''}"
        out.append(f'<g class="{cls}" data-port-id="{escape(port.port_id)}" data-state="{port.state}">'
                   f"<title>web-service {port.direction} {escape(port.name)} ({port.state}"
                   f"{', breaking' if port.breaking else ''})</title>"
                   f'<path class="wire" d="M{nx + NODE_W / 2:g},{top:g} L{nx + NODE_W / 2:g},{bottom:g}"/>'
                   f'<rect x="{px:g}" y="{py:g}" width="{NODE_W}" height="{PORT_H}" rx="{PORT_H / 2:g}"/>'
                   f'<text x="{px + 14:g}" y="{py + 19:g}">{escape(port.direction)}: {escape(port.name[:30])}</text>'
                   "</g>")
    out.append("</svg>")
    return "".join(out)


def _place_ports(ports: list[WebPort], boxes: Mapping[str, tuple[float, float]], d: ExperimentDiff
                 ) -> dict[str, tuple[float, float]]:
    """Web-service ports sit straight above (inputs) or below (outputs) the module they connect to."""
    placed: dict[str, tuple[float, float]] = {}
    stacked: dict[tuple[str, str], int] = {}
    for port in ports:
        x, y = boxes[port.node]
        slot = stacked.get((port.node, port.direction), 0)
        stacked[(port.node, port.direction)] = slot + 1
        step = (PORT_H + 40) * (slot + 1)
        placed[port.port_id] = (x + slot * 12, y - step) if port.direction == "input" else (x + slot * 12,
                                                                                             y + NODE_H + step - PORT_H)
    return placed


def _layout(nodes: Mapping[str, Any], edges: set[tuple[str, str]], d: ExperimentDiff) -> dict[str, tuple[float, float]]:
    placed: dict[str, tuple[float, float]] = {}
    for tree in (d.old, d.new):  # the new side wins where both have a position
        if tree is None:
            continue
        for node_id, position in labels.positions(tree.layout).items():
            parts = position.split(",")
            try:
                placed[node_id] = (float(parts[0]), float(parts[1]))
            except (ValueError, IndexError):
                continue
    missing = [n for n in sorted(nodes) if n not in placed]
    if missing:
        depth = _depths(nodes, edges)
        base_y = max((y for _, y in placed.values()), default=-NODE_H * 3) + NODE_H * 3
        row_count: dict[int, int] = {}
        for node_id in missing:
            level = depth.get(node_id, 0)
            column = row_count.get(level, 0)
            row_count[level] = column + 1
            placed[node_id] = (column * (NODE_W + 40), base_y + level * NODE_H * 2.5)
    return {n: placed[n] for n in nodes}


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
