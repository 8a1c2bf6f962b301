"""Clean refusals of the local workspace: odd tokens and signatures, lone surrogates, oversized streamed bodies."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from serverkit import TOKEN_HEADER, WS, start

from amlvc.server.runner import ServerHandle

SUB = "5f7a9c1b-3d5e-4f7a-9b1c-3d5e7f9a1b3c"
ARM_LIST = f"/subscriptions/{SUB}/providers/Microsoft.MachineLearning/webServices?api-version=2017-01-01"


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[ServerHandle]:
    with start(tmp_path) as h:
        yield h


def send(url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """One request exactly as written (http.client sends str header values as latin-1, bytes as given)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        payload = resp.read()
        assert (resp.getheader("Content-Type") or "").startswith("application/json"), payload[:200]
        return resp.status, json.loads(payload)
    finally:
        conn.close()


@pytest.mark.parametrize("token", ["tok\u00e9", "tok\u00e9".encode(), b"\xff\xfe", "\u00e9" * 64])
@pytest.mark.parametrize(("path", "header", "scheme"), [
    (f"/api/workspaces/{WS}", TOKEN_HEADER, ""),
    (f"/workspaces/{WS}/webservices", "Authorization", "Bearer "),
    (ARM_LIST, "Authorization", "Bearer "),
    (f"/workspaces/{WS}/services/{'a' * 32}/jobs/x?api-version=2.0", "Authorization", "Bearer "),
])
def test_a_non_ascii_token_is_401_not_500(handle: ServerHandle, path: str, header: str, scheme: str,
                                           token: str | bytes) -> None:
    value = scheme.encode() + token if isinstance(token, bytes) else scheme + token
    status, body = send(handle.url, "GET", path, headers={header: value})
    assert status == 401, body
    text = json.dumps(body, ensure_ascii=False)
    assert not any(char in text for char in "\u00e9\u00c3\u00ff")  # the token is never echoed


def test_a_non_ascii_blob_signature_is_403_not_500(handle: ServerHandle) -> None:
    query = "sv=2015-02-21&sr=b&sig=%C3%A9&st=2020-01-01T00%3A00%3A00Z&se=2099-01-01T00%3A00%3A00Z&sp=r"
    status, body = send(handle.url, "GET", f"/blobs/samples/census.csv?{query}")
    assert status == 403 and body["Error"]["Code"] == "AuthenticationFailed"
    credential = f"workspaceId={WS}&signature=%C3%A9&sharedAccessUri=http%3A%2F%2Fx%2Fblobs%2Fa%2Fb%3Fsig%3Dz"
    status, body = send(handle.url, "GET", f"/api/sharedaccess?{credential}")
    assert status == 403, body


LONE = b'"\\ud800"'


def _studio(method: str, path: str, body: bytes) -> tuple[str, str, bytes, dict[str, str]]:
    return method, f"/api/workspaces/{WS}/{path}", body, {TOKEN_HEADER: "test-token"}


def _arm(method: str, body: bytes) -> tuple[str, str, bytes, dict[str, str]]:
    return method, (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/s"
                    "?api-version=2017-01-01"), body, {"Authorization": "Bearer test-token"}


@pytest.mark.parametrize(("request_", "pointer"), [
    (_studio("POST", "experiments/", b'{"Description": "x", "Summary": ' + LONE + b"}"), "/Summary"),
    (_studio("POST", "datasources", b'{"DataSource": {"Name": ' + LONE + b'}, "UploadId": "0"}'), "/DataSource/Name"),
    (_studio("POST", "trainedmodels", b'{"TrainedModel": {"Name": "m", "Tags": ["a", ' + LONE + b"]}}"),
     "/TrainedModel/Tags/1"),
    (_studio("POST", "experiments/", b'{"Description": "x", ' + LONE + b": 1}"), "/?"),
    (_arm("PUT", b'{"location": "West Europe", "properties": {"packageType": "Graph", "title": ' + LONE + b"}}"),
     "/properties/title"),
    (_arm("PATCH", b'{"properties": {"packageType": "Graph", "description": "\\udfff x"}}'),
     "/properties/description"),
])
def test_a_lone_surrogate_is_400_naming_its_path(handle: ServerHandle, request_: tuple[str, str, bytes, dict[str, str]],
                                                 pointer: str) -> None:
    method, path, body, headers = request_
    status, answer = send(handle.url, method, path, body, {"Content-Type": "application/json", **headers})
    assert status == 400, answer
    error = answer.get("Error") or answer["error"]
    message = error.get("Message") or error["message"]
    assert message.startswith(f"{pointer}: ") and "surrogate" in message
    if "Error" in answer:
        assert answer["Error"]["Target"] == pointer
    else:
        assert answer["error"]["code"] == "InvalidRequestContent"
    arm_get = _arm("GET", b"")
    assert send(handle.url, "GET", arm_get[1], headers=arm_get[3])[0] == 404  # nothing was stored


