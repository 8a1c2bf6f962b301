"""`amlvc model list|pull|promote|show`: manifests in git, bytes in the verified object store."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import assetkit
import pushkit
from assetkit import (
    DEV,
    MODEL,
    MODEL_FAMILY,
    MODEL_SLUG,
    SPLIT_NODE,
    TRAIN_NODE,
    TRAINING,
    TRAINING_ID,
    as_json,
    cli,
    git,
    ok,
)


def _trained(run_cli: Any, root: Path) -> None:
    ok(run_cli, root, "run", TRAINING, "--wait")


def _promote_in_studio(server: Any) -> str:
    """Promote-AmlTrainedModel -Overwrite done outside amlvc: a new version of the model's family."""
    with pushkit.client(server) as c:
        return c.create_asset("trainedmodels", {
            "ExperimentId": TRAINING_ID, "ModuleNodeId": TRAIN_NODE, "OutputName": "Trained model",
            "TrainedModel": {"Name": MODEL, "DataTypeId": "iLearnerDotNet", "Description": "",
                             "SourceOrigin": "FromOutputPromotion", "FamilyId": MODEL_FAMILY}})


def _manifest(root: Path, slug: str = MODEL_SLUG) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "models" / f"{slug}.json").read_text(encoding="utf-8"))
    return data


def _object(root: Path, sha: str) -> Path:
    return root / ".amlvc" / "objects" / "sha256" / sha[:2] / sha[2:]


