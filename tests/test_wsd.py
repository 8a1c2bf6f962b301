"""Web-service definitions: camelCase canonical form, user-named keys kept, read-only fields and secrets out."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from amlvc import rules
from amlvc.canonical.checks import classify
from amlvc.canonical.roundtrip import verify_roundtrip
from amlvc.canonical.webservice import denormalize_wsd, normalize_wsd, verify_wsd
from amlvc.errors import InvalidDocument

PRIMARY = "Zm9vYmFy" * 11
SIG = "AbCdEf0123%2Bxyz%3D"


def arm_wsd() -> dict[str, Any]:
    """The reference's synthesized ARM definition (web-services.md 6.1), with keys and read-only fields."""
    return {
        "id": "/subscriptions/0000/resourceGroups/ml-rg/providers/Microsoft.MachineLearning/webServices/churn",
        "name": "churn", "type": "Microsoft.MachineLearning/webServices", "location": "South Central US",
        "tags": {"Owner": "Data Team", "cost center": "42"},
        "properties": {
            "packageType": "Graph", "title": "Churn Scoring [Predictive Exp.]", "description": "d",
            "createdOn": "2017-03-09T08:14:36.8400351Z", "modifiedOn": "2017-03-09T08:14:36.8400351Z",
            "provisioningState": "Succeeded", "readOnly": False, "exposeSampleData": True,
            "swaggerLocation": "https://x.services.azureml.net/swagger.json",
            "keys": {"primary": PRIMARY, "secondary": "second-key"},
            "realtimeConfiguration": {"maxConcurrentCalls": 20}, "diagnostics": {"level": "None"},
            "storageAccount": {"name": "contosomlstore", "key": "store-key"},
            "machineLearningWorkspace": {"id": "0f3c0e2a9b8d4c7e9a1b2c3d4e5f6a7b"},
            "payloadsInBlobStorage": False,
            "assets": {
                "asset1": {"name": "Score Model", "type": "Module", "locationInfo": {
                    "uri": "aml://module/506153734175476c4f62416c57734963.401b4f92e7244d5abe81d5b0ff9bdb33"
                           ".v1-default-1750", "credentials": ""}},
                "Asset2": {"name": "Churn Model [trained model]", "type": "Resource", "locationInfo": {
                    "uri": f"https://s.blob.core.windows.net/c/7d1e.ilearner?sv=2015&sig={SIG}&sp=r",
                    "credentials": "DefaultEndpointsProtocol=https;AccountName=s;AccountKey=abc=="},
                    "outputPorts": {"Results dataset": {"type": "Dataset"}}},
            },
            "parameters": {"Database Password": {"value": "pw1", "certificateThumbprint": ""},
                           "Rows": {"value": "10"}},
            "input": {"title": "", "description": "", "type": "object", "properties": {"input1": {
                "title": "", "description": "", "type": "object", "properties": {
                    "Monthly Charges": {"type": "Number", "format": "Double", "x-ms-isnullable": True}}}}},
            "output": {"title": "", "description": "", "type": "object", "properties": {}},
            "exampleRequest": {"inputs": {"input1": [[70.35], [25.1]]}, "globalParameters": {"Rows": "10"}},
            "package": {
                "nodes": {"node1": {"inputId": "input1"}, "node2": {"assetId": "Asset2"},
                          "node3": {"assetId": "asset1", "parameters": {
                              "Append score columns to output": {"value": "True", "certificateThumbprint": ""},
                              "Server User Account Password": {"value": "pw2", "certificateThumbprint": ""}}},
                          "node4": {"outputId": "output1"}},
                "edges": [
                    {"sourceNodeId": "node3", "sourcePortId": "Scored dataset", "targetNodeId": "node4"},
                    {"sourceNodeId": "node1", "targetNodeId": "node3", "targetPortId": "Dataset"},
                    {"sourceNodeId": "node2", "sourcePortId": "Results dataset", "targetNodeId": "node3",
                     "targetPortId": "Trained model"},
                ],
                "graphParameters": {"Rows": {"type": "Int", "links": [{"nodeId": "node3", "parameterKey": "k"}]}},
            },
        },
    }


