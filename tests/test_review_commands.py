"""What reviewers expect of diff: --stat, --name-only, --ignore-layout, colour, a workspace diff in push
direction, and a push plan listing what it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from teamkit import PREDICTIVE, TRAINING, Team, commit, edit, set_param, studio, training_id

from amlvc.canonical.normalize import dumps


def drag(root: Path, slug: str = TRAINING) -> None:
    """Move the first module node on the canvas (what a drag in Studio leaves after a pull)."""
    path = root / "experiments" / slug / "layout.json"
    layout = json.loads(path.read_bytes())
    first = next(p for p in layout["Graph"]["positions"] if "-" in p["node"].split(".")[0])
    x, rest = first["position"].split(",", 1)
    first["position"] = f"{int(x) + 40},{rest}"
    path.write_bytes(dumps(layout))


def test_stat_and_name_only(run_cli: Any, team: Team) -> None:
    edit(team.root, TRAINING, set_param("Two-Class Logistic Regression", "Optimization Tolerance", "1E-06"))
    edit(team.root, TRAINING, set_param("Split Data", "Random seed", "7"))
    drag(team.root)
    edit(team.root, PREDICTIVE, lambda doc: doc["WebService"]["Inputs"][0].update(Name="kunde"))
    stat = run_cli(["diff", "--stat"], cwd=team.root)
    assert stat.exit_code == 0, stat.stderr
    assert stat.stdout.splitlines() == [
        f" {TRAINING}                | 3 ~~~",
        f" {PREDICTIVE} | 1 ~  [BREAKING]",
        " 2 experiments changed: 2 modified; 4 changes (1 breaking)",
    ]
    names = run_cli(["diff", "--name-only", "--", "experiments/"], cwd=team.root)
    assert names.stdout == f"{TRAINING}\n{PREDICTIVE}\n"
    both = run_cli(["diff", "--stat", "--format", "markdown"], cwd=team.root)
    assert both.exit_code == 2 and "--stat is a text output" in both.stderr


def test_ignore_layout_makes_a_drag_no_difference(run_cli: Any, team: Team) -> None:
    drag(team.root)
    assert run_cli(["diff", "--exit-code"], cwd=team.root).exit_code == 1
    quiet = run_cli(["diff", "--ignore-layout", "--exit-code"], cwd=team.root)
    assert (quiet.exit_code, quiet.stdout) == (0, "")
    edit(team.root, TRAINING, set_param("Split Data", "Random seed", "7"))
    data = json.loads(run_cli(["diff", "--ignore-layout", "--json"], cwd=team.root).stdout)
    assert [c["kind"] for c in data["experiments"][0]["changes"]] == ["parameter.changed"]


def test_colour_follows_the_flag_then_force_color_then_no_color(run_cli: Any, team: Team) -> None:
    edit(team.root, TRAINING, set_param("Split Data", "Random seed", "7"))
    assert "\033[" not in run_cli(["diff"], cwd=team.root).stdout  # not a terminal
    assert "\033[33m~ parameter" in run_cli(["diff", "--color", "always"], cwd=team.root).stdout
    assert "\033[33m~ parameter" in run_cli(["diff"], cwd=team.root, env={"FORCE_COLOR": "1"}).stdout
    assert "\033[" not in run_cli(["diff", "--color", "never"], cwd=team.root, env={"FORCE_COLOR": "1"}).stdout
    assert "\033[33m" in run_cli(["diff", "--stat", "--color=always"], cwd=team.root).stdout
    assert "\033[33m" in run_cli(["log", "-n", "1", "--color", "always"], cwd=team.root).stdout
    assert "\033[" not in run_cli(["diff", "--color", "always", "--json"], cwd=team.root).stdout


def test_workspace_diff_reads_as_the_push(run_cli: Any, team: Team) -> None:
    with studio(team) as api:
        doc = api.get_experiment(training_id(api))
        api.create_experiment({**doc, "Description": "Nur im Workspace"})
    edit(team.root, TRAINING, set_param("Split Data", "Random seed", "7"))
    result = run_cli(["diff", "-r", "dev", "--format", "markdown"], cwd=team.root, env=team.env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("## amlvc diff: work tree → workspace dev (what `amlvc push -r dev` would "
                                    "change)\n")
    assert "Random seed: 12345 → 7" in result.stdout  # the workspace's value, then what the push writes
    assert "nur-im-workspace" not in result.stdout
    assert "1 experiment(s) only in workspace 'dev' ('nur-im-workspace'): a push leaves them alone" in result.stderr
    text = run_cli(["diff", "-r", "dev"], cwd=team.root, env=team.env)
    assert "work tree → workspace dev (what `amlvc push -r dev` would change)" in text.stderr
    pulled = run_cli(["diff", "-r", "dev", "-R", "--name-only"], cwd=team.root, env=team.env)
    assert pulled.stdout == f"{TRAINING}\nnur-im-workspace\n"


def test_push_plan_lists_what_each_update_writes(run_cli: Any, team: Team) -> None:
    edit(team.root, TRAINING, set_param("Two-Class Logistic Regression", "Optimization Tolerance", "1E-06"))
    edit(team.root, PREDICTIVE, lambda doc: doc["WebService"]["Inputs"][0].update(Name="kunde"))
    commit(team.root, "tolerance, input renamed")
    plan = run_cli(["push", "--dry-run"], cwd=team.root, env=team.env)
    assert plan.exit_code == 0, plan.stderr
    lines = plan.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"  ~ {TRAINING}  update"))
    assert lines[at + 1] == ("      ~ parameter Two-Class Logistic Regression [5e7a9c1b…-21]: Optimization Tolerance: "
                             "1E-07 → 1E-06")
    assert "      ~ web-service input input1 → kunde: renamed [BREAKING]" in lines
    data = json.loads(run_cli(["push", "--dry-run", "--json"], cwd=team.root, env=team.env).stdout)
    changes = {e["experiment"]: [c["kind"] for c in e["changes"]] for e in data["experiments"]}
    assert changes == {TRAINING: ["parameter.changed"], PREDICTIVE: ["webservice.input_changed"]}


def test_push_check_and_restore_take_an_experiment_by_name(run_cli: Any, team: Team) -> None:
    name = "Kündigung – Training ✓"
    edit(team.root, TRAINING, set_param("Split Data", "Random seed", "7"))
    commit(team.root, "another seed")
    plan = run_cli(["push", name, "--dry-run", "--json"], cwd=team.root, env=team.env)
    assert plan.exit_code == 0, plan.stderr
    assert [e["experiment"] for e in json.loads(plan.stdout)["experiments"]] == [TRAINING]
    checked = run_cli(["check", name, "--json"], cwd=team.root, env=team.env)
    assert [e["experiment"] for e in json.loads(checked.stdout)["experiments"]] == [TRAINING]
    restored = run_cli(["restore", name, "--rev", "HEAD~1", "--json"], cwd=team.root, env=team.env)
    assert restored.exit_code == 0, restored.stderr
    assert json.loads(restored.stdout)["experiment"] == TRAINING