def test_promote_of_a_node_without_a_model_output_exits_6_and_changes_nothing(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        _trained(run_cli, root)
        before, workspace = assetkit.files(root), assetkit.workspace(server)
        result = cli(run_cli, root, "model", "promote", TRAINING, SPLIT_NODE, "--name", MODEL)
        assert result.exit_code == 6, result.stderr
        assert (f"node {SPLIT_NODE} (Split Data) has no trained-model output (its outputs: 'Results dataset1', "
                f"'Results dataset2'); nothing was promoted") in result.stderr
        several = cli(run_cli, root, "model", "promote", TRAINING, "Train Model", "--name", MODEL)
        assert several.exit_code == 6 and "2 nodes are 'Train Model'" in several.stderr and TRAIN_NODE in several.stderr
        assert assetkit.files(root) == before and assetkit.workspace(server) == workspace


def test_promote_a_new_model_then_diff_and_log_speak_of_it(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        _trained(run_cli, root)
        dry = as_json(run_cli, root, "model", "promote", TRAINING, TRAIN_NODE, "--name", "churn-model", "--dry-run")
        assert dry["dry_run"] is True and dry["new_model"] is True and not (root / "models").exists()
        promoted = as_json(run_cli, root, "model", "promote", TRAINING, TRAIN_NODE, "--name", "churn-model")
        assert promoted["new_model"] is True and promoted["version"] == 1
        manifest = _manifest(root, "churn-model")
        (version,) = manifest["versions"]
        assert manifest["name"] == "churn-model" and version["id"] == promoted["model"]["id"]
        with pushkit.client(server) as c:  # the same bytes as the node output of the run
            leaf = c.get_experiment(TRAINING_ID)
        status = next(s for s in leaf["NodeStatuses"] if s["NodeId"] == TRAIN_NODE)
        ep = status["OutputEndpoints"][0]
        with pushkit.client(server) as c:
            data = c.download_blob(ep["BaseUri"] + ep["Location"] + ep["AccessCredential"])
        assert hashlib.sha256(data).hexdigest() == version["sha256"] == hashlib.sha256(
            _object(root, version["sha256"]).read_bytes()).hexdigest()
        assert version["source"]["run"] == leaf["RunId"] and version["size"] == len(data)
        line = f"+ model churn-model@1 (sha256 {version['sha256'][:8]}…, from {TRAINING} run "
        assert line in ok(run_cli, root, "diff", "HEAD~1", "HEAD").stdout
        assert f"`{line}" in ok(run_cli, root, "diff", "HEAD~1", "HEAD", "--format", "markdown").stdout
        assert f"    {line}" in ok(run_cli, root, "log", TRAINING).stdout
        assert ".amlvc/" in (root / ".gitignore").read_text() and git(root, "status", "--porcelain") == ""


def test_a_stored_object_that_no_longer_matches_its_manifest_is_refused_with_both_hashes(
        tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        _trained(run_cli, root)
        ok(run_cli, root, "model", "promote", TRAINING, TRAIN_NODE, "--name", MODEL)
        sha = _manifest(root)["versions"][-1]["sha256"]
        stored = _object(root, sha)
        os.chmod(stored, 0o644)
        stored.write_bytes(b"tampered")
        actual = hashlib.sha256(b"tampered").hexdigest()
        before, workspace = assetkit.files(root), assetkit.workspace(server)
        result = cli(run_cli, root, "model", "show", MODEL_SLUG)
        assert result.exit_code == 6
        assert (f"Error: .amlvc/objects/sha256/{sha[:2]}/{sha[2:]} holds bytes with sha256 {actual}, but "
                f"models/{MODEL_SLUG}.json ({MODEL}@2) names sha256 {sha}") in result.stderr
        assert f"amlvc model pull '{MODEL}@2'" in result.stderr and "stored: mismatch" in result.stdout
        assert assetkit.files(root) == before and assetkit.workspace(server) == workspace

        repaired = as_json(run_cli, root, "model", "pull", f"{MODEL}@2")
        assert repaired["commit"] is None and repaired["pulled"][0]["downloaded"] is True
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
        assert ok(run_cli, root, "model", "show", MODEL).exit_code == 0


def test_model_list_shows_untracked_tracked_and_newer(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        states = lambda: {m["name"]: m["state"] for m in as_json(run_cli, root, "model", "list")["models"]}  # noqa: E731
        assert states() == {MODEL: "untracked"}
        _trained(run_cli, root)
        ok(run_cli, root, "model", "promote", TRAINING, TRAIN_NODE, "--name", MODEL)
        assert states() == {MODEL: "tracked"}
        _promote_in_studio(server)
        assert states() == {MODEL: "newer"}
        pulled = as_json(run_cli, root, "model", "pull")  # the tracked models' latest versions
        assert [(p["name"], p["version"]) for p in pulled["pulled"]] == [(MODEL, 3)] and pulled["commit"]
        assert [v["version"] for v in _manifest(root)["versions"]] == [2, 3]
        assert states() == {MODEL: "tracked"}


def test_model_pull_finds_an_older_version_and_its_run(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        _trained(run_cli, root)
        second = _promote_in_studio(server)
        _promote_in_studio(server)
        pulled = as_json(run_cli, root, "model", "pull", f"{MODEL}@2")
        (item,) = pulled["pulled"]
        assert (item["version"], item["id"]) == (2, second)
        assert item["source"]["node"] == TRAIN_NODE and item["source"]["run"].startswith(f"{DEV}.s-id.")
        assert [v["version"] for v in _manifest(root)["versions"]] == [2]


def test_model_pull_of_a_version_without_reachable_bytes(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        before, workspace = assetkit.files(root), assetkit.workspace(server)
        result = cli(run_cli, root, "model", "pull", f"{MODEL}@1")
        assert result.exit_code == 5
        assert f"offers no download of trained model '{MODEL}@1': it has no promotion source" in result.stderr
        missing = cli(run_cli, root, "model", "pull", f"{MODEL}@9")
        assert missing.exit_code == 6 and f"trained model '{MODEL}' has no version 9" in missing.stderr
        every = ok(run_cli, root, "model", "pull", "--all")
        assert f"skipped {MODEL}:" in every.stderr
        assert assetkit.files(root) == before and assetkit.workspace(server) == workspace