def test_a_surrogate_pair_is_one_character_and_saves(handle: ServerHandle) -> None:
    method, path, body, headers = _studio("POST", "experiments/", b'{"Description": "smile \\ud83d\\ude00"}')
    status, answer = send(handle.url, method, path, body, {"Content-Type": "application/json", **headers})
    assert status == 200, answer
    status, doc = send(handle.url, "GET", f"/api/workspaces/{WS}/experiments/{answer['ExperimentId']}",
                       headers=headers)
    assert status == 200 and doc["Description"] == "smile \U0001f600"


MIB = 1024 * 1024
UPLOAD = f"/api/resourceuploads/workspaces/{WS}/?userStorage=true&dataTypeId=GenericCSV"


def chunked(total: int, piece: int = MIB) -> Iterator[bytes]:
    """A body sent with Transfer-Encoding: chunked (requests does so for a generator), `total` bytes of 'x'."""
    block = b"x" * piece
    while total > 0:
        yield block[: min(piece, total)]
        total -= piece


def stored_files(handle: ServerHandle) -> list[Path]:
    return sorted(p for p in (handle.data_dir / "blobs").rglob("*") if p.is_file())


@pytest.mark.parametrize("streamed", [True, False])
def test_a_body_over_64_mib_is_413_and_stores_nothing(handle: ServerHandle, streamed: bool) -> None:
    import requests

    before = stored_files(handle)
    size = 64 * MIB + 1
    body: Any = chunked(size) if streamed else b"x" * size
    resp = requests.post(handle.url + UPLOAD, data=body, headers={TOKEN_HEADER: "test-token"}, timeout=120)
    assert resp.status_code == 413, resp.text[:300]
    err = resp.json()["Error"]
    assert err["Code"] == "RequestEntityTooLarge" and "nothing was stored" in err["Message"]
    assert stored_files(handle) == before  # no blob, no spool file left behind
    block = f"/api/blobuploads/workspaces/{WS}/?numberOfBlocks=1&blockId=0&uploadId={'a' * 32}&dataTypeId=GenericCSV"
    resp = requests.post(handle.url + block, data=chunked(size) if streamed else b"x" * size,
                         headers={TOKEN_HEADER: "test-token"}, timeout=120)
    assert resp.status_code == 413 and stored_files(handle) == before


def test_a_chunked_body_of_64_mib_is_stored_whole(handle: ServerHandle) -> None:
    import hashlib

    import requests

    headers = {TOKEN_HEADER: "test-token"}
    started = requests.post(handle.url + UPLOAD, data=chunked(64 * MIB, 3 * MIB + 7), headers=headers, timeout=120)
    assert started.status_code == 200, started.text
    commit = {"DataSource": {"Name": "big", "DataTypeId": "GenericCSV"}, "UploadId": started.json()["Id"]}
    dataset_id = requests.post(f"{handle.url}/api/workspaces/{WS}/datasources", json=commit, headers=headers,
                               timeout=60).json()
    item = requests.get(f"{handle.url}/api/workspaces/{WS}/datasources/{dataset_id}", headers=headers,
                        timeout=30).json()
    assert item["Size"] == 64 * MIB
    loc = item["DownloadLocation"]
    data = requests.get(loc["BaseUri"] + loc["Location"] + loc["AccessCredential"], timeout=60).content
    assert hashlib.sha256(data).digest() == hashlib.sha256(b"x" * 64 * MIB).digest()
