"""Contract tests of the local workspace's Studio API over loopback: workspace, auth, experiments, runs."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import requests
from serverkit import TOKEN2, WS, WS2, Studio, save_body, save_body_from, small_graph

from amlvc import rules
from amlvc.server.runner import ServerHandle
from amlvc.server.wire import etag_from_ticks, reverse_timestamp

ETAG = re.compile(r"^W/\"datetime'\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d\.\d{7}Z'\"$")
LEAF = re.compile(rf"^{WS}\.f-id\.[0-9a-f]{{32}}$")
SNAP = re.compile(rf"^{WS}\.s-id\.[0-9a-f]{{32}}\.\d{{4}}-\d\d-\d\dt\d\d\.\d\d\.\d\d$")
DATE = re.compile(r"^/Date\(-?\d+\)/$")


def studio_error(resp: requests.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert list(body) == ["Error"]
    assert list(body["Error"]) == ["Code", "Message", "Target", "Details", "InnerError", "DebugInfo"]
    assert body["Error"]["Message"]
    return dict(body["Error"])


def test_reverse_timestamp_and_etag_formats_match_the_capture() -> None:
    assert reverse_timestamp(1464199879696) == "9953-08-08t05.48.40"  # reference §1.6, verified pair
    assert reverse_timestamp(1464198706000) == "9953-08-08t06.08.13"
    seconds = int(datetime(2016, 5, 25, 20, 22, 48, tzinfo=UTC).timestamp())
    ticks = 621355968000000000 + seconds * 10_000_000 + 9673538
    assert etag_from_ticks(ticks) == "W/\"datetime'2016-05-25T20%3A22%3A48.9673538Z'\""


def test_workspace_get_has_the_reference_fields(studio: Studio, handle: ServerHandle) -> None:
    resp = studio.get("")
    assert resp.status_code == 200
    body = resp.json()
    assert list(body)[:3] == ["WorkspaceId", "FriendlyName", "Description"]
    assert body["WorkspaceId"] == WS
    primary, secondary = handle.workspaces[0][1:]
    assert body["AuthorizationToken"] == {"PrimaryToken": primary, "SecondaryToken": secondary}
    assert DATE.match(body["CreatedTime"])
    assert '"CreatedTime":"\\/Date(' in resp.text  # escaped date slashes on the wire (reference §1.4)
    assert Studio(handle.url, token=secondary).get("").status_code == 200


@pytest.mark.parametrize("path", ["", "experiments", "datasources", "trainedmodels", "transformmodules", "modules"])
def test_auth_missing_wrong_and_foreign_tokens(handle: ServerHandle, path: str) -> None:
    assert studio_error(Studio(handle.url, token=None).get(path), 401)["Code"] == "Unauthorized"
    studio_error(Studio(handle.url, token="wrong").get(path), 401)
    studio_error(Studio(handle.url, token=TOKEN2).get(path), 403)  # WS2's token on WS
    assert Studio(handle.url, ws=WS2, token=TOKEN2).get(path).status_code == 200


def test_writes_with_a_foreign_token_change_nothing(studio: Studio, handle: ServerHandle) -> None:
    exp_id = studio.create("mine")
    before = studio.doc(exp_id)["Etag"]
    other = Studio(handle.url, token=TOKEN2)
    studio_error(other.post(f"experiments/{exp_id}", save_body("stolen")), 403)
    studio_error(other.delete(f"experiments/{exp_id}?deleteAncestors=true"), 403)
    after = studio.doc(exp_id)
    assert after["Etag"] == before and after["Description"] == "mine"
    # and WS2 cannot see WS's experiment through its own workspace either
    studio_error(Studio(handle.url, ws=WS2, token=TOKEN2).get(f"experiments/{exp_id}"), 404)


def test_create_get_and_list_shapes(studio: Studio) -> None:
    resp = studio.post("experiments/", save_body("Käse ✓ \"quoted\""))
    assert resp.status_code == 200
    created = resp.json()
    assert list(created) == ["ExperimentId", "Etag"]
    assert LEAF.match(created["ExperimentId"]) and ETAG.match(created["Etag"])
    raw = studio.get(f"experiments/{created['ExperimentId']}")
    doc = raw.json()
    assert list(doc) == list(rules.TOP_LEVEL_ORDER)
    assert doc["Etag"] == created["Etag"] and doc["Description"] == "Käse ✓ \"quoted\""
    assert doc["IsLeaf"] is True and doc["RunId"] is None and doc["ParentExperimentId"] is None
    assert doc["Status"]["StatusCode"] == "InDraft"
    assert list(doc["Status"]) == ["StatusCode", "StatusDetail", "CreationTime", "StartTime", "EndTime", "Metadata"]
    assert doc["Status"]["StartTime"] == "/Date(-62135596800000)/"  # unset = DateTime.MinValue (§7 Q7)
    assert '"\\/Date(' in raw.text and "\\/Date(" not in doc["Status"]["CreationTime"]
    assert list(doc["Graph"]) == list(rules.GRAPH_ORDER)
    assert list(doc["Graph"]["ModuleNodes"][0]) == list(rules.NODE_ORDER)
    assert list(doc["WebService"]) == list(rules.WEBSERVICE_ORDER)  # null WebService -> default object (§7 Q15)
    listed = studio.get("experiments").json()
    assert [e["ExperimentId"] for e in listed] == [created["ExperimentId"]]
    assert list(listed[0]) == ["ExperimentId", "Description", "Etag", "Creator", "IsArchived", "JobId", "VersionId",
                               "RunId", "OriginalExperimentDocumentationLink", "Summary", "Category", "Tags",
                               "Status"]
    assert listed[0]["Etag"] == created["Etag"]


def test_server_reserialises_graphs_in_its_own_key_order(studio: Studio) -> None:
    graph = small_graph()
    bare = graph["ModuleNodes"][1]
    for key in ("Language", "Version", "CommentCollapsed", "IsPartOfPartialRun"):
        del bare[key]
    bare["Unknown"] = 1
    bare["InputPortsInternal"][0] = {"Name": "Dataset"}
    bare["ModuleParameters"] = [{"Value": "x", "Name": "P"}]
    graph["ModuleNodes"][0] = dict(reversed(list(graph["ModuleNodes"][0].items())))
    exp_id = studio.create("reserialised", graph=graph)
    node = studio.doc(exp_id)["Graph"]["ModuleNodes"][1]
    assert list(node) == list(rules.NODE_ORDER) and "Unknown" not in node
    assert node["Language"] == "DotNet" and node["CommentCollapsed"] is False
    assert node["InputPortsInternal"][0] == {"Name": "Dataset", "DataSourceId": None, "TrainedModelId": None,
                                             "TransformModuleId": None, "Language": "DotNet", "Version": "4.5.0",
                                             "PortIndex": None, "NodeId": node["Id"]}
    assert node["ModuleParameters"] == [{"ValueType": "Literal", "LinkedGlobalParameter": None, "Name": "P",
                                         "Value": "x"}]
    first = studio.doc(exp_id)["Graph"]["ModuleNodes"][0]
    assert list(first) == list(rules.NODE_ORDER)


def test_save_gives_a_new_etag_and_honours_if_match(studio: Studio) -> None:
    exp_id = studio.create("v1")
    first = studio.doc(exp_id)
    resp = studio.post(f"experiments/{exp_id}", save_body_from(first, Description="v2"))
    assert resp.status_code == 200
    new_etag = resp.json()
    assert isinstance(new_etag, str) and ETAG.match(new_etag) and new_etag != first["Etag"]
    second = studio.doc(exp_id)
    assert second["Etag"] == new_etag and second["Description"] == "v2"
    # stale If-Match -> 412, nothing written
    err = studio_error(studio.post(f"experiments/{exp_id}", save_body_from(second, Description="v3"),
                                   headers={"If-Match": first["Etag"]}), 412)
    assert err["Code"] == "PreconditionFailed"
    assert studio.doc(exp_id)["Etag"] == new_etag
    ok = studio.post(f"experiments/{exp_id}", save_body_from(second, Description="v3"), headers={"If-Match": new_etag})
    assert ok.status_code == 200 and studio.doc(exp_id)["Description"] == "v3"
    studio_error(studio.delete(f"experiments/{exp_id}?deleteAncestors=true", headers={"If-Match": new_etag}), 412)


@pytest.mark.parametrize("parent", ["get-value", "own-id", None, ""])
@pytest.mark.parametrize("flag", ["DisableNodeUpdate", "DisableNodesUpdate"])
def test_save_accepts_every_client_variant(studio: Studio, parent: str | None, flag: str) -> None:
    exp_id = studio.create("variants")
    run = studio.run(exp_id)
    doc = studio.doc(exp_id)
    value = {"get-value": doc["ParentExperimentId"], "own-id": exp_id}.get(str(parent), parent)
    body = save_body_from(doc, ParentExperimentId=value, Summary="changed")
    body.pop("DisableNodeUpdate")
    body[flag] = True
    resp = studio.post(f"experiments/{exp_id}", body)
    assert resp.status_code == 200, resp.text
    after = studio.doc(exp_id)
    assert after["Summary"] == "changed" and after["DisableNodesUpdate"] is True
    # lineage is the server's: the body's ParentExperimentId is ignored on update (§7 Q4)
    assert after["RunId"] == run["RunId"] and after["ParentExperimentId"] == run["ParentExperimentId"]
    assert after["Status"]["StatusCode"] == "Finished"  # a draft save keeps the last run's status (§7 Q6)


def test_wrong_types_are_400_with_a_target_and_change_nothing(studio: Studio) -> None:
    exp_id = studio.create("typed")
    before = studio.doc(exp_id)
    bad_bodies: list[tuple[Any, str | None]] = [
        (save_body_from(before, IsDraft="yes"), "/IsDraft"),
        (save_body_from(before, Description=42), "/Description"),
        (save_body_from(before, Description="  "), "/Description"),
        (save_body_from(before, ExperimentGraph=[]), "/ExperimentGraph"),
        (save_body_from(before, ExperimentGraph={"ModuleNodes": {"a": 1}}), "/ExperimentGraph/ModuleNodes"),
        (save_body_from(before, ExperimentGraph={"ModuleNodes": [{"Id": 7}]}), "/ExperimentGraph/ModuleNodes/0/Id"),
        (save_body_from(before, ExperimentGraph={"ModuleNodes": [{"Id": "n", "ModuleParameters": [
            {"Name": "p", "Value": 0.5}]}]}), "/ExperimentGraph/ModuleNodes/0/ModuleParameters/0/Value"),
        (save_body_from(before, WebService={"Inputs": "x"}), "/WebService/Inputs"),
        ([1, 2], "/"),
        ("just a string", "/"),
    ]
    for body, target in bad_bodies:
        err = studio_error(studio.post(f"experiments/{exp_id}", body), 400)
        assert err["Target"] == target, (body, err)
    after = studio.doc(exp_id)
    assert after["Etag"] == before["Etag"] and after["Graph"] == before["Graph"]
    assert len(studio.get("experiments").json()) == 1
    studio_error(studio.post("experiments/", save_body(123)), 400)
    assert len(studio.get("experiments").json()) == 1


def test_run_makes_a_snapshot_and_walks_the_status(studio: Studio) -> None:
    exp_id = studio.create("runner")
    doc = studio.doc(exp_id)
    resp = studio.post(f"experiments/{exp_id}", save_body_from(doc, is_draft=False))
    assert resp.status_code == 200 and list(resp.json()) == ["ExperimentId", "Etag"]
    assert resp.json()["ExperimentId"] == exp_id
    listed = studio.get("experiments").json()[0]
    assert listed["Status"]["StatusCode"] == "NotStarted" and SNAP.match(listed["RunId"])
    seen = [studio.doc(exp_id) for _ in range(3)]
    assert [d["Status"]["StatusCode"] for d in seen] == ["Running", "Finished", "Finished"]
    assert len({resp.json()["Etag"], seen[0]["Etag"], seen[1]["Etag"]}) == 3  # a new Etag per transition
    assert seen[1]["Etag"] == seen[2]["Etag"]
    final = seen[1]
    run_id = final["RunId"]
    assert run_id.split(".s-id.")[1].split(".")[0] == exp_id.split(".f-id.")[1]  # same GUID
    created_ms = int(re.findall(r"-?\d+", final["Status"]["CreationTime"])[0])
    assert run_id.endswith(reverse_timestamp(created_ms))
    assert final["ParentExperimentId"] is None  # first run: no previous run
    statuses = final["NodeStatuses"]
    assert [n["NodeId"] for n in statuses] == [n["Id"] for n in final["Graph"]["ModuleNodes"]]
    assert list(statuses[0]) == ["NodeId", "Status", "StandardErrorEndpoint", "StandardOutEndpoint",
                                 "OutputEndpoints", "MetadataOutputEndpoints"]
    endpoint = statuses[0]["OutputEndpoints"][0]
    assert list(endpoint) == ["BaseUri", "Size", "Name", "EndpointType", "CredentialContainer", "AccessCredential",
                              "Location", "FileType", "IsAuxiliary"]
    assert endpoint["Location"] == "api/sharedaccess" and endpoint["EndpointType"] == "SasEndpoint"
    assert set(statuses[0]["Status"]["Metadata"]) == {"Results dataset1", "Results dataset2"}
    # the snapshot is a frozen, readable copy (reference §7 Q25)
    snap = studio.doc(run_id)
    assert snap["ExperimentId"] == run_id and snap["RunId"] == run_id and snap["IsLeaf"] is False
    assert snap["Graph"] == final["Graph"] and snap["Status"]["StatusCode"] == "Finished"
    err = studio_error(studio.post(f"experiments/{run_id}", save_body_from(snap)), 400)
    assert "locked" in err["Message"]
    assert [e["ExperimentId"] for e in studio.get("experiments").json()] == [exp_id]  # leaves only
    with_history = studio.get("experiments?includeNonLeaf=true").json()
    assert {e["ExperimentId"] for e in with_history} == {exp_id, run_id}
    # second run: parent = previous run, unchanged nodes are output-cache hits
    time.sleep(1.05)  # snapshot ids have one-second resolution; a clash would move the time on anyway
    again = studio.run(exp_id)
    assert again["ParentExperimentId"] == run_id and again["RunId"] != run_id and SNAP.match(again["RunId"])
    assert {n["Status"]["StatusDetail"] for n in again["NodeStatuses"]} == {
        "Task output was present in output cache"}
    assert all(n["StandardErrorEndpoint"] is None for n in again["NodeStatuses"])


def test_node_output_credentials_are_regenerated_and_download(studio: Studio) -> None:
    exp_id = studio.create("outputs")
    first = studio.run(exp_id)
    time.sleep(1.05)
    second = studio.doc(exp_id)
    ep1 = first["NodeStatuses"][0]["OutputEndpoints"][0]
    ep2 = second["NodeStatuses"][0]["OutputEndpoints"][0]
    assert ep1["AccessCredential"] != ep2["AccessCredential"] and ep1["Name"] == ep2["Name"]
    query = parse_qs(ep2["AccessCredential"][1:])
    assert query["workspaceId"] == [WS]
    sas = parse_qs(urlsplit(query["sharedAccessUri"][0]).query)
    assert sas["sv"] == ["2015-02-21"] and sas["sr"] == ["b"] and sas["sp"] == ["r"]
    st, se = (time.mktime(time.strptime(unquote(sas[k][0]), "%Y-%m-%dT%H:%M:%SZ")) for k in ("st", "se"))
    assert se - st == 24 * 3600 + 300  # st = now - 5 min, se = now + 24 h (reference §3.8)
    data = requests.get(ep2["BaseUri"] + ep2["Location"] + ep2["AccessCredential"], timeout=10)
    assert data.status_code == 200 and data.content.startswith(b"age,workclass")  # the input dataset flows through
    tampered = ep2["AccessCredential"].replace("signature=", "signature=AA")
    assert requests.get(ep2["BaseUri"] + ep2["Location"] + tampered, timeout=10).status_code == 403
    # intermediate output route (reference §2.2; the port name is URL-escaped by the clients)
    node_id = first["NodeStatuses"][0]["NodeId"]
    raw = studio.get(f"experiments/{exp_id}/outputdata/{node_id}/{quote('Results dataset1')}")
    assert raw.status_code == 200 and raw.content == data.content
    studio_error(studio.get(f"experiments/{exp_id}/outputdata/{node_id}/{quote('No such port')}"), 404)


def test_dangling_references_save_fine_but_the_run_fails(studio: Studio) -> None:
    missing_module = "506153734175476c4f62416c57734963.0000000000000000000000000000dead.v1-default-1"
    missing_dataset = f"{WS}.0000000000000000000000000000beef.v1-default-9"
    for graph in (small_graph(split_module=missing_module), small_graph(dataset=missing_dataset)):
        exp_id = studio.create("dangling", graph=graph)  # no reference validation on save (ISS #15)
        done = studio.run(exp_id)
        assert done["Status"]["StatusCode"] == "Failed"
        first, second = done["NodeStatuses"]
        assert first["Status"]["StatusCode"] == "Failed" and "not found" in first["Status"]["StatusDetail"]
        assert second["Status"]["StatusCode"] == "NotStarted"  # downstream of the failure


def test_copy_gets_an_empty_history_and_lineage(studio: Studio) -> None:
    exp_id = studio.create("source")
    ran = studio.run(exp_id)
    resp = studio.post("experiments/", save_body_from(ran, ParentExperimentId="", Description="copy"))
    copy_id = resp.json()["ExperimentId"]
    copy = studio.doc(copy_id)
    assert copy_id != exp_id and copy["RunId"] is None and copy["ParentExperimentId"] is None
    assert copy["Graph"] == ran["Graph"] and copy["NodeStatuses"] == []
    lineage = studio.post("experiments", save_body_from(ran, ParentExperimentId=exp_id)).json()["ExperimentId"]
    assert studio.doc(lineage)["ParentExperimentId"] == exp_id  # stored as lineage only (§7 Q4)
    created_and_run = studio.post("experiments/", save_body_from(ran, is_draft=False)).json()["ExperimentId"]
    assert SNAP.match(studio.doc(created_and_run)["RunId"])


def test_delete_with_and_without_ancestors(studio: Studio) -> None:
    exp_id = studio.create("doomed")
    run_id = studio.run(exp_id)["RunId"]
    assert studio.delete(f"experiments/{exp_id}?deleteAncestors=False").status_code == 204
    studio_error(studio.get(f"experiments/{exp_id}"), 404)
    assert studio.doc(run_id)["IsLeaf"] is False  # history kept without deleteAncestors
    other = studio.create("doomed too")
    other_run = studio.run(other)["RunId"]
    assert studio.delete(f"experiments/{other}?deleteAncestors=true").status_code == 204
    studio_error(studio.get(f"experiments/{other}"), 404)
    studio_error(studio.get(f"experiments/{other_run}"), 404)
    studio_error(studio.delete(f"experiments/{other}?deleteAncestors=true"), 404)
    studio_error(studio.post(f"experiments/{other}", save_body("gone")), 404)


def test_annotations_route_answers_an_empty_list(studio: Studio) -> None:
    exp_id = studio.create("annotated")
    assert studio.get(f"experiments/{exp_id}/annotations").json() == []
