"""Studio-side deploy (`experiments/{id}/webservice`) and `webservicedefinition` of the local workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from wskit import DEV, HEX32, OTHER, PREDICTIVE_ID, TOKENS, TRAINING_ID, Api, blob_url, start


def services(api: Api) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api.bearer("GET", f"/workspaces/{DEV}/webservices").json()
    return result


def experiment(api: Api, exp_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{exp_id}").json()
    return doc


def test_deploy_and_poll(api: Api) -> None:
    etag = experiment(api, PREDICTIVE_ID)["Etag"]
    status = api.deploy()
    assert list(status) == ["ActivityId", "WebServiceGroupId", "EndpointId", "Status"]
    assert status["Status"] == "Pending" and all(HEX32.match(status[k]) for k in list(status)[:3])
    polled = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{status['ActivityId']}/webservice")
    assert polled.status_code == 200 and polled.json() == {**status, "Status": "Completed"}
    service = api.bearer("GET", f"/workspaces/{DEV}/webservices/{status['WebServiceGroupId']}").json()
    doc = experiment(api, PREDICTIVE_ID)
    assert service["Name"] == doc["Description"] and service["EndpointCount"] == 1
    default = api.endpoint(status["WebServiceGroupId"])
    assert default["ApiLocation"].endswith(f"/services/{status['EndpointId']}")
    assert default["ExperimentLocation"].endswith(f"{PREDICTIVE_ID}/ViewExperiment")
    # the deploy writes the web-service group id into the experiment (a write: new Etag)
    assert doc["WebService"]["WebServiceGroupId"] == status["WebServiceGroupId"]
    assert HEX32.match(doc["WebService"]["ModelPackageId"]) and doc["Etag"] != etag


def test_update_existing_keeps_the_service(api: Api) -> None:
    first = api.deploy()
    version = api.endpoint(first["WebServiceGroupId"])["Version"]
    count = len(services(api))
    again = api.deploy(update=True)
    assert again["WebServiceGroupId"] == first["WebServiceGroupId"] and again["EndpointId"] == first["EndpointId"]
    assert len(services(api)) == count
    assert api.endpoint(first["WebServiceGroupId"])["Version"] >= version
    fresh = api.deploy()
    assert fresh["WebServiceGroupId"] != first["WebServiceGroupId"] and len(services(api)) == count + 1


def test_training_experiment_deploys_a_training_service(api: Api) -> None:
    status = api.deploy(TRAINING_ID)
    assert api.endpoint(status["WebServiceGroupId"])["Resources"] == []


@pytest.mark.parametrize("token, status, code", [(None, 401, "Unauthorized"), ("nope", 401, "Unauthorized"),
                                                 (TOKENS[OTHER], 403, "Forbidden")])
def test_auth(api: Api, token: str | None, status: int, code: str) -> None:
    count = len(services(api))
    for method, path in [("POST", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/webservice"),
                         ("GET", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/webservicedefinition")]:
        resp = api.studio(method, path, token=token)
        assert resp.status_code == status
        assert resp.json()["Error"]["Code"] == code  # the Studio API's error body
    assert len(services(api)) == count


def test_refusals_change_nothing(api: Api) -> None:
    count = len(services(api))
    missing = api.studio("POST", f"/api/workspaces/{DEV}/experiments/{DEV}.f-id.{'0' * 32}/webservice")
    assert missing.status_code == 404 and "does not exist" in missing.json()["Error"]["Message"]
    activity = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{'1' * 32}/webservice")
    assert activity.status_code == 404
    snapshot_id = experiment(api, TRAINING_ID)["RunId"]
    snapshot = api.studio("POST", f"/api/workspaces/{DEV}/experiments/{snapshot_id}/webservice")
    assert snapshot.status_code == 400 and "snapshot" in snapshot.json()["Error"]["Message"]
    # a copy that was never run is InDraft: not deployable, no definition
    doc = experiment(api, PREDICTIVE_ID)
    body = {"Description": "draft copy", "Summary": "", "IsDraft": True, "ParentExperimentId": None,
            "Category": "user", "ExperimentGraph": doc["Graph"], "WebService": doc["WebService"]}
    created = api.studio("POST", f"/api/workspaces/{DEV}/experiments/", json=body)
    assert created.status_code == 200, created.text
    draft_id = created.json()["ExperimentId"]
    for method, suffix in (("POST", "webservice"), ("GET", "webservicedefinition")):
        resp = api.studio(method, f"/api/workspaces/{DEV}/experiments/{draft_id}/{suffix}")
        assert resp.status_code == 400 and "Finished" in resp.json()["Error"]["Message"], resp.text
    assert len(services(api)) == count
    assert experiment(api, draft_id)["WebService"]["WebServiceGroupId"] is None


def test_webservicedefinition(api: Api) -> None:
    resp = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/webservicedefinition")
    assert resp.status_code == 200, resp.text
    wsd = resp.json()
    assert list(wsd) == ["Location", "Tags", "Properties"]
    props = wsd["Properties"]
    assert props["PackageType"] == "Graph" and props["MachineLearningWorkspace"] == {"Id": DEV}
    doc = experiment(api, PREDICTIVE_ID)
    assert props["Title"] == doc["Description"]
    assets = props["Assets"]
    modules = {a["LocationInfo"]["Uri"] for a in assets.values() if a["Type"] == "Module"}
    assert modules == {f"aml://module/{n['ModuleId']}" for n in doc["Graph"]["ModuleNodes"]}
    assert "Score Model" in {a["Name"] for a in assets.values()}
    [model] = [a for a in assets.values() if a["LocationInfo"]["Uri"].split("?")[0].endswith(".ilearner")]
    assert model["Type"] == "Resource" and model["OutputPorts"] == {"Results dataset": {"Type": "Dataset"}}
    # a host-independent storage URL of the same blob the deployed endpoint serves (readable there with a SAS)
    default = api.endpoint(api.deploy()["WebServiceGroupId"])["Resources"][0]["Location"]
    assert model["LocationInfo"] == {
        "Uri": f"https://amlvclocal.blob.core.windows.net/{default['RelativeLocation']}", "Credentials": ""}
    assert requests.get(blob_url(default, api.url), timeout=10).status_code == 200
    package = props["Package"]
    nodes, edges = package["Nodes"], package["Edges"]
    assert all(set(node) & {"AssetId", "InputId", "OutputId"} for node in nodes.values())
    assert all(node.get("AssetId", "asset1") in assets for node in nodes.values())
    for edge in edges:
        assert edge["SourceNodeId"] in nodes and edge["TargetNodeId"] in nodes
    inputs = [k for k, n in nodes.items() if "InputId" in n]
    outputs = [k for k, n in nodes.items() if "OutputId" in n]
    assert [nodes[k]["InputId"] for k in inputs] == ["input1"]
    assert [nodes[k]["OutputId"] for k in outputs] == ["output1"]
    # input edges carry no source port, output edges no target port (REC-CRUD)
    assert all("SourcePortId" not in e for e in edges if e["SourceNodeId"] in inputs)
    assert all("TargetPortId" not in e for e in edges if e["TargetNodeId"] in outputs)
    model_node = next(k for k, n in nodes.items() if assets.get(n.get("AssetId", ""), {}) is model)
    assert any(e["SourceNodeId"] == model_node and e["TargetPortId"] == "Trained model" for e in edges)
    links = package["GraphParameters"]["Append scores"]["Links"]
    assert links and all(links[0]["ParameterKey"] in nodes[link["NodeId"]]["Parameters"] for link in links)
    assert props["Parameters"] == {"Append scores": {"Value": "True"}}
    assert set(props["Input"]["Properties"]) == {"input1"} and set(props["Output"]["Properties"]) == {"output1"}


def test_webservicedefinition_is_stable(api: Api, tmp_path: Path) -> None:
    """Same experiment, same bytes: on every GET and on another server (no host, port, SAS or time inside)."""
    path = f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/webservicedefinition"
    first, second = api.studio("GET", path), api.studio("GET", path)
    assert first.status_code == 200 and first.content == second.content
    with start(tmp_path / "elsewhere") as other:
        assert Api(other.url).studio("GET", path).content == first.content
    path = f"/api/workspaces/{DEV}/experiments/{TRAINING_ID}/webservicedefinition"
    first = api.studio("GET", path)
    nodes = first.json()["Properties"]["Package"]["Nodes"]
    assert sorted(n["OutputId"] for n in nodes.values() if "OutputId" in n) == ["evaluation", "model", "r_model"]
