"""The small things a team notices: -o files' modes, one commit per restore, README examples that run."""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from teamkit import TRAINING, Team, commit, edit, git, set_param, studio, training_id

from amlvc.canonical.normalize import to_push_body


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_files_written_with_o_get_the_umask_mode(run_cli: Any, team: Team, tmp_path: Path, umask_027: None) -> None:
    report, exported, kept = tmp_path / "report.html", tmp_path / "export.json", tmp_path / "kept.md"
    assert run_cli(["diff", "HEAD~1", "--format", "html", "-o", str(report)], cwd=team.root).exit_code == 0
    assert run_cli(["export", TRAINING, "-o", str(exported)], cwd=team.root).exit_code == 0
    kept.write_text("old\n", encoding="utf-8")
    kept.chmod(0o664)
    assert run_cli(["diff", "HEAD~1", "--format", "markdown", "-o", str(kept)], cwd=team.root).exit_code == 0
    assert stat.S_IMODE(report.stat().st_mode) == 0o640  # as `> report.html` would make it, not 0600
    assert stat.S_IMODE(exported.stat().st_mode) == 0o640
    assert stat.S_IMODE(kept.stat().st_mode) == 0o664 and kept.read_text(encoding="utf-8").startswith("## ")


def test_restore_of_a_revision_is_one_commit(run_cli: Any, team: Team) -> None:
    with studio(team) as api:
        exp_id = training_id(api)
        doc = api.get_experiment(exp_id)
        for node in doc["Graph"]["ModuleNodes"]:
            for parameter in node["ModuleParameters"]:
                if parameter["Name"] == "Random seed":
                    parameter["Value"] = "99"
        api.save_experiment(exp_id, to_push_body(doc))  # what Studio does on an edit
    assert run_cli(["pull"], cwd=team.root, env=team.env).exit_code == 0
    before = git(team.root, "rev-parse", "HEAD").strip()
    result = run_cli(["restore", TRAINING, "--rev", "HEAD~1"], cwd=team.root, env=team.env)
    assert result.exit_code == 0, result.stderr
    assert git(team.root, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    assert git(team.root, "log", "-1", "--format=%s").startswith(f"Restore {TRAINING} to ")
    touched = git(team.root, "show", "--name-only", "--format=", "HEAD").split()
    assert "amlvc.lock" in touched and f"experiments/{TRAINING}/experiment.json" in touched
    assert git(team.root, "status", "--porcelain") == ""
    assert run_cli(["diff", "HEAD~2", "--exit-code", "--", TRAINING], cwd=team.root).exit_code == 0


def readme_block(heading: str) -> list[str]:
    """The amlvc command lines of the README's code block after the paragraph starting with `heading`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(re.escape(heading) + r".*?```sh\n(.*?)```", text, re.S)
    assert block, heading
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.startswith("amlvc ")]


def test_readme_review_examples_run_on_the_demo(run_cli: Any, team: Team) -> None:
    git(team.root, "checkout", "-q", "-b", "feature")
    edit(team.root, TRAINING, set_param("Split Data", "Random seed", "7"))
    commit(team.root, "another seed")
    lines = readme_block("Reviewing a branch")
    assert len(lines) >= 6
    for line in lines:
        result = run_cli(shlex.split(line)[1:], cwd=team.root, env=team.env)
        assert result.exit_code == 0, (line, result.stderr)
    stat_line = run_cli(["diff", "main...feature", "--stat"], cwd=team.root).stdout
    assert stat_line.startswith(f" {TRAINING} | 1 ~")
    slugs = {p.name for p in (team.root / "experiments").iterdir()}
    named = {word for line in readme_block("First commands") + lines for word in shlex.split(line)
             if word.startswith("kundigung") or word.startswith("churn")}
    assert named and named <= slugs, named - slugs
