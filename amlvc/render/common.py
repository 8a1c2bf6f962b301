"""How each kind of change record reads in words: one sigil and one sentence, shared by every renderer."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amlvc.review import labels
from amlvc.review.assetnames import is_named
from amlvc.review.records import Change, ExperimentDiff

ADDED, REMOVED, CHANGED = "+", "-", "~"
_MAX = 120
# Summary columns: which record kinds count where.
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nodes", ("node.",)),
    ("parameters", ("parameter.",)),
    ("edges", ("edge.",)),
    ("assets", ("asset.",)),
    ("scripts", ("script.",)),
    ("web service", ("webservice.",)),
    ("layout", ("layout.",)),
    ("other", ("experiment.",)),
)


@dataclass(frozen=True)
class Line:
    """A change as words: sigil (+ - ~), what it is about, the before/after text."""

    sigil: str
    subject: str
    text: str
    breaking: bool


def value(v: Any) -> str:
    if isinstance(v, str):
        text = json.dumps(v, ensure_ascii=False) if v == "" or v != v.strip() else v
    else:
        text = json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _MAX else text[:_MAX] + "…"


def arrow(old: Any, new: Any) -> str:
    return f"{value(old)} → {value(new)}"


def short_asset(asset_id: Any) -> str:
    text = str(asset_id)
    parts = text.split(".")
    return f"{parts[1][:8]}….{parts[-1]}" if len(parts) >= 3 else text


def describe(c: Change) -> Line:
    """The words for one record."""
    area, _, verb = c.kind.partition(".")
    if c.kind == "experiment.renamed":
        return Line(CHANGED, "name", arrow(c.old, c.new), c.breaking)
    if c.kind == "experiment.summary_changed":
        return Line(CHANGED, "summary", arrow(c.old, c.new), c.breaking)
    if area == "experiment" or c.kind in ("node.property_changed", "webservice.property_changed"):
        return Line(CHANGED, c.label, arrow(c.old, c.new), c.breaking)
    if c.kind == "node.added":
        return Line(ADDED, f"node {c.label}", str(c.new), c.breaking)
    if c.kind == "node.removed":
        return Line(REMOVED, f"node {c.label}", str(c.old), c.breaking)
    if c.kind == "node.module_version_changed":
        return Line(CHANGED, c.label, f"module version {c.detail}", c.breaking)
    if c.kind == "node.module_replaced":
        return Line(CHANGED, c.label, f"module replaced: {c.old} → {c.new}", c.breaking)
    if c.kind == "node.comment_changed":
        return Line(CHANGED, c.label, f"comment {arrow(c.old, c.new)}", c.breaking)
    if c.kind == "parameter.added":
        return Line(ADDED, f"parameter {c.label}", value(c.new), c.breaking)
    if c.kind == "parameter.removed":
        return Line(REMOVED, f"parameter {c.label}", f"was {value(c.old)}", c.breaking)
    if c.kind == "parameter.changed":
        return Line(CHANGED, f"parameter {c.label}", arrow(c.old, c.new), c.breaking)
    if c.kind == "script.changed":
        added = sum(1 for ln in c.detail.splitlines() if ln.startswith("+") and not ln.startswith("+++"))
        removed = sum(1 for ln in c.detail.splitlines() if ln.startswith("-") and not ln.startswith("---"))
        if added == removed == 0:
            return Line(CHANGED, f"script {c.label}", f"{c.new or c.old} (line endings only)", c.breaking)
        return Line(CHANGED, f"script {c.label}", f"{c.new or c.old} (+{added} -{removed} lines)", c.breaking)
    if c.kind == "asset.version_changed":
        if is_named(c):  # named from the asset catalog / model manifests (review/assetnames.py)
            return Line(CHANGED, c.label, c.detail, c.breaking)
        return Line(CHANGED, f"asset {c.label}", f"{short_asset(c.old)} → {short_asset(c.new)} ({c.detail})",
                    c.breaking)
    if c.kind == "asset.replaced":
        sigil = ADDED if c.old is None else REMOVED if c.new is None else CHANGED
        return Line(sigil, f"asset {c.label}", f"{c.old} → {c.new}", c.breaking)
    if area == "edge":
        return Line(ADDED if verb == "added" else REMOVED, "edge", c.label, c.breaking)
    if area == "webservice":
        what, _, how = verb.rpartition("_")
        sigil = {"added": ADDED, "removed": REMOVED}.get(how, CHANGED)
        text = c.detail if how == "changed" else ""
        return Line(sigil, f"web-service {what} {c.label}", text, c.breaking)
    if c.kind == "layout.changed":
        return Line(CHANGED, "layout", f"{c.detail} (positions only, collapsed)", c.breaking)
    return Line(CHANGED, c.label or c.path, arrow(c.old, c.new), c.breaking)


def counts(d: ExperimentDiff) -> dict[str, int]:
    out: Counter[str] = Counter()
    for c in d.changes:
        for column, prefixes in COLUMNS:
            if c.kind.startswith(prefixes):
                out[column] += c.new if c.kind == "layout.changed" and isinstance(c.new, int) else 1
                break
    return {column: out[column] for column, _ in COLUMNS}


def summary(d: ExperimentDiff) -> str:
    """One line: "2 parameters, 1 node, layout only" (used by `log` and headings)."""
    if d.status in ("added", "removed"):
        return f"experiment {d.status} ({size(d)})"
    shown = counts(d)
    parts = [f"{n} {col if n != 1 else col.rstrip('s')}" for col, n in shown.items()
             if n and col not in ("layout", "other")]
    parts += _experiment_level(d)
    if shown["layout"]:
        parts.append("layout only" if not parts else "layout")
    text = ", ".join(parts) or "no changes"
    return text + (" (BREAKING)" if d.breaking else "")


def size(d: ExperimentDiff) -> str:
    """What an added or removed experiment holds, in one phrase: "12 nodes, 14 edges, web service: 1 input"."""
    tree = d.new if d.new is not None else d.old
    if tree is None:
        return "empty"
    nodes, edges = len(graph_nodes(tree.experiment)), len(graph_edges(tree.experiment))
    parts = [plural(nodes, "node"), plural(edges, "edge")] if nodes or edges else []
    web = tree.experiment.get("WebService")
    if isinstance(web, Mapping) and web.get("IsWebServiceExperiment") is True:
        ports = [plural(len(items), word) for key, word in (("Inputs", "input"), ("Outputs", "output"),
                                                            ("Parameters", "parameter"))
                 if isinstance(items := web.get(key), list) and items]
        parts.append("web service: " + (", ".join(ports) or "no ports"))
    if tree.webservice is not None:
        parts.append("web-service definition")
    return ", ".join(parts) or "empty"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _experiment_level(d: ExperimentDiff) -> list[str]:
    """The experiment's own fields in words: "renamed", "summary", "2 properties"."""
    kinds = [c.kind for c in d.changes if c.kind.startswith("experiment.")]
    words = [word for kind, word in (("experiment.renamed", "renamed"), ("experiment.summary_changed", "summary"))
             if kind in kinds]
    others = kinds.count("experiment.property_changed")
    if others:
        words.append(f"{others} propert{'y' if others == 1 else 'ies'}")
    return words


