"""ARM (new) web services in git, end to end: pull a definition, patch its model, push it (the operation polled to
Succeeded), score; retrain into it; one definition pushed to another resource group; a failed operation (7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
from servicekit import STORAGE_KEY, TRAINING, Cli, git, lock, make_repo, repo_bytes, service_json
from test_git_secrets import assert_not_in_git
from wskit import DEV, PREDICTIVE_ID, SUB, TOKENS, Api, for_create

from amlvc import config
from amlvc.errors import ExitCode
from amlvc.server.runner import ServerHandle

TRAIN_NODE = "5e7a9c1b-3d5f-4a7b-9c1d-3e5f7a9b1c2d-29"


def arm_url(group: str, name: str) -> str:
    return (f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.MachineLearning/webServices/{name}"
            "?api-version=2017-01-01")


def created(server: ServerHandle, group: str, name: str) -> dict[str, Any]:
    """An ARM service made from the predictive experiment's Studio export (what a user PUTs by hand)."""
    api = Api(server.url)
    export = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/webservicedefinition").json()
    resp = api.bearer("PUT", arm_url(group, name), json=for_create(export))
    assert resp.status_code == 201, resp.text
    return dict(api.bearer("GET", arm_url(group, name)).json())


def definition(server: ServerHandle, group: str, name: str) -> dict[str, Any]:
    """What the service runs (its GET without the state of the last operation)."""
    props = dict(Api(server.url).bearer("GET", arm_url(group, name)).json()["properties"])
    props.pop("provisioningState")
    return props


def repo(run_cli: Any, tmp_path: Path, server: ServerHandle, group: str) -> Cli:
    settings = config.WebServiceSettings(SUB, group, "plan-s1", "localstore")
    cli = Cli(run_cli, make_repo(tmp_path / "repo", server, settings))
    cli("pull")
    return cli


def test_arm_pull_patch_push_succeeds_and_scores_with_the_new_model(seeded_server: ServerHandle, run_cli: Any,
                                                                   tmp_path: Path) -> None:
    created(seeded_server, "arm-b", "churn")
    cli = repo(run_cli, tmp_path, seeded_server, "arm-b")
    pulled = cli.json("webservice", "pull", "churn")
    assert pulled["added"] == ["churn"]
    definition = service_json(cli.root, "churn")
    props = definition["properties"]
    assert definition["$kind"] == "arm" and "id" not in definition and "name" not in definition
    assert not {"createdOn", "modifiedOn", "provisioningState", "swaggerLocation", "commitmentPlan",
                "machineLearningWorkspace"} & set(props)
    assert props["storageAccount"] == {"key": "${secret:STORAGE_ACCOUNT_KEY}"}
    first = cli("score", "churn", "--input", cli.sample).stdout

    cli("model", "promote", TRAINING, TRAIN_NODE, "--name", "churn-model")
    patched = cli.json("webservice", "patch", "churn", "--model", "churn-model@1")
    assert patched["patch"] == [{"op": "remove", "path": "/properties/assets/asset3/locationInfo"},
                                {"op": "add", "path": "/properties/assets/asset3/$model", "value": "churn-model@1"}]
    assert cli("webservice", "push", "churn", code=ExitCode.LOCAL)  # a push sends a committed revision
    git(cli.root, "commit", "-qam", "churn serves churn-model@1")
    pushed = cli.json("webservice", "push", "churn")
    assert pushed["services"][0]["actions"][0]["detail"] == "PATCH assets" and len(pushed["operations"]) == 1
    entry = lock(cli.root)["remotes"]["dev"]["webservices"]["churn"]
    assert entry["provisioning_state"] == "Succeeded"
    second = cli("score", "churn", "--input", cli.sample).stdout
    assert second != first
    assert cli.json("webservice", "pull")["commit"] is None  # the asset's uri names churn-model@1's bytes
    assert service_json(cli.root, "churn")["properties"]["assets"]["asset3"]["$model"] == "churn-model@1"

    assert "no web service 'no-training'" in cli("retrain", "no-training", "--into", "churn",
                                                 code=ExitCode.USAGE).stderr
    cli("webservice", "deploy", TRAINING, "--name", "training-arm")
    retrained = cli.json("retrain", "training-arm", "--into", "churn", "--push", "--sample", cli.sample)
    assert retrained["model"] == "churn-model@2" and retrained["push"]["operations"]
    assert retrained["sample"]["results"]["output1"]["Values"][0] != second.splitlines()[1].split(",")
    keys = requests.get(seeded_server.url + arm_url("arm-b", "churn").replace("?", "/listKeys?"),
                        headers={"Authorization": f"Bearer {TOKENS[DEV]}"}, timeout=10).json()
    assert_not_in_git(cli.root, {STORAGE_KEY, TOKENS[DEV], seeded_server.url.split("//", 1)[1], *keys.values()})


