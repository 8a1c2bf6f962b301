"""The local workspace under stress: hostile requests, restarts, 32 concurrent writers, injected faults."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from serverkit import TOKEN, TOKEN_HEADER, WS, Studio, big_graph, save_body, save_body_from, start

from amlvc.server.faults import FaultInjector
from amlvc.server.runner import ServerHandle


def snapshot_state(studio: Studio) -> Any:
    """Everything observable through the API (minus per-GET SAS credentials)."""
    listed = studio.get("experiments?includeNonLeaf=true").json()
    docs = {e["ExperimentId"]: studio.doc(e["ExperimentId"]) for e in listed}
    for doc in docs.values():
        doc.pop("NodeStatuses")
    assets = {route: [{k: v for k, v in i.items() if k not in ("DownloadLocation", "VisualizeEndPoint",
                                                                 "SchemaEndPoint")}
                      for i in studio.get(route).json()]
              for route in ("datasources", "trainedmodels", "transformmodules", "modules")}
    return listed, docs, assets


def raw_request(url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    """A request exactly as written (requests would normalise dot segments and encodings)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={TOKEN_HEADER: TOKEN, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def test_hostile_requests_get_4xx_json_and_change_nothing(handle: ServerHandle) -> None:
    studio = Studio(handle.url)
    exp_id = studio.create("target")
    studio.run(exp_id)
    before = snapshot_state(studio)
    api = f"/api/workspaces/{WS}"
    cases: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("POST", f"{api}/experiments/", b"{", {}),
        ("POST", f"{api}/experiments/{exp_id}", b'{"Description": "x", "IsDraft": true,', {}),
        ("POST", f"{api}/experiments/{exp_id}", b'{"Description": NaN}', {}),
        ("POST", f"{api}/experiments/{exp_id}", b"\xff\xfe\x00garbage", {}),
        ("POST", f"{api}/experiments/{exp_id}", b"[" * 5000 + b"]" * 5000, {}),
        ("POST", f"{api}/experiments/{exp_id}", b"", {}),
        ("POST", f"{api}/experiments/{exp_id}", b"null", {}),
        ("POST", f"{api}/datasources", b'{"UploadId": 5, "DataSource": {"Name": "n"}}', {}),
        ("POST", f"{api}/trainedmodels", b'{"TrainedModel": "x"}', {}),
        ("POST", f"{api}/experiments/" + "a" * 5000, b"{}", {}),
        ("GET", f"{api}/experiments/..%2F..%2F..%2Fetc%2Fpasswd", b"", {}),
        ("GET", f"{api}/experiments/../../../etc/passwd", b"", {}),
        ("GET", f"{api}/experiments/{WS}.f-id.{'0' * 32}%00", b"", {}),
        ("GET", f"{api}/datasources/..%5C..%5Cworkspace.sqlite3", b"", {}),
        ("GET", "/api/workspaces/..%2F..%2F/experiments", b"", {}),
        ("GET", f"{api}/experiments/{exp_id}/outputdata/..%2F../x", b"", {}),
        ("GET", "/blobs/../workspace.sqlite3", b"", {}),
        ("DELETE", f"{api}/datasources/family/..%2F..", b"", {}),
        ("GET", "/api/no/such/route", b"", {}),
        ("GET", "/no/such/route", b"", {}),
        ("PUT", f"{api}/experiments/{exp_id}", b"{}", {}),
        ("PATCH", f"{api}", b"{}", {}),
        ("GET", f"{api}/experiments?includeNonLeaf=%ff", b"", {}),
        ("POST", f"/api/blobuploads/workspaces/{WS}/?numberOfBlocks=x&blockId=0&uploadId=1", b"x", {}),
    ]
    for method, path, body, headers in cases:
        status, ctype, payload = raw_request(handle.url, method, path, body, headers)
        assert 400 <= status < 500 or (method == "GET" and status == 200 and "includeNonLeaf" in path), (
            method, path, status, payload[:200])
        if status >= 400:
            assert ctype and ctype.startswith("application/json"), (path, ctype)
            assert json.loads(payload), path
    # a JSON body over the limit is refused before it is parsed
    huge = b'{"Description": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    status, _, payload = raw_request(handle.url, "POST", f"{api}/experiments/{exp_id}", huge)
    assert status == 413 and json.loads(payload)["Error"]["Code"] == "RequestEntityTooLarge"
    assert snapshot_state(studio) == before


def test_state_survives_a_restart(tmp_path: Path) -> None:
    with start(tmp_path) as first:
        studio = Studio(first.url)
        exp_id = studio.create("durable")
        ran = studio.run(exp_id)
        saved = studio.post(f"experiments/{exp_id}", save_body_from(ran, Summary="after run")).json()
        before = snapshot_state(studio)
        node_id = ran["NodeStatuses"][0]["NodeId"]
        output = studio.get(f"experiments/{exp_id}/outputdata/{node_id}/Results%20dataset1").content
        sample = studio.get("datasources").json()[0]["DownloadLocation"]
        old_url = sample["BaseUri"] + sample["Location"] + sample["AccessCredential"]
        port = first.port
    with start(tmp_path, port=port) as second:
        studio = Studio(second.url)
        assert snapshot_state(studio) == before
        assert studio.doc(exp_id)["Etag"] == saved
        assert studio.get(f"experiments/{exp_id}/outputdata/{node_id}/Results%20dataset1").content == output
        assert requests.get(old_url, timeout=10).status_code == 200  # signing key persisted with the data
        again = studio.post(f"experiments/{exp_id}", save_body_from(studio.doc(exp_id))).json()
        assert again != saved  # Etags keep increasing across restarts


