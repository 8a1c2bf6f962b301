"""RRS (`POST …/execute`) of the local workspace: the real service's request and answer, classic and ARM."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
from wskit import DEV, PREDICTIVE_ID, SUB, TOKENS, Api, error, for_create

ARM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices"
V = "?api-version=2017-01-01"
COLUMNS = ["id", "value"]  # the header of the dataset on the predictive experiment's input port


def body(columns: list[str] | None = None, rows: list[list[Any]] | None = None, **parameters: str) -> dict[str, Any]:
    return {"Inputs": {"input1": {"ColumnNames": columns or COLUMNS, "Values": rows or [["1", "12"], ["2", "48"]]}},
            "GlobalParameters": parameters}


def execute(api_location: str, key: str, payload: Any,
            query: str = "?api-version=2.0&details=true") -> requests.Response:
    return requests.post(f"{api_location}/execute{query}", json=payload, headers={"Authorization": f"Bearer {key}"},
                         timeout=10)


@pytest.fixture(scope="module")
def endpoint(seeded_server: Any) -> dict[str, Any]:
    """A non-default endpoint of the deployed predictive experiment (its ApiLocation and keys)."""
    api = Api(seeded_server.url)
    service = api.deploy(PREDICTIVE_ID)["WebServiceGroupId"]
    added = api.add_endpoint(service, "rrs")
    added["WebServiceId"] = service
    return added


def test_execute_answers_as_the_real_service(endpoint: dict[str, Any]) -> None:
    resp = execute(endpoint["ApiLocation"], endpoint["PrimaryKey"], body(**{"Append scores": "True"}))
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert list(answer) == ["Results"] and list(answer["Results"]) == ["output1"]
    output = answer["Results"]["output1"]
    assert output["type"] == "table" and list(output["value"]) == ["ColumnNames", "ColumnTypes", "Values"]
    table = output["value"]
    assert table["ColumnNames"] == [*COLUMNS, "Scored Labels", "Scored Probabilities"]
    assert table["ColumnTypes"] == ["Int32", "Int32", "String", "Double"]
    assert [row[:2] for row in table["Values"]] == [["1", "12"], ["2", "48"]]
    assert all(isinstance(cell, str) for row in table["Values"] for cell in row)
    assert all(row[2] in ("0", "1") and 0 <= float(row[3]) < 1 for row in table["Values"])
    again = execute(endpoint["ApiLocation"], endpoint["SecondaryKey"], body(**{"Append scores": "True"}))
    assert again.json() == answer  # deterministic
    brief = execute(endpoint["ApiLocation"], endpoint["PrimaryKey"], body(**{"Append scores": "True"}),
                    "?api-version=2.0")
    assert list(brief.json()["Results"]["output1"]["value"]) == ["ColumnNames", "Values"]  # no ColumnTypes
    assert brief.json()["Results"]["output1"]["value"]["Values"] == table["Values"]
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in (["1", "12"], ["2", "48"])]
    swagger = execute(endpoint["ApiLocation"], endpoint["PrimaryKey"],
                      {"Inputs": {"input1": rows}, "GlobalParameters": {"Append scores": "True"}},
                      "?api-version=2.0&format=swagger")
    assert swagger.status_code == 200, swagger.text
    assert swagger.json()["Results"]["output1"] == [dict(zip(table["ColumnNames"], r, strict=True))
                                                    for r in table["Values"]]


def test_scores_follow_the_endpoints_model(api: Api, endpoint: dict[str, Any]) -> None:
    first = execute(endpoint["ApiLocation"], endpoint["PrimaryKey"], body()).json()
    model = api.train({"GlobalParameters": {"Train fraction": "0.6"},
                       "Outputs": {"model": {"RelativeLocation": "rrs/m.ilearner"}}})
    url = f"/workspaces/{DEV}/webservices/{endpoint['WebServiceId']}/endpoints/rrs"
    [resource] = api.bearer("GET", url).json()["Resources"]
    for location, same in ((model["Results"]["model"], False), (resource["Location"], True)):
        patched = api.bearer("PATCH", url, json={"Resources": [{"Name": resource["Name"], "Location": location}]})
        assert patched.status_code == 200, patched.text
        scored = execute(endpoint["ApiLocation"], endpoint["PrimaryKey"], body()).json()
        assert (scored == first) is same


@pytest.mark.parametrize(("payload", "status", "code", "detail"), [
    (body(["customer_id", "tenure"]), 400, "BadUserArgument", "InputMismatchError"),
    (body(["id"], [["1"]]), 400, "BadUserArgument", "InputMismatchError"),
    (body(rows=[["1", "12", "x"]]), 400, "BadUserArgument", "InputParseError"),
    ({"Inputs": {"input9": {"ColumnNames": COLUMNS, "Values": []}}}, 400, "BadArgument", "InvalidInputNames"),
    ({"GlobalParameters": {}}, 400, "BadArgument", "MissingRequestInput"),
    (body(**{"No such parameter": "1"}), 400, "BadArgument", "UnexpectedParameter"),
    ({"Inputs": {"input1": {"ColumnNames": "id", "Values": []}}}, 400, "BadArgument", "RequestBodyInvalid"),
    ({"Inputs": {"input1": {"ColumnNames": COLUMNS, "Values": [[{"x": 1}, "2"]]}}}, 400, "BadArgument",
     "RequestBodyInvalid"),
    (["not", "an", "object"], 400, "BadArgument", "RequestBodyInvalid"),
])
def test_refusals_have_the_services_shape(endpoint: dict[str, Any], payload: Any, status: int, code: str,
                                          detail: str) -> None:
    resp = execute(endpoint["ApiLocation"], endpoint["PrimaryKey"], payload)
    assert resp.status_code == status, resp.text
    err = error(resp)
    assert err["code"] == code and err["details"][0]["code"] == detail


def test_auth_and_api_version(endpoint: dict[str, Any]) -> None:
    for key in ("wrong", TOKENS[DEV]):  # the workspace token is not an API key
        resp = execute(endpoint["ApiLocation"], key, body())
        assert resp.status_code == 401 and error(resp)["details"][0]["code"] == "ScoreRequestUnauthorized"
    missing = requests.post(f"{endpoint['ApiLocation']}/execute?api-version=2.0", json=body(), timeout=10)
    assert missing.status_code == 401
    old = execute(endpoint["ApiLocation"], endpoint["PrimaryKey"], body(), "?api-version=1.0")
    assert old.status_code == 400


def test_the_swagger_document_describes_execute(endpoint: dict[str, Any]) -> None:
    swagger = requests.get(f"{endpoint['ApiLocation']}/swagger.json", timeout=10).json()
    assert swagger["paths"]["/execute"]["post"]["operationId"] == "ExecuteRequestResponse"
    request_schema = swagger["definitions"]["ExecutionRequest"]["properties"]
    assert request_schema["Inputs"]["properties"]["input1"]["properties"]["ColumnNames"]["example"] == COLUMNS
    assert list(request_schema["GlobalParameters"]["properties"]) == ["Append scores"]


def test_execute_on_an_arm_service(api: Api) -> None:
    definition = for_create(api.studio("GET", f"/api/workspaces/{DEV}/experiments/{PREDICTIVE_ID}/"
                                              "webservicedefinition").json())
    typed = copy.deepcopy(definition)
    typed["Properties"]["Input"]["Properties"]["input1"]["Properties"] = {
        "tenure": {"Type": "Integer", "Format": "Int32"}, "contract": {"Type": "String"}}
    for name, wsd in (("rrs-any", definition), ("rrs-typed", typed)):
        assert api.bearer("PUT", f"{ARM}/{name}{V}", json=wsd).status_code == 201
    answers = {}
    for name in ("rrs-any", "rrs-typed"):
        props = api.bearer("GET", f"{ARM}/{name}{V}").json()["properties"]
        key = api.bearer("GET", f"{ARM}/{name}/listKeys{V}").json()["primary"]
        location = props["swaggerLocation"].rsplit("/", 1)[0]
        answers[name] = execute(location, key, body(["tenure", "contract"], [[12, "Two year"]]))
        assert execute(location, TOKENS[DEV], body()).status_code == 401
    assert answers["rrs-any"].status_code == 200 and answers["rrs-typed"].status_code == 200
    values = answers["rrs-typed"].json()["Results"]["output1"]["value"]
    assert values["ColumnNames"][:2] == ["tenure", "contract"] and values["Values"][0][:2] == ["12", "Two year"]
    props = api.bearer("GET", f"{ARM}/rrs-typed{V}").json()["properties"]
    key = api.bearer("GET", f"{ARM}/rrs-typed/listKeys{V}").json()["primary"]
    wrong = execute(props["swaggerLocation"].rsplit("/", 1)[0], key, body(["tenure"], [[12]]))
    assert wrong.status_code == 400 and error(wrong)["details"][0]["code"] == "InputMismatchError"
