"""The pull-request rendering: a summary table, then per experiment its changes and a mermaid flowchart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amlvc.render.common import (
    ADDED,
    COLUMNS,
    REMOVED,
    active,
    counts,
    describe,
    graph_edges,
    graph_nodes,
    node_states,
    web_ports,
)
from amlvc.review import labels
from amlvc.review.records import ExperimentDiff

# GitHub refuses mermaid sources over ~50 kB; big graphs show changed nodes and their neighbours only.
MAX_MERMAID_NODES = 60
_CLASSES = ("classDef added fill:#dafbe1,stroke:#1a7f37,color:#1a7f37",
            "classDef removed fill:#ffebe9,stroke:#cf222e,color:#cf222e,stroke-dasharray:4 3",
            "classDef changed fill:#fff8c5,stroke:#9a6700,color:#6f4b00",
            "classDef breaking fill:#ffebe9,stroke:#cf222e,stroke-width:3px,color:#cf222e")
_ICON = {ADDED: "➕", REMOVED: "➖", "~": "✏️"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def render_markdown(diffs: Sequence[ExperimentDiff], *, title: str = "") -> str:
    shown = active(diffs)
    out = [f"## {title or 'amlvc diff'}", ""]
    if not shown:
        return "\n".join([*out, "No experiment changed.", ""])
    breaking = [d.slug for d in shown if d.breaking]
    if breaking:
        out += [f"> [!WARNING]\n> **Breaking web-service change** in {', '.join(f'`{s}`' for s in breaking)}: "
                "callers of the deployed service must change.", ""]
    out.append("| experiment | status | " + " | ".join(col for col, _ in COLUMNS) + " | breaking |")
    out.append("| --- | --- | " + " | ".join("---:" for _ in COLUMNS) + " | --- |")
    for d in shown:
        n = counts(d)
        cells = " | ".join(str(n[col]) if n[col] else "" for col, _ in COLUMNS)
        out.append(f"| `{d.slug}` | {d.status} | {cells} | {'**BREAKING**' if d.breaking else ''} |")
    out.append("")
    for d in shown:
        out += _experiment(d)
    return "\n".join(out)


def _experiment(d: ExperimentDiff) -> list[str]:
    name = f" — {_cell(d.name)}" if d.name and d.name != d.slug else ""
    out = [f"### `{d.slug}`{name} ({d.status})", ""]
    scripts: list[str] = []
    for change in d.changes:
        line = describe(change)
        flag = " **BREAKING**" if line.breaking else ""
        text = f": {_cell(line.text)}" if line.text else ""
        out.append(f"- {_ICON[line.sigil]} {_cell(line.subject)}{text}{flag}")
        if change.kind == "script.changed" and change.detail:
            scripts += [f"<details><summary>{_cell(line.subject)}</summary>", "", "```diff", change.detail, "```", "",
                        "</details>", ""]
    out.append("")
    out += scripts
    graph = mermaid(d)
    if graph:
        block = ["```mermaid", graph, "```", ""]
        shown = counts(d)  # the experiment's own fields ("other") and canvas positions leave the flowchart as it was
        if not any(shown[col] for col, _ in COLUMNS if col not in ("layout", "other")):  # nothing to see: folded
            block = ["<details><summary>graph (unchanged)</summary>", "", *block, "</details>", ""]
        out += block
    return out


def mermaid(d: ExperimentDiff) -> str:
    """A flowchart of the union of both graphs; added, removed and changed nodes styled."""
    old_nodes = graph_nodes(d.old.experiment if d.old else {})
    new_nodes = graph_nodes(d.new.experiment if d.new else {})
    nodes: dict[str, Any] = {**old_nodes, **new_nodes}
    if not nodes:
        return ""
    states = node_states(d)
    edges = {labels.edge_key_nodes(e) for e in graph_edges(d.old.experiment if d.old else {})}
    new_edges = {labels.edge_key_nodes(e) for e in graph_edges(d.new.experiment if d.new else {})}
    removed_edges = edges - new_edges
    all_edges = sorted(edges | new_edges)
    keep = set(nodes)
    omitted = 0
    if len(nodes) > MAX_MERMAID_NODES:
        keep = set(states)
        for src, dst in all_edges:
            if src in states or dst in states:
                keep.update((src, dst))
        keep &= set(nodes)
        omitted = len(nodes) - len(keep)
    ids = {node_id: f"n{i}" for i, node_id in enumerate(sorted(keep))}
    lines = ["flowchart TD"]
    for node_id in sorted(keep):
        label = labels.node_label(node_id, nodes[node_id]).replace('"', "#quot;")
        lines.append(f'  {ids[node_id]}["{label}"]')
    link = 0
    styles = []
    for src, dst in all_edges:
        if src in ids and dst in ids:
            arrow_ = "-.->" if (src, dst) in removed_edges else "-->"
            lines.append(f"  {ids[src]} {arrow_} {ids[dst]}")
            if (src, dst) in removed_edges:
                styles.append(f"  linkStyle {link} stroke:#cf222e")
            elif (src, dst) not in edges:
                styles.append(f"  linkStyle {link} stroke:#1a7f37")
            link += 1
    port_states: dict[str, str] = {}
    for index, port in enumerate(web_ports(d)):
        if port.node not in ids or (omitted and port.state == "unchanged"):
            continue
        pid = f"p{index}"
        label = f"{port.direction}: {port.name}".replace('"', "#quot;")
        lines.append(f'  {pid}(["{label}"])')
        lines.append(f"  {pid} -.- {ids[port.node]}" if port.direction == "input" else
                     f"  {ids[port.node]} -.- {pid}")
        link += 1
        port_states[pid] = "breaking" if port.breaking else port.state
    lines += styles
    lines += [f"  {c}" for c in _CLASSES]
    for state in ("added", "removed", "changed", "breaking"):
        members = [ids[n] for n, s in sorted(states.items()) if s == state and n in ids]
        members += [pid for pid, s in port_states.items() if s == state]
        if members:
            lines.append(f"  class {','.join(members)} {state}")
    if omitted:
        lines.append(f'  more["… {omitted} unchanged nodes not shown"]')
    return "\n".join(lines)
