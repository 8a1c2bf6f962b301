"""Renderings of change records (text, markdown, json) and the `amlvc diff` / CLI surface."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import ROOT
from reviewkit import commit_all, fixture_files, git, make_repo, write_experiment

from amlvc.render import render
from amlvc.render.mermaid import MAX_MERMAID_NODES
from amlvc.render.mermaid import flowchart as mermaid
from amlvc.review.diff import diff_trees
from amlvc.review.parsed import Parsed as Tree
from amlvc.review.records import ExperimentDiff

SCHEMA = json.loads(re.search(r"### JSON Schema.*?```json\n(.*?)```", (ROOT / "docs" / "diff-format.md").read_text(
    encoding="utf-8"), re.S).group(1))  # type: ignore[union-attr]


def pair(variant: str) -> ExperimentDiff:
    base = variant.split("--")[0] + "--base"
    return diff_trees(Tree.from_files(fixture_files(base)), Tree.from_files(fixture_files(variant)),
                      variant.split("--")[0])


def test_text_is_git_like_and_coloured_only_when_asked() -> None:
    d = pair("training--param-changed")
    plain = render([d], "text")
    assert plain.splitlines()[0] == "experiment training (Kündigung – Training ✓): modified, 1 parameter"
    assert "~ parameter Two-Class Logistic Regression [5e7a9c1b…-21]: Optimization Tolerance: 1E-07 → 1E-06" in plain
    assert "\033[" not in plain
    assert "\033[33m~ parameter" in render([d], "text", color=True)


def test_markdown_has_table_records_and_mermaid() -> None:
    d = pair("training--node-added")
    md = render([d], "markdown", title="PR #7")
    assert md.startswith("## PR #7\n")
    assert "| experiment | status | nodes | parameters | edges |" in md
    assert "| `training` | modified | 1 |  | 1 |" in md
    assert "- ➕ node Convert to CSV \\[0b2d4f6a…-3\\]: Convert to CSV (batch 1643)" in md
    block = md.split("```mermaid\n")[1].split("```")[0]
    assert block.startswith("flowchart TD")
    added = re.search(r'(n\d+)\["Convert to CSV \[0b2d4f6a…-3\]"\]', block)
    assert added and f"class {added.group(1)} added" in block
    assert "linkStyle" in block  # the new edge is coloured


def test_markdown_folds_the_graph_when_nothing_in_it_changed() -> None:
    """A drag (layout only) leaves the flowchart as it was: it is still there, folded, so the PR stays short."""
    dragged = render([pair("training--node-dragged")], "markdown")
    assert "<details><summary>graph (unchanged)</summary>\n\n```mermaid\nflowchart TD" in dragged
    changed = render([pair("training--param-changed")], "markdown")
    assert "```mermaid\nflowchart TD" in changed and "graph (unchanged)" not in changed


def test_markdown_of_big_graphs_shows_changed_nodes_and_neighbours() -> None:
    nodes = {f"{i:08x}-0000-4000-8000-000000000000-{i}": {"ModuleId": "x", "$module": {"name": f"M{i}"}}
             for i in range(MAX_MERMAID_NODES * 2)}
    ids = sorted(nodes)
    edges = [{"SourceOutputPortId": f"{a}:o", "DestinationInputPortId": f"{b}:i"} for a, b in pairwise(ids)]
    old = {"Graph": {"ModuleNodes": nodes, "EdgesInternal": edges}}
    new = json.loads(json.dumps(old))
    new["Graph"]["ModuleNodes"][ids[5]]["Comment"] = "changed"
    block = mermaid(diff_trees(Tree(old, {}, {}, None), Tree(new, {}, {}, None)))
    shown = re.findall(r'^  n\d+\["', block, re.M)
    assert len(shown) == 3  # the changed node and its two neighbours
    assert f"{MAX_MERMAID_NODES * 2 - 3} unchanged nodes not shown" in block


def test_no_changes_in_every_format() -> None:
    d = diff_trees(Tree.from_files(fixture_files("training--base")), Tree.from_files(fixture_files("training--base")))
    assert render([d], "text") == ""
    assert "No experiment changed." in render([d], "markdown")
    assert json.loads(render([d], "json"))["experiments"] == []
    assert "No experiment changed." in render([d], "html")


@pytest.mark.parametrize("variant", ["training--param-changed", "training--node-added", "training--script-line",
                                     "predictive--input-renamed", "training--asset-bumped"])
def test_json_matches_the_documented_schema(variant: str) -> None:
    data = json.loads(render([pair(variant)], "json"))
    jsonschema.validate(data, SCHEMA)
    assert data["experiments"][0]["patch"]


def test_breaking_input_rename_is_flagged_in_every_format() -> None:
    d = pair("predictive--input-renamed")
    text = render([d], "text")
    assert "~ web-service input input1 → kunde: renamed [BREAKING]" in text
    md = render([d], "markdown")
    assert "**Breaking web-service change** in `predictive`" in md
    assert "- ✏️ web-service input input1 → kunde: renamed **BREAKING**" in md
    data = json.loads(render([d], "json"))
    assert data["breaking"] is True
    assert data["experiments"][0]["changes"][0]["breaking"] is True
    assert re.search(r'p\d+\(\["input: input1 → kunde"\]\)', md) and re.search(r"class p\d+ breaking", md)
    html = render([d], "html")
    assert re.search(r'<li class="change changed breaking" data-kind="webservice.input_changed"[^>]*>.*?'
                     r'<span class="flag">BREAKING</span>', html)
    assert '<g class="port input changed breaking"' in html and "input: input1 → kunde" in html


def test_breaking_input_removal_is_flagged_in_every_format() -> None:
    old = Tree.from_files(fixture_files("predictive--base"))
    exp = json.loads(json.dumps(old.experiment))
    exp["WebService"]["Inputs"] = []
    d = diff_trees(old, Tree(exp, old.layout, old.scripts, None), "predictive")
    assert "- web-service input input1 [BREAKING]" in render([d], "text")
    assert "- ➖ web-service input input1 **BREAKING**" in render([d], "markdown")
    assert json.loads(render([d], "json"))["experiments"][0]["changes"][0]["kind"] == "webservice.input_removed"
    assert 'class="change removed breaking"' in render([d], "html")


# --- the command line ---------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def test_diff_of_the_work_tree(repo: Path, run_cli: Any) -> None:
    clean = run_cli(["diff", "--exit-code"], cwd=repo)
    assert (clean.exit_code, clean.stdout) == (0, "")
    write_experiment(repo, fixture_files("training--param-changed"))
    result = run_cli(["diff", "--exit-code"], cwd=repo)
    assert result.exit_code == 1
    assert "Optimization Tolerance: 1E-07 → 1E-06" in result.stdout
    assert run_cli(["diff"], cwd=repo).exit_code == 0


def test_diff_between_revisions_and_formats(repo: Path, run_cli: Any, tmp_path: Path) -> None:
    write_experiment(repo, fixture_files("training--node-added"))
    commit_all(repo, "node added")
    for args in (["HEAD~1", "HEAD"], ["HEAD~1..HEAD"], ["HEAD~1"], ["HEAD~1", "HEAD", "training"]):
        result = run_cli(["diff", *args, "--format", "json"], cwd=repo)
        assert result.exit_code == 0, result.stderr
        kinds = [c["kind"] for c in json.loads(result.stdout)["experiments"][0]["changes"]]
        assert kinds == ["node.added", "edge.added", "layout.changed"]
    out = tmp_path / "report.html"
    result = run_cli(["diff", "HEAD~1", "HEAD", "--format", "html", "-o", str(out)], cwd=repo)
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    md = run_cli(["diff", "HEAD~1", "HEAD", "--format", "markdown", "--title", "PR"], cwd=repo)
    assert md.stdout.startswith("## PR\n")


def test_diff_of_experiment_added_and_removed(repo: Path, run_cli: Any) -> None:
    write_experiment(repo, fixture_files("predictive--base"), slug="predictive")
    result = run_cli(["diff"], cwd=repo)
    assert result.stdout == ("experiment predictive (Kündigung – Training ✓ [Predictive Exp.]): added (4 nodes, "
                             "3 edges, web service: 1 input, 1 output, 1 parameter)\n")
    commit_all(repo, "add predictive")
    git(repo, "rm", "-q", "-r", "experiments/predictive")
    result = run_cli(["diff", "predictive", "--format", "json"], cwd=repo)
    assert json.loads(result.stdout)["experiments"][0]["status"] == "removed"


def test_diff_reads_only_the_experiments_git_sees_changed(repo: Path, run_cli: Any) -> None:
    """An experiment nobody touched is not even parsed: a broken committed one does not stop the diff of
    another, while every kind of change git reports (edit, untracked, deleted) still shows."""
    write_experiment(repo, {"experiment.json": b"{broken"}, slug="legacy")
    write_experiment(repo, fixture_files("predictive--base"), slug="predictive")
    commit_all(repo, "a broken experiment and a predictive one")
    write_experiment(repo, fixture_files("training--param-changed"))  # edited
    write_experiment(repo, fixture_files("predictive--base"), slug="copy")  # untracked
    git(repo, "rm", "-q", "-r", "experiments/predictive")  # deleted
    (repo / "experiments/training/notes.txt").write_text("not a canonical file\n", encoding="utf-8")
    for args in ([], ["HEAD"]):
        result = run_cli(["diff", *args, "--format", "json"], cwd=repo)
        assert result.exit_code == 0, result.stderr
        statuses = {d["slug"]: d["status"] for d in json.loads(result.stdout)["experiments"]}
        assert statuses == {"copy": "added", "predictive": "removed", "training": "modified"}
    commit_all(repo, "edits")
    result = run_cli(["diff", "HEAD~1", "HEAD", "--format", "json"], cwd=repo)
    assert {d["slug"] for d in json.loads(result.stdout)["experiments"]} == {"copy", "predictive", "training"}
    assert run_cli(["diff", "--exit-code"], cwd=repo).exit_code == 0
    named = run_cli(["diff", "HEAD~1", "HEAD", "legacy"], cwd=repo)  # the same bytes on both sides: no change
    assert (named.exit_code, named.stdout) == (0, "")
    (repo / "experiments/legacy/experiment.json").write_text("{still broken", encoding="utf-8")
    edited = run_cli(["diff", "legacy"], cwd=repo)  # once it changes it is read, and refused
    assert edited.exit_code == 6 and "experiments/legacy/experiment.json: invalid JSON" in edited.stderr


def test_diff_refusals(repo: Path, run_cli: Any, tmp_path: Path) -> None:
    unknown = run_cli(["diff", "no-such-experiment"], cwd=repo)
    assert unknown.exit_code == 2 and "unknown revision 'no-such-experiment'" in unknown.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = run_cli(["diff"], cwd=outside)
    assert result.exit_code == 3 and "not inside an amlvc repository" in result.stderr
    bad = run_cli(["diff", "--format", "pdf"], cwd=repo)
    assert bad.exit_code == 2
    (repo / "experiments/training/experiment.json").write_text("{broken", encoding="utf-8")
    broken = run_cli(["diff", "-o", str(tmp_path / "never.txt")], cwd=repo)
    assert broken.exit_code == 6
    assert "experiments/training/experiment.json: invalid JSON at line 1" in broken.stderr
    assert not (tmp_path / "never.txt").exists()
    too_many = run_cli(["diff", "HEAD", "HEAD", "--remote", "dev"], cwd=repo)
    assert too_many.exit_code == 2 and "at most one revision" in too_many.stderr


@pytest.mark.parametrize("seed", range(12))
def test_patch_of_long_lists_applies(seed: int) -> None:
    import random

    import jsonpatch

    from amlvc.render.json import _ops

    rng = random.Random(seed)
    old = [{"SourceOutputPortId": f"n{i}:o", "DestinationInputPortId": f"n{i + 1}:i"} for i in range(300)]
    new = [dict(x) for x in old]
    for _ in range(rng.randint(1, 30)):
        action = rng.choice(("insert", "remove", "change"))
        index = rng.randrange(len(new))
        if action == "insert":
            new.insert(index, {"SourceOutputPortId": f"x{rng.random()}:o", "DestinationInputPortId": "y:i"})
        elif action == "remove":
            new.pop(index)
        else:
            new[index]["DestinationInputPortId"] = f"z{rng.random()}:i"
    doc = {"experiment.json": {"Graph": {"EdgesInternal": old}}}
    target = {"experiment.json": {"Graph": {"EdgesInternal": new}}}
    assert jsonpatch.apply_patch(doc, list(_ops(doc, target, ""))) == target


def test_diff_against_the_live_workspace(tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pullkit import TOKEN, TOKEN_ENV, client, create, init_repo, start, studio_edit

    def tolerance(doc: dict[str, Any]) -> None:
        for node in doc["Graph"]["ModuleNodes"]:
            for param in node["ModuleParameters"]:
                if param["Name"] == "Optimization Tolerance":
                    param["Value"] = "1E-05"

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with start(tmp_path / "data") as server:
        api = client(server)
        exp_id = create(api)
        root = init_repo(run_cli, tmp_path, server)
        assert run_cli(["pull"], cwd=root).exit_code == 0
        slug = next(p.name for p in (root / "experiments").iterdir())
        same = run_cli(["diff", "--remote", "dev", "--exit-code"], cwd=root)
        assert (same.exit_code, same.stdout) == (0, ""), same.stderr
        studio_edit(api, exp_id, tolerance)
        result = run_cli(["diff", "--remote", "dev", "--exit-code", slug], cwd=root)
        assert result.exit_code == 1, result.stderr
        assert "Optimization Tolerance: 1E-05 → 1E-07" in result.stdout  # what a push would write there
        assert "layout" not in result.stdout
        pulled = run_cli(["diff", "-R", "-r", "dev", slug], cwd=root)
        assert "Optimization Tolerance: 1E-07 → 1E-05" in pulled.stdout  # what a pull would bring
        assert run_cli(["diff", "--remote", "nope"], cwd=root).exit_code in (2, 3)


def test_diff_refuses_paths_as_experiment_names(repo: Path, run_cli: Any) -> None:
    result = run_cli(["diff", "../../etc"], cwd=repo)
    assert result.exit_code == 2 and "is not an experiment name" in result.stderr


@pytest.mark.parametrize(("edit", "where"), [
    (lambda d: d.update(Graph=[]), "/Graph: expected an object, got list"),
    (lambda d: d["Graph"].update(EdgesInternal={}), "/Graph/EdgesInternal: expected a list, got dict"),
    (lambda d: d["Graph"]["ModuleNodes"].update(x=1), "/Graph/ModuleNodes/x: expected an object, got int"),
    (lambda d: d["WebService"].update(Inputs=[1]), "/WebService/Inputs/0: expected an object, got int"),
])
def test_diff_of_a_malformed_file_names_the_path(repo: Path, run_cli: Any, edit: Any, where: str) -> None:
    from reviewkit import edit_experiment

    edit_experiment(repo, edit)
    result = run_cli(["diff"], cwd=repo)
    assert result.exit_code == 6, result.stderr
    assert f"experiments/training/experiment.json: {where}" in result.stderr
