"""Breaking means a published contract changed: the first pull, training experiments and removals never are."""

from __future__ import annotations

import json
from typing import Any

from teamkit import PREDICTIVE, TRAINING, Team, commit, edit, git


def records(run_cli: Any, team: Team, *args: str) -> dict[str, Any]:
    result = run_cli(["diff", *args, "--format", "json"], cwd=team.root)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_first_pull_reads_as_two_added_experiments(run_cli: Any, team: Team) -> None:
    text = run_cli(["diff", "HEAD~1"], cwd=team.root)
    assert text.exit_code == 0, text.stderr
    assert [line for line in text.stdout.splitlines() if line] == [
        f"experiment {TRAINING} (Kündigung – Training ✓): added (12 nodes, 12 edges)",
        f"experiment {PREDICTIVE} (Kündigung – Training ✓ [Predictive Exp.]): added (4 nodes, 3 edges, web service: "
        "1 input, 1 output, 1 parameter, web-service definition)",
    ]
    data = records(run_cli, team, "HEAD~1")
    assert data["breaking"] is False
    assert [(e["slug"], e["status"], e["changes"], e["breaking"]) for e in data["experiments"]] == [
        (TRAINING, "added", [], False), (PREDICTIVE, "added", [], False)]
    md = run_cli(["diff", "HEAD~1", "--format", "markdown"], cwd=team.root).stdout
    assert "BREAKING" not in md and "null" not in md


def test_web_service_ports_of_a_training_experiment_are_no_contract(run_cli: Any, team: Team) -> None:
    """kundigung-training has web-service ports but `IsWebServiceExperiment: false`: nobody calls it."""
    edit(team.root, TRAINING, lambda doc: doc["WebService"]["Inputs"].clear())
    edit(team.root, PREDICTIVE, lambda doc: doc["WebService"]["Inputs"][0].update(Name="kunde"))
    data = records(run_cli, team)
    found = {e["slug"]: [(c["kind"], c["breaking"]) for c in e["changes"]] for e in data["experiments"]}
    assert found == {TRAINING: [("webservice.input_removed", False)],
                     PREDICTIVE: [("webservice.input_changed", True)]}
    text = run_cli(["diff"], cwd=team.root).stdout
    assert "- web-service input input1\n" in text and "~ web-service input input1 → kunde: renamed [BREAKING]" in text


def test_a_new_web_service_experiment_is_not_breaking(run_cli: Any, team: Team) -> None:
    """Publishing a training experiment as a web service gives callers a contract; it takes none away."""
    edit(team.root, TRAINING, lambda doc: doc["WebService"].update(IsWebServiceExperiment=True))
    commit(team.root, "publish")
    edit(team.root, TRAINING, lambda doc: doc["WebService"]["Inputs"].clear())
    assert records(run_cli, team, "HEAD~1", "HEAD")["breaking"] is False
    assert records(run_cli, team)["breaking"] is True  # once published, removing the input breaks callers


def test_removed_experiment_is_one_line_and_not_breaking(run_cli: Any, team: Team) -> None:
    git(team.root, "rm", "-q", "-r", f"experiments/{PREDICTIVE}")
    result = run_cli(["diff", "--exit-code"], cwd=team.root)
    assert result.exit_code == 1
    assert result.stdout.strip() == (f"experiment {PREDICTIVE} (Kündigung – Training ✓ [Predictive Exp.]): removed "
                                     "(4 nodes, 3 edges, web service: 1 input, 1 output, 1 parameter, web-service "
                                     "definition)")
    assert records(run_cli, team)["breaking"] is False


def test_a_web_service_definition_coming_or_going_is_one_record(run_cli: Any, team: Team) -> None:
    wsd = team.root / "experiments" / PREDICTIVE / "webservice.json"
    kept = wsd.read_bytes()
    wsd.unlink()
    (change,) = records(run_cli, team)["experiments"][0]["changes"]
    assert (change["kind"], change["file"], change["breaking"]) == ("webservice.definition_removed",
                                                                   "webservice.json", False)
    commit(team.root, "drop the definition")
    wsd.write_bytes(kept)
    (change,) = records(run_cli, team)["experiments"][0]["changes"]
    title = "Kündigung – Training ✓ [Predictive Exp.]"
    assert (change["kind"], change["new"]) == ("webservice.definition_added", title)
    assert f"+ web-service definition {title}" in run_cli(["diff"], cwd=team.root).stdout
