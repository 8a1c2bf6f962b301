"""Scores of the local workspace depend on the bytes of the trained model an endpoint or an ARM service uses."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import requests
from wskit import DEV, PREDICTIVE_ID, SUB, Api, blob_url, for_create

ARM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/scorer"
V = "?api-version=2017-01-01"


@dataclass
class Jobs:
    """The BES routes of one classic endpoint or ARM service, with its key."""

    api: Api
    url: str  # …/jobs
    key: str

    def scores(self, data: dict[str, str]) -> bytes:
        """The scored output of a batch job on `data`."""
        status = self.api.run_job(self.url, self.key, {"Inputs": {"input1": data}})
        assert status["StatusCode"] == "Finished", status
        return requests.get(blob_url(status["Results"]["output1"], self.api.url), timeout=10).content


def retrain(api: Api, fraction: str, where: str) -> dict[str, Any]:
    """A model trained by the training service's BES, written to `where`; its result location."""
    status = api.train({"GlobalParameters": {"Train fraction": fraction},
                        "Outputs": {"model": {"RelativeLocation": where}}})
    location: dict[str, Any] = status["Results"]["model"]
    return location


def patch(api: Api, service: str, name: str, resource: str, location: dict[str, Any]) -> None:
    resp = api.bearer("PATCH", f"/workspaces/{DEV}/webservices/{service}/endpoints/{name}",
                      json={"Resources": [{"Name": resource, "Location": location}]})
    assert resp.status_code == 200, resp.text


def test_a_patched_classic_endpoint_scores_with_its_new_model_and_back(api: Api) -> None:
    service = api.deploy(PREDICTIVE_ID)["WebServiceGroupId"]
    [original] = api.endpoint(service)["Resources"]
    added = api.add_endpoint(service, "scoring-ab")
    jobs = Jobs(api, f"{added['ApiLocation']}/jobs", added["PrimaryKey"])
    data = api.upload(b"customer_id,tenure\r\nK-1,12\r\nK-2,48\r\n")
    first = jobs.scores(data)
    assert first == jobs.scores(data)  # deterministic
    patch(api, service, "scoring-ab", original["Name"], retrain(api, "0.65", "scoring/m-065.ilearner"))
    second = jobs.scores(data)
    assert second != first
    patch(api, service, "scoring-ab", original["Name"], original["Location"])
    assert jobs.scores(data) == first  # the first model again: exactly the first scores
    # the same URL with other bytes behind it (retrained in place), patched again: other scores
    patch(api, service, "scoring-ab", original["Name"], retrain(api, "0.65", "scoring/in-place.ilearner"))
    assert jobs.scores(data) == second
    patch(api, service, "scoring-ab", original["Name"], retrain(api, "0.5", "scoring/in-place.ilearner"))
    assert jobs.scores(data) not in (first, second)


def test_an_arm_service_scores_with_the_bytes_of_its_resource_asset_not_its_uri(api: Api) -> None:
    definition = for_create(api.studio("GET", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/"
                                              "webservicedefinition").json())
    assert api.bearer("PUT", f"{ARM}{V}", json=definition).status_code == 201
    keys = api.bearer("GET", f"{ARM}/listKeys{V}").json()
    props = api.bearer("GET", f"{ARM}{V}").json()["properties"]
    jobs = Jobs(api, props["swaggerLocation"].replace("/swagger.json", "/jobs"), keys["primary"])
    data = api.upload(b"customer_id,tenure\r\nK-1,12\r\n")
    first = jobs.scores(data)
    [asset_id] = [k for k, a in props["assets"].items() if a["locationInfo"]["uri"].endswith(".ilearner")]
    original_uri = props["assets"][asset_id]["locationInfo"]["uri"]

    def patch_uri(uri: str) -> None:
        assets = copy.deepcopy(props["assets"])
        assets[asset_id]["locationInfo"] = {"uri": uri, "credentials": ""}
        resp = api.bearer("PATCH", f"{ARM}{V}", json={"properties": {"packageType": "Graph", "assets": assets}})
        assert resp.status_code == 200, resp.text

    model = retrain(api, "0.65", "arm/m-065.ilearner")
    patch_uri(model["BaseLocation"] + model["RelativeLocation"])
    second = jobs.scores(data)
    assert second != first
    copy_of_it = retrain(api, "0.65", "arm/copy/m-065.ilearner")  # the same training: the same bytes elsewhere
    patch_uri(copy_of_it["BaseLocation"] + copy_of_it["RelativeLocation"] + copy_of_it["SasBlobToken"])
    assert jobs.scores(data) == second  # another uri text, the same model: the same scores
    patch_uri(original_uri)
    assert jobs.scores(data) == first
