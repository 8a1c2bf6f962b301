"""docs/ci.md's recipes run as written: the composite action's steps and the plain shell recipe, on a pull
request's branch of a repository pulled from a local workspace."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from actionkit import Run, run_action
from conftest import ROOT
from mdcheck import parse
from teamkit import PREDICTIVE, TRAINING, Team, commit, edit, git, pulled, set_param

# A stand-in for GitHub's `gh` (not installed here, and no network): it logs each call and its body file, and
# answers the comment listing with the id of an earlier amlvc comment when $GH_EXISTING is set.
FAKE_GH = """#!/bin/sh
echo "$*" >> "$GH_LOG"
for arg in "$@"; do case "$arg" in body=@*) cat "${arg#body=@}" > "$GH_LOG.body";; esac; done
case "$*" in *--paginate*) [ -n "$GH_EXISTING" ] && echo "$GH_EXISTING";; esac
exit 0
"""


@pytest.fixture(scope="module")
def action(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The action as GitHub checks it out: the repository's files (what `pip install` builds from)."""
    path = tmp_path_factory.mktemp("action") / "amlvc"
    path.mkdir()
    for name in ("amlvc", "fixtures"):
        shutil.copytree(ROOT / name, path / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("action.yml", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, path / name)
    return path


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh Python, as setup-python leaves it: amlvc is not in it; its dependencies come from this test
    environment (PYTHONPATH below) instead of the package index."""
    venv = tmp_path_factory.mktemp("runner") / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    tools = venv.parent / "tools"
    tools.mkdir()
    (tools / "gh").write_text(FAKE_GH, encoding="utf-8")
    (tools / "gh").chmod(0o755)
    return venv


@pytest.fixture
def team(run_cli: Any, tmp_path: Path) -> Iterator[Team]:
    """A pull request: `feature` changes a parameter and renames the predictive experiment's input; main is
    on `origin`, as actions/checkout with fetch-depth 0 leaves it."""
    with pulled(run_cli, tmp_path) as team:
        subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], check=True)
        git(team.root, "remote", "add", "origin", str(tmp_path / "origin.git"))
        git(team.root, "push", "-q", "origin", "main")
        git(team.root, "fetch", "-q", "origin")
        git(team.root, "checkout", "-q", "-b", "feature")
        edit(team.root, TRAINING, set_param("Split Data", "Random seed", "7"))
        edit(team.root, PREDICTIVE, lambda doc: doc["WebService"]["Inputs"][0].update(Name="kunde"))
        commit(team.root, "feature")
        yield team


def act(action: Path, runner: Path, team: Team, *, inputs: dict[str, str] | None = None, fork: bool = False,
        existing: str = "") -> tuple[Run, Path]:
    log = team.root.parent / "gh.log"
    log.unlink(missing_ok=True)
    github = {"base_ref": "main", "event_name": "pull_request", "repository": "team/experiments", "token": "t0ken",
              "event": {"pull_request": {"number": 7, "head": {"repo": {"fork": fork}}}}}
    env = {"PATH": f"{runner / 'bin'}:{runner.parent / 'tools'}:/usr/bin:/bin", "GITHUB_ACTION_PATH": str(action),
           "GITHUB_REPOSITORY": "team/experiments", "PYTHONPATH": sysconfig.get_paths()["purelib"],
           "GH_LOG": str(log), "GH_EXISTING": existing, "HOME": os.environ["HOME"]}
    return run_action(action / "action.yml", team.root, inputs=inputs or {}, github=github, env=env), log


def test_the_action_comments_once_and_keeps_the_report(action: Path, runner: Path, team: Team) -> None:
    run, log = act(action, runner, team, existing="4242")
    assert [code for _, code, _ in run.steps] == [0, 0, 0, 0, 0], run.log()
    assert (runner / "bin" / "amlvc").is_file()  # installed from the action's checkout
    assert run.outputs["diff"] == {"breaking": "true", "changed": "2"}
    assert "::warning title=amlvc::breaking web-service change" in run.log()
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls[0].startswith("api repos/team/experiments/issues/7/comments --paginate")
    assert calls[1].startswith("api -X PATCH repos/team/experiments/issues/comments/4242")  # updated, not a second
    body = log.with_name("gh.log.body").read_text(encoding="utf-8")
    assert body.startswith("<!-- amlvc-diff -->\n## amlvc: experiment changes\n") and len(body.encode()) <= 65_536
    assert parse(body).table_rows == 2 and "kunde" in body
    assert body.split("\n", 1)[1] == run.summary  # the job summary holds the same report
    used = dict(run.used)
    assert used["actions/setup-python@v5"] == {"python-version": "3.11"}
    artifacts = used["actions/upload-artifact@v4"]["path"].split()
    assert all((team.root / name).is_file() for name in artifacts)
    assert json.loads((team.root / "amlvc-diff.json").read_text(encoding="utf-8"))["breaking"] is True


def test_a_pull_request_from_a_fork_gets_the_job_summary(action: Path, runner: Path, team: Team) -> None:
    run, log = act(action, runner, team, fork=True)
    assert [code for _, code, _ in run.steps] == [0, 0, 0, 0, 0], run.log()
    assert not log.exists()  # no attempt with a token that cannot comment
    assert "pull request from a fork: its token cannot comment; the report is in the job summary" in run.log()
    assert run.summary.startswith("## amlvc: experiment changes\n") and "Random seed" in run.summary


def test_the_verdict_fails_the_job_after_the_report(action: Path, runner: Path, team: Team) -> None:
    path = team.root / "experiments" / TRAINING / "experiment.json"
    path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=4), encoding="utf-8")
    commit(team.root, "a hand edit")
    run, log = act(action, runner, team, inputs={"fail-on-breaking": "true"})
    assert [code for _, code, _ in run.steps] == [0, 0, 0, 0, 1], run.log()
    assert run.outputs["canonical"] == {"ok": "false"}
    assert "api -X POST repos/team/experiments/issues/7/comments" in log.read_text(encoding="utf-8")
    assert "amlvc normalize --check failed" in run.steps[-1][2]


def test_the_shell_recipe_runs(team: Team) -> None:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    block = re.search(r"## Other CI systems.*?```bash\n(.*?)```", text, re.S)
    assert block
    lines = block.group(1).splitlines()
    assert lines[0] == 'python -m pip install "git+https://github.com/amlvc/amlvc@main"'  # from the repository
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", "\n".join(lines[1:])], cwd=team.root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f" {TRAINING}" in done.stdout and "experiments changed" in done.stdout
    assert parse((team.root / "diff.md").read_text(encoding="utf-8")).table_rows == 2
    assert (team.root / "diff.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_workflow_and_the_hooks_name_what_exists() -> None:
    workflow = yaml.safe_load((ROOT / "docs" / "examples" / "amlvc-pr-diff.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["diff"]["steps"]
    assert steps == [{"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}}, {"uses": "amlvc/amlvc@main"}]
    ref = steps[1]["uses"].split("@")[1]
    docs = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8") + (ROOT / ".pre-commit-hooks.yaml").read_text(
        encoding="utf-8")
    assert set(re.findall(r"rev: (\S+)", docs)) == {ref}
    assert set(re.findall(r"amlvc/amlvc@(\w+)", docs)) == {ref}
    known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{ref}"], cwd=ROOT,
                           capture_output=True, text=True)
    if known.returncode != 0:
        pytest.skip(f"this checkout has no branch {ref!r} to check the docs against")
    assert (ROOT / "action.yml").is_file() and (ROOT / ".pre-commit-hooks.yaml").is_file()
