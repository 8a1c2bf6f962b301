"""Classic web services in git, end to end through the command line, real git and the local workspace on loopback:
deploy, endpoints, retraining, scoring, batch, pull with its three-way merge, and the refusals that change nothing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import requests
from servicekit import (
    MODEL,
    PREDICTIVE,
    TRAINING,
    Cli,
    git,
    lock,
    make_repo,
    repo_bytes,
    service_json,
    services_state,
    workspace_secrets,
)
from test_git_secrets import assert_not_in_git
from wskit import DEV, TOKENS

from amlvc.errors import ExitCode
from amlvc.server.runner import ServerHandle

REF1, REF2 = f"{MODEL}@1", f"{MODEL}@2"
RESOURCE = "Kündigung – Logistische Regression"


def deployed(run_cli: Any, tmp_path: Path, server: ServerHandle, suffix: str) -> Cli:
    """A repository that pulled the fixtures and deployed the predictive (`scoring-…`) and training (`training-…`)
    experiments, with a sample to score."""
    root = make_repo(tmp_path / "repo", server)
    cli = Cli(run_cli, root)
    cli("pull")
    cli("webservice", "deploy", PREDICTIVE, "--name", f"scoring-{suffix}")
    cli("webservice", "deploy", TRAINING, "--name", f"training-{suffix}")
    return cli


def test_classic_deploy_endpoint_retrain_patch_back_and_score(seeded_server: ServerHandle, run_cli: Any,
                                                              tmp_path: Path) -> None:
    cli = deployed(run_cli, tmp_path, seeded_server, "a")
    root = cli.root
    scoring = service_json(root, "scoring-a")
    assert scoring["$kind"] == "classic" and scoring["$experiment"] == PREDICTIVE
    assert scoring["Endpoints"]["default"]["Resources"] == {RESOURCE: REF1}  # the deployed model, in models/
    assert service_json(root, "training-a")["Endpoints"]["default"]["Resources"] == {}
    manifest = json.loads((root / "models" / f"{MODEL}.json").read_text(encoding="utf-8"))
    assert [v["version"] for v in manifest["versions"]] == [1]

    added = cli.json("endpoint", "add", "scoring-a", "ep2", "--push")
    assert added["patch"][0]["op"] == "add" and added["patch"][0]["path"] == "/Endpoints/ep2"
    first = cli("score", "scoring-a/ep2", "--input", cli.sample).stdout
    assert first == cli("score", "scoring-a", "--input", cli.sample).stdout  # the same model as the default's

    retrained = cli.json("retrain", "training-a", "--into", "scoring-a/ep2", "--param", "Train fraction=0.65")
    assert retrained["model"] == REF2 and retrained["previous"] == REF1 and retrained["subject"] == f"retrain: {REF2}"
    assert git(root, "log", "-1", "--format=%s") == f"retrain: {REF2}\n"
    assert set(git(root, "show", "--name-only", "--format=", "HEAD").split()) == {
        f"models/{MODEL}.json", "webservices/scoring-a/service.json"}
    assert service_json(root, "scoring-a")["Endpoints"]["ep2"]["Resources"] == {RESOURCE: REF2}
    assert service_json(root, "scoring-a")["Endpoints"]["default"]["Resources"] == {RESOURCE: REF1}
    pushed = cli.json("webservice", "push", "scoring-a")
    assert [a["action"] for a in pushed["services"][0]["actions"]] == ["patch"]
    second = cli("score", "scoring-a/ep2", "--input", cli.sample).stdout
    assert second != first and cli("score", "scoring-a", "--input", cli.sample).stdout == first

    cli("endpoint", "patch", "scoring-a", "ep2", "--model", REF1, "--push")  # going back
    assert cli("score", "scoring-a/ep2", "--input", cli.sample).stdout == first
    assert service_json(root, "scoring-a")["Endpoints"]["ep2"]["Resources"] == {RESOURCE: REF1}
    assert cli.json("webservice", "pull")["commit"] is None  # the repository holds what the workspace has
    assert git(root, "status", "--porcelain") == ""
    assert_not_in_git(root, workspace_secrets(seeded_server))
    # a clone has the manifests but not the bytes: its next pull fetches them through the endpoints' SAS
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    (clone / "amlvc.toml").write_bytes((root / "amlvc.toml").read_bytes())
    again = Cli(cli.run_cli, clone)
    assert again("webservice", "show", "scoring-a", code=ExitCode.VALIDATION)  # "missing", and it says so
    assert again.json("webservice", "pull")["commit"] is None
    assert {m["stored"] for m in again.json("webservice", "show", "scoring-a")["models"]} == {"ok"}


def test_the_default_endpoint_an_unknown_version_and_damaged_bytes_are_refused_with_nothing_changed(
        seeded_server: ServerHandle, run_cli: Any, tmp_path: Path) -> None:
    cli = deployed(run_cli, tmp_path, seeded_server, "b")
    cli("endpoint", "add", "scoring-b", "ep2", "--push")
    cli("retrain", "training-b", "--into", "scoring-b/ep2")  # committed, not pushed: ep2 reads @2 in git only
    before, workspace = repo_bytes(cli.root), services_state(seeded_server)
    refused = cli("endpoint", "patch", "scoring-b", "default", "--model", REF1, "--push", code=ExitCode.VALIDATION)
    assert "default endpoint" in refused.stderr and "endpoint add scoring-b" in refused.stderr
    refused = cli("endpoint", "patch", "scoring-b", "ep2", "--model", f"{MODEL}@9", code=ExitCode.VALIDATION)
    assert "has no version 9" in refused.stderr and "versions: 1, 2" in refused.stderr
    refused = cli("endpoint", "patch", "scoring-b", "ep2", "--model", "no-such-model@1", "--push",
                  code=ExitCode.VALIDATION)
    assert "no model 'no-such-model'" in refused.stderr
    refused = cli("endpoint", "rm", "scoring-b", "default", code=ExitCode.VALIDATION)
    assert "cannot be removed" in refused.stderr
    refused = cli("retrain", "training-b", "--into", "scoring-b", code=ExitCode.VALIDATION)
    assert "default endpoint" in refused.stderr and "nothing was run" in refused.stderr
    sha = json.loads((cli.root / "models" / f"{MODEL}.json").read_text())["versions"][1]["sha256"]
    stored = cli.root / ".amlvc" / "objects" / "sha256" / sha[:2] / sha[2:]
    os.chmod(stored, stat.S_IWUSR | stat.S_IRUSR)
    stored.write_bytes(stored.read_bytes() + b"tampered")
    refused = cli("webservice", "push", "scoring-b", code=ExitCode.VALIDATION)
    assert sha in refused.stderr and f"model pull '{REF2}'" in refused.stderr
    refused = cli("endpoint", "patch", "scoring-b", "ep2", "--model", REF2, code=ExitCode.VALIDATION)
    assert sha in refused.stderr
    assert repo_bytes(cli.root) == before and services_state(seeded_server) == workspace


def test_a_service_changed_in_the_workspace_since_the_pull_is_refused(seeded_server: ServerHandle, run_cli: Any,
                                                                      tmp_path: Path) -> None:
    cli = deployed(run_cli, tmp_path, seeded_server, "c")
    cli("endpoint", "add", "scoring-c", "ep2", "--push")
    service_id = lock(cli.root)["remotes"]["dev"]["webservices"]["scoring-c"]["id"]
    resp = requests.put(f"{seeded_server.url}/workspaces/{DEV}/webservices/{service_id}/endpoints/ep3",
                        json={"Description": "added in Studio"}, headers={"Authorization": f"Bearer {TOKENS[DEV]}"},
                        timeout=10)
    assert resp.status_code == 201
    before, workspace = repo_bytes(cli.root), services_state(seeded_server)
    refused = cli("endpoint", "rm", "scoring-c", "ep2", "--push", code=ExitCode.CONFLICT)
    assert "changed in the workspace since the last pull" in refused.stderr
    assert "amlvc webservice pull scoring-c" in refused.stderr
    assert cli("retrain", "training-c", "--into", "scoring-c/ep2", "--push", code=ExitCode.CONFLICT)
    assert repo_bytes(cli.root) == before and services_state(seeded_server) == workspace
    # pull takes it (and pull's three-way merge keeps a committed local edit beside it), then the push goes
    data = service_json(cli.root, "scoring-c")
    data["Endpoints"]["ep2"]["Description"] = "edited in git"
    (cli.root / "webservices/scoring-c/service.json").write_text(json.dumps(data, indent=2, ensure_ascii=False)
                                                                  + "\n", encoding="utf-8")
    git(cli.root, "commit", "-qam", "describe ep2")
    pulled = cli.json("pull")
    assert pulled["webservices"]["merged"] == ["scoring-c"]
    merged = service_json(cli.root, "scoring-c")["Endpoints"]
    assert merged["ep3"]["Description"] == "added in Studio" and merged["ep2"]["Description"] == "edited in git"
    plan = cli.json("webservice", "push", "scoring-c")
    assert [(a["action"], a["target"]) for a in plan["services"][0]["actions"]] == [("update", "ep2")]


def test_batch_jobs_write_their_outputs_and_a_list_shows_what_is_tracked(seeded_server: ServerHandle, run_cli: Any,
                                                                         tmp_path: Path) -> None:
    cli = deployed(run_cli, tmp_path, seeded_server, "d")
    out = cli.root.parent
    job = cli.json("batch", "scoring-d", "--input", f"input1={cli.sample}", "--output", f"output1={out}/scores.csv",
                   "--wait")
    assert job["status"] == "Finished" and (out / "scores.csv").read_bytes().startswith(b"output,digest")
    assert all("sig=" not in url and "127.0.0.1" not in url for url in job["results"].values())
    model = cli.json("batch", "training-d", "--param", "Train fraction=0.5", "--output", f"model={out}/m.ilearner",
                     "--wait")
    assert (out / "m.ilearner").read_bytes().startswith(b"AMLVC-ILEARNER/2")
    assert model["results"]["model"].startswith("https://amlvclocal.blob.core.windows.net/")
    rows = {r["name"]: r for r in cli.json("webservice", "list")["services"] if r["name"]}
    assert rows["scoring-d"]["state"] == "tracked" and rows["training-d"]["kind"] == "classic"
    shown = cli.json("webservice", "show", "scoring-d")
    assert shown["models"] == [{"where": f"default/{RESOURCE}", "model": REF1, "stored": "ok"}]
    rows = out / "rows.json"
    rows.write_text(json.dumps([{"id": "1", "value": "a"}, {"id": "2", "value": "b"}]), encoding="utf-8")
    assert cli("score", "scoring-d", "--input", str(rows)).stdout == cli("score", "scoring-d", "--input",
                                                                          f"input1={cli.sample}").stdout
    assert cli("batch", "scoring-d", "--output", f"output1={out}/x.csv", code=ExitCode.USAGE)


def test_deploy_update_redeploys_into_the_recorded_service(seeded_server: ServerHandle, run_cli: Any,
                                                           tmp_path: Path) -> None:
    cli = deployed(run_cli, tmp_path, seeded_server, "f")
    service_id = lock(cli.root)["remotes"]["dev"]["webservices"]["scoring-f"]["id"]
    assert "exists already" in cli("webservice", "deploy", PREDICTIVE, "--name", "scoring-f",
                                   code=ExitCode.USAGE).stderr
    assert cli.json("webservice", "deploy", PREDICTIVE, "--update", "--dry-run")["commit"] is None
    updated = cli.json("webservice", "deploy", PREDICTIVE, "--update")
    assert updated["action"] == "update" and updated["id"] == service_id and updated["service"] == "scoring-f"
    assert git(cli.root, "status", "--porcelain") == ""
    plan = cli.json("push", PREDICTIVE, "--dry-run")  # the deploy wrote the experiment: its new Etag is recorded
    assert [(e["action"], e["stale"]) for e in plan["experiments"]] == [("unchanged", False)]


@pytest.mark.parametrize("settings", ["endpoint add", "refresh"])
def test_refresh_and_settings_are_recorded(seeded_server: ServerHandle, run_cli: Any, tmp_path: Path,
                                           settings: str) -> None:
    cli = deployed(run_cli, tmp_path, seeded_server, f"e{len(settings)}")
    name = f"scoring-e{len(settings)}"
    cli("endpoint", "add", name, "ep2", "--throttle", "Low", "--description", "low throttle", "--push")
    assert service_json(cli.root, name)["Endpoints"]["ep2"]["MaxConcurrentCalls"] == 4
    if settings == "refresh":
        refreshed = cli.json("endpoint", "refresh", name, "ep2")
        assert refreshed["changed"] is False  # the endpoint runs the default's graph and models already: 304
        assert cli("endpoint", "refresh", name, "default", code=ExitCode.VALIDATION)
    else:
        removed = cli.json("endpoint", "rm", name, "ep2", "--push")
        assert removed["push"]["services"][0]["actions"][0]["action"] == "remove"
        assert "ep2" not in service_json(cli.root, name)["Endpoints"]
    assert git(cli.root, "status", "--porcelain") == ""
