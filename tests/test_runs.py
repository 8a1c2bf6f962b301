"""`amlvc run [--wait]` and `push --run --wait`: runs followed to their end, failed nodes named, exit 7."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import assetkit
import pushkit
from assetkit import DEV, TRAINING, TRAINING_ID, as_json, cli, git, ok


def _delete_dataset_family(server: Any) -> None:
    """What a colleague does in Studio: delete the dataset the training experiment reads."""
    with pushkit.client(server) as c:
        c.studio("DELETE", f"workspaces/{DEV}/datasources/family/{assetkit.DATASET_FAMILY}")


def test_run_of_an_unknown_experiment_exits_6_and_changes_nothing(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        before, workspace = assetkit.files(root), assetkit.workspace(server)
        result = cli(run_cli, root, "run", "no-such-experiment", "--wait")
        assert result.exit_code == 6, result.stderr
        assert "no experiment is called 'no-such-experiment' in workspace 'dev'" in result.stderr
        assert "nothing was run" in result.stderr
        assert assetkit.files(root) == before and assetkit.workspace(server) == workspace


def test_failed_run_names_each_failed_node_exits_7_and_leaves_the_repository_alone(
        tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        _delete_dataset_family(server)
        before = assetkit.files(root)
        result = cli(run_cli, root, "run", TRAINING, "--wait")
        assert result.exit_code == 7, result.stderr
        missing = f"{DEV}.{assetkit.DATASET_FAMILY}.v1-default-23"
        assert (f"Error: the run of '{TRAINING}' in workspace 'dev' ended Failed (Split Data "
                f"[{assetkit.SPLIT_NODE}]: Resource {missing} not found)") in result.stderr
        assert f"    Failed     Split Data [{assetkit.SPLIT_NODE}]: Resource {missing} not found" in result.stderr
        assert result.stdout.startswith(f"Failed {TRAINING}")
        assert assetkit.files(root) == before  # no lock commit for a failed run

        again = cli(run_cli, root, "run", TRAINING, "--wait", "--json")
        assert again.exit_code == 7
        report = json.loads(again.stdout)
        assert report["status"] == "Failed"
        assert [(n["module"], n["node"]) for n in report["failed"]] == [("Split Data", assetkit.SPLIT_NODE)]


def test_run_without_wait_starts_the_run_and_commits_nothing(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (_server, root):
        head = git(root, "rev-parse", "HEAD")
        report = as_json(run_cli, root, "run", TRAINING)
        assert report["status"] in ("NotStarted", "Running") and report["waited"] is False
        assert report["run_id"].startswith(f"{DEV}.s-id.") and report["experiment_id"] == TRAINING_ID
        assert git(root, "rev-parse", "HEAD") == head


def test_run_wait_records_the_run_so_the_next_push_is_not_stale(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        result = ok(run_cli, root, "run", TRAINING, "--wait")
        assert "Warning" not in result.stderr
        assert git(root, "log", "-1", "--format=%s").strip() == f"Run {TRAINING} in dev: Finished"
        listed = pushkit.workspace_state(server)[TRAINING_ID]
        entry = pushkit.lock_entry(root, "dev", TRAINING)
        assert entry["etag"] == listed and entry["run_id"] in result.stdout
        pushkit.edit_locally(root)
        pushkit.commit_all(root, "summary")
        ok(run_cli, root, "push", TRAINING)  # not refused as changed in the workspace


def test_run_warns_when_the_workspace_version_is_not_the_committed_one(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        pushkit.edit_in_workspace(server)
        head = git(root, "rev-parse", "HEAD")
        result = ok(run_cli, root, "run", TRAINING, "--wait")
        assert (f"Warning: the workspace's version of '{TRAINING}' differs from the committed one; this runs the "
                f"workspace's version (push first to run yours: `amlvc push {TRAINING} --remote dev`)") in result.stderr
        assert "amlvc.lock not updated" in result.stderr and git(root, "rev-parse", "HEAD") == head


def test_run_wait_gives_up_after_the_timeout_with_exit_5(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (_server, root):
        result = cli(run_cli, root, "run", TRAINING, "--wait", "--timeout", "0")
        assert result.exit_code == 5
        assert "is still Running after 0 s; it goes on in the workspace" in result.stderr


def test_push_run_wait_follows_the_run_and_records_it(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        pushkit.edit_locally(root)
        pushkit.commit_all(root, "summary")
        report = as_json(run_cli, root, "push", TRAINING, "--run", "--wait")
        assert [(r["experiment"], r["status"]) for r in report["runs"]] == [(TRAINING, "Finished")]
        assert pushkit.lock_entry(root, "dev", TRAINING)["etag"] == pushkit.workspace_state(server)[TRAINING_ID]
        assert git(root, "status", "--porcelain") == ""


def test_push_wait_without_run_is_a_usage_error(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        before, workspace = assetkit.files(root), assetkit.workspace(server)
        result = cli(run_cli, root, "push", TRAINING, "--wait")
        assert result.exit_code == 2 and "--wait follows the runs that --run starts" in result.stderr
        assert assetkit.files(root) == before and assetkit.workspace(server) == workspace