def node_states(d: ExperimentDiff) -> dict[str, str]:
    """node id -> added | removed | changed, for graph renderers (an added or removed experiment is drawn plain)."""
    out: dict[str, str] = {}
    for c in d.changes:
        if c.node is None:
            continue
        if c.kind == "node.added":
            out[c.node] = "added"
        elif c.kind == "node.removed":
            out[c.node] = "removed"
        else:
            out.setdefault(c.node, "changed")
    return out


def active(diffs: Sequence[ExperimentDiff]) -> list[ExperimentDiff]:
    return [d for d in diffs if d.changes or d.status != "unchanged"]


@dataclass(frozen=True)
class WebPort:
    """A web-service input or output as graph renderers draw it: beside the module port it connects to."""

    port_id: str
    direction: str  # "input" | "output"
    name: str
    node: str
    state: str  # added | removed | changed | unchanged
    breaking: bool


def web_ports(d: ExperimentDiff) -> list[WebPort]:
    """Both sides' web-service ports by Id, with the state and breaking flag of their change records."""
    flags: dict[str, tuple[str, bool]] = {}
    for c in d.changes:
        if c.file == "experiment.json" and c.kind.startswith(("webservice.input_", "webservice.output_")):
            item = c.new if isinstance(c.new, dict) else c.old
            if isinstance(item, dict):
                state = {"added": "added", "removed": "removed"}.get(c.kind.rpartition("_")[2], "changed")
                flags[str(item.get("Id"))] = (state, c.breaking)
    out: dict[str, WebPort] = {}
    for tree in (d.old, d.new):
        ws = tree.experiment.get("WebService") if tree is not None else None
        for key, direction in (("Inputs", "input"), ("Outputs", "output")):
            items = ws.get(key) if isinstance(ws, dict) else None
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    port_id = str(item.get("Id"))
                    state, breaking = flags.get(port_id, ("unchanged", False))
                    name = str(item.get("Name"))
                    previous = out.get(port_id)
                    if previous is not None and previous.name != name:
                        name = f"{previous.name} → {name}"
                    out[port_id] = WebPort(port_id, direction, name, str(item.get("PortId")).rpartition(":")[0],
                                           state, breaking)
    return [out[k] for k in sorted(out)]


