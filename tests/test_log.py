"""`amlvc log EXP`: one semantic summary line per commit that touched the experiment, newest first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reviewkit import EXP_DIR, commit_all, fixture_files, make_repo, write_experiment


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path)
    write_experiment(root, fixture_files("training--param-changed"))
    commit_all(root, "tolerance")
    # Each variant is the base plus one edit, so later edits take only the files they touch.
    (root / EXP_DIR / "layout.json").write_bytes(fixture_files("training--node-dragged")["layout.json"])
    commit_all(root, "drag")
    for rel, data in fixture_files("training--script-line").items():
        if rel.startswith("scripts/"):
            (root / EXP_DIR / rel).write_bytes(data)
    commit_all(root, "script fix")
    write_experiment(root, fixture_files("predictive--base"), slug="predictive")
    commit_all(root, "another experiment")
    return root


def test_log_summarises_each_commit(repo: Path, run_cli: Any) -> None:
    result = run_cli(["log", "training"], cwd=repo)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    subjects = [line.split(": ", 1)[1] for line in lines[0::2]]
    summaries = [line.strip() for line in lines[1::2]]
    assert subjects == ["script fix", "drag", "tolerance", "base"]
    assert summaries == ["1 script", "layout only", "1 parameter", "experiment added (12 nodes, 12 edges)"]
    assert lines[0].split()[1] == "2024-01-01" and "Test Author" in lines[0]


def test_log_json_and_limits(repo: Path, run_cli: Any) -> None:
    result = run_cli(["log", "training", "--json", "-n", "2"], cwd=repo)
    entries = json.loads(result.stdout)
    assert [e["subject"] for e in entries] == ["script fix", "drag"]
    assert [c["kind"] for c in entries[0]["changes"]] == ["script.changed"]
    assert len(entries[0]["commit"]) == 40


def test_log_patch_shows_the_records(repo: Path, run_cli: Any) -> None:
    result = run_cli(["log", "training", "-p", "-n", "3"], cwd=repo)
    assert "    ~ parameter Two-Class Logistic Regression [5e7a9c1b…-21]: Optimization Tolerance: 1E-07 → 1E-06" \
        in result.stdout


def test_log_of_an_unknown_experiment(repo: Path, run_cli: Any) -> None:
    result = run_cli(["log", "nope"], cwd=repo)
    assert result.exit_code == 2
    assert "no experiment 'nope'" in result.stderr
    assert result.stdout == ""


def test_log_names_changes_to_the_experiment_itself(repo: Path, run_cli: Any) -> None:
    """A rename or a new summary reads as such in the summary line, not as "1 other"."""
    path = repo / EXP_DIR / "experiment.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["Summary"] = doc["Summary"] + " (überarbeitet)"
    doc["Description"] = "Kündigung – Training v2"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    commit_all(repo, "renamed")
    result = run_cli(["log", "training", "-n", "1"], cwd=repo)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].strip() == "renamed, summary"
