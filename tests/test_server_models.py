"""Trained models of the local workspace: one stand-in .iLearner format, derived from the training data's bytes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
from serverkit import SAMPLE_DATASET, SPLIT, TRAIN, Studio, node, save_body_from
from wskit import DEV, PREDICTIVE_ID, TOKENS, TRAINING_ID, Api, blob_url

from amlvc.server import ilearner

LOGISTIC = "506153734175476c4f62416c57734963.b0fd7660eeed43c5948720d9cc79ed5d.v1-default-1724"
TRAINED_MODEL = f"{DEV}.8f1d3b5a7c9e4f2a6b8d0c2e4a6f8b1d.v1-default-12"  # the fixtures' trained model


def training_graph(dataset: str, regularization: str = "1") -> dict[str, Any]:
    """Two-Class Logistic Regression and a dataset split into Train Model."""
    algo, split, train = (f"cccccccc-0000-4000-8000-000000000000-{i}" for i in (1, 2, 3))
    learner = node(train, TRAIN, ["Untrained model", "Dataset"], ["Trained model"])
    learner["OutputPortsInternal"][0]["OutputType"] = "TrainedModel"
    return {
        "ModuleNodes": [node(algo, LOGISTIC, [], ["Untrained model"], params=[("L2 weight", regularization)]),
                        node(split, SPLIT, ["Dataset"], ["Results dataset1", "Results dataset2"], dataset,
                             [("Fraction of rows in the first output dataset", "0.7")]),
                        learner],
        "SerializedClientData": "<DataV1 />", "PublishInfo": None, "Parameters": None,
        "EdgesInternal": [
            {"SourceOutputPortId": f"{algo}:Untrained model", "DestinationInputPortId": f"{train}:Untrained model",
             "DestinationInputPortIndex": None},
            {"SourceOutputPortId": f"{split}:Results dataset1", "DestinationInputPortId": f"{train}:Dataset",
             "DestinationInputPortIndex": None}],
    }


@pytest.fixture
def studio(api: Api) -> Studio:
    return Studio(api.url, ws=DEV, token=TOKENS[DEV])


def train(studio: Studio, graph: dict[str, Any], name: str = "trainer") -> tuple[str, str, bytes]:
    """Create and run an experiment; (its id, Train Model's node id, the trained model's bytes)."""
    exp_id = studio.create(name, graph=graph)
    done = studio.run(exp_id)
    assert done["Status"]["StatusCode"] == "Finished", done["Status"]
    node_id = graph["ModuleNodes"][-1]["Id"]
    output = studio.get(f"experiments/{exp_id}/outputdata/{node_id}/Trained%20model")
    assert output.status_code == 200
    return exp_id, node_id, output.content


def upload(studio: Studio, name: str, data: bytes) -> str:
    started = requests.post(f"{studio.url}/api/resourceuploads/workspaces/{DEV}/?userStorage=true"
                            "&dataTypeId=GenericCSV", data=data, headers=studio.headers(), timeout=10).json()
    resp = studio.post("datasources", {"DataSource": {"Name": name, "DataTypeId": "GenericCSV"},
                                       "UploadId": started["Id"]})
    assert resp.status_code == 200, resp.text
    return str(resp.json())


def test_a_model_is_a_function_of_its_training_data_bytes_and_parameters(studio: Studio) -> None:
    _, _, first = train(studio, training_graph(SAMPLE_DATASET), "first")
    model = ilearner.parse(first)
    assert model is not None and model.fingerprint == ilearner.fingerprint(first)
    _, _, again = train(studio, training_graph(SAMPLE_DATASET), "another experiment, same training")
    assert again == first
    sample = requests.get(blob_url_of_dataset(studio, SAMPLE_DATASET), timeout=10).content
    copied = upload(studio, "the sample's bytes under another name", sample)
    assert train(studio, training_graph(copied), "same bytes, other dataset id")[2] == first
    other = upload(studio, "other data", sample + b"39,Private,1,HS-grad,9,x,y,z,Male,0,0,40,US,<=50K\r\n")
    other_model = train(studio, training_graph(other), "other data")[2]
    regularized = train(studio, training_graph(SAMPLE_DATASET, "0.5"), "other parameter")[2]
    fingerprints = {ilearner.fingerprint(b) for b in (first, other_model, regularized)}
    assert len(fingerprints) == 3


def blob_url_of_dataset(studio: Studio, dataset_id: str) -> str:
    loc = studio.get(f"datasources/{dataset_id}").json()["DownloadLocation"]
    return str(loc["BaseUri"] + loc["Location"] + loc["AccessCredential"])


def test_every_trained_model_has_the_one_format(api: Api, studio: Studio) -> None:
    """Run outputs, promoted models, BES retraining outputs, seeded models and seeded run artefacts."""
    exp_id, node_id, run_output = train(studio, training_graph(SAMPLE_DATASET), "to promote")
    promoted = studio.post("trainedmodels", {"ExperimentId": exp_id, "ModuleNodeId": node_id,
                                             "OutputName": "Trained model",
                                             "TrainedModel": {"Name": "promoted", "DataTypeId": "iLearnerDotNet"}})
    assert promoted.status_code == 200, promoted.text
    predictive = studio.doc(PREDICTIVE_ID)
    seeded = default_model(api, predictive)  # the fixtures' trained model: a list item without content
    graph = copy.deepcopy(predictive["Graph"])
    for port in (p for n in graph["ModuleNodes"] for p in n["InputPortsInternal"]):
        if port["TrainedModelId"] == TRAINED_MODEL:
            port["TrainedModelId"] = promoted.json()
    resp = studio.post(f"experiments/{PREDICTIVE_ID}", save_body_from(predictive, ExperimentGraph=graph))
    assert resp.status_code == 200, resp.text
    studio.run(PREDICTIVE_ID)
    assert default_model(api, studio.doc(PREDICTIVE_ID)) == run_output  # the promoted model is the run output
    retrained = bes_model(api)
    snapshot = studio.doc(studio.doc(TRAINING_ID)["RunId"])  # a seeded run: its outputs are stand-ins
    outputs = [ep for ns in snapshot["NodeStatuses"] for ep in ns["OutputEndpoints"]]
    output = next(ep for ep in outputs if ep["Name"] == "Trained model")
    artefact = requests.get(output["BaseUri"] + output["Location"] + output["AccessCredential"], timeout=10).content
    for data in (run_output, seeded, retrained, artefact):
        model = ilearner.parse(data)
        assert model is not None and data.startswith(ilearner.MAGIC)
    assert len({run_output, seeded, retrained, artefact}) == 4


def default_model(api: Api, predictive: dict[str, Any]) -> bytes:
    """Deploy the predictive experiment and download its default endpoint's trained model."""
    service = api.deploy(predictive["ExperimentId"], update=bool(predictive["WebService"]["WebServiceGroupId"]))
    [resource] = api.endpoint(service["WebServiceGroupId"])["Resources"]
    return requests.get(blob_url(resource["Location"], api.url), timeout=10).content


def bes_model(api: Api) -> bytes:
    status = api.train({"GlobalParameters": {"Train fraction": "0.7"}})
    return requests.get(blob_url(status["Results"]["model"], api.url), timeout=10).content


def test_foreign_model_bytes_are_fingerprinted_by_their_content() -> None:
    real = b"\x00\x01 a real iLearner is an opaque binary"
    assert ilearner.parse(real) is None and ilearner.fingerprint(real) == ilearner.fingerprint(real)
    forged = ilearner.model_bytes({"a": 1}).replace(b'"a":1', b'"a":2')
    assert ilearner.parse(forged) is None  # a fingerprint that does not match its content is not trusted
    assert ilearner.fingerprint(forged) != ilearner.fingerprint(ilearner.model_bytes({"a": 2}))
