"""Classic web-service management API of the local workspace, over a real loopback socket."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wskit import (
    DEV,
    FIXTURES,
    HEX32,
    ISO7,
    OTHER,
    PREDICTIVE_ID,
    TOKENS,
    TRAINING_ID,
    Api,
    blob_url,
    error,
    run_changed,
    start,
)

from amlvc.server.app import create_app
from amlvc.server.runner import ServerHandle

SERVICE_KEYS = {"Id", "Name", "Description", "CreationTime", "WorkspaceId", "DefaultEndpointName", "EndpointCount"}
ENDPOINT_KEYS = ["Name", "Description", "CreationTime", "WorkspaceId", "WebServiceId", "HelpLocation", "PrimaryKey",
                 "SecondaryKey", "ApiLocation", "ExperimentLocation", "Version", "PreventUpdate", "SampleDataEnabled",
                 "MaxConcurrentCalls", "DiagnosticsTraceLevel", "ThrottleLevel", "Resources"]


@pytest.fixture
def service(api: Api) -> str:
    """A freshly deployed predictive web service (its id)."""
    return str(api.deploy()["WebServiceGroupId"])


def base(service_id: str) -> str:
    return f"/workspaces/{DEV}/webservices/{service_id}"


def test_list_get_and_shapes(api: Api, service: str) -> None:
    listed = api.bearer("GET", f"/workspaces/{DEV}/webservices")
    assert listed.status_code == 200 and listed.headers.get("x-ms-request-id")
    mine = [s for s in listed.json() if s["Id"] == service]
    assert len(mine) == 1 and set(mine[0]) == SERVICE_KEYS
    assert mine[0]["DefaultEndpointName"] == "default" and mine[0]["EndpointCount"] == 1
    assert mine[0]["WorkspaceId"] == DEV and ISO7.match(mine[0]["CreationTime"])
    one = api.bearer("GET", base(service))
    assert one.status_code == 200 and one.json() == mine[0]
    endpoints = api.bearer("GET", f"{base(service)}/endpoints").json()
    assert [e["Name"] for e in endpoints] == ["default"]
    endpoint = endpoints[0]
    assert list(endpoint) == ENDPOINT_KEYS
    assert len(endpoint["PrimaryKey"]) == 88 and endpoint["PrimaryKey"] != endpoint["SecondaryKey"]
    guid = endpoint["ApiLocation"].rsplit("/", 1)[1]
    assert HEX32.match(guid) and endpoint["ApiLocation"] == f"{api.url}/workspaces/{DEV}/services/{guid}"
    assert endpoint["HelpLocation"].endswith(f"/webservices/{service}/endpoints/{guid}")
    [resource] = endpoint["Resources"]
    assert resource["Kind"] == "TrainedModel" and resource["Location"]["RelativeLocation"].endswith(".ilearner")
    # the resource location is a readable blob URL with a SAS (regenerated per GET)
    assert requests.get(blob_url(resource["Location"], api.url), timeout=10).status_code == 200
    assert api.bearer("GET", f"/workspaces/{OTHER}/webservices", token=TOKENS[OTHER]).json() == []


@pytest.mark.parametrize("token, status", [(None, 401), ("wrong-token", 401), (TOKENS[OTHER], 403)])
def test_auth(api: Api, service: str, token: str | None, status: int) -> None:
    for method, path in [("GET", f"/workspaces/{DEV}/webservices"), ("GET", base(service)),
                         ("GET", f"{base(service)}/endpoints/default"), ("DELETE", base(service)),
                         ("PUT", f"{base(service)}/endpoints/ep1")]:
        resp = api.bearer(method, path, token=token)
        assert resp.status_code == status, (method, path, resp.text)
        error(resp)
    assert api.bearer("GET", base(service)).status_code == 200  # nothing was deleted
    assert api.bearer("GET", f"{base(service)}/endpoints/ep1").status_code == 404  # nothing was added


def test_endpoint_key_works_for_its_endpoint_only(api: Api, service: str) -> None:
    key = api.endpoint(service)["PrimaryKey"]
    assert api.bearer("GET", f"{base(service)}/endpoints/default", token=key).status_code == 200
    assert api.bearer("GET", f"/workspaces/{DEV}/webservices", token=key).status_code == 401
    api.add_endpoint(service, "other-ep")
    assert api.bearer("GET", f"{base(service)}/endpoints/other-ep", token=key).status_code == 401


def test_put_endpoint(api: Api, service: str) -> None:
    created = api.add_endpoint(service, "ep-2", Description="second", ThrottleLevel="High", MaxConcurrentCalls=50,
                               PreventUpdate=True, WebServiceId=service, EndpointName="ep-2")
    assert created["Name"] == "ep-2" and created["Description"] == "second" and created["MaxConcurrentCalls"] == 50
    assert created["PreventUpdate"] is True and created["ThrottleLevel"] == "High"
    default = api.endpoint(service)
    assert [r["Location"]["RelativeLocation"] for r in created["Resources"]] == \
        [r["Location"]["RelativeLocation"] for r in default["Resources"]]
    assert created["PrimaryKey"] != default["PrimaryKey"]
    assert api.bearer("GET", base(service)).json()["EndpointCount"] == 2
    low = api.add_endpoint(service, "ep-low", ThrottleLevel="low")
    assert low["ThrottleLevel"] == "Low" and low["MaxConcurrentCalls"] == 4
    again = api.bearer("PUT", f"{base(service)}/endpoints/ep-2", json={"Description": "renamed"})
    assert again.status_code == 200 and again.json()["Description"] == "renamed"
    assert again.json()["PrimaryKey"] == created["PrimaryKey"]


@pytest.mark.parametrize("name, body, code", [
    ("Bad_Name", {}, "BadArgument"),
    ("-leading", {}, "BadArgument"),
    ("x" * 25, {}, "BadArgument"),
    ("ep-ok", {"MaxConcurrentCalls": 500}, "BadArgument"),
    ("ep-ok", {"MaxConcurrentCalls": "20"}, "BadArgument"),
    ("ep-ok", {"ThrottleLevel": "Medium"}, "BadArgument"),
    ("ep-ok", {"ThrottleLevel": "Low", "MaxConcurrentCalls": 20}, "BadArgument"),
    ("ep-ok", {"EndpointName": "another"}, "BadArgument"),
    ("ep-ok", {"WebServiceId": "0" * 32}, "BadArgument"),
    ("ep-ok", {"Description": "d" * 2001}, "BadArgument"),
    ("ep-ok", {"PreventUpdate": "yes"}, "BadArgument"),
])
def test_put_endpoint_refuses(api: Api, service: str, name: str, body: dict[str, Any], code: str) -> None:
    resp = api.bearer("PUT", f"{base(service)}/endpoints/{name}", json=body)
    assert resp.status_code == 400 and error(resp)["code"] == code
    assert api.bearer("GET", f"{base(service)}/endpoints/{name}").status_code in (404, 405)
    assert api.bearer("GET", base(service)).json()["EndpointCount"] == 1


def test_patch_resources(api: Api, service: str) -> None:
    default = api.endpoint(service)
    [resource] = default["Resources"]
    api.add_endpoint(service, "ep-patch")
    before = api.endpoint(service, "ep-patch")
    patched = api.bearer("PATCH", f"{base(service)}/endpoints/ep-patch",
                         json={"Resources": [{"Name": resource["Name"], "Location": resource["Location"]}]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["Resources"][0]["Location"]["RelativeLocation"] == resource["Location"]["RelativeLocation"]
    assert patched.json()["Version"] >= before["Version"]
    # case-insensitive member names, as Json.NET
    lower = api.bearer("PATCH", f"{base(service)}/endpoints/ep-patch",
                       json={"resources": [{"name": resource["Name"], "location": resource["Location"]}]})
    assert lower.status_code == 200, lower.text
    assert resource["Location"]["BaseLocation"] == "https://amlvclocal.blob.core.windows.net/"  # no host or port
    # any storage account URL names the local blob store: another account, the container in BaseLocation, no
    # SAS (the service reads its own storage with its key); a GET gives it back with a SAS made then
    container, _, path = resource["Location"]["RelativeLocation"].partition("/")
    account = {"BaseLocation": f"https://contosomlstore.blob.core.windows.net/{container}/", "RelativeLocation": path,
               "SasBlobToken": None}
    as_account = api.bearer("PATCH", f"{base(service)}/endpoints/ep-patch",
                            json={"Resources": [{"Name": resource["Name"], "Location": account}]})
    assert as_account.status_code == 200, as_account.text
    served = api.endpoint(service, "ep-patch")["Resources"][0]["Location"]
    assert {**served, "SasBlobToken": None} == account and served["SasBlobToken"].startswith("?sv=")
    assert requests.get(blob_url(served, api.url), timeout=10).status_code == 200


def test_patch_refusals(api: Api, service: str) -> None:
    [resource] = api.endpoint(service)["Resources"]
    api.add_endpoint(service, "ep-refuse")
    url = f"{base(service)}/endpoints/ep-refuse"
    good = resource["Location"]
    cases: list[tuple[str, Any, int, str]] = [
        (f"{base(service)}/endpoints/default", {"Resources": [{"Name": resource["Name"], "Location": good}]}, 400,
         "default endpoint"),
        (url, {"Resources": [{"Name": "Some Other [trained model]", "Location": good}]}, 400, "not an updatable"),
        (url, {"Resources": [{"Name": resource["Name"], "Location": {**good, "RelativeLocation": "x/model.csv"}}]},
         400, "ilearner"),
        (url, {"Resources": [{"Name": resource["Name"],
                              "Location": {**good, "RelativeLocation": "missing/none.ilearner"}}]}, 400, "invalid"),
        (url, {"Resources": [{"Name": resource["Name"], "Location": {**good, "SasBlobToken": "?sig=forged"}}]},
         403, "does not grant reading it"),
        (url, {"Resources": [{"Name": resource["Name"], "Location": {
            **good, "SasBlobToken": good["SasBlobToken"].replace("sig=", "sig=x")}}]}, 403, "does not match"),
        (url, {"Resources": [{"Name": resource["Name"], "Location": {  # a SAS in the RelativeLocation: not echoed
            **good, "RelativeLocation": "no/such.ilearner?sig=secret-signature", "SasBlobToken": None}}]}, 400,
         "no/such.ilearner' is invalid"),
        (url, {"Resources": [{"Name": resource["Name"],
                              "Location": {"BaseLocation": "https://example.org/", "RelativeLocation": "a.ilearner"}}]},
         400, "invalid"),
        (url, {"Resources": []}, 400, "non-empty"),
        (url, {"Resources": "x"}, 400, "non-empty"),
        (url, {"Resources": ["x"]}, 400, "object"),
        (url, {"Resources": [{"Name": resource["Name"], "Location": "x"}]}, 400, "object"),
        (f"{base(service)}/endpoints/missing", {"Resources": []}, 404, "does not exist"),
    ]
    for path, body, status, words in cases:
        resp = api.bearer("PATCH", path, json=body)
        assert resp.status_code == status, (body, resp.text)
        assert words in error(resp)["message"], resp.text
        assert "secret-signature" not in resp.text
    assert api.endpoint(service, "ep-refuse")["Resources"][0]["Location"]["RelativeLocation"] == \
        good["RelativeLocation"]


def test_training_service_has_no_updatable_resources(api: Api) -> None:
    service = api.deploy(TRAINING_ID)["WebServiceGroupId"]
    assert api.endpoint(service)["Resources"] == []
    api.add_endpoint(service, "retrain")
    resp = api.bearer("PATCH", f"{base(service)}/endpoints/retrain",
                      json={"Resources": [{"Name": "x", "Location": {"BaseLocation": "b", "RelativeLocation": "r"}}]})
    assert resp.status_code == 400 and "no updatable resources" in error(resp)["message"]


def test_refresh(api: Api, service: str) -> None:
    api.add_endpoint(service, "ep-refresh")
    url = f"{base(service)}/endpoints/ep-refresh/refresh"
    assert api.bearer("POST", url, json={"OverwriteResources": "False"}).status_code == 304
    assert api.bearer("POST", url, json={"OverwriteResources": "True"}).status_code == 304
    default = api.bearer("POST", f"{base(service)}/endpoints/default/refresh", json={"OverwriteResources": "True"})
    assert default.status_code == 400 and "cannot be refreshed" in error(default)["message"]
    bad = api.bearer("POST", url, json={"OverwriteResources": "perhaps"})
    assert bad.status_code == 400
    # a changed and re-run experiment, redeployed onto the same service, moves the default endpoint on;
    # the locked endpoint keeps its version until it is refreshed (once)
    version = api.endpoint(service, "ep-refresh")["Version"]
    run_changed(api, PREDICTIVE_ID, "Random Seed", "4711")
    assert api.deploy(update=True)["WebServiceGroupId"] == service
    assert api.bearer("GET", base(service)).json()["EndpointCount"] == 2
    assert api.endpoint(service)["Version"] > version
    assert api.endpoint(service, "ep-refresh")["Version"] == version
    refreshed = api.bearer("POST", url, json={"OverwriteResources": "False"})
    assert refreshed.status_code == 200 and refreshed.json()["Version"] > version
    assert api.bearer("POST", url, json={"OverwriteResources": False}).status_code == 304


def test_delete(api: Api, service: str) -> None:
    api.add_endpoint(service, "ep-del")
    default = api.bearer("DELETE", f"{base(service)}/endpoints/default")
    assert default.status_code == 400 and "cannot be deleted" in error(default)["message"]
    assert api.bearer("DELETE", f"{base(service)}/endpoints/ep-del").status_code == 204
    assert api.bearer("GET", f"{base(service)}/endpoints/ep-del").status_code == 404
    assert api.bearer("DELETE", f"{base(service)}/endpoints/ep-del").status_code == 404
    assert api.bearer("DELETE", base(service)).status_code == 204
    gone = api.bearer("GET", base(service))
    assert gone.status_code == 404 and error(gone)["code"] == "WebServiceNotFound"
    assert api.bearer("GET", f"{base(service)}/endpoints").status_code == 404
    assert service not in [s["Id"] for s in api.bearer("GET", f"/workspaces/{DEV}/webservices").json()]


@pytest.mark.parametrize("method, suffix, kwargs", [
    ("PUT", "/endpoints/ep-h", {"data": b"{not json"}),
    ("PUT", "/endpoints/ep-h", {"json": ["a", "list"]}),
    ("PUT", "/endpoints/ep-h", {"data": b"[" * 5000 + b"]" * 5000}),
    ("PUT", "/endpoints/ep-h", {"data": b"\xff\xfe\x00"}),
    ("PATCH", "/endpoints/default", {"data": b""}),
    ("PATCH", "/endpoints/default", {"json": 42}),
    ("POST", "/endpoints/default/refresh", {"data": b"{\"OverwriteResources\": "}),
    ("GET", "/endpoints/..%2F..%2Fetc", {}),
    ("GET", "/../../etc/passwd", {}),
    ("POST", "/endpoints/default", {"json": {}}),
    ("GET", "/nothing-here", {}),
])
def test_hostile_requests(api: Api, service: str, method: str, suffix: str, kwargs: dict[str, Any]) -> None:
    before = without_sas(api.bearer("GET", f"{base(service)}/endpoints").json())
    resp = api.bearer(method, f"{base(service)}{suffix}", **kwargs)
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "error" in resp.json() or "Error" in resp.json()
    assert without_sas(api.bearer("GET", f"{base(service)}/endpoints").json()) == before


def without_sas(endpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Endpoints with their resources' SAS tokens dropped: those are re-signed per second on every GET."""
    for endpoint in endpoints:
        for resource in endpoint.get("Resources") or []:
            resource.get("Location", {}).pop("SasBlobToken", None)
    return endpoints


