"""ARM `Microsoft.MachineLearning/webServices` routes of the local workspace, over a real loopback socket."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wskit import (
    DEV,
    FIXTURES,
    ISO7,
    OTHER,
    PLAN,
    PREDICTIVE_ID,
    STORAGE_KEY,
    SUB,
    TOKENS,
    Api,
    error,
    for_create,
)

from amlvc.server.runner import ServerHandle

API = "?api-version=2017-01-01"
RG = "kuendigung-rg"


@pytest.fixture(scope="module")
def export(seeded_server: ServerHandle) -> dict[str, Any]:
    """The Studio export of the predictive experiment (PascalCase) plus what a user adds before a PUT."""
    path = f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/webservicedefinition"
    resp = Api(seeded_server.url).studio("GET", path)
    assert resp.status_code == 200, resp.text
    return for_create(resp.json())


def path(name: str, suffix: str = "", rg: str = RG) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.MachineLearning/webServices/{name}{suffix}"


def put(api: Api, name: str, body: Any, token: str = TOKENS[DEV]) -> requests.Response:
    return api.bearer("PUT", path(name) + API, json=body, token=token)


def operation(api: Api, resp: requests.Response) -> dict[str, Any]:
    url = resp.headers["Azure-AsyncOperation"]
    assert url.startswith(api.url) and "/operationsStatus/" in url and url.endswith(API.replace("?", "?"))
    status = requests.get(url, headers={"Authorization": f"Bearer {TOKENS[DEV]}"}, timeout=10)
    assert status.status_code == 200
    body: dict[str, Any] = status.json()
    return body


def test_put_get_listkeys(api: Api, export: dict[str, Any]) -> None:
    created = put(api, "scoring-1", export)
    assert created.status_code == 201, created.text
    assert created.text.count("\r\n") > 3  # pretty-printed with CRLF, as the resource provider
    body = created.json()
    assert list(body) == ["id", "name", "type", "location", "tags", "properties"]
    assert body["id"] == path("scoring-1") and body["type"] == "Microsoft.MachineLearning/webServices"
    assert body["properties"] == {"payloadsInBlobStorage": False, "provisioningState": "Provisioning"}
    assert created.headers["Azure-AsyncOperationPercentComplete"] == "0" and created.headers["x-ms-request-id"]
    op = operation(api, created)
    assert op["status"] == "Succeeded" and op["percentComplete"] == 1.0 and ISO7.match(op["startTime"])
    got = api.bearer("GET", path("scoring-1") + API)
    assert got.status_code == 200
    props = got.json()["properties"]
    assert "keys" not in props and "commitmentPlan" not in props and props["storageAccount"] == {"name": "localstore"}
    assert props["provisioningState"] == "Succeeded" and ISO7.match(props["createdOn"])
    assert props["swaggerLocation"].endswith("/swagger.json") and SUB.replace("-", "") in props["swaggerLocation"]
    # PascalCase input, camelCase output; user-named map keys kept exactly
    assert set(props["assets"]) == set(export["Properties"]["Assets"])
    assert props["package"]["graphParameters"]["Append scores"]["links"]
    assert "node1" in props["package"]["nodes"] and "Trained model" in json.dumps(props["package"]["edges"])
    keys = api.bearer("GET", path("scoring-1", "/listKeys") + API).json()
    assert set(keys) == {"primary", "secondary"} and len(keys["primary"]) == 88
    assert keys["primary"] not in got.text and STORAGE_KEY not in got.text and PLAN not in got.text


@pytest.mark.parametrize(("drop", "value", "code"), [
    ("CommitmentPlan", None, "CommitmentPlanRequired"),
    ("CommitmentPlan", {"Id": ""}, "CommitmentPlanRequired"),
    ("CommitmentPlan", {"Id": "plan-s1"}, "InvalidCommitmentPlanId"),
    ("StorageAccount", None, "StorageAccountRequired"),
    ("StorageAccount", {"Name": "localstore"}, "StorageAccountKeyRequired"),
])
def test_create_needs_a_commitment_plan_and_a_storage_account(api: Api, export: dict[str, Any], drop: str,
                                                              value: Any, code: str) -> None:
    body = copy.deepcopy(export)
    if value is None:
        del body["Properties"][drop]
    else:
        body["Properties"][drop] = value
    resp = put(api, "planless", body)
    assert resp.status_code == 400, resp.text
    err = error(resp)
    assert err["code"] == "BadRequest" and err["details"][0]["code"] == code
    assert STORAGE_KEY not in resp.text
    assert api.bearer("GET", path("planless") + API).status_code == 404  # nothing stored


def test_an_update_needs_no_commitment_plan(api: Api, export: dict[str, Any]) -> None:
    assert put(api, "planned", export).status_code == 201
    body = copy.deepcopy(export)
    del body["Properties"]["CommitmentPlan"]
    del body["Properties"]["StorageAccount"]["Key"]
    body["Properties"]["Title"] = "updated without a plan"
    resp = put(api, "planned", body)
    assert resp.status_code == 200, resp.text and operation(api, resp)["status"] == "Succeeded"
    patched = api.bearer("PATCH", path("planned") + API, json={"properties": {"packageType": "Graph",
                                                                               "description": "patched"}})
    assert patched.status_code == 200, patched.text
    props = api.bearer("GET", path("planned") + API).json()["properties"]
    assert props["title"] == "updated without a plan" and props["description"] == "patched"
    again = copy.deepcopy(export)
    again["Properties"]["CommitmentPlan"] = {"Id": PLAN + "-other"}
    assert error(put(api, "planned", again))["details"][0]["code"] == "CannotChangeCommitmentPlan"  # the plan kept


def test_put_existing_is_200_and_keeps_keys(api: Api, export: dict[str, Any]) -> None:
    assert put(api, "scoring-2", export).status_code == 201
    keys = api.bearer("GET", path("scoring-2", "/listKeys") + API).json()
    again = put(api, "scoring-2", export)
    assert again.status_code == 200 and operation(api, again)["status"] == "Succeeded"
    assert api.bearer("GET", path("scoring-2", "/listKeys") + API).json() == keys
    given = copy.deepcopy(export)
    given["Properties"]["Keys"] = {"Primary": "p" * 20, "Secondary": "s" * 20}
    put(api, "scoring-2", given)
    assert api.bearer("GET", path("scoring-2", "/listKeys") + API).json() == {"primary": "p" * 20,
                                                                             "secondary": "s" * 20}


def test_patch_merges_at_property_level(api: Api, export: dict[str, Any]) -> None:
    put(api, "scoring-3", export)
    before = api.bearer("GET", path("scoring-3") + API).json()
    keys = api.bearer("GET", path("scoring-3", "/listKeys") + API).json()
    no_type = api.bearer("PATCH", path("scoring-3") + API, json={"properties": {"description": "x"}})
    assert no_type.status_code == 400 and "packageType" in error(no_type)["message"]
    patch = {"properties": {"packageType": "Graph", "description": "patched", "keys": {"primary": "new-primary"},
                            "diagnostics": {"level": "All"}}}
    patched = api.bearer("PATCH", path("scoring-3") + API, json=patch)
    assert patched.status_code == 200 and patched.json()["properties"] == {"provisioningState": "Provisioning"}
    assert operation(api, patched)["status"] == "Succeeded"
    after = api.bearer("GET", path("scoring-3") + API).json()
    assert after["properties"]["description"] == "patched" and after["properties"]["diagnostics"] == {"level": "All"}
    assert after["properties"]["modifiedOn"] > before["properties"]["modifiedOn"]
    for unchanged in ("title", "assets", "package", "input", "storageAccount", "createdOn"):
        assert after["properties"][unchanged] == before["properties"][unchanged], unchanged
    assert api.bearer("GET", path("scoring-3", "/listKeys") + API).json() == {"primary": "new-primary",
                                                                             "secondary": keys["secondary"]}
    missing = api.bearer("PATCH", path("nope") + API, json=patch)
    assert missing.status_code == 404 and error(missing)["details"][0]["code"] == "WebServiceNotFound"


@pytest.mark.parametrize("change, code", [
    ({"StorageAccount": {"Name": "otheraccount", "Key": STORAGE_KEY}}, "CannotChangeStorageAccount"),
    ({"CommitmentPlan": {"Id": PLAN + "-other"}}, "CannotChangeCommitmentPlan"),
    ({"RealtimeConfiguration": {"MaxConcurrentCalls": 3}}, "InvalidMaxConcurrentCalls"),
    ({"RealtimeConfiguration": {"MaxConcurrentCalls": 201}}, "InvalidMaxConcurrentCalls"),
    ({"Diagnostics": {"Level": "Verbose"}}, "InvalidDiagnosticsLevel"),
])
def test_update_validation(api: Api, export: dict[str, Any], change: dict[str, Any], code: str) -> None:
    name = f"validate-{code.lower()[:20]}"
    put(api, name, export)
    before = api.bearer("GET", path(name) + API).json()
    body = copy.deepcopy(export)
    body["Properties"].update(change)
    for resp in (put(api, name, body),
                 api.bearer("PATCH", path(name) + API, json={"properties": {"packageType": "Graph", **change}})):
        assert resp.status_code == 400, resp.text
        err = error(resp)
        assert err["code"] == "BadRequest" and err["details"][0]["code"] == code
    assert api.bearer("GET", path(name) + API).json() == before


def test_max_concurrent_calls_bounds_accepted(api: Api, export: dict[str, Any]) -> None:
    for calls in (4, 200):
        body = copy.deepcopy(export)
        body["Properties"]["RealtimeConfiguration"] = {"MaxConcurrentCalls": calls}
        assert put(api, f"calls-{calls}", body).status_code == 201


def test_read_only_is_one_way(api: Api, export: dict[str, Any]) -> None:
    put(api, "frozen", export)
    lock = api.bearer("PATCH", path("frozen") + API, json={"properties": {"packageType": "Graph", "readOnly": True}})
    assert lock.status_code == 200
    for resp in (api.bearer("PATCH", path("frozen") + API,
                            json={"properties": {"packageType": "Graph", "readOnly": False}}),
                 put(api, "frozen", export)):
        assert resp.status_code == 400 and error(resp)["details"][0]["code"] == "WebServiceIsReadOnly"
    assert api.bearer("GET", path("frozen") + API).json()["properties"]["readOnly"] is True
    assert api.bearer("DELETE", path("frozen") + API).status_code == 202


def test_missing_resource_blob_fails_the_operation(api: Api, export: dict[str, Any]) -> None:
    arm_fixture = json.loads((FIXTURES / "webservice--base.json").read_bytes())
    created = put(api, "broken", arm_fixture)  # its .ilearner lives in a storage account this server never saw
    assert created.status_code == 201
    op = operation(api, created)
    assert op["status"] == "Failed" and op["error"]["details"][0]["code"] == "AssetNotFound"
    assert api.bearer("GET", path("broken") + API).json()["properties"]["provisioningState"] == "Failed"
    # an update pointing the model at a missing blob fails and leaves the old definition in place
    put(api, "kept", export)
    good = api.bearer("GET", path("kept") + API).json()["properties"]["assets"]
    bad_assets = copy.deepcopy(good)
    model = next(k for k, a in bad_assets.items() if a["type"] == "Resource"
                 and a["locationInfo"]["uri"].split("?")[0].endswith(".ilearner"))
    bad_assets[model]["locationInfo"]["uri"] = f"{api.url}/blobs/nowhere/model.ilearner"
    resp = api.bearer("PATCH", path("kept") + API, json={"properties": {"packageType": "Graph", "assets": bad_assets}})
    assert resp.status_code == 200 and operation(api, resp)["status"] == "Failed"
    assert api.bearer("GET", path("kept") + API).json()["properties"]["assets"] == good


def test_delete(api: Api, export: dict[str, Any]) -> None:
    put(api, "to-delete", export)
    deleted = api.bearer("DELETE", path("to-delete") + API)
    assert deleted.status_code == 202 and deleted.content == b""
    assert "/operationresults/" in deleted.headers["Location"] and "/operationsStatus/" in \
        deleted.headers["Azure-AsyncOperation"]
    assert operation(api, deleted)["status"] == "Succeeded"
    result = requests.get(deleted.headers["Location"], headers={"Authorization": f"Bearer {TOKENS[DEV]}"}, timeout=10)
    assert result.status_code == 200 and result.json()["status"] == "Succeeded"
    gone = api.bearer("GET", path("to-delete") + API)
    assert gone.status_code == 404
    err = error(gone)
    assert err["code"] == "NotFound" and err["details"] == [
        {"code": "WebServiceNotFound", "message": "No Web Service could be found with the provided name: to-delete."}]
    assert api.bearer("DELETE", path("to-delete") + API).status_code == 204


def test_lists(api: Api, export: dict[str, Any]) -> None:
    put(api, "listed-a", export)
    other_rg = api.bearer("PUT", path("listed-b", rg="other-rg") + API, json=export)
    assert other_rg.status_code == 201
    by_rg = api.bearer("GET", f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
                              f"Microsoft.MachineLearning/webServices{API}").json()["value"]
    by_sub = api.bearer("GET", f"/subscriptions/{SUB}/providers/Microsoft.MachineLearning/webServices{API}").json()
    assert "listed-a" in {s["name"] for s in by_rg} and "listed-b" not in {s["name"] for s in by_rg}
    assert {"listed-a", "listed-b"} <= {s["name"] for s in by_sub["value"]}
    for item in by_sub["value"]:
        assert "keys" not in item["properties"] and "assets" not in item["properties"]
        assert "key" not in item["properties"].get("storageAccount", {})


def test_paths_are_case_insensitive(api: Api, export: dict[str, Any]) -> None:
    put(api, "casing", export)
    lower = f"/subscriptions/{SUB}/resourcegroups/{RG.upper()}/providers/microsoft.machinelearning/webservices/CASING"
    resp = api.bearer("GET", lower + API)
    assert resp.status_code == 200 and resp.json()["name"] == "casing"


@pytest.mark.parametrize("token, status", [(None, 401), ("bogus", 401), (TOKENS[OTHER], 403)])
def test_auth(api: Api, export: dict[str, Any], token: str | None, status: int) -> None:
    put(api, "guarded", export)
    for method, suffix, body in (("GET", "", None), ("GET", "/listKeys", None), ("DELETE", "", None),
                                 ("PATCH", "", {"properties": {"packageType": "Graph", "title": "x"}}),
                                 ("PUT", "", export)):
        resp = api.bearer(method, path("guarded", suffix) + API, token=token, json=body)
        assert resp.status_code == status, (method, suffix, resp.text)
        error(resp)
    assert api.bearer("GET", path("guarded") + API).json()["properties"]["title"] == export["Properties"]["Title"]


@pytest.mark.parametrize("url, body, status, code", [
    (path("v") , None, 400, "MissingApiVersionParameter"),
    (path("v") + "?api-version=2099-01-01", None, 400, "InvalidApiVersionParameter"),
    (path("bad name!") + API, {}, 400, "InvalidResourceName"),
    (f"/subscriptions/not-a-guid/resourceGroups/{RG}/providers/Microsoft.MachineLearning/webServices/x{API}", None,
     400, "InvalidSubscriptionId"),
    (path("v") + API, {"location": "West Europe"}, 400, "InvalidRequestContent"),
    (path("v") + API, {"properties": {"packageType": "Graph"}}, 400, "LocationRequired"),
    (path("v") + API, {"location": "West\u00a0Europe\U0009d46a", "properties": {"packageType": "Graph"}}, 400,
     "LocationNotAvailableForResourceType"),
    (path("v") + API, {"location": "x", "properties": []}, 400, "InvalidRequestContent"),
    (path("v") + API, {"location": "x", "properties": {"packageType": "Code"}}, 400, "InvalidRequestContent"),
    (path("v") + API, {"location": "x", "properties": {"packageType": "Graph", "readOnly": "yes"}}, 400,
     "InvalidRequestContent"),
    (path("v") + API, {"location": "x", "properties": {"packageType": "Graph", "assets": {"a": {"type": 5}}}}, 400,
     "InvalidRequestContent"),
    (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearning/nothing{API}", None, 404,
     "InvalidResourceType"),
])
def test_bad_requests(api: Api, url: str, body: Any, status: int, code: str) -> None:
    resp = api.bearer("PUT" if body is not None else "GET", url, json=body)
    assert resp.status_code == status, resp.text
    assert error(resp)["code"] == code
    assert api.bearer("GET", path("v") + API).status_code == 404


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b"\x00\xff", b"[" * 3000 + b"]" * 3000, b"null"])
def test_hostile_bodies(api: Api, raw: bytes) -> None:
    resp = api.bearer("PUT", path("hostile") + API, data=raw, headers={"Content-Type": "application/json"})
    assert 400 <= resp.status_code < 500 and error(resp)
    assert api.bearer("GET", path("hostile") + API).status_code == 404


def test_operations_list(api: Api) -> None:
    resp = api.bearer("GET", f"/providers/Microsoft.MachineLearning/operations{API}")
    assert resp.status_code == 200 and all("display" in op for op in resp.json()["value"])


def test_regional_properties(api: Api, export: dict[str, Any]) -> None:
    put(api, "regional", export)
    home = api.bearer("GET", path("regional") + API + "&region=southcentralus")
    assert home.status_code == 200  # the definition's own region
    before = api.bearer("GET", path("regional") + API + "&region=westeurope")
    assert before.status_code == 404 and error(before)["details"][0]["code"] == "PerRegionPayloadNotFound"
    created = api.bearer("POST", path("regional", "/CreateRegionalBlob") + API + "&region=westeurope")
    assert created.status_code == 202 and created.json()["id"] == "regional"
    assert operation(api, created)["status"] == "Succeeded"
    assert api.bearer("GET", path("regional") + API + "&region=westeurope").status_code == 200
    assert api.bearer("POST", path("regional", "/CreateRegionalBlob") + API).status_code == 400


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
_KEYS = st.sampled_from(["location", "Properties", "properties", "packageType", "PackageType", "assets", "Assets",
                         "package", "nodes", "edges", "keys", "primary", "storageAccount", "name", "readOnly",
                         "realtimeConfiguration", "maxConcurrentCalls", "locationInfo", "uri", "type", "tags",
                         "parameters", "value", "input", "properties", "x"])
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_JSON)
def test_fuzzed_bodies_never_500(api: Api, body: Any) -> None:
    for method in ("PUT", "PATCH"):
        resp = api.bearer(method, path("fuzzed") + API, json=body)
        assert resp.status_code < 500, resp.text
        assert resp.headers["Content-Type"].startswith("application/json")
    api.bearer("DELETE", path("fuzzed") + API)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), value=_JSON)
def test_mutated_definitions_never_500(api: Api, export: dict[str, Any], data: st.DataObject, value: Any) -> None:
    where = data.draw(st.sampled_from(_paths(export)[1:]))
    body = copy.deepcopy(export)
    target = body
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    for method in ("PUT", "PATCH", "PUT"):
        resp = api.bearer(method, path("mutant") + API, json=body)
        assert resp.status_code < 500, resp.text
        assert resp.headers["Content-Type"].startswith("application/json")
    got = api.bearer("GET", path("mutant") + API)
    assert got.status_code in (200, 404)
    api.bearer("DELETE", path("mutant") + API)


def test_payload_in_blob_storage_is_inlined_with_its_casing(api: Api, export: dict[str, Any]) -> None:
    heavy = ("Assets", "Input", "Output", "Parameters", "ExampleRequest", "Package")
    payload = {key: export["Properties"][key] for key in heavy}
    upload = api.studio("POST", f"/api/resourceuploads/workspaces/{DEV}/?userStorage=true&dataTypeId=GenericCSV",
                        data=json.dumps(payload).encode())
    blob = f"https://amlvclocal.blob.core.windows.net/uploads/{upload.json()['Id']}/data"
    body = copy.deepcopy(export)
    for key in heavy:
        del body["Properties"][key]
    body["Properties"].update({"PayloadsInBlobStorage": True, "PayloadsLocation": {"Uri": blob}})
    created = put(api, "large", body)
    assert created.status_code == 201 and operation(api, created)["status"] == "Succeeded"
    props = api.bearer("GET", path("large") + API).json()["properties"]
    assert props["payloadsInBlobStorage"] is False and "payloadsLocation" not in props
    assert props["assets"] == payload["Assets"] and "Nodes" in props["package"]  # casing passed through (REC-LARGE)
    body["Properties"]["PayloadsLocation"] = {"Uri": f"{api.url}/blobs/nowhere/payload.json"}
    failed = put(api, "large-missing", body)
    assert operation(api, failed)["error"]["details"][0]["code"] == "PayloadNotFound"
