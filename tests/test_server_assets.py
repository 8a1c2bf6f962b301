"""Contract tests of the local workspace's asset routes: datasets, uploads, promotion, models, transforms, modules."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from serverkit import SAMPLE_DATASET, WS, Studio

from amlvc.server.assetdb import DATASOURCE_ORDER, MODEL_ORDER, MODULE_ORDER
from amlvc.server.runner import ServerHandle
from amlvc.server.wire import GLOBAL_WORKSPACE_ID

ASSET_ID = re.compile(r"^([0-9a-f]{32})\.([0-9a-f]{32})\.v1-default-(\d+)$")


def upload(studio: Studio, name: str, data: bytes, family: str | None = None, chunks: int = 2,
           data_type: str = "GenericCSV") -> requests.Response:
    """The PY client's three steps: resourceuploads (empty), blobuploads per chunk, commit POST datasources."""
    start_resp = requests.post(f"{studio.url}/api/resourceuploads/workspaces/{studio.ws}/?userStorage=true"
                               f"&dataTypeId={data_type}", data=b"", headers=studio.headers(), timeout=10)
    assert start_resp.status_code == 200, start_resp.text
    info = start_resp.json()
    assert list(info) == ["Id", "DataTypeId", "ContentType", "Committed", "WorkspaceId", "SharedAccessUri"]
    size = max(1, -(-len(data) // chunks))
    parts = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
    for i, part in enumerate(parts):
        resp = requests.post(f"{studio.url}/api/blobuploads/workspaces/{studio.ws}/?numberOfBlocks={len(parts)}"
                             f"&blockId={i}&uploadId={info['Id']}&dataTypeId={data_type}", data=part,
                             headers=studio.headers(), timeout=10)
        assert resp.status_code == 200, resp.text
    return studio.post("datasources", {
        "DataSource": {"Name": name, "DataTypeId": data_type, "Description": "d", "FamilyId": family,
                       "Owner": "Python SDK", "SourceOrigin": "FromResourceUpload"},
        "UploadId": info["Id"], "UploadedFromFileName": "x.csv", "ClientPoll": True})


def download(item: dict[str, Any]) -> bytes:
    loc = item["DownloadLocation"]
    resp = requests.get(loc["BaseUri"] + loc["Location"] + loc["AccessCredential"], timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.content


def test_dataset_list_shape_and_samples(studio: Studio) -> None:
    resp = studio.get("datasources")
    items = resp.json()
    assert {i["Id"] for i in items} >= {SAMPLE_DATASET}
    for item in items:
        assert list(item) == list(DATASOURCE_ORDER)
        assert item["IsLatest"] is True and item["Culture"] == "default"
        assert item["Id"].startswith(GLOBAL_WORKSPACE_ID) and item["Owner"] == "Microsoft Corporation"
        assert list(item["DownloadLocation"]) == ["BaseUri", "Size", "Name", "EndpointType", "CredentialContainer",
                                                  "AccessCredential", "Location", "FileType", "IsAuxiliary"]
    assert '"CreatedDate":"\\/Date(' in resp.text
    sample = studio.get(f"datasources/{SAMPLE_DATASET}").json()
    assert download(sample).startswith(b"age,workclass")


def test_chunked_upload_commit_and_download(studio: Studio) -> None:
    data = b"a,b\r\n" + b"1,2\r\n" * 1000
    resp = upload(studio, "my data", data, chunks=3)
    assert resp.status_code == 200, resp.text
    new_id = resp.json()
    match = ASSET_ID.match(new_id)
    assert match and match.group(1) == WS
    item = studio.get(f"datasources/{new_id}").json()
    assert item["SchemaStatus"] == "Complete" and item["Size"] == len(data) and item["ServiceVersion"] == 0
    assert item["Batch"] == int(match.group(3)) and item["FamilyId"] == match.group(2)
    assert item["SourceOrigin"] == "FromResourceUpload" and item["Owner"] == "Python SDK"
    assert item["UploadedFromFilename"] == "x.csv"
    assert download(item) == data


def test_single_body_upload_r_style(studio: Studio) -> None:
    start_resp = requests.post(f"{studio.url}/api/resourceuploads/workspaces/{WS}/?userStorage=true"
                               "&dataTypeId=GenericTSV", data=b"x\ty\r\n1\t2\r\n",
                               headers=studio.headers({"Content-Type": "text/plain"}), timeout=10)
    upload_id = start_resp.json()["Id"]
    resp = studio.post("datasources", {"DataSource": {"Name": "tsv", "DataTypeId": "generictsv", "FamilyId": ""},
                                       "UploadId": upload_id})
    item = studio.get(f"datasources/{resp.json()}").json()
    assert item["DataTypeId"] == "GenericTSV" and download(item) == b"x\ty\r\n1\t2\r\n"


def test_duplicate_name_is_409_and_family_id_makes_a_new_version(studio: Studio) -> None:
    first = upload(studio, "census", b"v1\r\n").json()
    before = studio.get("datasources").json()
    dup = upload(studio, "census", b"v2\r\n")
    assert dup.status_code == 409
    assert dup.json()["Error"]["Code"] == "UserError"
    assert dup.json()["Error"]["Message"] == f"Duplicate found for asset name: workspace: {WS}"  # ISS #37
    assert studio.get("datasources").json() == before
    family = ASSET_ID.match(first).group(2)  # type: ignore[union-attr]
    second = upload(studio, "census", b"v2\r\n", family=family).json()
    assert ASSET_ID.match(second).group(2) == family  # type: ignore[union-attr]
    assert int(second.rsplit("-", 1)[1]) > int(first.rsplit("-", 1)[1])
    listed = [i for i in studio.get("datasources").json() if i["FamilyId"] == family]
    assert [i["Id"] for i in listed] == [second]  # latest only
    assert listed[0]["ServiceVersion"] == 1 and download(listed[0]) == b"v2\r\n"
    old = studio.get(f"datasources/{first}").json()
    assert old["IsLatest"] is False and download(old) == b"v1\r\n"
    unknown = upload(studio, "other", b"x", family="0" * 32)
    assert unknown.status_code == 404
    assert studio.delete(f"datasources/family/{family}").status_code == 204
    assert all(i["FamilyId"] != family for i in studio.get("datasources").json())
    assert studio.get(f"datasources/{second}").status_code == 404
    assert studio.delete(f"datasources/family/{family}").status_code == 404


def test_upload_errors_change_nothing(studio: Studio) -> None:
    # Compared by id and version: each GET signs its download URLs anew (their times move with the clock).
    def listed() -> list[tuple[str, str]]:
        return [(i["Id"], i["FamilyId"]) for i in studio.get("datasources").json()]

    before = listed()
    url = f"{studio.url}/api/resourceuploads/workspaces/{WS}/?userStorage=true&dataTypeId=NoSuchType"
    assert requests.post(url, data=b"", headers=studio.headers(), timeout=10).status_code == 400
    chunk = (f"{studio.url}/api/blobuploads/workspaces/{WS}/?numberOfBlocks=2&blockId=0&uploadId={'0' * 32}"
             "&dataTypeId=GenericCSV")
    assert requests.post(chunk, data=b"x", headers=studio.headers(), timeout=10).status_code == 404
    bad_block = chunk.replace("blockId=0", "blockId=7")
    assert requests.post(bad_block, data=b"x", headers=studio.headers(), timeout=10).status_code == 400
    info = requests.post(url.replace("NoSuchType", "GenericCSV"), data=b"", headers=studio.headers(),
                         timeout=10).json()
    half = chunk.replace("0" * 32, info["Id"])
    assert requests.post(half, data=b"x", headers=studio.headers(), timeout=10).status_code == 200
    commit = {"DataSource": {"Name": "partial", "DataTypeId": "GenericCSV"}, "UploadId": info["Id"]}
    assert studio.post("datasources", commit).status_code == 400  # block 1 of 2 missing
    assert studio.post("datasources", {"DataSource": {"Name": "x"}, "UploadId": "nope"}).status_code == 404
    assert studio.post("datasources", {"DataSource": {"Name": ""}, "UploadId": info["Id"]}).status_code == 400
    assert listed() == before
    done = upload(studio, "ok", b"1")
    assert done.status_code == 200


@pytest.mark.parametrize("name", ["unittestcsvwh:abc123", "a/b", "back\\slash", "what?", "tab\there", 'q"uote'])
def test_a_dataset_name_with_forbidden_characters_is_refused(studio: Studio, name: str) -> None:
    before = [i["Id"] for i in studio.get("datasources").json()]
    refused = upload(studio, name, b"a,b\r\n1,2\r\n", chunks=1)
    assert refused.status_code == 400, refused.text
    err = refused.json()["Error"]
    assert "forbidden characters" in err["Message"] and err["Target"] == "/DataSource/Name"
    assert [i["Id"] for i in studio.get("datasources").json()] == before  # nothing stored
    exp_id, done = _ran_experiment(studio)
    node = done["NodeStatuses"][0]
    promote = studio.post("datasources", {"ExperimentId": exp_id, "ModuleNodeId": node["NodeId"],
                                          "OutputName": node["OutputEndpoints"][0]["Name"],
                                          "DataSource": {"Name": name, "DataTypeId": "Dataset"}})
    assert promote.status_code == 400 and "forbidden characters" in promote.json()["Error"]["Message"]
    assert [i["Id"] for i in studio.get("datasources").json()] == before
    assert upload(studio, "Kundenstamm 2016 (v2).csv", b"a\r\n1\r\n").status_code == 200  # spaces, dots, brackets


def test_the_azureml_client_sees_the_forbidden_characters_refusal(studio: Studio) -> None:
    """The azureml 0.2.7 client's own test_add_from_dataframe_invalid_name, against the local workspace."""
    azureml = pytest.importorskip("azureml")
    ws = azureml.Workspace(workspace_id=WS, authorization_token=studio.token, endpoint=studio.url)
    with pytest.raises(azureml.AzureMLHttpError) as info:
        ws.datasets.add_from_raw_data(b"a,b\r\n1,2\r\n", "GenericCSV", "unittestcsvwh:x1y2z3", "refused")
    assert info.value.status_code == 400 and "forbidden characters" in str(info.value)
    assert "unittestcsvwh:x1y2z3" not in [d.name for d in ws.user_datasets]


def _ran_experiment(studio: Studio) -> tuple[str, dict[str, Any]]:
    exp_id = studio.create("promoter")
    return exp_id, studio.run(exp_id)


@pytest.mark.parametrize(("route", "wrapper", "posted_type", "listed_type"), [
    ("trainedmodels", "TrainedModel", "iLearnerDotNet", "ILearnerDotNet"),
    ("transformmodules", "Transform", "iTransformDotNet", "ITransformDotNet"),
])
def test_promote_model_or_transform_families_and_batches(studio: Studio, route: str, wrapper: str,
                                                         posted_type: str, listed_type: str) -> None:
    exp_id, doc = _ran_experiment(studio)
    node_id = doc["NodeStatuses"][0]["NodeId"]
    body = {"ExperimentId": exp_id, "ModuleNodeId": node_id, "OutputName": "Results dataset1",
            wrapper: {"Name": "churn model", "DataTypeId": posted_type, "Description": "",
                      "SourceOrigin": "FromOutputPromotion", "FamilyId": None}}
    first = studio.post(route, body)
    assert first.status_code == 200, first.text
    items = studio.get(route).json()
    assert len(items) == 1 and list(items[0]) == list(MODEL_ORDER)
    item = items[0]
    assert item["Id"] == first.json() and item["DataTypeId"] == listed_type and item["IsLatest"] is True
    assert item["PromotedFrom"] == f"{exp_id}.{node_id}.Results dataset1" and item["ExperimentId"] == exp_id
    assert item["ServiceVersion"] == 0 and item["Language"] == {"Language": "DotNet", "Version": "4.5.0"}
    assert re.fullmatch(r"/Date\(\d+\)/", item["CreatedDate"]) and item["CreatedDateTicks"] > 6 * 10**17
    assert studio.post(route, body).status_code == 409
    body[wrapper]["FamilyId"] = item["FamilyId"]
    second = studio.post(route, body).json()
    items = studio.get(route).json()
    assert [i["Id"] for i in items] == [second]
    assert items[0]["Batch"] == item["Batch"] + 1 and items[0]["ServiceVersion"] == 1
    assert studio.get(f"{route}/{first.json()}").json()["IsLatest"] is False
    assert studio.delete(f"{route}/family/{item['FamilyId']}").status_code == 204
    assert studio.get(route).json() == []


def test_promote_a_dataset_and_refuse_an_output_that_never_ran(studio: Studio) -> None:
    exp_id, doc = _ran_experiment(studio)
    node_id = doc["NodeStatuses"][0]["NodeId"]
    resp = studio.post("datasources", {"ExperimentId": exp_id, "ModuleNodeId": node_id,
                                       "OutputName": "Results dataset2",
                                       "DataSource": {"Name": "split out", "DataTypeId": "Dataset",
                                                      "SourceOrigin": "FromOutputPromotion", "FamilyId": None}})
    assert resp.status_code == 200, resp.text
    item = studio.get(f"datasources/{resp.json()}").json()
    assert item["SourceOrigin"] == "FromOutputPromotion" and item["DataTypeId"] == "Dataset"
    out = studio.get(f"experiments/{exp_id}/outputdata/{node_id}/Results%20dataset2").content
    assert download(item) == out
    never = studio.create("never ran")
    node = studio.doc(never)["Graph"]["ModuleNodes"][0]["Id"]
    bad = studio.post("trainedmodels", {"ExperimentId": never, "ModuleNodeId": node, "OutputName": "Results dataset1",
                                        "TrainedModel": {"Name": "m", "DataTypeId": "ILearnerDotNet"}})
    assert bad.status_code == 400 and studio.get("trainedmodels").json() == []


def test_modules_latest_per_family(studio: Studio) -> None:
    modules = studio.get("modules").json()
    families = [m["FamilyId"] for m in modules]
    assert len(families) == len(set(families)) > 30
    for module in modules:
        assert list(module) == list(MODULE_ORDER)
        assert module["Id"] == f"{GLOBAL_WORKSPACE_ID}.{module['FamilyId']}.v1-default-{module['Batch']}"
        assert module["Owner"] == "Microsoft Corporation" and module["IsLatest"] is True
    train = next(m for m in modules if m["Name"] == "Train Model")
    assert [p["Name"] for p in train["ModuleInterface"]["InputPorts"]] == ["Untrained model", "Dataset"]
    assert studio.get(f"modules/{train['Id']}").json()["Name"] == "Train Model"


def test_blob_urls_are_signed_and_expire(handle: ServerHandle, studio: Studio) -> None:
    item = studio.get(f"datasources/{SAMPLE_DATASET}").json()
    loc = item["DownloadLocation"]
    good = loc["BaseUri"] + loc["Location"] + loc["AccessCredential"]
    assert requests.get(good, timeout=10).status_code == 200
    key = loc["Location"][len("blobs/"):]
    expired = handle.state.blobs.sas_url(handle.url, key, ttl_s=-60)
    resp = requests.get(expired, timeout=10)
    assert resp.status_code == 403 and "expired" in resp.json()["Error"]["Message"]
    assert requests.get(good.replace("sig=", "sig=x"), timeout=10).status_code == 403
    assert requests.get(good.split("?")[0], timeout=10).status_code == 403
    assert requests.get(good.replace("se=", "se=2099"), timeout=10).status_code == 403
    assert requests.get(f"{handle.url}/blobs/..%2F..%2Fworkspace.sqlite3", timeout=10).status_code == 404
