"""Helpers of the web-service, ARM, BES and deploy tests: a seeded local server and a small HTTP wrapper."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from amlvc.client import blob_download_url, hosts_for
from amlvc.server.runner import ServerHandle, start_server
from amlvc.server.storage import LOCAL_ACCOUNT

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEV = "c4e6a8b0d2f44a6c8e0a2c4e6b8d0f13"  # the fixtures' workspace
OTHER = "5d7f9b1c3e5a47c9b1d3f5a7c9e1b3d5"
TOKENS = {DEV: "dev-token-ws-0001", OTHER: "other-token-ws-0002"}
PREDICTIVE_ID = f"{DEV}.f-id.e7a9c1b3d5f74e6a8c0b2d4f6a8c1e3b"
TRAINING_ID = f"{DEV}.f-id.b3d5f7a9c1e34b5d8f0a2c4e6b8d0f2a"
SUB = "5f7a9c1b-3d5e-4f7a-9b1c-3d5e7f9a1b3c"
PLAN = f"/subscriptions/{SUB}/resourceGroups/kuendigung-rg/providers/Microsoft.MachineLearning/commitmentPlans/plan-s1"
STORAGE_KEY = "k" * 86 + "=="
HEX32 = re.compile(r"^[0-9a-f]{32}$")
ISO7 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")


def start(data_dir: Path) -> ServerHandle:
    """Two workspaces: DEV seeded with the project's fixtures, OTHER empty."""
    return start_server(data_dir, workspaces=[(DEV, TOKENS[DEV]), (OTHER, TOKENS[OTHER])], seed=FIXTURES)


@dataclass
class Api:
    """Requests against one server; `studio`/`bearer` add the matching auth header (token=None: none)."""

    url: str

    def studio(self, method: str, path: str, token: str | None = TOKENS[DEV], **kw: Any) -> requests.Response:
        headers = {"x-ms-metaanalytics-authorizationtoken": token} if token else {}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)

    def bearer(self, method: str, path: str, token: str | None = TOKENS[DEV], **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)

    def deploy(self, exp_id: str = PREDICTIVE_ID, update: bool = False) -> dict[str, Any]:
        query = "?generateNewPortNames=false" + ("&updateExistingWebService=true" if update else "")
        resp = self.studio("POST", f"/api/workspaces/{DEV}/experiments/{exp_id}/webservice{query}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def endpoint(self, service_id: str, name: str = "default") -> dict[str, Any]:
        resp = self.bearer("GET", f"/workspaces/{DEV}/webservices/{service_id}/endpoints/{name}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def add_endpoint(self, service_id: str, name: str, **body: Any) -> dict[str, Any]:
        resp = self.bearer("PUT", f"/workspaces/{DEV}/webservices/{service_id}/endpoints/{name}", json=body)
        assert resp.status_code == 201, resp.text
        created: dict[str, Any] = resp.json()
        return created

    def run_job(self, jobs: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Submit, start and poll a BES job at `jobs` (an ApiLocation + `/jobs`) until it settles; its status."""
        headers = {"Authorization": f"Bearer {key}"}
        job = requests.post(f"{jobs}?api-version=2.0", json=body, headers=headers, timeout=10)
        assert job.status_code == 200, job.text
        requests.post(f"{jobs}/{job.json()}/start?api-version=2.0", headers=headers, timeout=10)
        status: dict[str, Any] = {}
        for _ in range(3):  # NotStarted -> Running (one poll) -> settled
            status = requests.get(f"{jobs}/{job.json()}?api-version=2.0", headers=headers, timeout=10).json()
        return status

    def train(self, body: dict[str, Any]) -> dict[str, Any]:
        """A finished BES job of the deployed training experiment (e.g. `Outputs` to put its model somewhere)."""
        endpoint = self.endpoint(self.deploy(TRAINING_ID)["WebServiceGroupId"])
        status = self.run_job(f"{endpoint['ApiLocation']}/jobs", endpoint["PrimaryKey"], body)
        assert status["StatusCode"] == "Finished", status
        return status

    def upload(self, data: bytes) -> dict[str, str]:
        """A blob holding `data`, as a BES AzureBlobDataReference without SAS (the service reads its own storage)."""
        resp = self.studio("POST", f"/api/resourceuploads/workspaces/{DEV}/?userStorage=true&dataTypeId=GenericCSV",
                           data=data)
        assert resp.status_code == 200, resp.text
        return {"BaseLocation": f"https://{LOCAL_ACCOUNT}.blob.core.windows.net/",
                "RelativeLocation": f"uploads/{resp.json()['Id']}/data"}


def run_changed(api: Api, exp_id: str, parameter: str, value: str) -> dict[str, Any]:
    """Change one module parameter of an experiment, run it and poll until it is Finished; returns the document."""
    doc = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{exp_id}").json()
    changed = [p for n in doc["Graph"]["ModuleNodes"] for p in n["ModuleParameters"] if p["Name"] == parameter]
    assert changed, parameter
    changed[0]["Value"] = value
    body = {"Description": doc["Description"], "Summary": doc["Summary"], "IsDraft": False,
            "ParentExperimentId": doc["ParentExperimentId"], "DisableNodesUpdate": doc["DisableNodesUpdate"],
            "Category": doc["Category"], "ExperimentGraph": doc["Graph"], "WebService": doc["WebService"]}
    resp = api.studio("POST", f"/api/workspaces/{DEV}/experiments/{exp_id}", json=body)
    assert resp.status_code == 200, resp.text
    for _ in range(10):
        doc = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{exp_id}").json()
        if doc["Status"]["StatusCode"] in ("Finished", "Failed"):
            break
    assert doc["Status"]["StatusCode"] == "Finished", doc["Status"]
    result: dict[str, Any] = doc
    return result


def error(resp: requests.Response) -> dict[str, Any]:
    """The `{"error": {...}}` body of a management/ARM/BES error (asserting its shape)."""
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    inner: dict[str, Any] = body["error"]
    return inner


def blob_url(location: dict[str, Any], server: str) -> str:
    """The URL to download a classic location `{BaseLocation, RelativeLocation, SasBlobToken}` from `server`:
    the account form the server writes, mapped to its path-style URL as the client does."""
    url = f"{location['BaseLocation']}{location['RelativeLocation']}{location['SasBlobToken'] or ''}"
    return blob_download_url(url, hosts_for(endpoint=server))


def for_create(wsd: dict[str, Any]) -> dict[str, Any]:
    """A Studio export plus what a user adds before an ARM create: storage account and commitment plan (WS §2.10)."""
    wsd["Properties"]["StorageAccount"] = {"Name": "localstore", "Key": STORAGE_KEY}
    wsd["Properties"]["CommitmentPlan"] = {"Id": PLAN}
    return wsd
