"""The markdown report as a pull-request comment: it fits, it closes what it opens, and it shows values as typed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from mdcheck import parse
from reviewkit import commit_all, edit_experiment, fixture_files, git, node_with, param, write_experiment

GOLDEN = ROOT / "tests" / "golden" / "markdown-escaping.md"


def many_experiments(tmp_path: Path, count: int) -> Path:
    """A repository of `count` experiments, each then edited (a parameter, a script line, a node) in one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "amlvc.toml").write_text("[amlvc]\nformat = 1\n", encoding="utf-8")
    base, added = fixture_files("training--base"), fixture_files("training--node-added")
    script = {k: v for k, v in fixture_files("training--script-line").items() if k.startswith("scripts/")}
    slugs = [f"exp-{i:03d}" for i in range(count)]
    for slug in slugs:
        write_experiment(root, base, slug=slug)
    commit_all(root, "base")
    for slug in slugs:
        write_experiment(root, {**added, **script}, slug=slug)
    commit_all(root, "edit every experiment")
    return root


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return many_experiments(tmp_path_factory.mktemp("big"), 200)


def test_a_200_experiment_diff_fits_one_comment(big: Path, run_cli: Any) -> None:
    full = run_cli(["diff", "HEAD~1", "HEAD", "--format", "markdown", "--max-bytes", "0"], cwd=big)
    assert full.exit_code == 0, full.stderr
    assert len(full.stdout.encode()) > 400_000  # what `head -c 60000` used to cut through a mermaid fence
    result = run_cli(["diff", "HEAD~1", "HEAD", "--format", "markdown"], cwd=big)
    assert result.exit_code == 0, result.stderr
    size = len(result.stdout.encode())
    assert 60_000 < size <= 65_536
    doc = parse(result.stdout)
    assert doc.table_rows == 200  # every experiment in the summary table
    shown = result.stdout.count("<details><summary><code>exp-")
    assert 0 < shown < 200
    assert result.stdout.rstrip().endswith(f"_{200 - shown} more experiments: see the HTML report / job artifact._")
    whole = parse(full.stdout).fences
    assert all(fence in whole for fence in doc.fences)  # whole blocks, never a cut one
    summary = run_cli(["diff", "HEAD~1", "HEAD", "--format", "markdown", "--summary"], cwd=big)
    assert parse(summary.stdout).table_rows == 200 and "<details" not in summary.stdout


def test_every_budget_closes_what_it_opens(tmp_path: Path, run_cli: Any) -> None:
    root = many_experiments(tmp_path, 6)
    full = run_cli(["diff", "HEAD~1", "HEAD", "--format", "markdown", "--max-bytes", "0"], cwd=root).stdout
    whole = parse(full)
    end = len(full.encode())
    for limit in [*range(1_400, end + 500, (end - 1_400) // 23), end]:
        result = run_cli(["diff", "HEAD~1", "HEAD", "--format", "markdown", "--max-bytes", str(limit)], cwd=root)
        assert result.exit_code == 0, (limit, result.stderr)
        assert len(result.stdout.encode()) <= limit
        doc = parse(result.stdout)
        assert all(fence in whole.fences for fence in doc.fences), limit
        assert doc.table_rows == 6, limit
        assert (result.stdout == full) == (limit >= end)
    tiny = run_cli(["diff", "HEAD~1", "HEAD", "--format", "markdown", "--max-bytes", "300"], cwd=root)
    assert tiny.exit_code == 2 and "--max-bytes 300 cannot hold the report's heading and table header" in tiny.stderr
    wrong = run_cli(["diff", "HEAD~1", "HEAD", "--summary"], cwd=root)
    assert wrong.exit_code == 2 and "add --format markdown" in wrong.stderr


def test_one_huge_experiment_keeps_its_first_records(tmp_path: Path, run_cli: Any) -> None:
    root = many_experiments(tmp_path, 1)

    def many_params(doc: dict[str, Any]) -> None:
        for node in doc["Graph"]["ModuleNodes"].values():
            node["ModuleParameters"] += [{"Name": f"p{i}", "Value": "x" * 80} for i in range(60)]

    edit_experiment(root, many_params, slug="exp-000")
    result = run_cli(["diff", "--format", "markdown", "--max-bytes", "6000"], cwd=root)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.encode()) <= 6000
    parse(result.stdout)
    assert "more changes: see the HTML report / job artifact" in result.stdout
    assert "Graph and script diffs left out to fit" in result.stdout


# --- values that are markup ---------------------------------------------------------------------------------------

PATH_VALUE = "anrufe/<year>/a|b_*.csv"
NAME = "Report: Q1/Q2 <draft>?*"
COMMENT = "use `x` and ``y`` | *not* _emphasis_ [link](http://x) &lt; $x$ ~~no~~ #7"
SCRIPT_LINE = "# ``` is not the end of this script"


def hostile_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "amlvc.toml").write_text("[amlvc]\nformat = 1\n", encoding="utf-8")
    write_experiment(root, fixture_files("training--base"), slug="report")
    commit_all(root, "base")

    def edit(doc: dict[str, Any]) -> None:
        doc["Description"] = NAME
        importer = node_with(doc, "Import Data")
        param(importer, "Path to container or directory or blob")["Value"] = PATH_VALUE
        importer["Comment"] = COMMENT
        scorer = node_with(doc, "Score Model")
        scorer["$module"]["name"] = "Score <v2> | `best` & \"final\" #1"
        param(scorer, "Append score columns to output")["Value"] = "False"

    edit_experiment(root, edit, slug="report")
    script = next((root / "experiments/report/scripts").glob("*--r-script.R"))
    script.write_text(script.read_text(encoding="utf-8") + SCRIPT_LINE + "\n````\n", encoding="utf-8")
    return root


def test_markup_in_values_shows_as_typed(tmp_path: Path, run_cli: Any) -> None:
    root = hostile_repo(tmp_path)
    result = run_cli(["diff", "--format", "markdown", "--title", "amlvc: experiment changes"], cwd=root)
    assert result.exit_code == 0, result.stderr
    md = result.stdout
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(md, encoding="utf-8")
    assert md == GOLDEN.read_text(encoding="utf-8"), "markdown changed; rerun with UPDATE_GOLDEN=1 and review the file"
    doc = parse(md)
    for typed in (PATH_VALUE, NAME, COMMENT, "Score <v2> | `best` & \"final\" #1"):
        assert typed in doc.text, typed
    assert "'" not in md.replace("\\'", "")  # backticks are never turned into quotes
    (script,) = [content for info, content in doc.fences if info == "diff"]
    assert SCRIPT_LINE in script and "+````" in script  # the fence is longer than any run inside
    (graph,) = [content for info, content in doc.fences if info == "mermaid"]
    assert 'Score #60;v2#62; | #96;best#96; #38; #34;final#34; #35;1 [' in graph
