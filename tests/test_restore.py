"""`amlvc restore`: an old revision or a run-history snapshot back into the workspace, in place or as a copy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pullkit import (
    TOKEN,
    TOKEN_ENV,
    client,
    fingerprint,
    git,
    init_repo,
    only_experiment,
    run_and_settle,
    set_parameter,
    start,
    studio_edit,
)

from amlvc.canonical.normalize import normalize
from amlvc.server.runner import ServerHandle
from amlvc.sync.remote import module_names

SLUG = "kundigung-training"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerHandle]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    handle = start(tmp_path / "server-data", seed=("training--base.json",))
    try:
        yield handle
    finally:
        handle.stop()


def experiment_json(api: Any, exp_id: str) -> bytes:
    """The experiment as pull writes it (module names from the workspace's module list)."""
    return normalize(api.get_experiment(exp_id), module_names=module_names(api)).files["experiment.json"]


def pulled_twice(run_cli: Any, tmp_path: Path, workspace: ServerHandle) -> tuple[Any, str, Path]:
    """A repository with two pulls of one experiment: HEAD~1 has the original, HEAD a parameter change."""
    api = client(workspace)
    exp = only_experiment(api)
    root = init_repo(run_cli, tmp_path, workspace)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    studio_edit(api, exp, lambda doc: set_parameter(doc, "45"))
    assert run_cli(["pull"], cwd=root).exit_code == 0
    return api, exp, root


def test_restore_a_revision_in_place(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api, exp, root = pulled_twice(run_cli, tmp_path, workspace)
    old = git(root, "show", f"HEAD~1:experiments/{SLUG}/experiment.json").encode()

    result = run_cli(["restore", SLUG, "--rev", "HEAD~1", "--json"], cwd=root)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["created"] is False
    assert experiment_json(api, exp) == old
    assert (root / "experiments" / SLUG / "experiment.json").read_bytes() == old
    assert git(root, "status", "--porcelain") == ""
    status = json.loads(run_cli(["status", "--json"], cwd=root).stdout)
    assert [e["state"] for e in status["experiments"]] == ["synced"]


def test_restore_a_revision_as_a_new_experiment(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api, exp, root = pulled_twice(run_cli, tmp_path, workspace)
    current = experiment_json(api, exp)

    result = run_cli(["restore", SLUG, "--rev", "HEAD~1", "--as-new", "Churn v1", "--json"], cwd=root)

    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["created"] is True and data["experiment_id"] != exp
    assert experiment_json(api, exp) == current  # the original is untouched
    copy = api.get_experiment(data["experiment_id"])
    assert copy["Description"] == "Churn v1"
    assert '"Value": "30"' in normalize(copy).files["experiment.json"].decode()


def test_restore_refuses_when_the_workspace_moved_on(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api, exp, root = pulled_twice(run_cli, tmp_path, workspace)
    studio_edit(api, exp, lambda doc: set_parameter(doc, "60"))
    in_workspace = experiment_json(api, exp)
    before = fingerprint(root)

    result = run_cli(["restore", SLUG, "--rev", "HEAD~1"], cwd=root)

    assert result.exit_code == 4
    assert "changed in workspace 'dev'" in result.stderr
    assert experiment_json(api, exp) == in_workspace
    assert fingerprint(root) == before


def test_restore_a_run_history_snapshot(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api = client(workspace)
    exp = only_experiment(api)
    run_and_settle(api, exp)
    snapshot = api.get_experiment(exp)["RunId"]
    at_run = normalize(api.get_experiment(snapshot), module_names=module_names(api)).files["experiment.json"]
    studio_edit(api, exp, lambda doc: set_parameter(doc, "45"))
    root = init_repo(run_cli, tmp_path, workspace)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    assert experiment_json(api, exp) != at_run

    result = run_cli(["restore", SLUG, "--snapshot", snapshot.split(".", 3)[3]], cwd=root)

    assert result.exit_code == 0, result.stderr
    assert experiment_json(api, exp) == at_run
    assert (root / "experiments" / SLUG / "experiment.json").read_bytes() == at_run
    assert git(root, "log", "-1", "--format=%s").startswith(f"Restore {SLUG} to run")
    assert git(root, "status", "--porcelain") == ""


def test_restore_needs_exactly_one_source(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    _api, _exp, root = pulled_twice(run_cli, tmp_path, workspace)
    before = fingerprint(root)
    result = run_cli(["restore", SLUG], cwd=root)
    assert result.exit_code == 2 and "--rev REV or --snapshot RUN_ID" in result.stderr
    unknown = run_cli(["restore", "nope", "--rev", "HEAD"], cwd=root)
    assert unknown.exit_code == 2 and "no experiment 'nope'" in unknown.stderr
    assert fingerprint(root) == before


def test_forced_snapshot_restore_backs_up_the_workspace_version_first(workspace: ServerHandle, tmp_path: Path,
                                                                      run_cli: Any) -> None:
    api = client(workspace)
    exp = only_experiment(api)
    run_and_settle(api, exp)
    snapshot = api.get_experiment(exp)["RunId"]
    root = init_repo(run_cli, tmp_path, workspace)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    studio_edit(api, exp, lambda doc: set_parameter(doc, "77"))  # not pulled: the restore would be stale

    refused = run_cli(["restore", SLUG, "--snapshot", snapshot], cwd=root)
    assert refused.exit_code == 4 and "--force" in refused.stderr

    forced = run_cli(["restore", SLUG, "--snapshot", snapshot, "--force", "--json"], cwd=root)
    assert forced.exit_code == 0, forced.stderr
    backup = json.loads(forced.stdout)["backup_ref"]
    assert backup.startswith(f"refs/amlvc/backup/dev/{SLUG}/")
    assert '"Value": "77"' in git(root, "show", f"{backup}:experiments/{SLUG}/experiment.json")
    assert '"Value": "77"' not in experiment_json(api, exp).decode()
