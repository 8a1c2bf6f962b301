"""The mermaid flowchart of an experiment's change: modules, the assets feeding them, web-service ports, styled."""

from __future__ import annotations

import re
from typing import Any

from amlvc.render.common import asset_nodes, graph_edges, graph_nodes, node_states, web_ports
from amlvc.review import labels
from amlvc.review.records import ExperimentDiff

# GitHub refuses mermaid sources over ~50 kB; big graphs show changed nodes and their neighbours only.
MAX_MERMAID_NODES = 60
_CLASSES = ("classDef added fill:#dafbe1,stroke:#1a7f37,color:#1a7f37",
            "classDef removed fill:#ffebe9,stroke:#cf222e,color:#cf222e,stroke-dasharray:4 3",
            "classDef changed fill:#fff8c5,stroke:#9a6700,color:#6f4b00",
            "classDef breaking fill:#ffebe9,stroke:#cf222e,stroke-width:3px,color:#cf222e",
            "classDef asset fill:#f6f8fa,stroke:#8c959f,color:#59636e")
# Studio's shapes, roughly: datasets are cylinders, trained models boxes with bars, transforms hexagons.
_SHAPES = {"dataset": ('[("', '")]'), "trained-model": ('[["', '"]]'), "transform": ('{{"', '"}}')}
# Characters mermaid would read as syntax, markup or an entity inside a quoted label: written as entity codes.
_LABEL_UNSAFE = re.compile(r'["#<>&`\\]')


def label(text: str) -> str:
    """Text for a quoted mermaid label, shown as typed (`"` `#` `<` `>` `&` backtick and backslash as `#NN;`)."""
    return _LABEL_UNSAFE.sub(lambda m: f"#{ord(m.group(0))};", text.replace("\n", " "))


def flowchart(d: ExperimentDiff) -> str:
    """A flowchart of the union of both graphs; added, removed and changed nodes styled; assets as input nodes."""
    old_nodes = graph_nodes(d.old.experiment if d.old else {})
    new_nodes = graph_nodes(d.new.experiment if d.new else {})
    nodes: dict[str, Any] = {**old_nodes, **new_nodes}
    if not nodes:
        return ""
    states = node_states(d)
    edges = {labels.edge_key_nodes(e) for e in graph_edges(d.old.experiment if d.old else {})}
    new_edges = {labels.edge_key_nodes(e) for e in graph_edges(d.new.experiment if d.new else {})}
    all_edges = sorted(edges | new_edges)
    keep = set(nodes)
    if len(nodes) > MAX_MERMAID_NODES:
        keep = set(states)
        for src, dst in all_edges:
            if src in states or dst in states:
                keep.update((src, dst))
        keep &= set(nodes)
    omitted = len(nodes) - len(keep)
    ids = {node_id: f"n{i}" for i, node_id in enumerate(sorted(keep))}
    lines = ["flowchart TD"]
    lines += [f'  {ids[n]}["{label(labels.node_label(n, nodes[n]))}"]' for n in sorted(keep)]
    links: list[str] = []  # per link in order: its linkStyle line, or "" when it keeps the default
    members: dict[str, list[str]] = {}
    whole = d.status in ("added", "removed")  # an experiment that came or went is drawn plain
    for src, dst in all_edges:
        if src in ids and dst in ids:
            state = "" if whole else "removed" if (src, dst) not in new_edges else "added" if (src, dst) not in edges \
                else ""
            _link(lines, links, f"{ids[src]} {'-.->' if state == 'removed' else '-->'} {ids[dst]}", state)
    for index, asset in enumerate(asset_nodes(d)):
        targets = [(n, s) for n, s in asset.feeds if n in ids]
        if not targets or (omitted and asset.state == "unchanged" and not any(n in states for n, _ in targets)):
            continue
        aid = f"a{index}"
        start, end = _SHAPES.get(asset.kind, ('["', '"]'))
        lines.append(f"  {aid}{start}{label(asset.label)}{end}")
        members.setdefault("asset" if asset.state == "unchanged" else asset.state, []).append(aid)
        for node_id, state in targets:
            _link(lines, links, f"{aid} {'-.->' if state == 'removed' else '-->'} {ids[node_id]}",
                  "" if state == "unchanged" else state)
    for index, port in enumerate(web_ports(d)):
        if port.node not in ids or (omitted and port.state == "unchanged"):
            continue
        pid = f"p{index}"
        lines.append(f'  {pid}(["{label(f"{port.direction}: {port.name}")}"])')
        _link(lines, links, f"{pid} -.- {ids[port.node]}" if port.direction == "input" else
              f"{ids[port.node]} -.- {pid}", "")
        members.setdefault("breaking" if port.breaking else port.state, []).append(pid)
    lines += [style for style in links if style]
    lines += [f"  {c}" for c in _CLASSES]
    for state in ("added", "removed", "changed", "breaking", "asset"):
        shown = [ids[n] for n, s in sorted(states.items()) if s == state and n in ids] + members.get(state, [])
        if shown:
            lines.append(f"  class {','.join(shown)} {state}")
    if omitted:
        lines.append(f'  more["… {omitted} unchanged nodes not shown"]')
    return "\n".join(lines)


def _link(lines: list[str], styles: list[str], text: str, state: str) -> None:
    """Add a link; added ones are drawn green and removed ones red (`linkStyle N` counts every link)."""
    lines.append(f"  {text}")
    colour = {"added": "#1a7f37", "removed": "#cf222e"}.get(state)
    styles.append(f"  linkStyle {len(styles)} stroke:{colour}" if colour else "")