def pascal(value: Any, shape: tuple[str, ...] = ()) -> Any:
    """The same definition as the Studio export writes it (PascalCase), user-named keys untouched."""
    if isinstance(value, dict):
        if shape in rules.WSD_USER_MAPS:
            return {k: pascal(v, (*shape, "*")) for k, v in value.items()}
        return {k[:1].upper() + k[1:]: pascal(v, (*shape, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal(item, shape) for item in value]
    return value


def test_round_trip_and_verify() -> None:
    doc = arm_wsd()
    result = normalize_wsd(doc)
    assert set(result.files) == {rules.WEBSERVICE_FILE}
    back = denormalize_wsd(result.files, volatile=result.volatile, secrets=result.secrets)
    assert {k: v for k, v in back.items() if k != "properties"} == {k: v for k, v in doc.items() if k != "properties"}
    doc_edges = doc["properties"].pop("package")["edges"]
    back_edges = back["properties"].pop("package")["edges"]
    assert sorted(map(json.dumps, doc_edges)) == sorted(map(json.dumps, back_edges))
    assert verify_wsd(arm_wsd()) == []
    assert verify_roundtrip(arm_wsd()) == []  # dispatches on the schema


def test_canonical_file() -> None:
    result = normalize_wsd(arm_wsd())
    canon = json.loads(result.files[rules.WEBSERVICE_FILE])
    assert canon["$format"] == rules.WEBSERVICE_FORMAT
    assert "id" not in canon and "name" not in canon and "createdOn" not in canon["properties"]
    assert result.volatile["name"] == "churn" and result.volatile["properties.provisioningState"] == "Succeeded"
    edges = canon["properties"]["package"]["edges"]
    assert [e["sourceNodeId"] for e in edges] == ["node1", "node2", "node3"]
    assert set(canon["tags"]) == {"Owner", "cost center"}
    assert set(canon["properties"]["assets"]) == {"asset1", "Asset2"}


def test_secrets_are_placeholders() -> None:
    result = normalize_wsd(arm_wsd())
    text = result.files[rules.WEBSERVICE_FILE].decode()
    for secret in (PRIMARY, "second-key", "store-key", SIG, "abc==", "pw1", "pw2"):
        assert secret not in text
    props = json.loads(text)["properties"]
    assert props["keys"] == {"primary": "${secret:KEYS_PRIMARY}", "secondary": "${secret:KEYS_SECONDARY}"}
    assert props["storageAccount"]["key"] == "${secret:STORAGE_ACCOUNT_KEY}"
    assert props["assets"]["Asset2"]["locationInfo"]["credentials"] == "${secret:ASSET2_CREDENTIALS}"
    assert props["assets"]["asset1"]["locationInfo"]["credentials"] == ""
    assert "sig=${secret:" in props["assets"]["Asset2"]["locationInfo"]["uri"]
    assert props["parameters"]["Database Password"]["value"] == "${secret:DATABASE_PASSWORD}"
    assert props["parameters"]["Rows"]["value"] == "10"
    node3 = props["package"]["nodes"]["node3"]["parameters"]
    assert node3["Server User Account Password"]["value"] == "${secret:SERVER_USER_ACCOUNT_PASSWORD}"
    assert node3["Append score columns to output"]["value"] == "True"


def test_pascal_case_studio_export_reads_the_same() -> None:
    doc = pascal(arm_wsd())
    assert "Properties" in doc and "Owner" in doc["Tags"] and "Asset2" in doc["Properties"]["Assets"]
    assert classify(doc) == "wsd"
    assert normalize_wsd(doc).files == normalize_wsd(arm_wsd()).files
    assert verify_wsd(doc) == []


def test_2016_string_parameters() -> None:
    doc = arm_wsd()
    doc["properties"]["parameters"] = {"Storage Key": "k", "Rows": "10"}
    props = json.loads(normalize_wsd(doc).files[rules.WEBSERVICE_FILE])["properties"]
    assert props["parameters"] == {"Storage Key": "${secret:STORAGE_KEY}", "Rows": "10"}
    assert verify_wsd(doc) == []


def test_keys_differing_only_in_case_are_refused() -> None:
    doc = arm_wsd()
    doc["properties"]["Title"] = "again"
    with pytest.raises(InvalidDocument, match="appears twice") as info:
        normalize_wsd(doc, source="svc.json")
    assert info.value.path in ("/properties/Title", "/properties/title")


def test_denormalize_refuses_other_files() -> None:
    with pytest.raises(InvalidDocument, match="file is missing"):
        denormalize_wsd({}, source="exp")
    with pytest.raises(InvalidDocument, match=r"/\$format"):
        denormalize_wsd({"webservice.json": b"{}"}, source="exp")


def test_without_secrets_placeholders_stay() -> None:
    result = normalize_wsd(arm_wsd())
    back = denormalize_wsd(result.files)
    assert back["properties"]["keys"]["primary"] == "${secret:KEYS_PRIMARY}"
    assert normalize_wsd(back).files == result.files  # idempotent through placeholders
    again = copy.deepcopy(back)
    assert normalize_wsd(again).secrets == {}