def test_unknown_ids(api: Api) -> None:
    for path in (f"/workspaces/{DEV}/webservices/{'0' * 32}", f"/workspaces/{DEV}/webservices/not-hex",
                 f"/workspaces/{DEV}/webservices/{'0' * 32}/endpoints/default"):
        resp = api.bearer("GET", path)
        assert resp.status_code == 404 and error(resp)["code"] == "WebServiceNotFound"
    bad_ws = api.bearer("GET", "/workspaces/NOT-A-WORKSPACE/webservices")
    assert bad_ws.status_code == 404


def test_state_survives_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with start(data) as first:
        api = Api(first.url)
        service = api.deploy()["WebServiceGroupId"]
        api.add_endpoint(service, "kept")
        keys = api.endpoint(service, "kept")["PrimaryKey"]
    with start(data) as second:
        api = Api(second.url)
        assert api.endpoint(service, "kept")["PrimaryKey"] == keys
        assert api.bearer("GET", base(service)).json()["EndpointCount"] == 2


def test_concurrent_endpoint_writes(api: Api, service: str) -> None:
    """16 clients adding and patching endpoints at once: every write lands, none is torn."""
    [resource] = api.endpoint(service)["Resources"]

    def work(index: int) -> tuple[int, int]:
        name = f"ep-par-{index}"
        created = api.bearer("PUT", f"{base(service)}/endpoints/{name}", json={"Description": name})
        patched = api.bearer("PATCH", f"{base(service)}/endpoints/{name}",
                             json={"Description": f"{name}!", "Resources": [resource]})
        return created.status_code, patched.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(16)))
    assert results == [(201, 200)] * 16
    endpoints = {e["Name"]: e for e in api.bearer("GET", f"{base(service)}/endpoints").json()}
    assert len(endpoints) == 17 and api.bearer("GET", base(service)).json()["EndpointCount"] == 17
    assert all(endpoints[f"ep-par-{i}"]["Description"] == f"ep-par-{i}!" for i in range(16))
    assert len({e["PrimaryKey"] for e in endpoints.values()}) == 17