def test_one_definition_is_created_in_another_resource_group_and_a_failed_operation_records_nothing(
        seeded_server: ServerHandle, run_cli: Any, tmp_path: Path) -> None:
    created(seeded_server, "arm-dev", "scorer")
    cli = repo(run_cli, tmp_path, seeded_server, "arm-dev")
    cli("webservice", "pull", "scorer")
    # a second remote: the same workspace, the resource group of prod (amlvc.toml holds what differs)
    prod = config.Remote("prod", DEV, endpoint=seeded_server.url, webservices=config.WebServiceSettings(
        SUB, "arm-prod", "plan-s1", "localstore"))
    (cli.root / "amlvc.toml").write_bytes(config.dumps(config.load(cli.root).with_remote(prod)))
    made = cli.json("webservice", "push", "scorer", "--remote", "prod")
    assert made["services"][0]["actions"][0]["action"] == "create" and made["operations"]
    resource = Api(seeded_server.url).bearer("GET", arm_url("arm-prod", "scorer")).json()
    assert resource["properties"]["provisioningState"] == "Succeeded"
    assert resource["properties"]["storageAccount"] == {"name": "localstore"}
    assert cli.json("webservice", "push", "scorer", "--remote", "prod")["commit"] is None  # nothing left to do

    # a definition whose trained model names no blob: the operation fails, exit 7 with the service's message
    data = service_json(cli.root, "scorer")
    data["properties"]["assets"]["asset3"]["locationInfo"]["uri"] = \
        "https://amlvclocal.blob.core.windows.net/models/missing.ilearner"
    (cli.root / "webservices/scorer/service.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                                                              encoding="utf-8")
    git(cli.root, "commit", "-qam", "point scorer at a model that is not there")
    before, workspace = repo_bytes(cli.root), definition(seeded_server, "arm-prod", "scorer")
    failed = cli("webservice", "push", "scorer", "--remote", "prod", code=ExitCode.RUN_FAILED)
    assert "ended Failed" in failed.stderr and "AssetNotFound" in failed.stderr
    assert "nothing was recorded" in failed.stderr
    assert repo_bytes(cli.root) == before and definition(seeded_server, "arm-prod", "scorer") == workspace
    # a model to put into storage without the storage key: refused before anything is written
    git(cli.root, "revert", "--no-edit", "HEAD")
    cli("model", "promote", TRAINING, TRAIN_NODE, "--name", "churn-scorer")
    cli("webservice", "patch", "scorer", "--model", "churn-scorer@1")
    git(cli.root, "commit", "-qam", "scorer serves churn-scorer@1")
    before, workspace = repo_bytes(cli.root), definition(seeded_server, "arm-dev", "scorer")
    refused = cli("webservice", "push", "scorer", code=ExitCode.VALIDATION,
                  env={"AMLVC_SECRET_STORAGE_ACCOUNT_KEY": ""})
    assert "AMLVC_SECRET_STORAGE_ACCOUNT_KEY" in refused.stderr and repo_bytes(cli.root) == before
    assert definition(seeded_server, "arm-dev", "scorer") == workspace
