"""`amlvc dataset list|upload`, `amlvc outdated` and `amlvc bump` against the local workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import assetkit
import pytest
from assetkit import DATASET, DEV, MODEL, PREDICTIVE, TRAINING, as_json, cli, git, ok

azureml = pytest.importorskip("azureml")


def _upload(run_cli: Any, root: Path, tmp_path: Path, name: str = DATASET, data: bytes = b"a,b\n1,2\n") -> Any:
    path = tmp_path / "upload.csv"
    path.write_bytes(data)
    return as_json(run_cli, root, "dataset", "upload", str(path), "--name", name)


def test_chunked_upload_of_a_new_dataset_reads_back_through_the_public_azureml_client(
        tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        rows = b"".join(b"%d,Kunde %d,%d\r\n" % (i, i, i % 2) for i in range(130_000))
        data = b"id,name,churn\r\n" + rows
        uploaded = _upload(run_cli, root, tmp_path, "Kundenstamm 2017.csv", data)
        assert uploaded["new_family"] is True and uploaded["version"] == 1 and uploaded["size"] == len(data)
        assert uploaded["blocks"] == 2  # 2 MiB blocks, as the azureml client sends them
        assert uploaded["id"] == f"{DEV}.{uploaded['family']}.v1-default-{uploaded['id'].rsplit('-', 1)[1]}"
        ws = azureml.Workspace(workspace_id=DEV, authorization_token=assetkit.TOKENS["dev"], endpoint=server.url)
        dataset = ws.datasets["Kundenstamm 2017.csv"]
        assert dataset.dataset_id == uploaded["id"] and dataset.family_id == uploaded["family"]
        assert dataset.data_type_id == "GenericCSV"
        assert dataset.read_as_binary() == data
        listed = as_json(run_cli, root, "dataset", "list")["datasets"]
        assert {(d["name"], d["version"]) for d in listed} == {(DATASET, 1), ("Kundenstamm 2017.csv", 1)}


def test_upload_dry_run_and_a_bad_format_change_nothing(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        path = tmp_path / "kunden.bin"
        path.write_bytes(b"x")
        before, workspace = assetkit.files(root), assetkit.workspace(server)
        dry = as_json(run_cli, root, "dataset", "upload", str(path), "--name", DATASET, "--format", "plaintext",
                      "--dry-run")
        assert (dry["dry_run"], dry["version"], dry["data_type"]) == (True, 2, "PlainText")
        guess = cli(run_cli, root, "dataset", "upload", str(path), "--name", DATASET)
        assert guess.exit_code == 2 and "cannot tell the format from the extension; give --format" in guess.stderr
        assert assetkit.files(root) == before and assetkit.workspace(server) == workspace


def test_outdated_with_nothing_newer_exits_0_even_with_exit_code(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (_server, root):
        result = ok(run_cli, root, "outdated", "--exit-code")
        assert result.stdout == "" and "at its latest version in 'dev'" in result.stderr
        assert "Nothing to bump" in ok(run_cli, root, "bump").stderr
        assert git(root, "status", "--porcelain") == ""


def test_bump_to_a_version_that_does_not_exist_exits_6_and_changes_nothing(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        _upload(run_cli, root, tmp_path)
        before, workspace = assetkit.files(root), assetkit.workspace(server)
        result = cli(run_cli, root, "bump", TRAINING, PREDICTIVE, "--to", f"{DATASET}@5")
        assert result.exit_code == 6
        assert (f"Error: dataset '{DATASET}' has no version 5 in workspace 'dev' (its latest is version 2); nothing "
                f"was changed") in result.stderr
        unknown = cli(run_cli, root, "bump", TRAINING, "--to", "Kundenstamm 1999.csv@1")
        assert unknown.exit_code == 6 and "no asset named 'Kundenstamm 1999.csv' is referenced" in unknown.stderr
        assert cli(run_cli, root, "bump", "--to", "no-version").exit_code == 2
        assert assetkit.files(root) == before and assetkit.workspace(server) == workspace


def test_bump_to_an_older_version_and_back(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (_server, root):
        original = assetkit.files(root)
        _upload(run_cli, root, tmp_path)
        _upload(run_cli, root, tmp_path)
        bumped = ok(run_cli, root, "bump", TRAINING, PREDICTIVE, "--datasets")
        assert bumped.stdout.splitlines() == [f"{TRAINING}: ~ dataset {DATASET}: version 1 → 3",
                                              f"{PREDICTIVE}: ~ dataset {DATASET}: version 1 → 3"]
        middle = ok(run_cli, root, "bump", TRAINING, "--to", f"{DATASET}@2")  # found below the latest batch
        assert middle.stdout.strip() == f"{TRAINING}: ~ dataset {DATASET}: version 3 → 2"
        ok(run_cli, root, "bump", "--to", f"{DATASET}@1")
        assert {k: v for k, v in assetkit.files(root).items() if k.startswith("experiments/")} == {
            k: v for k, v in original.items() if k.startswith("experiments/")}


def test_bump_moves_only_the_kinds_asked_for(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (server, root):
        _upload(run_cli, root, tmp_path)
        ok(run_cli, root, "run", TRAINING, "--wait")
        ok(run_cli, root, "model", "promote", TRAINING, assetkit.TRAIN_NODE, "--name", MODEL)
        kinds = {(i["experiment"], i["kind"]) for i in as_json(run_cli, root, "outdated")["outdated"]}
        assert kinds == {(TRAINING, "dataset"), (PREDICTIVE, "dataset"), (PREDICTIVE, "trainedmodel")}
        assert ok(run_cli, root, "bump", PREDICTIVE, "--models").stdout.strip() == (
            f"{PREDICTIVE}: ~ trained model {MODEL}: version 1 → 2")
        assert git(root, "status", "--porcelain").split() == ["M", f"experiments/{PREDICTIVE}/experiment.json",
                                                              "M", f"experiments/{PREDICTIVE}/layout.json"]
        assert {i["kind"] for i in as_json(run_cli, root, "outdated", PREDICTIVE)["outdated"]} == {"dataset"}
        assert server is not None
