"""dev -> prod: an experiment pulled from one workspace is checked against and pushed to another one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pushkit import (
    DATASET_FAMILY,
    DATASET_ID,
    DEV,
    PROD,
    TRAINING,
    TRAINING_ID,
    client,
    lock_entry,
    pulled_repo,
    repo_state,
    start,
    token_env,
    workspace_state,
)

from amlvc.server import assetdb

CUSTOM_FAMILY = "d1f3a5c7e9b14d6f8a0c2e4b6d8f0a2c"
DEV_CUSTOM = f"{DEV}.{CUSTOM_FAMILY}.v1-default-702"
PROD_DATASET = f"{PROD}.{DATASET_FAMILY}.v1-default-41"
PROD_CUSTOM = f"{PROD}.{CUSTOM_FAMILY}.v1-default-3"
PROD_SECRETS = {"AMLVC_SECRET_ACCOUNT_KEY_11": "prod-account-key", "AMLVC_SECRET_STORAGE_CONNECTION_17": "prod-key-2"}


def add_to_prod(server: Any, kind: str, ident: str, name: str) -> None:
    """What uploading the dataset / building the custom module in prod leaves in its lists."""
    with server.state.store.tx() as conn:
        assetdb.insert_item(conn, PROD, kind, {"Id": ident, "Name": name})


@pytest.fixture
def world(tmp_path: Path, run_cli: Any) -> Iterator[tuple[Any, Path]]:
    with start(tmp_path, prod=True) as server:
        yield server, pulled_repo(run_cli, tmp_path, server, ("dev", "prod"), remote="dev")


def port_ids(doc: dict[str, Any], key: str) -> set[str]:
    return {p[key] for n in doc["Graph"]["ModuleNodes"] for p in n["InputPortsInternal"] if p.get(key)}


def test_dev_experiment_is_created_in_prod_with_assets_remapped_by_family(world: tuple[Any, Path],
                                                                          run_cli: Any) -> None:
    server, root = world
    add_to_prod(server, "datasources", PROD_DATASET, "Kundendaten (prod)")
    add_to_prod(server, "modules", PROD_CUSTOM, "Churn features")
    check = run_cli(["check", "--remote", "prod"], cwd=root, env=token_env())
    assert check.exit_code == 0, check.stderr
    assert f"{TRAINING} -> prod: ok" in check.stdout
    dataset_line = next(line for line in check.stdout.splitlines() if "dataset" in line)
    assert "v1-default-23 -> 5d7f9b1c….2a4c6e8b….v1-default-41" in dataset_line
    assert "other batch of the same family: uses batch 41" in dataset_line

    dev_before = workspace_state(server, "dev")
    result = run_cli(["push", "--remote", "prod"], cwd=root, env={**token_env(), **PROD_SECRETS})
    assert result.exit_code == 0, result.stderr
    assert f"+ {TRAINING}  create: not in this workspace yet" in result.stderr
    assert "-> 5d7f9b1c….2a4c6e8b….v1-default-41" in result.stderr
    entry = lock_entry(root, "prod", TRAINING)
    assert entry["id"].startswith(f"{PROD}.f-id.")
    assert lock_entry(root, "dev", TRAINING)["id"] == TRAINING_ID

    with client(server, "prod") as prod:
        doc = prod.get_experiment(entry["id"])
    assert port_ids(doc, "DataSourceId") == {PROD_DATASET}
    assert PROD_DATASET in doc["Graph"]["SerializedClientData"]
    assert DATASET_ID not in json.dumps(doc)
    assert PROD_CUSTOM in {n["ModuleId"] for n in doc["Graph"]["ModuleNodes"]}
    assert DEV_CUSTOM not in json.dumps(doc)
    assert "prod-account-key" in json.dumps(doc)  # prod's secret, from prod's environment
    assert doc["Etag"] == entry["etag"]
    assert workspace_state(server, "dev") == dev_before  # dev untouched

    again = run_cli(["push", "--remote", "prod"], cwd=root, env={**token_env(), **PROD_SECRETS})
    assert again.exit_code == 0 and "1 unchanged" in again.stderr


def test_prod_without_the_assets_refuses_and_writes_nothing(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    prod_before, repo_before = workspace_state(server, "prod"), repo_state(root)
    check = run_cli(["check", "--remote", "prod"], cwd=root, env=token_env())
    assert check.exit_code == 6
    assert "missing" in check.stdout and "workspace 'prod'" in check.stderr
    result = run_cli(["push", "--remote", "prod"], cwd=root, env={**token_env(), **PROD_SECRETS})
    assert result.exit_code == 6
    assert f"experiment '{TRAINING}' references what workspace 'prod' does not have" in result.stderr
    assert DEV_CUSTOM in result.stderr and DATASET_ID in result.stderr
    assert workspace_state(server, "prod") == prod_before == {}
    assert repo_state(root) == repo_before


def test_prod_secrets_are_not_taken_from_dev(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    add_to_prod(server, "datasources", PROD_DATASET, "Kundendaten (prod)")
    add_to_prod(server, "modules", PROD_CUSTOM, "Churn features")
    repo_before = repo_state(root)
    result = run_cli(["push", "--remote", "prod"], cwd=root, env=token_env())
    assert result.exit_code == 6
    assert "needs secret ACCOUNT_KEY_11" in result.stderr and "remotes.prod." in result.stderr
    assert workspace_state(server, "prod") == {}
    assert repo_state(root) == repo_before


def test_remap_by_name_finds_an_asset_of_another_family(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    with client(server, "dev") as dev:
        dev_name = next(d["Name"] for d in dev.list_datasources() if d["Id"] == DATASET_ID)
    other = f"{PROD}.{'9' * 32}.v1-default-7"
    add_to_prod(server, "datasources", other, dev_name)
    add_to_prod(server, "modules", PROD_CUSTOM, "Churn features")
    check = run_cli(["check", "--remote", "prod", "--json"], cwd=root, env=token_env())
    assert check.exit_code == 0, check.stderr
    refs = json.loads(check.stdout)["experiments"][0]["references"]
    dataset = next(r for r in refs if r["id"] == DATASET_ID)
    assert (dataset["status"], dataset["target"], dataset["remap"]) == ("name", other, True)
    result = run_cli(["push", "--remote", "prod"], cwd=root, env={**token_env(), **PROD_SECRETS})
    assert result.exit_code == 0, result.stderr
    with client(server, "prod") as prod:
        doc = prod.get_experiment(lock_entry(root, "prod", TRAINING)["id"])
    assert port_ids(doc, "DataSourceId") == {other}


def test_remap_file_maps_explicitly(world: tuple[Any, Path], run_cli: Any, tmp_path: Path) -> None:
    server, root = world
    chosen = f"{PROD}.{'8' * 32}.v1-default-2"
    add_to_prod(server, "datasources", chosen, "some other table")
    add_to_prod(server, "modules", PROD_CUSTOM, "Churn features")
    mapping = tmp_path / "remap.json"
    mapping.write_text(json.dumps({DATASET_FAMILY: chosen}))
    result = run_cli(["push", "--remote", "prod", "--remap", str(mapping)], cwd=root,
                     env={**token_env(), **PROD_SECRETS})
    assert result.exit_code == 0, result.stderr
    with client(server, "prod") as prod:
        doc = prod.get_experiment(lock_entry(root, "prod", TRAINING)["id"])
    assert port_ids(doc, "DataSourceId") == {chosen}