def test_32_concurrent_clients_no_lost_or_torn_writes(handle: ServerHandle) -> None:
    studio = Studio(handle.url)
    shared = studio.create("shared", graph=big_graph(8))
    own = [studio.create(f"own-{i}", graph=big_graph(4)) for i in range(32)]
    etags: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    rounds = 6

    def client(i: int) -> None:
        session = requests.Session()
        headers = {TOKEN_HEADER: TOKEN}
        try:
            for n in range(rounds):
                for exp_id in (own[i], shared):
                    marker = f"client {i} round {n}"
                    body = save_body(marker, graph=big_graph(8 if exp_id == shared else 4), Summary=marker)
                    resp = session.post(studio.api(f"experiments/{exp_id}"), json=body, headers=headers, timeout=60)
                    if resp.status_code != 200:
                        errors.append(f"save {resp.status_code} {resp.text[:100]}")
                        continue
                    with lock:
                        etags.append(resp.json())
                    doc = session.get(studio.api(f"experiments/{exp_id}"), headers=headers, timeout=60).json()
                    if doc["Description"] != doc["Summary"] or len(doc["Graph"]["ModuleNodes"]) not in (4, 8):
                        errors.append(f"torn document {doc['Description']!r} / {doc['Summary']!r}")
                    if exp_id == own[i] and doc["Description"] != marker:
                        errors.append(f"lost write on {exp_id}: {doc['Description']!r} != {marker!r}")
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(etags) == 32 * rounds * 2 and len(set(etags)) == len(etags)  # every Etag distinct
    final = studio.doc(shared)
    assert final["Description"] == final["Summary"] and final["Etag"] in etags
    for i, exp_id in enumerate(own):
        assert studio.doc(exp_id)["Description"] == f"client {i} round {rounds - 1}"


def outcome(call: Any) -> str:
    try:
        resp = call()
    except requests.exceptions.ChunkedEncodingError:
        return "truncated"
    except requests.exceptions.ConnectionError:
        return "reset"
    retry = resp.headers.get("Retry-After")
    return f"{resp.status_code}{'/' + retry if retry else ''}"


def test_same_fault_seed_same_sequence(tmp_path: Path) -> None:
    assert FaultInjector(0.3, 5).sequence(200) == FaultInjector(0.3, 5).sequence(200)
    assert FaultInjector(0.3, 5).sequence(200) != FaultInjector(0.3, 6).sequence(200)
    runs = []
    for attempt in range(2):
        with start(tmp_path / f"run{attempt}", fault_rate=0.5, fault_seed=11) as h:
            studio = Studio(h.url)
            runs.append([outcome(lambda s=studio: s.get("modules")) for _ in range(40)])
    assert runs[0] == runs[1]
    kinds = set(runs[0])
    assert {"200", "500", "503", "429/1", "reset", "truncated"} <= kinds


def test_faults_never_apply_or_corrupt_writes(tmp_path: Path) -> None:
    with start(tmp_path, fault_rate=0.4, fault_seed=3) as h:
        studio = Studio(h.url)
        exp_id = ""
        while not exp_id:
            try:
                resp = studio.post("experiments/", save_body("start"))
                exp_id = resp.json()["ExperimentId"] if resp.status_code == 200 else ""
            except requests.exceptions.RequestException:
                pass
        accepted = "start"
        for n in range(40):
            marker = f"write {n}"
            try:
                resp = studio.post(f"experiments/{exp_id}", save_body(marker, Summary=marker))
            except requests.exceptions.RequestException:
                continue
            if resp.status_code == 200:
                accepted = marker
            else:
                assert resp.status_code in (429, 500, 503) and "injected" in resp.json()["Error"]["Message"]
        while True:
            try:
                resp = studio.get(f"experiments/{exp_id}")
                if resp.status_code == 200:
                    break
            except requests.exceptions.RequestException:
                continue
        doc = resp.json()
        assert doc["Description"] == accepted == doc["Summary"]
        listed = None
        while listed is None:
            try:
                resp = studio.get("experiments")
                listed = resp.json() if resp.status_code == 200 else None
            except requests.exceptions.RequestException:
                pass
        assert [e["ExperimentId"] for e in listed] == [exp_id]  # failed creates created nothing


def test_latency_is_added_to_every_request(tmp_path: Path) -> None:
    with start(tmp_path, latency_ms=60) as h:
        began = time.monotonic()
        assert Studio(h.url).get("").status_code == 200
        assert time.monotonic() - began >= 0.06
