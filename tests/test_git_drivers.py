"""Real git repositories: `amlvc config-git`, then plain git diff / log -p / show / merge use amlvc's drivers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reviewkit import (
    EXP_DIR,
    commit_all,
    edit_experiment,
    fixture_files,
    git,
    make_repo,
    node_with,
    param,
    write_experiment,
)

from amlvc.canonical.normalize import dumps
from amlvc.errors import InvalidDocument
from amlvc.review.merge import validate_experiment
from amlvc.review.parsed import Parsed as Tree

EXPERIMENT = f"{EXP_DIR}/experiment.json"


@pytest.fixture
def repo(tmp_path: Path, run_cli: Any) -> Path:
    root = make_repo(tmp_path)
    result = run_cli(["config-git"], cwd=root)
    assert result.exit_code == 0, result.stderr
    commit_all(root, "amlvc config-git")
    return root


def set_param(module: str, name: str, value: str) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        param(node_with(doc, module), name)["Value"] = value
    return edit


def test_config_git_writes_drivers_and_attributes(repo: Path) -> None:
    attributes = (repo / ".gitattributes").read_text(encoding="utf-8")
    assert "experiments/*/experiment.json diff=amlvc merge=amlvc" in attributes
    assert "experiments/*/webservice.json diff=amlvc merge=amlvc" in attributes
    assert git(repo, "config", "diff.amlvc.command").stdout.strip().endswith("diff-driver")
    assert git(repo, "config", "diff.amlvc.textconv").stdout.strip().endswith("textconv")
    assert git(repo, "config", "merge.amlvc.driver").stdout.strip().endswith("merge-driver %O %A %B %P")


def test_config_git_twice_changes_nothing(repo: Path, run_cli: Any) -> None:
    before = (repo / ".gitattributes").read_bytes()
    result = run_cli(["config-git"], cwd=repo)
    assert result.exit_code == 0
    assert (repo / ".gitattributes").read_bytes() == before
    assert "Already set up" in result.stderr


def test_config_git_outside_a_repository(tmp_path: Path, run_cli: Any) -> None:
    result = run_cli(["config-git"], cwd=tmp_path)
    assert result.exit_code == 3
    assert "not inside a git repository" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_config_git_global(tmp_path: Path, run_cli: Any, isolated_env: Path) -> None:
    result = run_cli(["config-git", "--global"], cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    config = (isolated_env / ".gitconfig").read_text(encoding="utf-8")
    assert '[diff "amlvc"]' in config and '[merge "amlvc"]' in config
    attributes = (isolated_env / ".config" / "git" / "attributes").read_text(encoding="utf-8")
    assert "**/experiments/*/experiment.json diff=amlvc merge=amlvc" in attributes


def test_git_diff_of_one_parameter(repo: Path) -> None:
    write_experiment(repo, fixture_files("training--param-changed"))
    out = git(repo, "diff").stdout
    assert "Optimization Tolerance" in out
    assert "1E-07 → 1E-06" in out
    assert "layout" not in out.lower()
    assert len([ln for ln in out.splitlines() if ln.startswith("~")]) == 1


def test_git_log_p_and_show_use_the_outline(repo: Path) -> None:
    write_experiment(repo, fixture_files("training--param-changed"))
    commit_all(repo, "tolerance")
    for args in (("log", "-p", "-1"), ("show", "HEAD")):
        out = git(repo, *args).stdout
        changed = [ln for ln in out.splitlines() if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
        assert changed == ["-  parameter Optimization Tolerance: 1E-07", "+  parameter Optimization Tolerance: 1E-06"]
        assert " node Two-Class Logistic Regression (batch " in out  # the node is in the hunk's context
        assert "@@ node " in out  # hunk headers name nodes (xfuncname)
    # layout.json goes through the same textconv: a drag is one changed position line
    write_experiment(repo, fixture_files("training--node-dragged"))
    commit_all(repo, "drag")
    out = git(repo, "show", "HEAD").stdout
    assert len([ln for ln in out.splitlines() if ln.startswith("+Graph position")]) == 1


def test_git_diff_of_a_drag_is_collapsed(repo: Path) -> None:
    write_experiment(repo, fixture_files("training--node-dragged"))
    out = git(repo, "diff").stdout
    assert "layout: 1 canvas position changed" in out
    assert "experiment.json" not in out


def branches(repo: Path, ours: Any, theirs: Any) -> None:
    git(repo, "checkout", "-q", "-b", "theirs")
    theirs()
    commit_all(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    ours()
    commit_all(repo, "ours")


def test_disjoint_edits_merge_cleanly(repo: Path) -> None:
    # Adjacent lines of one node: a line-based merge would conflict, the semantic one does not.
    def theirs() -> None:
        edit_experiment(repo, set_param("Two-Class Logistic Regression", "L1 Regularization weight", "0.5"))
        layout = json.loads((repo / EXP_DIR / "layout.json").read_bytes())
        layout["Graph"]["positions"][0]["position"] = "1,2,200,200"
        (repo / EXP_DIR / "layout.json").write_bytes(dumps(layout))

    def ours() -> None:
        edit_experiment(repo, set_param("Two-Class Logistic Regression", "Optimization Tolerance", "1E-06"))
        layout = json.loads((repo / EXP_DIR / "layout.json").read_bytes())
        layout["Graph"]["positions"][-1]["position"] = "9,9,200,200"
        (repo / EXP_DIR / "layout.json").write_bytes(dumps(layout))

    branches(repo, ours, theirs)
    result = git(repo, "merge", "--no-edit", "theirs", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    files = {p.relative_to(repo / EXP_DIR).as_posix(): p.read_bytes() for p in (repo / EXP_DIR).rglob("*")
             if p.is_file()}
    tree = Tree.from_files(files)  # parses: no conflict markers
    lr = node_with(tree.experiment, "Two-Class Logistic Regression")
    assert param(lr, "Optimization Tolerance")["Value"] == "1E-06"
    assert param(lr, "L1 Regularization weight")["Value"] == "0.5"
    assert validate_experiment(tree.experiment) == []
    assert files["experiment.json"] == dumps(tree.experiment)  # canonical bytes
    positions = tree.layout["Graph"]["positions"]
    assert positions[0]["position"] == "1,2,200,200" and positions[-1]["position"] == "9,9,200,200"


def test_same_parameter_changed_differently_stops_with_the_report(repo: Path, run_cli: Any) -> None:
    branches(repo, lambda: edit_experiment(repo, set_param("Two-Class Logistic Regression", "Optimization Tolerance",
                                                           "1E-06")),
             lambda: edit_experiment(repo, set_param("Two-Class Logistic Regression", "Optimization Tolerance",
                                                     "1E-05")))
    result = git(repo, "merge", "--no-edit", "theirs", check=False)
    assert result.returncode != 0
    report = result.stdout + result.stderr
    assert "CONFLICT (amlvc)" in report
    assert "parameter 'Optimization Tolerance' of node Two-Class Logistic Regression" in report
    assert "ours 1E-06, theirs 1E-05 (base 1E-07)" in report
    data = (repo / EXPERIMENT).read_bytes()
    assert b'"$conflict"' in data
    with pytest.raises(InvalidDocument, match="unresolved merge conflict"):
        Tree.from_files({"experiment.json": data})
    assert "experiments/training/experiment.json" in git(repo, "diff", "--name-only", "--diff-filter=U").stdout
    check = run_cli(["normalize", "--check"], cwd=repo)
    assert check.exit_code in (1, 6) and "experiments/training/experiment.json" in check.stdout + check.stderr
    assert run_cli(["diff"], cwd=repo).exit_code == 6
    # Resolved: keep theirs, delete the file's top-level marker; the checks pass and the merge commits.
    doc = json.loads(data)
    param(node_with(doc, "Two-Class Logistic Regression"), "Optimization Tolerance")["Value"] = "1E-05"
    del doc["$conflict"]
    (repo / EXPERIMENT).write_bytes(dumps(doc))
    assert run_cli(["normalize", "--check"], cwd=repo).exit_code == 0
    commit_all(repo, "merge theirs")
    assert "Optimization Tolerance: 1E-07 → 1E-05" in run_cli(["diff", "HEAD~2", "HEAD"], cwd=repo).stdout


def test_node_deleted_and_edited_conflicts(repo: Path) -> None:
    def delete(doc: dict[str, Any]) -> None:
        nodes = doc["Graph"]["ModuleNodes"]
        node_id = next(i for i, n in nodes.items() if n["$module"]["name"] == "Evaluate Model")
        del nodes[node_id]
        doc["Graph"]["EdgesInternal"] = [e for e in doc["Graph"]["EdgesInternal"]
                                         if node_id not in (e["SourceOutputPortId"] + e["DestinationInputPortId"])]
        for key in ("Inputs", "Outputs"):
            doc["WebService"][key] = [p for p in doc["WebService"][key] if not p["PortId"].startswith(node_id)]

    def comment(doc: dict[str, Any]) -> None:
        node_with(doc, "Evaluate Model")["Comment"] = "AUC only"

    branches(repo, lambda: edit_experiment(repo, delete), lambda: edit_experiment(repo, comment))
    result = git(repo, "merge", "--no-edit", "theirs", check=False)
    assert result.returncode != 0
    report = result.stdout + result.stderr
    assert "node Evaluate Model [5e7a9c1b…-37] was deleted by ours and edited by theirs" in report


def test_merge_driver_on_unreadable_input(tmp_path: Path, run_cli: Any) -> None:
    base, ours, theirs = (tmp_path / n for n in ("base", "ours", "theirs"))
    base.write_text("{}", encoding="utf-8")
    ours.write_text("{not json", encoding="utf-8")
    theirs.write_text("{}", encoding="utf-8")
    result = run_cli(["merge-driver", str(base), str(ours), str(theirs), "experiments/x/experiment.json"])
    assert result.exit_code == 6
    assert "experiments/x/experiment.json (ours)" in result.stderr and "invalid JSON at line 1" in result.stderr
    assert ours.read_text(encoding="utf-8") == "{not json"


def test_textconv_prints_other_files_unchanged(tmp_path: Path, run_cli: Any) -> None:
    path = tmp_path / "experiment.json"
    path.write_text("not json\n", encoding="utf-8")
    result = run_cli(["textconv", str(path)])
    assert result.exit_code == 0 and result.stdout == "not json\n"


def test_conflict_in_a_plain_string_field_is_still_not_canonical(repo: Path, run_cli: Any) -> None:
    # A marker where any JSON value may stand (Summary) is caught by the file's top-level marker.
    branches(repo, lambda: edit_experiment(repo, lambda d: d.update(Summary="ours")),
             lambda: edit_experiment(repo, lambda d: d.update(Summary="theirs")))
    assert git(repo, "merge", "--no-edit", "theirs", check=False).returncode != 0
    doc = json.loads((repo / EXPERIMENT).read_bytes())
    assert doc["Summary"]["$conflict"]["ours"] == "ours"
    assert doc["$conflict"]["conflicts"] == ["/Summary"]
    assert run_cli(["normalize", "--check"], cwd=repo).exit_code != 0


def test_pre_commit_hooks_run_real_commands(repo: Path, run_cli: Any) -> None:
    from conftest import ROOT

    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    entries = [line.split("entry:", 1)[1].strip() for line in hooks.splitlines() if line.strip().startswith("entry:")]
    assert entries == ["amlvc normalize --check", "amlvc verify"]
    # pre-commit passes the staged files to both hooks: only the experiments holding them are checked
    assert hooks.count("pass_filenames: true") == 2
    staged = [f"{EXP_DIR}/experiment.json", f"{EXP_DIR}/layout.json"]
    assert run_cli([*entries[0].split()[1:], *staged], cwd=repo).exit_code == 0
    verified = run_cli([*entries[1].split()[1:], "--json", *staged], cwd=repo)
    assert verified.exit_code == 0, verified.stderr
    assert [i["source"] for i in json.loads(verified.stdout)["items"]] == [EXP_DIR]


def test_diff_driver_for_added_and_unmerged_files(repo: Path, run_cli: Any) -> None:
    write_experiment(repo, fixture_files("predictive--base"), slug="predictive")
    git(repo, "add", "-A")
    out = git(repo, "diff", "--cached").stdout
    assert ("experiment predictive (Kündigung – Training ✓ [Predictive Exp.]): added (4 nodes, 3 edges, web "
            "service: 1 input, 1 output, 1 parameter)") in out
    assert "+ node Score Model [" not in out and "[BREAKING]" not in out  # one line, and nothing breaks
    unmerged = run_cli(["diff-driver", "experiments/predictive/experiment.json"])
    assert unmerged.exit_code == 0 and unmerged.stdout.startswith("* Unmerged path experiments/predictive/")
