"""The graph as Studio draws it: datasets, trained models and transforms are input nodes of the modules using them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mdcheck import parse
from reviewkit import commit_all, fixture_files, make_repo, write_experiment


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
