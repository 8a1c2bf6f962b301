"""`amlvc pull` end to end: a local workspace over loopback, a real git repository, the real CLI."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pullkit import (
    TOKEN,
    TOKEN_ENV,
    WS,
    client,
    create,
    delete,
    drag_node,
    fingerprint,
    git,
    init_repo,
    run_and_settle,
    set_parameter,
    start,
    studio_edit,
)

from amlvc.server.runner import ServerHandle
from amlvc.sync.messages import parse_service_date, parse_trailers


def pull_json(run_cli: Any, root: Path, *args: str) -> dict[str, Any]:
    result = run_cli(["pull", "--json", *args], cwd=root)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def changed_lines(root: Path, rev: str, path: str) -> int:
    out = git(root, "diff", "--numstat", f"{rev}~1", rev, "--", path).split()
    return int(out[0]) + int(out[1]) if out else 0


def test_first_pull_writes_every_experiment_in_one_commit(workspace: ServerHandle, tmp_path: Path,
                                                          run_cli: Any) -> None:
    api = client(workspace)
    training = create(api)
    create(api, "predictive--base.json")
    root = init_repo(run_cli, tmp_path, workspace)
    before = git(root, "rev-parse", "HEAD").strip()

    result = pull_json(run_cli, root)

    assert sorted(result["added"]) == ["kundigung-training", "kundigung-training-predictive-exp"]
    assert git(root, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    message = git(root, "log", "-1", "--format=%B")
    assert "added: kundigung-training" in message
    assert parse_trailers(message) == {"Amlvc-Remote": ["dev"], "Amlvc-Workspace": [result["workspace_id"]]}
    exp = root / "experiments" / "kundigung-training"
    assert (exp / "experiment.json").is_file() and (exp / "layout.json").is_file()
    assert any((exp / "scripts").iterdir())
    lock = json.loads((root / "amlvc.lock").read_text())
    entry = lock["remotes"]["dev"]["experiments"]["kundigung-training"]
    assert entry["id"] == training and entry["etag"].startswith('W/"datetime')
    assert git(root, "status", "--porcelain") == ""
    # The storage key of the Import Data node went to the local secrets file, never into git.
    secrets = json.loads((root / ".amlvc" / "secrets.json").read_text())
    key = next(iter(secrets["remotes"]["dev"]["kundigung-training"].values()))
    assert (root / ".amlvc" / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert key not in git(root, "log", "-p", "--all")
    assert "${secret:" in (exp / "experiment.json").read_text()


def test_nothing_changed_is_one_list_request_and_no_commit(workspace: ServerHandle, tmp_path: Path,
                                                           run_cli: Any) -> None:
    api = client(workspace)
    create(api)
    root = init_repo(run_cli, tmp_path, workspace)
    pull_json(run_cli, root)
    before = fingerprint(root)

    result = pull_json(run_cli, root)

    assert result["commit"] is None and result["requests"] == 1
    assert result["unchanged"] == 1 and not result["added"] and not result["changed"]
    assert fingerprint(root) == before


def test_incremental_pull_fetches_only_what_changed_with_small_diffs(workspace: ServerHandle, tmp_path: Path,
                                                                     run_cli: Any) -> None:
    api = client(workspace)
    first = create(api)
    create(api, "predictive--base.json")
    root = init_repo(run_cli, tmp_path, workspace)
    pull_json(run_cli, root)

    studio_edit(api, first, set_parameter)
    result = pull_json(run_cli, root)
    assert result["changed"] == ["kundigung-training"] and result["unchanged"] == 1
    # list + modules + one GET: the unchanged experiment is not fetched
    assert result["requests"] == 3
    assert git(root, "diff", "--name-only", "HEAD~1", "HEAD").split() == [
        "amlvc.lock", "experiments/kundigung-training/experiment.json"]
    assert changed_lines(root, "HEAD", "experiments/kundigung-training/experiment.json") <= 2

    studio_edit(api, first, drag_node)
    pull_json(run_cli, root)
    assert git(root, "diff", "--name-only", "HEAD~1", "HEAD").split() == [
        "amlvc.lock", "experiments/kundigung-training/layout.json"]


def test_history_imports_each_snapshot_once_authored_and_dated_as_the_run(workspace: ServerHandle,
                                                                          tmp_path: Path, run_cli: Any) -> None:
    api = client(workspace)
    exp = create(api)
    run_and_settle(api, exp)
    studio_edit(api, exp, set_parameter)
    run_and_settle(api, exp)
    root = init_repo(run_cli, tmp_path, workspace)

    result = pull_json(run_cli, root, "--history")

    assert len(result["snapshots"]) == 2 and len(result["history_commits"]) == 2
    log = git(root, "log", "--reverse", "--format=%H%x00%an%x00%aI%x00%(trailers:key=Amlvc-Snapshot,valueonly)")
    rows = [line.split("\0") for line in log.splitlines() if line.count("\0") == 3]
    snap_rows = [r for r in rows if r[3].strip()]
    assert [r[3].strip() for r in snap_rows] == sorted(result["snapshots"], key=lambda s: s.split(".")[-1],
                                                       reverse=True)  # oldest run first
    for _sha, author, date, sid in snap_rows:
        doc = api.get_experiment(sid.strip())
        assert author == doc["Creator"]
        when = parse_service_date(doc["Status"]["CreationTime"])
        assert when is not None
        assert datetime.fromisoformat(date).astimezone(UTC).replace(microsecond=0) == when.replace(microsecond=0)
    # the last commit is the leaf, and the tree holds the workspace's current version
    assert parse_trailers(git(root, "log", "-1", "--format=%B")).get("Amlvc-Snapshot") is None
    assert git(root, "status", "--porcelain") == ""

    again = pull_json(run_cli, root, "--history")
    assert again["snapshots"] == [] and again["commit"] is None


def test_deleted_experiment_is_reported_then_pruned(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api = client(workspace)
    gone = create(api)
    create(api, "predictive--base.json")
    root = init_repo(run_cli, tmp_path, workspace)
    pull_json(run_cli, root)
    delete(api, gone)

    reported = run_cli(["pull"], cwd=root)
    assert reported.exit_code == 0
    assert "deleted in workspace: kundigung-training" in reported.stderr
    assert (root / "experiments" / "kundigung-training").is_dir()

    pruned = pull_json(run_cli, root, "--prune")
    assert pruned["removed"] == ["kundigung-training"]
    assert not (root / "experiments" / "kundigung-training").exists()
    lock = json.loads((root / "amlvc.lock").read_text())
    assert "kundigung-training" not in lock["remotes"]["dev"]["experiments"]
    assert git(root, "status", "--porcelain") == ""


def test_uncommitted_edit_to_a_file_pull_would_overwrite_is_refused(workspace: ServerHandle, tmp_path: Path,
                                                                    run_cli: Any) -> None:
    api = client(workspace)
    exp = create(api)
    root = init_repo(run_cli, tmp_path, workspace)
    pull_json(run_cli, root)
    layout = root / "experiments" / "kundigung-training" / "layout.json"
    layout.write_text(layout.read_text().replace("420,-320", "400,-300"))
    studio_edit(api, exp, set_parameter)
    before = fingerprint(root)

    result = run_cli(["pull"], cwd=root)

    assert result.exit_code == 3
    assert "experiments/kundigung-training/layout.json" in result.stderr and "commit or discard" in result.stderr
    assert fingerprint(root) == before


def test_edit_to_an_experiment_the_workspace_did_not_change_is_kept(workspace: ServerHandle, tmp_path: Path,
                                                                    run_cli: Any) -> None:
    api = client(workspace)
    create(api)
    other = create(api, "predictive--base.json")
    root = init_repo(run_cli, tmp_path, workspace)
    pull_json(run_cli, root)
    layout = root / "experiments" / "kundigung-training" / "layout.json"
    layout.write_text(layout.read_text().replace("420,-320", "400,-300"))
    studio_edit(api, other, set_parameter)

    result = pull_json(run_cli, root)

    assert result["changed"] == ["kundigung-training-predictive-exp"]
    assert "400,-300" in layout.read_text()


def test_unknown_remote_is_a_usage_error(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    root = init_repo(run_cli, tmp_path, workspace)
    before = fingerprint(root)
    result = run_cli(["pull", "--remote", "nope"], cwd=root)
    assert result.exit_code == 2
    assert "no remote named 'nope'" in result.stderr
    assert fingerprint(root) == before


def test_wrong_token_exits_5_and_changes_nothing(workspace: ServerHandle, tmp_path: Path, run_cli: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    create(client(workspace))
    root = init_repo(run_cli, tmp_path, workspace)
    before = fingerprint(root)
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    result = run_cli(["pull"], cwd=root)
    assert result.exit_code == 5
    assert "refused" in result.stderr and "not-the-token" not in result.stderr
    assert fingerprint(root) == before


def test_unreachable_workspace_exits_5_and_changes_nothing(tmp_path: Path, run_cli: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = tmp_path / "repo"
    root.mkdir()
    assert run_cli(["init", "--remote", "dev", "--endpoint", f"http://127.0.0.1:{port}", "--workspace-id",
                    "0123456789abcdef0123456789abcdef"], cwd=root).exit_code == 0
    monkeypatch.setenv("AMLVC_TOKEN", "whatever")
    before = fingerprint(root)
    result = run_cli(["pull"], cwd=root)
    assert result.exit_code == 5
    assert "cannot reach workspace 'dev'" in result.stderr
    assert fingerprint(root) == before


def test_pull_outside_a_repository_is_exit_3(tmp_path: Path, run_cli: Any) -> None:
    result = run_cli(["pull"], cwd=tmp_path)
    assert result.exit_code == 3 and "amlvc init" in result.stderr
    assert os.listdir(tmp_path) == []


def test_seeded_history_and_web_service_definition(tmp_path: Path, run_cli: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    handle = start(tmp_path / "data", seed=("training--base.json", "training--snapshot-1.json",
                                            "training--snapshot-2.json", "predictive--base.json"))
    try:
        root = init_repo(run_cli, tmp_path, handle)
        result = pull_json(run_cli, root, "--history")
    finally:
        handle.stop()
    # the predictive experiment's web-service definition came along, normalized
    wsd = root / "experiments" / "kundigung-training-predictive-exp" / "webservice.json"
    assert wsd.is_file() and json.loads(wsd.read_text())
    # two runs of the training experiment, authored and dated as in the workspace (2017), oldest first
    log = git(root, "log", "--reverse", "--format=%an|%aI|%(trailers:key=Amlvc-Snapshot,valueonly)").splitlines()
    runs = [line.split("|") for line in log if line.split("|")[-1].strip()]
    assert len(runs) == len(result["history_commits"]) >= 2
    assert all(author == "jschmidt@contoso.com" and date.startswith("2017-06-12") for author, date, _ in runs)
    assert [r[1] for r in runs] == sorted(r[1] for r in runs)


def test_pull_of_named_experiments_only(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api = client(workspace)
    create(api)
    create(api, "predictive--base.json")
    root = init_repo(run_cli, tmp_path, workspace)

    one = pull_json(run_cli, root, "Kündigung – Training ✓")
    assert one["added"] == ["kundigung-training"]
    assert not (root / "experiments" / "kundigung-training-predictive-exp").exists()

    before = fingerprint(root)
    unknown = run_cli(["pull", "no-such-experiment"], cwd=root)
    assert unknown.exit_code == 2 and "no experiment 'no-such-experiment'" in unknown.stderr
    assert fingerprint(root) == before


def test_committed_local_change_and_workspace_change_is_reported_as_diverged(
        workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api = client(workspace)
    exp = create(api)
    root = init_repo(run_cli, tmp_path, workspace)
    pull_json(run_cli, root)
    experiment = root / "experiments" / "kundigung-training" / "experiment.json"
    experiment.write_text(experiment.read_text().replace('"Value": "30"', '"Value": "31"', 1))
    git(root, "commit", "-qam", "local tuning")
    studio_edit(api, exp, set_parameter)

    # the same parameter on both sides: no merge (tests/test_pull_merge.py); --theirs takes the workspace's
    result = pull_json(run_cli, root, "--theirs")

    assert result["changed"] == result["diverged"] == ["kundigung-training"] and result["merged"] == []
    # the workspace version is checked out; the local commit stays in history
    assert '"Value": "45"' in experiment.read_text()
    assert '"Value": "31"' in git(root, "show", "HEAD~1:experiments/kundigung-training/experiment.json")


def test_commit_message_helpers() -> None:
    from amlvc.sync import messages as history

    message = history.pull_message("dev", "ab" * 16, ["a"], ["b"], [], ["c"])
    assert message.splitlines()[0] == "Pull from dev: 1 added, 1 changed"
    assert parse_trailers(message) == {"Amlvc-Remote": ["dev"], "Amlvc-Workspace": ["ab" * 16]}
    assert parse_trailers("subject only\n") == {}
    assert parse_trailers("s\n\nbody: not a trailer\nplain text\n") == {}
    assert parse_service_date("/Date(1497256887345)/") == datetime(2017, 6, 12, 8, 41, 27, 345000, tzinfo=UTC)
    assert parse_service_date("/Date(-62135596800000)/") is None  # DateTime.MinValue: never started
    assert parse_service_date(None) is None and parse_service_date("2017-06-12") is None
    signature = history.snapshot_signature({"Creator": "jdoe", "Status": {"CreationTime": "/Date(0)/"}})
    assert (signature.name, signature.email, signature.date) == ("jdoe", "", None)


def test_init_refuses_to_repoint_a_remote_with_recorded_experiments(workspace: ServerHandle, tmp_path: Path,
                                                                   run_cli: Any) -> None:
    """The lock's experiment ids belong to the remote's workspace: another workspace under that name would make
    every one of them look deleted (and `pull --prune` delete them). Another route to the same one is fine."""
    create(client(workspace))
    root = init_repo(run_cli, tmp_path, workspace)
    pull_json(run_cli, root)
    before = fingerprint(root)
    other = "fedcba9876543210fedcba9876543210"
    result = run_cli(["init", "--remote", "dev", "--endpoint", workspace.url, "--workspace-id", other], cwd=root)
    assert result.exit_code == 2
    assert "remote 'dev' is workspace 0123456789abcdef0123456789abcdef, and amlvc.lock records 1 experiment(s)" \
        in result.stderr and "under another name" in result.stderr
    assert fingerprint(root) == before
    # the same workspace by another route (and its id as copied in capitals) is just an update, which keeps
    # what it does not say (the token variable)
    moved = workspace.url.replace("127.0.0.1", "localhost")
    result = run_cli(["init", "--remote", "dev", "--endpoint", moved, "--workspace-id", WS.upper()], cwd=root)
    assert result.exit_code == 0, result.stderr
    assert f'endpoint = "{moved}"' in (root / "amlvc.toml").read_text(encoding="utf-8")
    assert pull_json(run_cli, root)["commit"] is None  # still in sync: nothing looks deleted
    added = run_cli(["init", "--remote", "prod", "--endpoint", workspace.url, "--workspace-id", other], cwd=root)
    assert added.exit_code == 0, added.stderr
