"""`amlvc push` end to end: real local server over loopback, real git repositories, the real CLI.

Every refusal checks the exit code, the message, that the workspace was not written (Etags and list
unchanged) and that the repository is unchanged (HEAD, `git status --porcelain`, refs, amlvc.lock).
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pushkit import (
    DATASET_ID,
    DEV,
    TOKENS,
    TRAINING,
    TRAINING_ID,
    client,
    commit_all,
    edit_in_workspace,
    edit_locally,
    git,
    lock_entry,
    pulled_repo,
    repo_state,
    start,
    token_env,
    workspace_state,
)

from amlvc import config
from amlvc.canonical.normalize import normalize


def push(run_cli: Any, root: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(["push", *args], cwd=root, env={**token_env(), **(env or {})})


def assert_nothing_written(server: Any, root: Path, ws_before: dict[str, str], repo_before: Any) -> None:
    assert workspace_state(server) == ws_before
    assert repo_state(root) == repo_before


# -- no-op, dry run, ordinary push -----------------------------------------------------------------


def test_unchanged_experiment_makes_no_write(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert "0 to create, 0 to update, 1 unchanged" in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)


def test_dry_run_prints_the_plan_and_writes_nothing(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_locally(root)
    commit_all(root, "local edit")
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert f"~ {TRAINING}  update: local changes" in result.stderr
    assert "0 to create, 1 to update, 0 unchanged" in result.stderr
    assert "secret ACCOUNT_KEY" in result.stderr and "Dry run: nothing was written." in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)


def test_local_edit_is_saved_as_draft_and_recorded_in_one_commit(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_locally(root, summary="pushed from git")
    commit_all(root, "local edit")
    head_before = repo_state(root).head
    result = push(run_cli, root, TRAINING)
    assert result.exit_code == 0, result.stderr
    with client(server) as c:
        doc = c.get_experiment(TRAINING_ID)
    assert doc["Summary"] == "pushed from git"
    # the secret placeholders were filled from .amlvc/secrets.json, not sent as placeholders
    assert "${secret:" not in json.dumps(doc)
    entry = lock_entry(root, "dev", TRAINING)
    assert entry["etag"] == doc["Etag"] and entry["id"] == TRAINING_ID
    assert git(root, "rev-list", "--count", f"{head_before}..HEAD").strip() == "1"
    message = git(root, "log", "-1", "--format=%B")
    assert message.startswith(f"Push to dev: update {TRAINING}") and f"Amlvc-Workspace: {DEV}" in message
    assert git(root, "status", "--porcelain") == ""  # the pushed edit is committed with the lock
    again = push(run_cli, root)
    assert again.exit_code == 0 and "1 unchanged" in again.stderr


def test_json_output_describes_plan_and_writes(world: tuple[Any, Path], run_cli: Any) -> None:
    _server, root = world
    edit_locally(root)
    commit_all(root, "local edit")
    result = push(run_cli, root, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["summary"] == {"create": 0, "update": 1, "unchanged": 0}
    assert data["pushed"][0]["experiment_id"] == TRAINING_ID and data["commit"]
    assert {s["source"] for s in data["experiments"][0]["secrets"]} == {".amlvc/secrets.json"}


def test_rev_pushes_the_files_of_that_revision(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_locally(root, summary="first")
    first = commit_all(root, "first")
    edit_locally(root, summary="second")
    commit_all(root, "second")
    edit_locally(root, summary="uncommitted third")
    result = push(run_cli, root, "--rev", first[:10])
    assert result.exit_code == 0, result.stderr
    with client(server) as c:
        assert c.get_experiment(TRAINING_ID)["Summary"] == "first"
    # the working tree keeps its edit; only the lock was committed
    assert git(root, "status", "--porcelain").strip() == f"M experiments/{TRAINING}/experiment.json"
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["amlvc.lock"]


def test_run_saves_and_runs(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    with client(server) as c:
        run_before = c.get_experiment(TRAINING_ID)["RunId"]
    edit_locally(root)
    commit_all(root, "local edit")
    result = push(run_cli, root, "--run")
    assert result.exit_code == 0, result.stderr
    with client(server) as c:
        doc = c.get_experiment(TRAINING_ID)
    assert doc["RunId"] != run_before
    assert lock_entry(root, "dev", TRAINING)["run_id"] == doc["RunId"]


def test_as_new_creates_a_copy_tracked_under_its_own_slug(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    before = workspace_state(server)
    result = push(run_cli, root, TRAINING, "--as-new", "Churn copy")
    assert result.exit_code == 0, result.stderr
    after = workspace_state(server)
    assert after[TRAINING_ID] == before[TRAINING_ID]  # the original is untouched
    (new_id,) = set(after) - set(before)
    entry = lock_entry(root, "dev", "churn-copy")
    assert entry["id"] == new_id
    copy = json.loads((root / "experiments" / "churn-copy" / "experiment.json").read_text())
    assert copy["Description"] == "Churn copy"
    assert git(root, "status", "--porcelain") == ""


def test_as_new_needs_exactly_one_experiment(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root, "--as-new", "Copy")
    assert result.exit_code == 2
    assert "--as-new" in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)


# -- refusals ------------------------------------------------------------------------------------


def test_stale_etag_is_refused_with_exit_4(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_in_workspace(server)
    edit_locally(root)
    commit_all(root, "local edit")
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root)
    assert result.exit_code == 4
    assert f"experiment '{TRAINING}' changed in workspace 'dev'" in result.stderr
    assert "amlvc pull --remote dev" in result.stderr and "nothing was pushed" in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)


def test_stale_etag_is_refused_even_without_local_changes(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_in_workspace(server)
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root)
    assert result.exit_code == 4
    assert_nothing_written(server, root, ws_before, repo_before)


def test_force_backs_up_the_workspace_version_then_overwrites(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_in_workspace(server, summary="Studio's version")
    with client(server) as c:
        theirs = normalize(c.get_experiment(TRAINING_ID)).files
    edit_locally(root, summary="git's version")
    commit_all(root, "local edit")
    result = push(run_cli, root, "--force")
    assert result.exit_code == 0, result.stderr
    refs = git(root, "for-each-ref", "--format=%(refname)", "refs/amlvc/backup/").split()
    assert len(refs) == 1 and refs[0].startswith(f"refs/amlvc/backup/dev/{TRAINING}/")
    backed_up = git(root, "show", f"{refs[0]}:experiments/{TRAINING}/experiment.json")
    assert backed_up.encode() == theirs["experiment.json"]
    assert "Studio's version" in backed_up
    # the backup never holds a secret value, only placeholders
    assert "${secret:ACCOUNT_KEY" in backed_up
    with client(server) as c:
        assert c.get_experiment(TRAINING_ID)["Summary"] == "git's version"
    assert "saved as refs/amlvc/backup/dev/" in result.stdout
    # ... while the values of its secrets are kept locally, beside the backup's name
    stamp = refs[0].rsplit("/", 1)[1]
    kept = json.loads((root / ".amlvc" / "secrets.json").read_text())["remotes"]["dev"][f"{TRAINING}@{stamp}"]
    assert kept and all(f"${{secret:{name}}}" in backed_up for name in kept)


def test_missing_asset_is_refused_with_exit_6(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    path = root / "experiments" / TRAINING / "experiment.json"
    ghost = DATASET_ID.replace("2a4c6e8b0d1f43a5b7c9e1f3a5b7c9d1", "0" * 31 + "1")
    path.write_text(path.read_text(encoding="utf-8").replace(DATASET_ID, ghost), encoding="utf-8")
    commit_all(root, "a dataset that does not exist")
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root)
    assert result.exit_code == 6
    assert f"experiment '{TRAINING}' references what workspace 'dev' does not have: dataset {ghost}" in result.stderr
    assert "--remap" in result.stderr and "nothing was pushed" in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)


def test_missing_secret_is_refused_with_exit_6_and_env_fills_it(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    stored = json.loads((root / ".amlvc" / "secrets.json").read_text())["remotes"]["dev"][TRAINING]
    (root / ".amlvc" / "secrets.json").unlink()
    edit_locally(root)
    commit_all(root, "local edit")
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root)
    assert result.exit_code == 6
    name = sorted(stored)[0]
    assert f"experiment '{TRAINING}' needs secret {name}" in result.stderr
    assert f"AMLVC_SECRET_{name}" in result.stderr and "remotes.dev." in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)
    env = {f"AMLVC_SECRET_{n}": v for n, v in stored.items()}
    ok = push(run_cli, root, env=env)
    assert ok.exit_code == 0, ok.stderr
    with client(server) as c:
        text = json.dumps(c.get_experiment(TRAINING_ID), ensure_ascii=False)
    assert all(v in text or json.dumps(v)[1:-1] in text for v in stored.values())


def test_unknown_remote_is_a_usage_error(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_locally(root)
    commit_all(root, "local edit")
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root, "--remote", "staging")
    assert result.exit_code == 2
    assert "no remote named 'staging'" in result.stderr and "dev" in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)


def test_wrong_token_is_refused_with_exit_5(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_locally(root)
    commit_all(root, "local edit")
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root, env={"AMLVC_TOKEN_DEV": "not-the-token"})
    assert result.exit_code == 5
    assert "workspace 'dev'" in result.stderr and "$AMLVC_TOKEN_DEV" in result.stderr
    assert "not-the-token" not in result.stderr and TOKENS["dev"] not in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)


def test_unreachable_workspace_is_refused_with_exit_5(tmp_path: Path, run_cli: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with start(tmp_path) as server:
        gone = config.Remote("gone", DEV, endpoint=f"http://127.0.0.1:{port}", token_env="AMLVC_TOKEN_DEV")
        root = pulled_repo(run_cli, tmp_path, server, extra={"gone": gone})
        edit_locally(root)
        commit_all(root, "local edit")
        ws_before, repo_before = workspace_state(server), repo_state(root)
        result = push(run_cli, root, "--remote", "gone")
        assert result.exit_code == 5
        assert f"cannot reach workspace 'gone' at http://127.0.0.1:{port}" in result.stderr
        assert "amlvc.toml" in result.stderr
        assert_nothing_written(server, root, ws_before, repo_before)


def test_unknown_experiment_is_a_usage_error(world: tuple[Any, Path], run_cli: Any) -> None:
    _server, root = world
    result = push(run_cli, root, "no-such-thing")
    assert result.exit_code == 2 and "no experiment 'no-such-thing'" in result.stderr


def test_outside_a_repository_is_exit_3(tmp_path: Path, run_cli: Any) -> None:
    result = run_cli(["push"], cwd=tmp_path)
    assert result.exit_code == 3 and "amlvc init" in result.stderr


# -- what others still see -------------------------------------------------------------------------


def test_no_secret_value_reaches_a_git_object_after_push(world: tuple[Any, Path], run_cli: Any) -> None:
    _server, root = world
    stored = json.loads((root / ".amlvc" / "secrets.json").read_text())["remotes"]["dev"][TRAINING]
    edit_locally(root)
    commit_all(root, "local edit")
    assert push(run_cli, root, env={"AMLVC_TOKEN_DEV": TOKENS["dev"]}).exit_code == 0
    objects = subprocess.run("git cat-file --batch-all-objects --batch", shell=True, cwd=root,
                             capture_output=True, check=True).stdout
    for value in stored.values():
        assert value.encode() not in objects
    assert TOKENS["dev"].encode() not in objects


def test_public_azureml_client_still_lists_experiments_and_datasets(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    edit_locally(root)
    commit_all(root, "local edit")
    assert push(run_cli, root).exit_code == 0
    assert push(run_cli, root, TRAINING, "--as-new", "Churn copy").exit_code == 0
    from azureml import Workspace

    ws = Workspace(workspace_id=DEV, authorization_token=TOKENS["dev"], endpoint=server.url)
    names = {e.description for e in ws.experiments}
    assert {"Kündigung – Training ✓", "Churn copy"} <= names
    assert DATASET_ID in {d.dataset_id for d in ws.datasets}
    assert TRAINING_ID in {e.experiment_id for e in ws.experiments}


# -- faults ----------------------------------------------------------------------------------------


def test_push_completes_under_twenty_percent_faults(tmp_path: Path, run_cli: Any) -> None:
    with start(tmp_path, fault_rate=0.2, fault_seed=11) as server:
        root = pulled_repo(run_cli, tmp_path, server)
        edit_locally(root, summary="through a flaky gateway")
        commit_all(root, "local edit")
        result = push(run_cli, root)
        assert result.exit_code == 0, result.stderr
        with client(server) as c:
            doc = c.get_experiment(TRAINING_ID)
        assert doc["Summary"] == "through a flaky gateway"
        assert lock_entry(root, "dev", TRAINING)["etag"] == doc["Etag"]
        assert git(root, "status", "--porcelain") == ""


def test_always_failing_workspace_exits_5_and_changes_nothing(tmp_path: Path, run_cli: Any) -> None:
    from amlvc.server.runner import start_server

    with start(tmp_path) as server:
        root = pulled_repo(run_cli, tmp_path, server)
        ws_before = workspace_state(server)
        data, port = server.data_dir, server.port
    edit_locally(root)
    commit_all(root, "local edit")
    repo_before = repo_state(root)
    with start_server(data, workspaces=[(DEV, TOKENS["dev"])], port=port, fault_rate=1.0):
        result = push(run_cli, root)
    assert result.exit_code == 5
    assert "workspace 'dev'" in result.stderr and "after 6 attempts" in result.stderr
    assert repo_state(root) == repo_before
    with start_server(data, workspaces=[(DEV, TOKENS["dev"])], port=port) as again:
        assert workspace_state(again) == ws_before


# -- a repository set up by init + import ----------------------------------------------------------


def imported_repo(tmp_path: Path, server: Any, run_cli: Any) -> Path:
    """`amlvc init` with a remote, then `amlvc import` of an export (a GET) of the workspace's experiment."""
    root = tmp_path / "imported"
    root.mkdir()
    init = run_cli(["init", "--remote", "dev", "--endpoint", server.url, "--workspace-id", DEV,
                    "--token-env", "AMLVC_TOKEN_DEV"], cwd=root, env=token_env())
    assert init.exit_code == 0, init.stderr
    with client(server) as c:
        export = tmp_path / "export.json"
        export.write_text(json.dumps(c.get_experiment(TRAINING_ID), ensure_ascii=False), encoding="utf-8")
    imported = run_cli(["import", str(export)], cwd=root)
    assert imported.exit_code == 0, imported.stderr
    return root


