"""BES jobs of the local workspace: lifecycle, deterministic `.ilearner` outputs, the retrain-and-patch flow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wskit import DEV, HEX32, PREDICTIVE_ID, SUB, TOKENS, TRAINING_ID, Api, blob_url, error, for_create, start

from amlvc.server import ilearner

V = "?api-version=2.0"


@dataclass
class Endpoint:
    api: Api
    jobs: str  # absolute URL of …/jobs
    key: str

    def call(self, method: str, suffix: str = "", key: str | None = "", **kw: Any) -> requests.Response:
        headers = {} if key is None else {"Authorization": f"Bearer {key or self.key}"}
        return requests.request(method, f"{self.jobs}{suffix}{V}", headers=headers, timeout=30, **kw)

    def submit(self, body: dict[str, Any]) -> str:
        resp = self.call("POST", json=body)
        assert resp.status_code == 200, resp.text
        job = resp.json()
        assert isinstance(job, str) and HEX32.match(job)  # the job id is a bare JSON string
        return job

    def status(self, job: str) -> dict[str, Any]:
        resp = self.call("GET", f"/{job}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        assert list(body) == ["StatusCode", "Results", "Details"]
        return body

    def run(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self.submit(body)
        assert self.call("POST", f"/{job}/start").status_code == 204
        for _ in range(5):
            status = self.status(job)
            if status["StatusCode"] not in ("NotStarted", "Running"):
                return status
        raise AssertionError("job did not finish")


@pytest.fixture
def training(api: Api) -> Endpoint:
    service = api.deploy(TRAINING_ID)["WebServiceGroupId"]
    endpoint = api.endpoint(service)
    return Endpoint(api, f"{endpoint['ApiLocation']}/jobs", endpoint["PrimaryKey"])


def model_bytes(status: dict[str, Any], server: str, output: str = "model") -> bytes:
    assert status["StatusCode"] == "Finished", status
    resp = requests.get(blob_url(status["Results"][output], server), timeout=10)
    assert resp.status_code == 200
    return resp.content


def test_lifecycle(training: Endpoint) -> None:
    job = training.submit({"GlobalParameters": {"Train fraction": "0.7"}})
    assert training.status(job) == {"StatusCode": "NotStarted", "Results": None, "Details": None}
    assert training.call("POST", f"/{job}/start").status_code == 204
    assert training.status(job)["StatusCode"] == "Running"
    done = training.status(job)
    assert done["StatusCode"] == "Finished" and set(done["Results"]) == {"model", "evaluation", "r_model"}
    for name, result in done["Results"].items():
        assert list(result) == ["ConnectionString", "RelativeLocation", "BaseLocation", "SasBlobToken"]
        assert result["ConnectionString"] is None and result["SasBlobToken"].startswith("?sv=")
        assert result["RelativeLocation"].endswith(".csv" if name == "evaluation" else ".ilearner")
    assert ilearner.parse(model_bytes(done, training.api.url)) is not None
    again = training.call("POST", f"/{job}/start")
    assert again.status_code == 400 and error(again)["details"][0]["code"] == "CannotStartJob"
    assert training.call("DELETE", f"/{job}").status_code == 204
    assert training.status(job)["StatusCode"] == "Finished"


def test_cancel(training: Endpoint) -> None:
    job = training.submit({})
    assert training.call("DELETE", f"/{job}").status_code == 204
    assert training.status(job) == {"StatusCode": "Cancelled", "Results": None, "Details": None}
    assert training.call("POST", f"/{job}/start").status_code == 400
    running = training.submit({})
    training.call("POST", f"/{running}/start")
    training.status(running)
    assert training.call("DELETE", f"/{running}").status_code == 204
    assert training.status(running)["StatusCode"] == "Cancelled"
    missing = training.call("GET", f"/{'0' * 32}")
    assert missing.status_code == 404 and error(missing)["details"][0]["code"] == "JobNotFound"


def test_ilearner_is_deterministic(api: Api, training: Endpoint) -> None:
    data_a = api.upload(b"tenure,calls\r\n1,2\r\n")
    data_b = api.upload(b"tenure,calls\r\n3,4\r\n")
    same_a = api.upload(b"tenure,calls\r\n1,2\r\n")  # same content, another blob

    def train(data: dict[str, str], fraction: str, target: str | None = None) -> bytes:
        body: dict[str, Any] = {"Inputs": {"input1": data}, "GlobalParameters": {"Train fraction": fraction}}
        if target:
            body["Outputs"] = {"model": {"ConnectionString": "DefaultEndpointsProtocol=https;AccountName=acct;"
                                                             "AccountKey=c2VjcmV0", "RelativeLocation": target}}
        return model_bytes(training.run(body), api.url)

    first = train(data_a, "0.7", "retrain/churn/model-1.ilearner")
    assert first == train(data_a, "0.7", "retrain/churn/model-2.ilearner")
    assert first == train(data_a, "0.7")
    assert first != train(data_a, "0.8")
    assert first != train(data_b, "0.7")
    assert train(same_a, "0.7") == first  # the same data in another blob trains the same model
    assert b"c2VjcmV0" not in first  # never an account key


def test_output_override_is_where_the_blob_goes(api: Api, training: Endpoint) -> None:
    status = training.run({"Outputs": {"model": {"ConnectionString": "AccountName=acct;AccountKey=x",
                                                 "RelativeLocation": "models/churn-2017-04.ilearner"}}})
    result = status["Results"]["model"]
    assert result["RelativeLocation"] == "models/churn-2017-04.ilearner"
    assert result["BaseLocation"] == "https://amlvclocal.blob.core.windows.net/"  # no host or port of this server
    assert ilearner.parse(requests.get(blob_url(result, api.url), timeout=10).content) is not None
    unsigned = {**result, "SasBlobToken": None}
    assert requests.get(blob_url(unsigned, api.url), timeout=10).status_code == 403


@pytest.mark.parametrize("body, code", [
    ({"Outputs": {"model": {"RelativeLocation": "models/m.csv"}}}, "InvalidBlobExtension"),
    ({"Outputs": {"model": {"RelativeLocation": "models/m"}}}, "InvalidBlobExtension"),
    ({"Outputs": {"evaluation": {"RelativeLocation": "eval/e.ilearner"}}}, "InvalidBlobExtension"),
    ({"Input": {"RelativeLocation": "a/b.csv"}, "Inputs": {"input1": {"RelativeLocation": "a/b.csv"}}},
     "DuplicateInputInBatchCall"),
    ({"Outputs": {"nope": {"RelativeLocation": "x.ilearner"}}}, "OutputNotFound"),
    ({"Inputs": {"nope": {"RelativeLocation": "x.csv"}}}, "InputNotFound"),
    ({"Inputs": {"input1": "x.csv"}}, "InvalidBlobReference"),
    ({"Inputs": {"input1": {"RelativeLocation": 5}}}, "InvalidBlobReference"),
    ({"Inputs": {"input1": {"BaseLocation": "https://example.org/", "RelativeLocation": "x.csv"}}},
     "InvalidBlobReference"),
    ({"Outputs": {"model": {"RelativeLocation": "../../etc/passwd.ilearner"}}}, "InvalidBlobReference"),
    ({"Outputs": []}, "InvalidRequest"),
    ({"GlobalParameters": {"Train fraction": {"nested": 1}}}, "InvalidGlobalParameter"),
])
def test_submit_refusals(training: Endpoint, body: dict[str, Any], code: str) -> None:
    resp = training.call("POST", json=body)
    assert resp.status_code == 400, resp.text
    err = error(resp)
    assert err["code"] == "BadArgument" and err["details"][0]["code"] == code


def test_missing_input_blob_fails_the_job(training: Endpoint) -> None:
    status = training.run({"Inputs": {"input1": {"RelativeLocation": "uploads/none/data"}}})
    assert status["StatusCode"] == "Failed" and "does not exist" in status["Details"] and status["Results"] is None


def test_auth(api: Api, training: Endpoint) -> None:
    job = training.submit({})
    other = api.endpoint(api.deploy()["WebServiceGroupId"])["PrimaryKey"]
    for key in (None, "nonsense", TOKENS[DEV], other):
        for method, suffix in (("POST", ""), ("GET", f"/{job}"), ("POST", f"/{job}/start"), ("DELETE", f"/{job}")):
            resp = training.call(method, suffix, key=key, json={} if method == "POST" else None)
            assert resp.status_code == 401, (key, method, suffix)
            assert error(resp)["details"][0]["code"] == "ScoreRequestUnauthorized"
    assert training.status(job)["StatusCode"] == "NotStarted"
    secondary = api.endpoint(_service_of(api, training))["SecondaryKey"]
    assert training.call("GET", f"/{job}", key=secondary).status_code == 200
    no_version = requests.get(f"{training.jobs}/{job}", headers={"Authorization": f"Bearer {training.key}"},
                              timeout=10)
    assert no_version.status_code == 400


def _service_of(api: Api, endpoint: Endpoint) -> str:
    guid = endpoint.jobs.split("/")[-2]
    for service in api.bearer("GET", f"/workspaces/{DEV}/webservices").json():
        ep = api.endpoint(service["Id"])
        if ep["ApiLocation"].endswith(guid):
            return str(service["Id"])
    raise AssertionError("no service")


@pytest.mark.parametrize("raw", [b"{", b"[]", b"\"text\"", b"\xff"])
def test_hostile_bodies(training: Endpoint, raw: bytes) -> None:
    resp = requests.post(f"{training.jobs}{V}", data=raw, timeout=10,
                         headers={"Authorization": f"Bearer {training.key}", "Content-Type": "application/json"})
    assert resp.status_code == 400 and error(resp)


def test_retrain_and_patch_flow(api: Api, training: Endpoint) -> None:
    """Retrain with BES, then put the new model behind a non-default endpoint (classic) and an ARM service."""
    status = training.run({"GlobalParameters": {"Train fraction": "0.65"},
                           "Outputs": {"model": {"RelativeLocation": "retrain/churn/model-0.65.ilearner"}}})
    new_model = status["Results"]["model"]
    service = api.deploy(PREDICTIVE_ID)["WebServiceGroupId"]
    [resource] = api.endpoint(service)["Resources"]
    api.add_endpoint(service, "retrained")
    patched = api.bearer("PATCH", f"/workspaces/{DEV}/webservices/{service}/endpoints/retrained",
                         json={"Resources": [{"Name": resource["Name"], "Location": new_model}]})
    assert patched.status_code == 200, patched.text
    location = api.endpoint(service, "retrained")["Resources"][0]["Location"]
    assert location["RelativeLocation"] == "retrain/churn/model-0.65.ilearner"
    assert requests.get(blob_url(location, api.url), timeout=10).content == model_bytes(status, api.url)
    assert api.endpoint(service)["Resources"][0]["Location"]["RelativeLocation"] == \
        resource["Location"]["RelativeLocation"]
    refresh = f"/workspaces/{DEV}/webservices/{service}/endpoints/retrained/refresh"
    assert api.bearer("POST", refresh, json={"OverwriteResources": "False"}).status_code == 304
    assert api.bearer("POST", refresh, json={"OverwriteResources": "True"}).status_code == 200
    assert api.endpoint(service, "retrained")["Resources"][0]["Location"]["RelativeLocation"] == \
        resource["Location"]["RelativeLocation"]
    assert api.bearer("POST", refresh, json={"OverwriteResources": "True"}).status_code == 304


def test_jobs_on_an_arm_training_service(api: Api) -> None:
    wsd = for_create(api.studio("GET", f"/api/workspaces/{DEV}/experiments/{TRAINING_ID}/webservicedefinition").json())
    arm = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/trainer"
    created = api.bearer("PUT", f"{arm}?api-version=2017-01-01", json=wsd)
    assert created.status_code == 201, created.text
    props = api.bearer("GET", f"{arm}?api-version=2017-01-01").json()["properties"]
    keys = api.bearer("GET", f"{arm}/listKeys?api-version=2017-01-01").json()
    jobs = props["swaggerLocation"].replace("/swagger.json", "/jobs")
    endpoint = Endpoint(api, jobs, keys["primary"])
    status = endpoint.run({"GlobalParameters": {"Train fraction": "0.7"}})
    assert ilearner.parse(model_bytes(status, api.url)) is not None
    assert endpoint.call("GET", f"/{'0' * 32}", key=TOKENS[DEV]).status_code == 401
    swagger = requests.get(props["swaggerLocation"], timeout=10)
    assert swagger.status_code == 200 and swagger.json()["swagger"] == "2.0"
    assert swagger.json()["definitions"]["BatchExecutionRequest"]["properties"]["Outputs"]["x-ms-outputs"] == \
        {"model": "ilearner", "evaluation": "dataset", "r_model": "ilearner"}
    assert requests.get(props["swaggerLocation"].replace(props["swaggerLocation"].split("/")[-2], "0" * 32),
                        timeout=10).status_code == 404


def test_jobs_and_arm_services_survive_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    arm = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/kept"
    with start(data) as first:
        api = Api(first.url)
        endpoint = api.endpoint(api.deploy(TRAINING_ID)["WebServiceGroupId"])
        training = Endpoint(api, f"{endpoint['ApiLocation']}/jobs", endpoint["PrimaryKey"])
        job = training.submit({})
        training.call("POST", f"/{job}/start")
        training.status(job)
        model = model_bytes(training.status(job), api.url)
        wsd = for_create(api.studio("GET", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/"
                                    "webservicedefinition").json())
        assert api.bearer("PUT", f"{arm}?api-version=2017-01-01", json=wsd).status_code == 201
        keys = api.bearer("GET", f"{arm}/listKeys?api-version=2017-01-01").json()
    with start(data) as second:
        api = Api(second.url)
        jobs = f"{second.url}/workspaces/{DEV}/services/{endpoint['ApiLocation'].rsplit('/', 1)[1]}/jobs"
        again = Endpoint(api, jobs, endpoint["PrimaryKey"])
        assert model_bytes(again.status(job), api.url) == model
        assert api.bearer("GET", f"{arm}/listKeys?api-version=2017-01-01").json() == keys
        assert api.bearer("GET", f"{arm}?api-version=2017-01-01").json()["properties"]["provisioningState"] == \
            "Succeeded"


def test_batch_scoring_on_a_predictive_service(api: Api) -> None:
    endpoint = api.endpoint(api.deploy(PREDICTIVE_ID)["WebServiceGroupId"])
    scoring = Endpoint(api, f"{endpoint['ApiLocation']}/jobs", endpoint["SecondaryKey"])
    data = api.upload(b"customer_id,tenure\r\nK-1,12\r\n")
    status = scoring.run({"Input": data, "GlobalParameters": {"Append scores": "False"}})  # the 2016 single Input
    assert set(status["Results"]) == {"output1"}
    result = status["Results"]["output1"]
    assert result["RelativeLocation"].endswith(".csv")
    assert requests.get(blob_url(result, api.url), timeout=10).content.startswith(b"output,digest\r\n")
    wrong = scoring.call("POST", json={"Outputs": {"output1": {"RelativeLocation": "scores/out.ilearner"}}})
    assert wrong.status_code == 400 and error(wrong)["details"][0]["code"] == "InvalidBlobExtension"
    tsv = scoring.run({"Inputs": {"input1": data}, "Outputs": {"output1": {"RelativeLocation": "scores/out.TSV"}}})
    assert tsv["Results"]["output1"]["RelativeLocation"] == "scores/out.TSV"


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
_KEYS = st.sampled_from(["Inputs", "Input", "Outputs", "GlobalParameters", "input1", "model", "evaluation",
                         "ConnectionString", "RelativeLocation", "BaseLocation", "SasBlobToken", "Train fraction", "x"])
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_JSON)
def test_fuzzed_jobs_never_500(training: Endpoint, body: Any) -> None:
    resp = training.call("POST", json=body)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 200:
        job = resp.json()
        assert training.call("POST", f"/{job}/start").status_code == 204
        for _ in range(2):
            assert training.status(job)["StatusCode"] in ("Running", "Finished", "Failed")