def test_oversized_body(api: Api, service: str) -> None:
    resp = api.bearer("PUT", f"{base(service)}/endpoints/ep-big", data=b" " * (17 * 1024 * 1024),
                      headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and error(resp)
    assert api.bearer("GET", f"{base(service)}/endpoints/ep-big").status_code == 404


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
_KEYS = st.sampled_from(["Resources", "resources", "Name", "Location", "BaseLocation", "RelativeLocation",
                         "SasBlobToken", "Description", "ThrottleLevel", "MaxConcurrentCalls", "PreventUpdate",
                         "DiagnosticsTraceLevel", "OverwriteResources", "WebServiceId", "EndpointName", "x"])
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_JSON, name=st.sampled_from(["fz", "default", "Fz", "f" * 30]))
def test_fuzzed_bodies_never_500(api: Api, service: str, body: Any, name: str) -> None:
    for method, suffix in (("PUT", ""), ("PATCH", ""), ("POST", "/refresh")):
        resp = api.bearer(method, f"{base(service)}/endpoints/{name}{suffix}", json=body)
        assert resp.status_code < 500 or resp.status_code == 304, resp.text
        if resp.status_code != 304:
            assert resp.headers["Content-Type"].startswith("application/json")


def test_every_route_is_documented(seeded_server: ServerHandle) -> None:
    """Each web-service, deploy, BES and RRS route, and each ARM operation, appears in docs/local-workspace.md."""
    doc = (FIXTURES.parent / "docs" / "local-workspace.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Web services, ARM and BES"):]
    app = create_app(seeded_server.state)
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("webservices.", "bes.", "rrs.")):
            continue
        static = [part for part in rule.rule.split("/") if part and not part.startswith("<")]
        shown = re.sub(r"<[^>]+>", "{x}", rule.rule)
        assert f"{static[-1]}" in section and static[0] in section, shown
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method in section, (method, shown)
    for operation in ("listKeys", "CreateRegionalBlob", "operationsStatus", "operationresults", "webServices",
                      "/providers/Microsoft.MachineLearning/operations"):
        assert operation in section, operation
