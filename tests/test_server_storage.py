"""Blob URLs of the local workspace in the storage account's form: written, resolved when sent back, signed, served."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from wskit import DEV, PREDICTIVE_ID, SUB, TOKENS, TRAINING_ID, Api, blob_url, for_create

from amlvc.client import blob_download_url, hosts_for

ACCOUNT = "https://amlvclocal.blob.core.windows.net/"
ARM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices"
V = "?api-version=2017-01-01"


def test_documents_name_blobs_in_the_account_form_only(api: Api) -> None:
    """Endpoint resources, BES results, definitions and node-output credentials: no host or port of the server."""
    port = urlsplit(api.url).netloc
    resources = api.endpoint(api.deploy()["WebServiceGroupId"])["Resources"]
    status = api.train({"GlobalParameters": {"Train fraction": "0.7"}})
    definition = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/webservicedefinition").json()
    locations = [r["Location"] for r in resources] + list(status["Results"].values())
    assert locations and all(loc["BaseLocation"] == ACCOUNT for loc in locations)
    assert port not in json.dumps([resources, status, definition])
    doc = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{TRAINING_ID}").json()
    credentials = [ep["AccessCredential"] for ns in doc["NodeStatuses"] for ep in ns["OutputEndpoints"]]
    inner = [parse_qs(c.lstrip("?"))["sharedAccessUri"][0] for c in credentials]
    assert inner and all(uri.startswith(ACCOUNT) and "sig=" in uri for uri in inner)
    # the downloaders' links stay on this server: the Studio host of node outputs, `/blobs/` of datasets
    output = doc["NodeStatuses"][0]["OutputEndpoints"][0]
    assert requests.get(output["BaseUri"] + output["Location"] + output["AccessCredential"], timeout=10).ok
    dataset = api.studio("GET", f"/api/workspaces/{DEV}/datasources").json()[0]["DownloadLocation"]
    assert dataset["BaseUri"] == f"{api.url}/" and dataset["Location"].startswith("blobs/")


def test_the_workspace_names_its_storage_account(api: Api) -> None:
    workspace = api.studio("GET", f"/api/workspaces/{DEV}").json()
    assert workspace["UserStorage"] == "amlvclocal" and workspace["UserStorageBlobEndpoint"] == ACCOUNT
    assert workspace["UserStorageKey"] is None


def test_the_server_serves_every_account_path_style_and_verifies_every_sas(api: Api) -> None:
    status = api.train({})
    result = status["Results"]["model"]
    good = blob_url(result, api.url)
    assert good.startswith(f"{api.url}/amlvclocal/") and requests.get(good, timeout=10).status_code == 200
    other_account = good.replace("/amlvclocal/", "/contosomlstore/")
    assert requests.get(other_account, timeout=10).content == requests.get(good, timeout=10).content
    on_blobs = good.replace("/amlvclocal/", "/blobs/")
    assert requests.get(on_blobs, timeout=10).status_code == 200
    expired = good.replace("se=", "se=2001")
    for url in (good.replace("sig=", "sig=forged"), good.split("?")[0], expired, good.replace("&sp=r", ""),
                good.replace("sig=", "sig=%C3%A9"), other_account.replace("sig=", "sig=x")):
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 403, url
        signature = parse_qs(urlsplit(good).query)["sig"][0]
        assert signature[:12] not in resp.text  # no signature is echoed
    traversal = requests.get(f"{api.url}/amlvclocal/..%2F..%2Fworkspace.sqlite3?" + good.split("?")[1], timeout=10)
    assert traversal.status_code == 404
    # a node-output credential whose inner account-form URL is forged
    doc = api.studio("GET", f"/api/workspaces/{DEV}/experiments/{TRAINING_ID}").json()
    output = doc["NodeStatuses"][0]["OutputEndpoints"][0]
    forged = output["AccessCredential"].replace("%26sig%3D", "%26sig%3Dx")
    assert requests.get(output["BaseUri"] + output["Location"] + forged, timeout=10).status_code == 403


def test_urls_sent_back_in_the_account_form_resolve_and_their_sas_is_verified(api: Api) -> None:
    status = api.train({"Outputs": {"model": {"RelativeLocation": "retrain/sent-back.ilearner"}}})
    result = status["Results"]["model"]
    signed = f"{ACCOUNT}retrain/sent-back.ilearner{result['SasBlobToken']}"
    forged = signed.replace("sig=", "sig=x")
    definition = for_create(api.studio("GET", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/"
                                              "webservicedefinition").json())
    assets = definition["Properties"]["Assets"]
    model = next(a for a in assets.values() if a["Type"] == "Resource")
    for name, uri, expected in (("unsigned", f"{ACCOUNT}retrain/sent-back.ilearner", 201), ("signed", signed, 201),
                                ("forged", forged, 403)):
        body = copy.deepcopy(definition)
        next(a for a in body["Properties"]["Assets"].values() if a["Name"] == model["Name"])["LocationInfo"] = \
            {"Uri": uri, "Credentials": ""}
        resp = api.bearer("PUT", f"{ARM}/{name}{V}", json=body)
        assert resp.status_code == expected, resp.text
        got = api.bearer("GET", f"{ARM}/{name}{V}")
        if expected == 403:
            assert got.status_code == 404 and "sig=" not in resp.text  # nothing stored, no signature echoed
        else:
            assert got.json()["properties"]["provisioningState"] == "Succeeded"
    upload = api.upload(b"customer_id,tenure\r\nK-1,12\r\n")
    scoring = api.endpoint(api.deploy(PREDICTIVE_ID)["WebServiceGroupId"])
    jobs, key = f"{scoring['ApiLocation']}/jobs", {"Authorization": f"Bearer {scoring['PrimaryKey']}"}
    expired = "?sv=2015-02-21&sr=b&sig=x&st=2001-01-01T00%3A00%3A00Z&se=2002-01-01T00%3A00%3A00Z&sp=r"
    bad = {**upload, "SasBlobToken": expired}
    refused = requests.post(f"{jobs}?api-version=2.0", json={"Inputs": {"input1": bad}}, headers=key, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["details"][0]["code"] == "AuthenticationFailed"
    assert requests.post(f"{jobs}?api-version=2.0", json={"Inputs": {"input1": upload}}, headers=key,
                         timeout=10).status_code == 200


@pytest.mark.parametrize(("url", "endpoint", "expected"), [
    ("https://amlvclocal.blob.core.windows.net/c/p.ilearner?sv=1&sig=s", "http://127.0.0.1:8765",
     "http://127.0.0.1:8765/amlvclocal/c/p.ilearner?sv=1&sig=s"),
    ("https://contoso.blob.core.windows.net/c/d/p.csv", "http://127.0.0.1:8765/", "http://127.0.0.1:8765/contoso/c/d/p.csv"),
    ("https://contoso.blob.core.windows.net/c/p.csv?se=x", None, "https://contoso.blob.core.windows.net/c/p.csv?se=x"),
    ("http://127.0.0.1:8765/blobs/c/p.csv?sig=s", "http://127.0.0.1:8765", "http://127.0.0.1:8765/blobs/c/p.csv?sig=s"),
    ("https://example.org/c/p.csv", "http://127.0.0.1:8765", "https://example.org/c/p.csv"),
])
def test_blob_download_url(url: str, endpoint: str | None, expected: str) -> None:
    hosts = hosts_for(endpoint=endpoint) if endpoint else hosts_for(location="West Europe")
    assert blob_download_url(url, hosts) == expected


def test_the_client_downloads_a_blob_url_of_a_document(api: Api) -> None:
    from amlvc.client import Client, RetryPolicy
    from amlvc.errors import RemoteError

    status = api.train({})
    result = status["Results"]["model"]
    url = result["BaseLocation"] + result["RelativeLocation"] + result["SasBlobToken"]
    client = Client("dev", DEV, hosts_for(endpoint=api.url), TOKENS[DEV], retry=RetryPolicy(attempts=2))
    assert client.download_blob(url, what="the model") == requests.get(blob_url(result, api.url), timeout=10).content
    with pytest.raises(RemoteError) as info:
        client.download_blob(url.replace("sig=", "sig=x"), what="the model")
    assert "SAS" in info.value.message and "sig=" not in info.value.message and client.requests_made == 2


def test_put_blob_with_the_accounts_shared_key_stores_the_blob(api: Api, seeded_server: Any) -> None:
    """Put Blob, path-style (a real Azure Storage route): how a client puts a BES input or a model into the storage
    account a service reads. The header must name this URL's account (the key itself is not emulated)."""
    url = f"{api.url}/amlvclocal/amlvc-batch/put-test.csv"
    good = {"Authorization": "SharedKey amlvclocal:c2lnbmF0dXJl", "x-ms-blob-type": "BlockBlob"}
    refused = [({}, 403), ({**good, "Authorization": "SharedKey contoso:c2ln"}, 403),
               ({**good, "Authorization": "Bearer " + TOKENS[DEV]}, 403), ({**good, "x-ms-blob-type": ""}, 400)]
    for headers, status in refused:
        resp = requests.put(url, data=b"a,b\r\n1,2\r\n", headers=headers, timeout=10)
        assert resp.status_code == status, resp.text
        assert seeded_server.state.blobs.read("amlvc-batch/put-test.csv") is None
    assert requests.put(f"{api.url}/amlvclocal/no-container", data=b"x", headers=good, timeout=10).status_code == 400
    resp = requests.put(url, data=b"a,b\r\n1,2\r\n", headers=good, timeout=10)
    assert resp.status_code == 201 and resp.headers["Content-MD5"] and resp.headers["ETag"]
    assert seeded_server.state.blobs.read("amlvc-batch/put-test.csv") == b"a,b\r\n1,2\r\n"
    # a BES job reads it as an input named with a connection string (only AccountName is looked at)
    status = api.train({"Inputs": {"input1": {"ConnectionString": "DefaultEndpointsProtocol=https;AccountName="
                                                                  "amlvclocal;AccountKey=a2V5",
                                              "RelativeLocation": "amlvc-batch/put-test.csv"}}})
    assert status["StatusCode"] == "Finished"


def test_the_client_puts_a_blob_signed_with_the_shared_key(api: Api, seeded_server: Any) -> None:
    from amlvc.client import Client, RetryPolicy
    from amlvc.client.webservices import upload_blob
    from amlvc.errors import ValidationError

    client = Client("dev", DEV, hosts_for(endpoint=api.url), TOKENS[DEV], retry=RetryPolicy(attempts=2))
    url = upload_blob(client, "amlvclocal", "amlvc-models/abc.ilearner", b"model bytes", "a2V5a2V5a2V5")
    assert url == "https://amlvclocal.blob.core.windows.net/amlvc-models/abc.ilearner"  # no host, no port, no SAS
    assert seeded_server.state.blobs.read("amlvc-models/abc.ilearner") == b"model bytes"
    with pytest.raises(ValidationError, match="not base64"):
        upload_blob(client, "amlvclocal", "amlvc-models/abc.ilearner", b"x", "not base64!")
