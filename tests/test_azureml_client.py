"""The public `azureml` 0.2.7 Python client, unchanged, against the local workspace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import FIXTURES, TOKEN, WS, Studio, start

from amlvc.server.runner import ServerHandle
from amlvc.server.wire import GLOBAL_WORKSPACE_ID

azureml = pytest.importorskip("azureml")

SAMPLE_GUID = "1f022fd4578847dc867d662a51f0a105"  # the sample experiment id of the PY client's tests


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[ServerHandle]:
    """A workspace seeded with the fixtures plus one Microsoft sample experiment."""
    seed = tmp_path / "seed"
    seed.mkdir()
    base = (FIXTURES / "training--base.json").read_text(encoding="utf-8")
    (seed / "training--base.json").write_text(base, encoding="utf-8")
    sample = json.loads(base)
    sample.update({"ExperimentId": f"{GLOBAL_WORKSPACE_ID}.f-id.{SAMPLE_GUID}", "RunId": None,
                   "ParentExperimentId": None, "Description": "Sample 1: Download dataset from UCI",
                   "Category": "sample"})
    (seed / "sample.json").write_text(json.dumps(sample), encoding="utf-8")
    with start(tmp_path, seed=seed) as h:
        yield h


def test_experiments_and_user_experiments(handle: ServerHandle) -> None:
    ws = azureml.Workspace(workspace_id=WS, authorization_token=TOKEN, endpoint=handle.url)
    every = list(ws.experiments)
    users = list(ws.user_experiments)
    assert len(every) == 2 and len(users) == 1
    assert {e.is_example for e in every} == {True, False}
    training = users[0]
    assert training.experiment_id.startswith(f"{WS}.f-id.") and training.description.startswith("Kündigung")
    assert training.status.status_code == "Finished" and training.status.creation_time.year == 2017
    assert training.etag.startswith('W/"datetime') and training.run_id.startswith(f"{WS}.s-id.")
    assert training.is_archived is False and training.job_id is None and training.version_id is None
    assert training.creator == "jschmidt@contoso.com"
    assert ws.experiments[training.experiment_id].description == training.description


def test_datasets_user_datasets_and_contents(handle: ServerHandle) -> None:
    ws = azureml.Workspace(workspace_id=WS, authorization_token=TOKEN, endpoint=handle.url)
    every = list(ws.datasets)
    users = list(ws.user_datasets)
    examples = list(ws.example_datasets)
    assert len(every) == len(users) + len(examples) and users and examples
    census = ws.datasets["Adult Census Income Binary Classification dataset"]
    assert census.is_example and census.data_type_id == "GenericCSV" and census.created_date.year == 2016
    assert census.read_as_text().startswith("age,workclass")
    assert census.read_as_binary() == census.open().read()
    assert census.contents_url.startswith(handle.url + "/blobs/")
    created = ws.user_datasets.add_from_raw_data(b"a,b\r\n1,2\r\n", "GenericCSV", "uploaded", "from the client")
    assert created.name == "uploaded" and created.owner == "Python SDK" and created.is_latest
    assert created.read_as_binary() == b"a,b\r\n1,2\r\n"
    assert [d.name for d in ws.user_datasets].count("uploaded") == 1


def test_intermediate_dataset_of_a_run(handle: ServerHandle) -> None:
    studio = Studio(handle.url)
    exp_id = next(e["ExperimentId"] for e in studio.get("experiments").json() if e["ExperimentId"].startswith(WS))
    done = studio.run(exp_id)
    node = next(n for n in done["NodeStatuses"] if n["OutputEndpoints"]
                and n["OutputEndpoints"][0]["Name"].startswith("Results"))
    port = node["OutputEndpoints"][0]["Name"]
    ws = azureml.Workspace(workspace_id=WS, authorization_token=TOKEN, endpoint=handle.url)
    experiment = ws.experiments[exp_id]
    data = experiment.get_intermediate_dataset(node["NodeId"], port, "GenericCSV")
    expected = studio.get(f"experiments/{exp_id}/outputdata/{node['NodeId']}/{port}").content
    assert data.read_as_binary() == expected and expected
    assert data.read_as_text() == expected.decode()


def test_wrong_token_surfaces_as_the_clients_http_error(handle: ServerHandle) -> None:
    ws = azureml.Workspace(workspace_id=WS, authorization_token="wrong", endpoint=handle.url)
    with pytest.raises(azureml.AzureMLHttpError) as info:
        list(ws.experiments)
    assert info.value.status_code == 401
