"""The graph as Studio draws it: datasets, trained models and transforms are input nodes of the modules using them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browserkit import CHROMIUM, probe
from mdcheck import parse
from reviewkit import commit_all, fixture_files, git, make_repo, write_experiment

from amlvc.canonical.normalize import dumps


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path)
    write_experiment(root, fixture_files("predictive--base"), slug="predictive")
    commit_all(root, "predictive")
    return root


def mermaid_of(run_cli: Any, repo: Path, *args: str) -> str:
    result = run_cli(["diff", *args, "--format", "markdown"], cwd=repo)
    assert result.exit_code == 0, result.stderr
    (graph,) = [content for info, content in parse(result.stdout).fences if info == "mermaid"]
    return graph


def node_id(graph: str, label: str) -> str:
    match = re.search(rf'^  (\w+)\["{re.escape(label)} \[', graph, re.M)
    assert match, (label, graph)
    return match.group(1)


def test_score_model_has_both_inputs_in_the_flowchart(repo: Path, run_cli: Any) -> None:
    write_experiment(repo, fixture_files("predictive--input-renamed"), slug="predictive")
    graph = mermaid_of(run_cli, repo)
    score, transform = node_id(graph, "Score Model"), node_id(graph, "Apply Transformation")
    model = re.search(r'^  (a\d+)\[\["trained-model 8f1d3b5a \(batch 12\)"\]\]$', graph, re.M)
    assert model, graph
    assert f"  {transform} --> {score}" in graph and f"  {model.group(1)} --> {score}" in graph
    dataset = re.search(r'^  (a\d+)\[\("dataset 2a4c6e8b \(batch 23\)"\)\]$', graph, re.M)
    transformer = re.search(r'^  (a\d+)\{\{"transform 6c8e0a2b \(batch 5\)"\}\}$', graph, re.M)
    assert dataset and transformer
    assert f"  {dataset.group(1)} --> {transform}" in graph and f"  {transformer.group(1)} --> {transform}" in graph


def test_a_bumped_dataset_is_one_changed_input_node(repo: Path, run_cli: Any) -> None:
    write_experiment(repo, fixture_files("training--asset-bumped"))
    graph = mermaid_of(run_cli, repo, "training")
    asset = re.search(r'^  (a\d+)\[\("dataset 2a4c6e8b \(batch 23 → 24\)"\)\]$', graph, re.M)
    assert asset, graph
    assert f"  {asset.group(1)} --> {node_id(graph, 'Split Data')}" in graph
    assert re.search(rf"^  class [\w,]*\b{asset.group(1)}\b[\w,]* changed$", graph, re.M)


# --- the HTML report ---------------------------------------------------------------------------------------------


def big_graph(rows: int = 10, columns: int = 4) -> tuple[dict[str, Any], dict[str, Any]]:
    """A 40-module experiment laid out on Studio's canvas (150 px between rows), and its layout.json."""
    ids = [f"{i:08x}-aaaa-4bbb-8ccc-{i:012x}-{i}" for i in range(rows * columns)]
    nodes = {n: {"$module": {"name": f"Module number {i}"}, "ModuleId": f"o.{i:032x}.v1-default-1",
                 "ModuleParameters": [{"Name": "Value", "Value": "1"}], "InputPortsInternal": [{"Name": "in"}],
                 "OutputPortsInternal": [{"Name": "out"}], "Comment": ""} for i, n in enumerate(ids)}
    edges = [{"SourceOutputPortId": f"{ids[i]}:out", "DestinationInputPortId": f"{ids[i + columns]}:in"}
             for i in range(len(ids) - columns)]
    experiment = {"$format": "amlvc/experiment@1", "Description": "Big", "Graph": {"ModuleNodes": nodes,
                  "EdgesInternal": edges}, "WebService": {"Inputs": [], "Outputs": [], "Parameters": []}}
    positions = [{"node": n, "position": f"{(i % columns) * 300},{(i // columns) * 150},200,200"}
                 for i, n in enumerate(ids)]
    return experiment, {"$format": "amlvc/layout@1", "Graph": {"positions": positions},
                        "WebService": {"positions": []}}


VIEW = """
var svg = document.querySelector('svg.canvas'), frame = svg.getBoundingClientRect();
out.scale = svg.getScreenCTM().a; out.nodes = [];
document.querySelectorAll('g.node').forEach(function (g) {
  var r = g.querySelector('rect').getBoundingClientRect(), t = g.querySelector('text');
  out.nodes.push({id: g.dataset.nodeId, state: g.dataset.state, label: t.textContent,
    font: t.getScreenCTM().a * parseFloat(getComputedStyle(t).fontSize),
    visible: r.left >= frame.left && r.right <= frame.right && r.top >= frame.top && r.bottom <= frame.bottom});
});
document.querySelector('button[data-zoom="all"]').click();
out.all = svg.getScreenCTM().a;
out.diffLines = Array.from(document.querySelectorAll('pre.script-diff span')).map(function (s) {
  return [s.className, getComputedStyle(s).backgroundColor]; });
"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_a_40_node_report_opens_on_the_change_at_a_readable_size(tmp_path: Path, run_cli: Any) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "amlvc.toml").write_text("[amlvc]\nformat = 1\n", encoding="utf-8")
    experiment, layout = big_graph()
    write_experiment(root, {"experiment.json": dumps(experiment), "layout.json": dumps(layout)}, slug="big")
    commit_all(root, "40 modules")
    changed = sorted(experiment["Graph"]["ModuleNodes"])[33:35]
    for node in changed:
        experiment["Graph"]["ModuleNodes"][node]["ModuleParameters"][0]["Value"] = "2"
    write_experiment(root, {"experiment.json": dumps(experiment), "layout.json": dumps(layout)}, slug="big")
    report = tmp_path / "report.html"
    assert run_cli(["diff", "--format", "html", "-o", str(report)], cwd=root).exit_code == 0
    seen = probe(tmp_path, report.read_text(encoding="utf-8"), VIEW)
    nodes = {n["id"]: n for n in seen["nodes"]}
    assert len(nodes) == 40
    for node in changed:
        assert nodes[node]["state"] == "changed" and nodes[node]["visible"], nodes[node]
        assert nodes[node]["font"] >= 11, nodes[node]  # a 13 px label, not shrunk to fit 40 nodes
    assert seen["scale"] >= 0.85 and seen["all"] < 0.6  # zoomed in on the change; "all" shows the whole graph
    assert not all(n["visible"] for n in nodes.values())


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_script_lines_are_red_and_green_and_assets_are_nodes(tmp_path: Path, run_cli: Any, repo: Path) -> None:
    write_experiment(repo, fixture_files("training--script-line"))
    report = tmp_path / "report.html"
    assert run_cli(["diff", "--format", "html", "-o", str(report)], cwd=repo).exit_code == 0
    seen = probe(tmp_path, report.read_text(encoding="utf-8"), VIEW)
    colours = {cls: bg for cls, bg in seen["diffLines"]}
    assert colours["add"] == "rgb(218, 251, 225)" and colours["del"] == "rgb(255, 235, 233)"
    assets = [n for n in seen["nodes"] if n["id"].startswith("asset:")]
    assert [a["label"] for a in assets] == ["dataset 2a4c6e8b (batch 23)"]
    html = report.read_text(encoding="utf-8")
    assert re.search(r'<path class="edge " data-source="asset:[^"]+" data-target="5e7a9c1b-[^"]+-25"', html)
