"""Three-way merge of canonical files: disjoint edits, each conflict kind, validation of the merged graph."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from reviewkit import fixture_files, node_with, param

from amlvc.canonical.checks import find_conflict
from amlvc.review.merge import merge_experiment, merge_json, merge_layout, report, validate_experiment


def base() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(fixture_files("training--base")["experiment.json"])
    return doc


def layout() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(fixture_files("training--base")["layout.json"])
    return doc


def edited(doc: dict[str, Any], *edits: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for edit in edits:
        edit(out)
    return out


def set_param(module: str, name: str, value: str) -> Any:
    return lambda d: param(node_with(d, module), name).update(Value=value)


def node_id(doc: dict[str, Any], module: str) -> str:
    return next(i for i, n in doc["Graph"]["ModuleNodes"].items() if n["$module"]["name"] == module)


def delete_node(module: str) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        nid = node_id(doc, module)
        del doc["Graph"]["ModuleNodes"][nid]
        doc["Graph"]["EdgesInternal"] = [e for e in doc["Graph"]["EdgesInternal"]
                                         if not (e["SourceOutputPortId"] + e["DestinationInputPortId"]).count(nid)]
        for key in ("Inputs", "Outputs"):
            doc["WebService"][key] = [p for p in doc["WebService"][key] if not p["PortId"].startswith(nid)]
    return edit


def test_identical_and_one_sided_edits() -> None:
    b = base()
    ours = edited(b, set_param("Split Data", "Random seed", "7"))
    assert merge_experiment(b, b, b).merged == b
    assert merge_experiment(b, ours, b).merged == ours
    assert merge_experiment(b, b, ours).merged == ours
    assert merge_experiment(b, ours, ours).merged == ours


def test_disjoint_edits_in_one_node_and_across_the_graph() -> None:
    b = base()
    ours = edited(b, set_param("Two-Class Logistic Regression", "Optimization Tolerance", "1E-06"),
                  lambda d: d.update(Summary="neu"))
    theirs = edited(b, set_param("Two-Class Logistic Regression", "L1 Regularization weight", "0.5"),
                    lambda d: node_with(d, "Split Data").update(Comment="70/30"))
    result = merge_experiment(b, ours, theirs)
    assert result.clean, report(result, "x")
    merged = result.merged
    lr = node_with(merged, "Two-Class Logistic Regression")
    assert param(lr, "Optimization Tolerance")["Value"] == "1E-06"
    assert param(lr, "L1 Regularization weight")["Value"] == "0.5"
    assert merged["Summary"] == "neu" and node_with(merged, "Split Data")["Comment"] == "70/30"
    assert [p["Name"] for p in lr["ModuleParameters"]] == [p["Name"] for p in node_with(b, lr["$module"]["name"])[
        "ModuleParameters"]]


def test_node_added_on_both_sides_and_edges_merge_as_sets() -> None:
    b = base()
    src = node_id(b, "Execute Python Script")

    def add(suffix: str) -> Any:
        def edit(doc: dict[str, Any]) -> None:
            new_id = f"0b2d4f6a-8c1e-4a3b-9d5f-7a9c1e3b5d7f-{suffix}"
            doc["Graph"]["ModuleNodes"][new_id] = copy.deepcopy(node_with(doc, "Evaluate Model"))
            doc["Graph"]["EdgesInternal"].append({"SourceOutputPortId": f"{src}:Result Dataset",
                                                  "DestinationInputPortId": f"{new_id}:Scored dataset"})
            doc["Graph"]["EdgesInternal"].sort(key=lambda e: (e["SourceOutputPortId"], e["DestinationInputPortId"]))
        return edit

    result = merge_experiment(b, edited(b, add("3")), edited(b, add("4")))
    assert result.clean, report(result, "x")
    assert len(result.merged["Graph"]["ModuleNodes"]) == len(b["Graph"]["ModuleNodes"]) + 2
    edges = result.merged["Graph"]["EdgesInternal"]
    assert len(edges) == len(b["Graph"]["EdgesInternal"]) + 2
    assert edges == sorted(edges, key=lambda e: (e["SourceOutputPortId"], e["DestinationInputPortId"]))


def test_same_parameter_changed_differently() -> None:
    b = base()
    result = merge_experiment(b, edited(b, set_param("Split Data", "Random seed", "1")),
                              edited(b, set_param("Split Data", "Random seed", "2")))
    (conflict,) = result.conflicts
    assert conflict.reason.startswith("parameter 'Random seed' of node Split Data [")
    assert (conflict.ours, conflict.theirs) == ("1", "2")
    value = param(node_with(result.merged, "Split Data"), "Random seed")["Value"]
    assert value["$conflict"]["ours"] == "1" and value["$conflict"]["theirs"] == "2"
    assert find_conflict(result.merged) is not None
    text = report(result, "experiments/t/experiment.json")
    assert text.startswith("CONFLICT (amlvc): experiments/t/experiment.json: 1 conflict(s)")


def test_node_deleted_on_one_side_and_edited_on_the_other() -> None:
    b = base()
    result = merge_experiment(b, edited(b, delete_node("Evaluate Model")),
                              edited(b, lambda d: node_with(d, "Evaluate Model").update(Comment="AUC")))
    (conflict,) = result.conflicts
    assert "was deleted by ours and edited by theirs" in conflict.reason
    nid = node_id(b, "Evaluate Model")
    assert "ours" not in result.merged["Graph"]["ModuleNodes"][nid]["$conflict"]


def test_edge_to_a_node_the_other_side_removed() -> None:
    b = base()
    src, dst = node_id(b, "Execute Python Script"), node_id(b, "Evaluate Model")
    theirs = edited(b, lambda d: d["Graph"]["EdgesInternal"].append(
        {"SourceOutputPortId": f"{src}:Result Dataset", "DestinationInputPortId": f"{dst}:Scored dataset to compare"}))
    result = merge_experiment(b, edited(b, delete_node("Execute Python Script")), theirs)
    assert len(result.conflicts) == 1
    assert "was added by theirs to node" in result.conflicts[0].reason and "which ours removed" in \
        result.conflicts[0].reason


def test_web_service_port_on_a_removed_node() -> None:
    b = base()
    target = b["WebService"]["Outputs"][0]["PortId"].rpartition(":")[0]
    module = b["Graph"]["ModuleNodes"][target]["$module"]["name"]
    ours = edited(b, delete_node(module))
    theirs = edited(b, lambda d: d["WebService"]["Outputs"].append(
        {"Id": "ffffffff-0000-4000-8000-000000000000-9", "Name": "extra", "PortId": d["WebService"]["Outputs"][0]
         ["PortId"]}))
    result = merge_experiment(b, ours, theirs)
    assert any("web-service output 'extra'" in c.reason for c in result.conflicts)


def test_merged_cycle_is_rejected() -> None:
    b = base()
    split, score = node_id(b, "Split Data"), node_id(b, "Score Model")
    # Each side adds one edge; together they close a loop Split Data -> ... -> Score Model -> Split Data.
    theirs = edited(b, lambda d: d["Graph"]["EdgesInternal"].append(
        {"SourceOutputPortId": f"{score}:Scored dataset", "DestinationInputPortId": f"{split}:Dataset"}))
    result = merge_experiment(b, b, theirs)
    assert result.merged["$conflict"]["problems"][0].startswith("the graph has a cycle: ")
    assert not result.clean


def test_validate_experiment_reports_dangling_edges_and_ports() -> None:
    b = base()
    assert validate_experiment(b) == []
    broken = edited(b, lambda d: d["Graph"]["EdgesInternal"].append(
        {"SourceOutputPortId": "nope-1:out", "DestinationInputPortId": f"{node_id(d, 'Split Data')}:Dataset"}),
        lambda d: d["WebService"]["Inputs"].append({"Id": "x", "Name": "ghost", "PortId": "nope-2:Dataset"}))
    problems = validate_experiment(broken)
    assert problems == ["edge from nope-1:out starts at a node or output port that does not exist",
                        "web-service input 'ghost' is connected to nope-2:Dataset, which does not exist"]


def test_layout_merges_per_node_and_prefers_ours_on_a_double_move() -> None:
    b = layout()
    first, last = b["Graph"]["positions"][0]["node"], b["Graph"]["positions"][-1]["node"]

    def move(index: int, where: str) -> Any:
        return lambda d: d["Graph"]["positions"][index].update(position=where)

    result = merge_layout(b, edited(b, move(0, "1,1,200,200")), edited(b, move(-1, "2,2,200,200")))
    assert result.clean and not result.notes
    positions = {p["node"]: p["position"] for p in result.merged["Graph"]["positions"]}
    assert (positions[first], positions[last]) == ("1,1,200,200", "2,2,200,200")
    both = merge_layout(b, edited(b, move(0, "1,1,200,200")), edited(b, move(0, "3,3,200,200")))
    assert both.clean and both.notes and both.merged["Graph"]["positions"][0]["position"] == "1,1,200,200"


def test_other_json_merges_key_by_key() -> None:
    b = {"properties": {"title": "a", "description": "d", "parameters": {"x": {"value": "1"}}}}
    ours = edited(b, lambda d: d["properties"].update(title="b"))
    theirs = edited(b, lambda d: d["properties"]["parameters"]["x"].update(value="2"))
    result = merge_json(b, ours, theirs)
    assert result.clean
    assert result.merged == {"properties": {"title": "b", "description": "d", "parameters": {"x": {"value": "2"}}}}
    clash = merge_json(b, ours, edited(b, lambda d: d["properties"].update(title="c")))
    assert [c.path for c in clash.conflicts] == ["/properties/title"]


# --- properties ---------------------------------------------------------------------------------------------

_B = base()
_IDS = sorted(_B["Graph"]["ModuleNodes"])
_node_edit = st.tuples(st.sampled_from(("value", "add", "remove", "comment")), st.integers(0, len(_IDS) - 1),
                       st.text(max_size=6))


def _edit_nodes(doc: dict[str, Any], edits: list[tuple[str, int, str]], parity: int) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for action, index, text in edits:
        mine = _IDS[parity::2]  # ours edits the even nodes, theirs the odd ones
        node = out["Graph"]["ModuleNodes"][mine[index % len(mine)]]
        params = node["ModuleParameters"]
        if action == "value" and params and isinstance(params[0].get("Value"), str):
            params[0]["Value"] = text
        elif action == "add":
            params.append({"Name": f"extra {text}", "Value": text})
        elif action == "remove" and params:
            params.pop(0)
        else:
            node["Comment"] = text
    return out


@settings(max_examples=30, deadline=None)
@given(st.lists(_node_edit, max_size=5), st.lists(_node_edit, max_size=5))
def test_edits_to_different_nodes_always_merge(ours_edits: list[Any], theirs_edits: list[Any]) -> None:
    ours, theirs = _edit_nodes(_B, ours_edits, 0), _edit_nodes(_B, theirs_edits, 1)
    result = merge_experiment(_B, ours, theirs)
    assert result.clean, report(result, "x")
    for index, node_id in enumerate(_IDS):
        side = ours if index % 2 == 0 else theirs
        assert result.merged["Graph"]["ModuleNodes"][node_id] == side["Graph"]["ModuleNodes"][node_id]
    assert merge_experiment(_B, ours, _B).merged == ours
    assert merge_experiment(_B, ours, ours).merged == ours