def test_push_of_an_imported_export_updates_that_experiment(tmp_path: Path, run_cli: Any) -> None:
    with start(tmp_path) as server:
        root = imported_repo(tmp_path, server, run_cli)
        (slug,) = [p.name for p in (root / "experiments").iterdir()]
        edit_locally(root, slug, summary="from an export")
        commit_all(root, "local edit")
        before = workspace_state(server)
        result = push(run_cli, root)
        assert result.exit_code == 0, result.stderr
        assert f"~ {slug}  update" in result.stderr
        after = workspace_state(server)
        assert set(after) == set(before) and after[TRAINING_ID] != before[TRAINING_ID]  # no duplicate
        assert lock_entry(root, "dev", slug)["id"] == TRAINING_ID


def test_push_of_an_export_the_workspace_has_moved_past_is_refused(tmp_path: Path, run_cli: Any) -> None:
    with start(tmp_path) as server:
        root = imported_repo(tmp_path, server, run_cli)
        edit_in_workspace(server)
        ws_before, repo_before = workspace_state(server), repo_state(root)
        result = push(run_cli, root)
        assert result.exit_code == 4 and "changed in workspace 'dev'" in result.stderr
        assert_nothing_written(server, root, ws_before, repo_before)


def test_an_unchanged_push_costs_one_list_request(world: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from amlvc.sync.push import push as push_api
    from amlvc.sync.pushplan import PushOptions

    server, root = world
    for name, value in token_env().items():
        monkeypatch.setenv(name, value)
    result = push_api(root, PushOptions())
    assert result.requests == 1 and result.pushed == () and result.commit is None
    assert workspace_state(server)[TRAINING_ID] == lock_entry(root, "dev", TRAINING)["etag"]


def test_uncommitted_lock_is_refused_with_exit_3(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    lock = root / "amlvc.lock"
    lock.write_text(lock.read_text() + "\n")
    edit_locally(root)
    commit_all(root, "local edit")
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = push(run_cli, root)
    assert result.exit_code == 3 and "amlvc.lock has uncommitted changes" in result.stderr
    assert_nothing_written(server, root, ws_before, repo_before)


def test_several_experiments_are_written_in_parallel_and_recorded_in_one_commit(tmp_path: Path,
                                                                               run_cli: Any) -> None:
    from amlvc.canonical.normalize import to_push_body

    with start(tmp_path) as server:
        with client(server) as c:
            copy_id = c.create_experiment(to_push_body({**c.get_experiment(TRAINING_ID),
                                                        "Description": "Churn copy"}))["ExperimentId"]
        root = pulled_repo(run_cli, tmp_path, server)
        edit_locally(root, TRAINING, summary="one")
        edit_locally(root, "churn-copy", summary="two")
        commit_all(root, "local edit")
        head_before = repo_state(root).head
        result = push(run_cli, root, "--jobs", "2")
        assert result.exit_code == 0, result.stderr
        assert "0 to create, 2 to update, 0 unchanged" in result.stderr
        with client(server) as c:
            assert c.get_experiment(TRAINING_ID)["Summary"] == "one"
            assert c.get_experiment(copy_id)["Summary"] == "two"
            etags = {e["ExperimentId"]: e["Etag"] for e in c.list_experiments()}
        assert lock_entry(root, "dev", TRAINING)["etag"] == etags[TRAINING_ID]
        assert lock_entry(root, "dev", "churn-copy")["etag"] == etags[copy_id]
        assert git(root, "rev-list", "--count", f"{head_before}..HEAD").strip() == "1"


def test_a_failed_write_still_records_the_writes_that_happened(tmp_path: Path, run_cli: Any) -> None:
    from amlvc.canonical.normalize import to_push_body

    with start(tmp_path) as server:
        with client(server) as c:
            copy_id = c.create_experiment(to_push_body({**c.get_experiment(TRAINING_ID),
                                                        "Description": "Churn copy"}))["ExperimentId"]
        root = pulled_repo(run_cli, tmp_path, server)
        copy_etag = lock_entry(root, "dev", "churn-copy")["etag"]
        edit_locally(root, TRAINING, summary="this one goes through")
        commit_all(root, "local edit")
        path = root / "experiments" / "churn-copy" / "experiment.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data["Description"] = ""  # the service refuses an empty name (400)
        path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        commit_all(root, "local edits")
        result = push(run_cli, root)
        assert result.exit_code == 5
        assert "HTTP 400" in result.stderr and "workspace 'dev'" in result.stderr
        with client(server) as c:
            doc = c.get_experiment(TRAINING_ID)
            assert c.get_experiment(copy_id)["Etag"] == copy_etag
        assert doc["Summary"] == "this one goes through"
        # what was written is recorded, so the next push is not refused as stale
        assert lock_entry(root, "dev", TRAINING)["etag"] == doc["Etag"]
        assert lock_entry(root, "dev", "churn-copy")["etag"] == copy_etag
        assert git(root, "status", "--porcelain").strip() == ""
        assert git(root, "log", "-1", "--format=%s").startswith(f"Push to dev: update {TRAINING}")
