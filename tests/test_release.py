"""`amlvc release`: the example plan (docs/examples/release.toml) from a workspace without experiments or services
to a scored endpoint; a failed step resumed; a release killed at step 6 resumed to the same end state."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from servicekit import ENV, Cli, git, make_repo, workspace_secrets
from test_git_secrets import assert_not_in_git
from wskit import DEV, TOKENS

from amlvc.errors import ExitCode
from amlvc.server.runner import ServerHandle, start_server

ROOT = Path(__file__).resolve().parents[1]
ASSET_LISTS = ("datasources.json", "trainedmodels.json", "transformmodules.json", "modules.json")
STEPS = ["upload-dataset", "copy-training", "bump-training", "run-training", "promote-model", "copy-predictive",
         "bump-predictive", "run-predictive", "deploy", "endpoint", "score"]


@pytest.fixture
def empty_workspace(tmp_path: Path) -> Iterator[ServerHandle]:
    """The fixtures' workspace with its shared assets (datasets, models, transforms, custom modules: the team's,
    as a prod workspace has them) and no experiment, run or web service."""
    seed = tmp_path / "assets-only"
    seed.mkdir()
    for name in ASSET_LISTS:
        shutil.copyfile(ROOT / "fixtures" / name, seed / name)
    with start_server(tmp_path / "server-data", workspaces=[(DEV, TOKENS[DEV])], seed=seed) as server:
        yield server


def prepared(run_cli: Any, root: Path, server: ServerHandle) -> Cli:
    """A repository holding the two experiments (imported from their exports) and the example plan."""
    cli = Cli(run_cli, make_repo(root, server))
    cli("import", str(ROOT / "fixtures" / "training--base.json"), str(ROOT / "fixtures" / "predictive--base.json"))
    shutil.copytree(ROOT / "docs" / "examples", root.parent / "plan")
    return cli


def plan(cli: Cli) -> str:
    return str(cli.root.parent / "plan" / "release.toml")


def end_state(cli: Cli, server: ServerHandle, report: dict[str, Any]) -> dict[str, Any]:
    """What a release leaves, without what differs from run to run (times, run and job ids, service ids)."""
    root = cli.root
    tracked = git(root, "ls-files").split()
    files = {p: (root / p).read_text(encoding="utf-8") for p in tracked
             if p.startswith(("experiments/", "webservices/"))}
    manifests = {p: [(v["version"], v["sha256"], v["size"]) for v in json.loads((root / p).read_text())["versions"]]
                 for p in tracked if p.startswith("models/")}
    lock = json.loads((root / "amlvc.lock").read_text(encoding="utf-8"))["remotes"]["dev"]
    headers = {"x-ms-metaanalytics-authorizationtoken": TOKENS[DEV]}
    names = sorted(e["Description"] for e in requests.get(f"{server.url}/api/workspaces/{DEV}/experiments",
                                                          headers=headers, timeout=10).json())
    score = next(s for s in report["steps"] if s["step"] == "score")["result"]
    return {"files": files, "manifests": manifests, "experiments": sorted(lock["experiments"]),
            "services": sorted(lock["webservices"]), "workspace": names, "score": score}


def test_the_example_plan_releases_and_a_failed_step_resumes(empty_workspace: ServerHandle, run_cli: Any,
                                                           tmp_path: Path) -> None:
    cli = prepared(run_cli, tmp_path / "repo", empty_workspace)
    dry = cli.json("release", plan(cli), "--dry-run")
    assert [s["step"] for s in dry["steps"]] == STEPS and {s["state"] for s in dry["steps"]} == {"pending"}
    sample = cli.root.parent / "plan" / "release" / "sample.csv"
    kept = sample.read_bytes()
    sample.unlink()  # step 11 fails: the sample is not there
    failed = cli("release", plan(cli), "--json", code=ExitCode.LOCAL)
    report = json.loads(failed.stdout)
    assert [s["state"] for s in report["steps"]] == ["done"] * 10 + ["failed"]
    assert "sample.csv" in report["error"] and report["steps"][8]["replaces"] == "New-AmlWebService"
    again = cli("release", plan(cli), code=ExitCode.USAGE)
    assert "stopped at step 'score'" in again.stderr and "--resume" in again.stderr
    sample.write_bytes(kept)
    resumed = cli.json("release", plan(cli), "--resume")
    assert [s["state"] for s in resumed["steps"]] == ["already done"] * 10 + ["done"]
    values = resumed["steps"][-1]["result"]["results"]["output1"]
    assert values["ColumnNames"][-2:] == ["Scored Labels", "Scored Probabilities"]
    assert git(cli.root, "status", "--porcelain") == ""
    # a second run finds every effect in place and does nothing again
    assert {s["state"] for s in cli.json("release", plan(cli))["steps"]} == {"already done"}
    subjects = git(cli.root, "log", "--format=%s").splitlines()
    assert sum(s.startswith("Deploy web service kundigung-scoring-2017-07") for s in subjects) == 1
    assert_not_in_git(cli.root, workspace_secrets(empty_workspace))


def test_a_release_killed_at_step_6_resumes_to_the_same_end_state(run_cli: Any, tmp_path: Path) -> None:
    ends = []
    for run in ("straight", "killed"):
        seed = tmp_path / run / "assets-only"
        seed.mkdir(parents=True)
        for name in ASSET_LISTS:
            shutil.copyfile(ROOT / "fixtures" / name, seed / name)
        with start_server(tmp_path / run / "server-data", workspaces=[(DEV, TOKENS[DEV])], seed=seed) as server:
            cli = prepared(run_cli, tmp_path / run / "repo", server)
            if run == "killed":
                state = kill_at(cli, "copy-predictive")
                assert state["steps"]["copy-predictive"]["state"] == "running"
                assert [s for s in STEPS if state["steps"].get(s, {}).get("state") == "done"] == STEPS[:5]
                report = cli.json("release", plan(cli), "--resume")
                assert [s["state"] for s in report["steps"]] == ["already done"] * 5 + ["done"] * 6
            else:
                report = cli.json("release", plan(cli))
            assert git(cli.root, "status", "--porcelain") == ""
            assert subprocess.run(["git", "fsck", "--no-progress"], cwd=cli.root, capture_output=True).returncode == 0
            ends.append(end_state(cli, server, report))
    assert ends[0] == ends[1]


def kill_at(cli: Cli, step: str) -> dict[str, Any]:
    """Run the release in a process of its own and SIGKILL it as soon as `step` starts; the progress it left."""
    progress = cli.root / ".amlvc" / "release" / "release.json"
    env = {**os.environ, **ENV}
    proc = subprocess.Popen([sys.executable, "-m", "amlvc", "release", plan(cli)], cwd=cli.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                state = json.loads(progress.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                state = {}
            if state.get("steps", {}).get(step, {}).get("state") == "running":
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.0005)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the release ended before the step started"
    result: dict[str, Any] = json.loads(progress.read_text(encoding="utf-8"))
    return result
