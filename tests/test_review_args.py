"""`amlvc diff` and `amlvc log` read their arguments as git does: ranges, merge bases, `--`, names and paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reviewkit import commit_all, edit_experiment, fixture_files, git, make_repo, node_with, param, write_experiment

NAME = "Kündigung – Training ✓"


def set_value(module: str, name: str, value: str) -> Any:
    return lambda doc: param(node_with(doc, module), name).update(Value=value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main with two experiments; `feature` changes one; main then changes the other."""
    root = make_repo(tmp_path)
    write_experiment(root, fixture_files("predictive--base"), slug="predictive")
    commit_all(root, "predictive")
    git(root, "checkout", "-q", "-b", "feature")
    edit_experiment(root, set_value("Score Model", "Append score columns to output", "False"), slug="predictive")
    commit_all(root, "feature: no appended scores")
    git(root, "checkout", "-q", "main")
    edit_experiment(root, set_value("Split Data", "Random seed", "7"))
    commit_all(root, "main: another seed")
    return root


def slugs_of(run_cli: Any, repo: Path, *args: str, cwd: Path | None = None) -> list[str]:
    result = run_cli(["diff", "--json", *args], cwd=cwd or repo)
    assert result.exit_code == 0, result.stderr
    return [e["slug"] for e in json.loads(result.stdout)["experiments"]]


def test_three_dots_compare_from_the_merge_base(repo: Path, run_cli: Any) -> None:
    assert slugs_of(run_cli, repo, "main...feature") == ["predictive"]  # what the pull request changes
    assert slugs_of(run_cli, repo, "main..feature") == ["predictive", "training"]  # tip against tip
    assert slugs_of(run_cli, repo, "main", "feature") == ["predictive", "training"]
    md = run_cli(["diff", "main...feature", "--format", "markdown"], cwd=repo)
    assert md.stdout.startswith("## amlvc diff main...feature\n")
    git(repo, "checkout", "-q", "feature")
    assert slugs_of(run_cli, repo, "main...") == ["predictive"]  # an empty side is HEAD, as in git


def test_unknown_revisions_are_usage_errors(repo: Path, run_cli: Any) -> None:
    for args, message in ((["no-such-branch"], "unknown revision 'no-such-branch'"),
                          (["main..nope"], "unknown revision 'nope' in 'main..nope'"),
                          (["main...nope"], "unknown revision 'nope' in 'main...nope'"),
                          (["nope", "--"], "unknown revision 'nope'"),
                          (["HEAD~9"], "unknown revision 'HEAD~9'")):
        result = run_cli(["diff", *args], cwd=repo)
        assert (result.exit_code, result.stdout) == (2, ""), args
        assert message in result.stderr and "no experiment" not in result.stderr.split(",")[0], result.stderr


def test_double_dash_separates_revisions_from_experiments(repo: Path, run_cli: Any) -> None:
    assert slugs_of(run_cli, repo, "main..feature", "--", "training") == ["training"]
    assert slugs_of(run_cli, repo, "HEAD~1", "--", "training", "predictive") == ["training"]  # predictive: unchanged
    result = run_cli(["diff", "--", "HEAD"], cwd=repo)
    assert result.exit_code == 2 and "no experiment 'HEAD' on either side" in result.stderr
    too_many = run_cli(["diff", "HEAD~2", "HEAD~1", "HEAD"], cwd=repo)
    assert too_many.exit_code == 2 and "at most two revisions" in too_many.stderr


def test_a_branch_named_like_an_experiment(repo: Path, run_cli: Any) -> None:
    git(repo, "branch", "training", "HEAD~1")
    edit_experiment(repo, set_value("Split Data", "Random seed", "8"))
    taken = run_cli(["diff", "training", "--json"], cwd=repo)
    assert taken.exit_code == 0
    assert "'training' is both an experiment and a revision; taken as the experiment (write `training --` for the " \
           "revision)" in taken.stderr
    changes = json.loads(taken.stdout)["experiments"][0]["changes"]
    assert [(c["old"], c["new"]) for c in changes] == [("7", "8")]  # HEAD against the work tree
    as_revision = run_cli(["diff", "training", "--", "--json"], cwd=repo)
    assert as_revision.exit_code == 2  # after `--` only experiments: "--json" is none
    as_revision = run_cli(["diff", "--json", "training", "--", "training"], cwd=repo)
    changes = json.loads(as_revision.stdout)["experiments"][0]["changes"]
    assert [(c["old"], c["new"]) for c in changes] == [("12345", "8")] and as_revision.stderr == ""


def test_paths_and_names_select_experiments(repo: Path, run_cli: Any) -> None:
    edit_experiment(repo, set_value("Split Data", "Random seed", "8"))
    edit_experiment(repo, set_value("Score Model", "Append score columns to output", "False"), slug="predictive")
    script = next(p.name for p in (repo / "experiments/training/scripts").iterdir())
    assert slugs_of(run_cli, repo, "--", f"experiments/training/scripts/{script}") == ["training"]
    assert slugs_of(run_cli, repo, "experiments/predictive/experiment.json") == ["predictive"]
    assert slugs_of(run_cli, repo, "experiments/") == ["predictive", "training"]
    assert slugs_of(run_cli, repo, ".", cwd=repo / "experiments" / "training") == ["training"]
    assert slugs_of(run_cli, repo, NAME) == ["training"]
    assert slugs_of(run_cli, repo, "HEAD", f"{NAME} [Predictive Exp.]") == ["predictive"]
    outside = run_cli(["diff", "../../etc"], cwd=repo)
    assert outside.exit_code == 2 and "is not an experiment name or a path under experiments/<slug>/" in outside.stderr
    write_experiment(repo, fixture_files("training--base"), slug="copy")
    twice = run_cli(["diff", NAME], cwd=repo)
    assert twice.exit_code == 2 and f"'{NAME}' is the name of 'copy', 'training'" in twice.stderr


def test_json_flag_is_format_json(repo: Path, run_cli: Any) -> None:
    assert run_cli(["diff", "HEAD~1", "--json"], cwd=repo).stdout == \
        run_cli(["diff", "HEAD~1", "--format", "json"], cwd=repo).stdout
    both = run_cli(["diff", "--json", "--format", "markdown"], cwd=repo)
    assert both.exit_code == 2 and "--json and --format markdown" in both.stderr


def test_log_by_name_and_of_the_whole_repository(repo: Path, run_cli: Any) -> None:
    named = run_cli(["log", NAME], cwd=repo)
    assert named.exit_code == 0, named.stderr
    assert named.stdout == run_cli(["log", "training"], cwd=repo).stdout
    assert named.stdout.count("\n") == 4  # base and the seed change, two lines each
    whole = run_cli(["log"], cwd=repo)
    assert whole.exit_code == 0, whole.stderr
    lines = whole.stdout.splitlines()
    assert [line.split(": ", 1)[1] for line in lines if not line.startswith(" ")] == [
        "main: another seed", "predictive", "base"]
    assert lines[1] == "    training: 1 parameter"
    assert lines[3].startswith("    predictive: experiment added (4 nodes")
    entries = json.loads(run_cli(["log", "--json", "-n", "1"], cwd=repo).stdout)
    assert [e["slug"] for e in entries[0]["experiments"]] == ["training"] and "changes" not in entries[0]


def test_every_remote_option_is_also_r_and_every_json_option_a_flag() -> None:
    from amlvc.cli import cli

    for name, command in cli.commands.items():
        for option in command.params:
            if "--remote" in getattr(option, "opts", []):
                assert "-r" in option.opts, name
            if "--json" in getattr(option, "opts", []):
                assert getattr(option, "is_flag", False), name
