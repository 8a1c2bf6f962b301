"""Change records: every fixture pair against a table of expectations, patches, and each record kind by hand."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import jsonpatch
import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from amlvc.canonical.normalize import normalize
from amlvc.canonical.webservice import normalize_wsd
from amlvc.errors import InvalidDocument
from amlvc.render.json import patch
from amlvc.review.diff import diff_trees
from amlvc.review.parsed import Parsed as Tree
from amlvc.review.records import KINDS, Change, sort_changes

OWNER = "506153734175476c4f62416c57734963"
N1 = "aaaaaaaa-1111-2222-3333-444444444444-1"
N2 = "bbbbbbbb-1111-2222-3333-444444444444-2"


def fixture_tree(name: str) -> Tree:
    doc = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    if name.startswith("webservice--"):
        return Tree({}, {}, {}, json.loads(normalize_wsd(doc).files["webservice.json"]))
    return Tree.from_files(normalize(doc, source=name).files)


# base--variant pairs: expected record kinds (as a multiset) and a fact the reviewer must see.
PAIRS: dict[str, tuple[dict[str, int], tuple[str, Any, Any] | None]] = {
    "training--param-changed": ({"parameter.changed": 1}, ("parameter.changed", "1E-07", "1E-06")),
    "training--node-dragged": ({"layout.changed": 1}, ("layout.changed", None, 1)),
    "training--node-added": ({"node.added": 1, "edge.added": 1, "layout.changed": 1}, None),
    "training--edge-rewired": ({"edge.added": 1, "edge.removed": 1}, None),
    "training--asset-bumped": ({"asset.version_changed": 1}, None),  # the canvas node renamed in place
    "training--script-line": ({"script.changed": 1}, None),
    "training--snapshot-1": ({"parameter.changed": 1, "script.changed": 1}, ("parameter.changed", "20", "10")),
    "training--snapshot-2": ({}, None),
    "predictive--input-renamed": ({"webservice.input_changed": 1}, None),
    "webservice--model-patched": ({"asset.replaced": 1}, None),
}
NOT_PAIRS = {"webservice--studio-export"}  # the same service exported by Studio: another form, not one edit


def test_every_variant_fixture_has_expectations() -> None:
    variants = {p.stem for p in FIXTURES.glob("*--*.json") if not p.stem.endswith("--base")}
    assert variants - NOT_PAIRS == set(PAIRS)


@pytest.mark.parametrize("variant", sorted(PAIRS))
def test_fixture_pair(variant: str) -> None:
    a = fixture_tree(variant.split("--")[0] + "--base")
    b = fixture_tree(variant)
    assert diff_trees(a, a).changes == ()
    assert diff_trees(b, b).changes == ()
    result = diff_trees(a, b, "x")
    kinds, fact = PAIRS[variant]
    assert Counter(c.kind for c in result.changes) == Counter(kinds)
    assert result.changes == sort_changes(result.changes) == diff_trees(a, b, "x").changes
    if fact is not None:
        kind, old, new = fact
        assert any(c.kind == kind and c.old == old and c.new == new for c in result.changes), result.changes
    assert all(c.path == "" or c.path.startswith("/") for c in result.changes)
    patched = jsonpatch.apply_patch(a.as_document(), patch(result))
    assert patched == b.as_document()


def test_param_change_names_the_node_and_parameter() -> None:
    result = diff_trees(fixture_tree("training--base"), fixture_tree("training--param-changed"))
    (change,) = result.changes
    assert change.label.startswith("Two-Class Logistic Regression [")
    assert change.label.endswith(": Optimization Tolerance")
    assert change.path.startswith("/Graph/ModuleNodes/") and change.path.endswith("/Value")


def test_input_renamed_is_breaking() -> None:
    result = diff_trees(fixture_tree("predictive--base"), fixture_tree("predictive--input-renamed"))
    (change,) = result.changes
    assert change.breaking and change.label == "input1 → kunde" and change.detail == "renamed"
    assert result.breaking


def test_asset_bump_is_a_version_change_of_the_same_family() -> None:
    result = diff_trees(fixture_tree("training--base"), fixture_tree("training--asset-bumped"))
    change = next(c for c in result.changes if c.kind == "asset.version_changed")
    assert change.detail == "batch 23 → 24"
    assert change.path.endswith("/DataSourceId")


def test_script_change_carries_a_unified_diff() -> None:
    result = diff_trees(fixture_tree("training--base"), fixture_tree("training--script-line"))
    (change,) = result.changes
    lines = change.detail.splitlines()
    assert [ln for ln in lines if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))] == [
        '-merged <- merge(dataset1, dataset2, by = "customer_id", all.x = TRUE)',
        '+merged <- merge(dataset1, dataset2, by = "customer_id", all.x = FALSE)',
    ]


def test_experiment_added_or_removed_is_one_record_less_status() -> None:
    """A whole experiment coming or going is its status (one line in every rendering), never "breaking", and its
    JSON patch still carries every file."""
    tree = fixture_tree("predictive--base")
    added = diff_trees(None, tree, "t")
    removed = diff_trees(tree, None, "t")
    assert (added.status, added.changes, added.breaking) == ("added", (), False)
    assert (removed.status, removed.changes, removed.breaking) == ("removed", (), False)
    assert jsonpatch.apply_patch({}, patch(added)) == tree.as_document()
    assert jsonpatch.apply_patch(tree.as_document(), patch(removed)) == {}
    assert diff_trees(None, None).changes == ()


# --- hand-made canonical experiments: one test per record kind not covered by the fixtures ------------------


def node(family: str, batch: int, name: str, params: dict[str, Any], ins: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"$module": {"batch": batch, "family": family, "name": name}, "Comment": "",
            "ModuleId": f"{OWNER}.{family}.v1-default-{batch}",
            "ModuleParameters": [{"Name": k, "Value": v} for k, v in params.items()],
            "InputPortsInternal": [{"Name": p} for p in ins], "OutputPortsInternal": [{"Name": "Results dataset"}],
            "UsePreviousResults": False}


def experiment() -> dict[str, Any]:
    picker = {"$columns": {"isFilter": True, "rules": [{"ruleType": "ColumnNames", "columns": ["label"],
                                                         "exclude": False}]}}
    return {
        "$format": "amlvc/experiment@1", "Description": "Churn", "Summary": "baseline", "DisableNodesUpdate": None,
        "Graph": {
            "ModuleNodes": {N1: node("f" * 32, 10, "Import Data", {"Mode": "Blob"}),
                            N2: node("e" * 32, 1718, "Split Data", {"Fraction": "0.7", "Label": picker},
                                     ins=("Dataset",))},
            "EdgesInternal": [{"SourceOutputPortId": f"{N1}:Results dataset",
                               "DestinationInputPortId": f"{N2}:Dataset"}],
        },
        "WebService": {
            "Inputs": [{"Id": "in-1", "Name": "input1", "PortId": f"{N2}:Dataset"}],
            "IsWebServiceExperiment": True,
            "Outputs": [{"Id": "out-1", "Name": "output1", "PortId": f"{N2}:Results dataset"}],
            "Parameters": [{"Name": "Fraction", "Value": "0.7", "ParameterDefinition": {"ParameterType": "Double"}}],
        },
    }


def changes(edit: Any) -> tuple[Change, ...]:
    old = experiment()
    new = copy.deepcopy(old)
    edit(new)
    return diff_trees(Tree(old, {}, {}, None), Tree(new, {}, {}, None)).changes


def only(edit: Any) -> Change:
    (change,) = changes(edit)
    return change


def test_module_version_and_replacement() -> None:
    def bump(e: dict[str, Any]) -> None:
        e["Graph"]["ModuleNodes"][N2]["ModuleId"] = f"{OWNER}.{'e' * 32}.v1-default-1720"

    def replace(e: dict[str, Any]) -> None:
        e["Graph"]["ModuleNodes"][N2]["ModuleId"] = f"{OWNER}.{'d' * 32}.v1-default-3"

    bumped = only(bump)
    assert (bumped.kind, bumped.detail) == ("node.module_version_changed", "batch 1718 → 1720")
    assert only(replace).kind == "node.module_replaced"


def test_column_picker_is_shown_decoded() -> None:
    def edit(e: dict[str, Any]) -> None:
        e["Graph"]["ModuleNodes"][N2]["ModuleParameters"][1]["Value"]["$columns"]["rules"][0]["columns"] = ["churn"]

    change = only(edit)
    assert (change.old, change.new) == ("columns: include names [label]", "columns: include names [churn]")


def test_name_summary_comment_and_node_removal() -> None:
    assert only(lambda e: e.update(Description="Churn v2")).kind == "experiment.renamed"
    assert only(lambda e: e.update(Summary="better")).kind == "experiment.summary_changed"
    comment = only(lambda e: e["Graph"]["ModuleNodes"][N1].update(Comment="blob"))
    assert (comment.kind, comment.old, comment.new) == ("node.comment_changed", "", "blob")

    def remove(e: dict[str, Any]) -> None:
        del e["Graph"]["ModuleNodes"][N1]
        e["Graph"]["EdgesInternal"] = []

    assert [c.kind for c in changes(remove)] == ["node.removed", "edge.removed"]


def test_parameter_added_and_removed() -> None:
    added = only(lambda e: e["Graph"]["ModuleNodes"][N1]["ModuleParameters"].append({"Name": "Seed", "Value": "1"}))
    assert (added.kind, added.new) == ("parameter.added", "1")
    removed = only(lambda e: e["Graph"]["ModuleNodes"][N1]["ModuleParameters"].pop())
    assert (removed.kind, removed.old) == ("parameter.removed", "Blob")


@pytest.mark.parametrize(("edit", "kind", "breaking"), [
    (lambda ws: ws["Inputs"].pop(), "webservice.input_removed", True),
    (lambda ws: ws["Inputs"][0].update(Name="data"), "webservice.input_changed", True),
    (lambda ws: ws["Inputs"][0].update(PortId=f"{N1}:Results dataset"), "webservice.input_changed", False),
    (lambda ws: ws["Inputs"].append({"Id": "in-2", "Name": "input2", "PortId": f"{N2}:Dataset"}),
     "webservice.input_added", True),
    (lambda ws: ws["Outputs"].pop(), "webservice.output_removed", True),
    (lambda ws: ws["Outputs"][0].update(Name="scores"), "webservice.output_changed", True),
    (lambda ws: ws["Outputs"].append({"Id": "out-2", "Name": "o2", "PortId": f"{N1}:Results dataset"}),
     "webservice.output_added", False),
    (lambda ws: ws["Parameters"].pop(), "webservice.parameter_removed", True),
    (lambda ws: ws["Parameters"][0].update(Value=""), "webservice.parameter_changed", True),
    (lambda ws: ws["Parameters"][0].update(Value="0.8"), "webservice.parameter_changed", False),
    (lambda ws: ws["Parameters"].append({"Name": "Seed", "Value": ""}), "webservice.parameter_added", True),
    (lambda ws: ws["Parameters"].append({"Name": "Seed", "Value": "1"}), "webservice.parameter_added", False),
    (lambda ws: ws.update(IsWebServiceExperiment=False), "webservice.property_changed", False),
])
def test_webservice_contract(edit: Any, kind: str, breaking: bool) -> None:
    change = only(lambda e: edit(e["WebService"]))
    assert (change.kind, change.breaking) == (kind, breaking)
    assert change.path.startswith("/WebService/")


def test_wsd_asset_references() -> None:
    base = fixture_tree("webservice--base").webservice
    assert base is not None
    new = copy.deepcopy(base)
    module = next(a for a in new["properties"]["assets"].values()
                  if a["locationInfo"]["uri"].startswith("aml://module/"))
    uri = module["locationInfo"]["uri"]
    prefix, _, batch = uri.rpartition("-")
    module["locationInfo"]["uri"] = f"{prefix}-{int(batch) + 1}"
    (change,) = diff_trees(Tree({}, {}, {}, base), Tree({}, {}, {}, new)).changes
    assert (change.kind, change.detail) == ("asset.version_changed", f"batch {batch} → {int(batch) + 1}")
    assert change.label.endswith(f"({module['name']})")
    patched = diff_trees(fixture_tree("webservice--base"), fixture_tree("webservice--model-patched")).changes[0]
    assert patched.kind == "asset.replaced" and patched.new.endswith(".ilearner")


def test_wsd_contract_changes_are_breaking() -> None:
    base = fixture_tree("webservice--base").webservice
    assert base is not None
    new = copy.deepcopy(base)
    inputs = new["properties"]["input"]["properties"]
    name = sorted(inputs)[0]
    inputs["renamed"] = inputs.pop(name)
    result = diff_trees(Tree({}, {}, {}, base), Tree({}, {}, {}, new))
    assert {(c.kind, c.breaking) for c in result.changes} == {("webservice.input_removed", True),
                                                               ("webservice.input_added", True)}
    assert all(c.file == "webservice.json" for c in result.changes)


def test_kinds_are_a_closed_vocabulary() -> None:
    for variant in PAIRS:
        result = diff_trees(fixture_tree(variant.split("--")[0] + "--base"), fixture_tree(variant))
        assert {c.kind for c in result.changes} <= set(KINDS)


def test_conflict_markers_are_refused() -> None:
    with pytest.raises(InvalidDocument, match=r"/Summary: unresolved merge conflict"):
        Tree.from_files({"experiment.json": b'{"Summary": {"$conflict": {"ours": "a", "theirs": "b"}}}'})


# --- properties: random edits of a real experiment --------------------------------------------------------

_BASE = fixture_tree("training--base")
_NODE_IDS = sorted(_BASE.experiment["Graph"]["ModuleNodes"])
_edit = st.tuples(st.sampled_from(("value", "add", "remove", "comment", "drop-edge", "move")),
                  st.integers(0, len(_NODE_IDS) - 1), st.text(max_size=8))


def _apply(tree: Tree, edits: list[tuple[str, int, str]]) -> Tree:
    exp, layout = copy.deepcopy(tree.experiment), copy.deepcopy(tree.layout)
    for action, index, text in edits:
        node = exp["Graph"]["ModuleNodes"][_NODE_IDS[index]]
        params = node["ModuleParameters"]
        if action == "value" and params and isinstance(params[0].get("Value"), str):
            params[0]["Value"] = text
        elif action == "add":
            params.append({"Name": f"extra {text}", "Value": text})
        elif action == "remove" and params:
            params.pop()
        elif action == "comment":
            node["Comment"] = text
        elif action == "drop-edge" and exp["Graph"]["EdgesInternal"]:
            exp["Graph"]["EdgesInternal"].pop(index % len(exp["Graph"]["EdgesInternal"]))
        elif action == "move":
            positions = layout["Graph"]["positions"]
            positions[index % len(positions)]["position"] = f"{len(text)},0,200,200"
    return Tree(exp, layout, dict(tree.scripts), None)


@settings(max_examples=40, deadline=None)
@given(st.lists(_edit, max_size=6))
def test_random_edits_are_recorded_and_patched_exactly(edits: list[tuple[str, int, str]]) -> None:
    new = _apply(_BASE, edits)
    result = diff_trees(_BASE, new, "t")
    assert bool(result.changes) == (new.as_document() != _BASE.as_document())
    assert jsonpatch.apply_patch(_BASE.as_document(), patch(result)) == new.as_document()
    assert result.changes == sort_changes(result.changes)
    assert len(diff_trees(new, _BASE, "t").changes) == len(result.changes)  # every record has its inverse