def graph_nodes(experiment: Mapping[str, Any]) -> dict[str, Any]:
    """node id -> node of a canonical experiment.json (empty when it has none)."""
    graph = experiment.get("Graph") or {}
    nodes = graph.get("ModuleNodes") if isinstance(graph, Mapping) else None
    return dict(nodes) if isinstance(nodes, Mapping) else {}


def graph_edges(experiment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The edges of a canonical experiment.json."""
    graph = experiment.get("Graph") or {}
    edges = graph.get("EdgesInternal") if isinstance(graph, Mapping) else None
    return [e for e in edges if isinstance(e, Mapping)] if isinstance(edges, list) else []


_ASSET_KINDS = {"DataSourceId": "dataset", "TrainedModelId": "trained-model", "TransformModuleId": "transform"}


@dataclass(frozen=True)
class AssetNode:
    """A dataset, trained model or transform drawn as Studio draws it: a node feeding the module ports using it.

    Both sides' versions of one asset family are one node (`key` = owner.family), so a version bump reads as a
    changed node, not a removed and an added one.
    """

    key: str
    kind: str  # dataset | trained-model | transform
    label: str
    state: str  # added | removed | changed | unchanged
    ids: tuple[str, ...]  # the asset ids, new side first: layout.json positions are keyed by them
    feeds: tuple[tuple[str, str], ...]  # (module node id, added | removed | unchanged)


def _asset_uses(experiment: Mapping[str, Any]) -> dict[str, tuple[str, str, set[str]]]:
    """family key -> (asset id, kind, node ids whose input ports reference it) of one side."""
    out: dict[str, tuple[str, str, set[str]]] = {}
    for node_id, node in graph_nodes(experiment).items():
        ports = node.get("InputPortsInternal") if isinstance(node, Mapping) else None
        for port in ports if isinstance(ports, list) else []:
            for field, kind in _ASSET_KINDS.items():
                asset_id = port.get(field) if isinstance(port, Mapping) else None
                if not isinstance(asset_id, str):
                    continue
                parts = labels.split_id(asset_id)
                key = f"{parts[0]}.{parts[1]}" if parts else asset_id
                out.setdefault(key, (asset_id, kind, set()))[2].add(node_id)
    return out


def asset_nodes(d: ExperimentDiff) -> list[AssetNode]:
    """Every asset either side references, with its state and the edges to the nodes it feeds."""
    old = _asset_uses(d.old.experiment if d.old else {})
    new = _asset_uses(d.new.experiment if d.new else {})
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        ids = tuple(dict.fromkeys(x[0] for x in (b, a) if x is not None))
        kind = (b or a or ("", "asset", set()))[1]
        if d.status in ("added", "removed"):  # drawn plain, as its nodes are
            a = b = a or b
        state = "added" if a is None else "removed" if b is None else "changed" if a[0] != b[0] else "unchanged"
        used_a, used_b = (a[2] if a else set()), (b[2] if b else set())
        feeds = tuple((n, "added" if n not in used_a else "removed" if n not in used_b else "unchanged")
                      for n in sorted(used_a | used_b))
        out.append(AssetNode(key, kind, _asset_label(kind, ids), state, ids, feeds))
    return out


def _asset_label(kind: str, ids: tuple[str, ...]) -> str:
    """`dataset 2a4c6e8b (batch 23)`, or `(batch 23 → 24)` when both sides use other batches of it."""
    parts = [labels.split_id(i) for i in reversed(ids)]  # old side first
    if not all(parts):
        return f"{kind} {short_asset(ids[0])}"
    batches = " → ".join(str(p[2]) for p in parts if p)
    family = parts[0][1] if parts[0] else ""
    return f"{kind} {family[:8]} (batch {batches})"
