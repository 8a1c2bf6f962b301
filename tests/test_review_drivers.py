"""git's drivers work when git runs outside the virtual environment (an editor, a GUI client), and say what to do
when they cannot start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from reviewkit import EXP_DIR, commit_all, edit_experiment, git, make_repo, node_with, param

ENTRY_POINT = Path(sys.executable).parent / "amlvc"
# What an editor or a GUI client starts git with: no virtual environment on the PATH.
BARE = "/usr/bin:/bin"


def bare_git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(PATH=BARE, GIT_PAGER="cat")
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def tolerance(value: str) -> Any:
    return lambda doc: param(node_with(doc, "Two-Class Logistic Regression"), "Optimization Tolerance").update(
        Value=value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path)
    assert not any((Path(p) / "amlvc").exists() for p in BARE.split(":"))
    return root


def test_drivers_run_from_a_git_without_the_environment(repo: Path, run_cli: Any) -> None:
    assert run_cli(["config-git"], cwd=repo).exit_code == 0
    commit_all(repo, "drivers")
    command = git(repo, "config", "diff.amlvc.command").stdout.strip()
    assert f" {ENTRY_POINT} diff-driver" in command  # this installation's absolute path
    edit_experiment(repo, tolerance("1E-06"))
    shown = bare_git(repo, "diff")
    assert shown.returncode == 0, shown.stderr
    assert "Optimization Tolerance: 1E-07 → 1E-06" in shown.stdout
    outline = bare_git(repo, "log", "-p", "-n", "1", "--", f"{EXP_DIR}/experiment.json")
    assert outline.returncode == 0 and "external diff died" not in outline.stderr


def test_portable_drivers_name_amlvc_and_say_when_it_is_not_on_the_path(repo: Path, run_cli: Any) -> None:
    result = run_cli(["config-git", "--portable"], cwd=repo)
    assert result.exit_code == 0, result.stderr
    assert git(repo, "config", "merge.amlvc.driver").stdout.strip().endswith(" amlvc merge-driver %O %A %B %P")
    commit_all(repo, "drivers")
    edit_experiment(repo, tolerance("1E-06"))
    assert "Optimization Tolerance" in git(repo, "diff").stdout  # amlvc on PATH: works
    failed = bare_git(repo, "diff")
    assert failed.returncode != 0
    assert ("amlvc: the git diff driver cannot start amlvc: amlvc is not on the PATH git runs with (editors and GUI "
            "clients often have a shorter one); run amlvc config-git, without --portable") in failed.stderr


def test_a_moved_environment_is_named_in_diff_and_merge(repo: Path, run_cli: Any, tmp_path: Path) -> None:
    assert run_cli(["config-git"], cwd=repo).exit_code == 0
    gone = str(tmp_path / "old-venv" / "bin" / "amlvc")
    for key in ("diff.amlvc.command", "diff.amlvc.textconv", "merge.amlvc.driver"):
        value = git(repo, "config", key).stdout.strip()
        git(repo, "config", key, value.replace(str(ENTRY_POINT), gone))
    commit_all(repo, "drivers")
    git(repo, "checkout", "-q", "-b", "theirs")
    edit_experiment(repo, tolerance("1E-05"))
    commit_all(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    edit_experiment(repo, tolerance("1E-06"))
    moved = f"cannot start {gone}: it is not there any more (a moved or deleted virtual environment?); run amlvc " \
            "config-git again in the environment amlvc is installed in"
    shown = bare_git(repo, "diff")
    assert shown.returncode != 0 and f"amlvc: the git diff driver {moved}" in shown.stderr
    commit_all(repo, "ours")
    merged = bare_git(repo, "merge", "theirs")
    assert merged.returncode != 0
    assert f"amlvc: the git merge driver {moved}" in merged.stderr + merged.stdout
