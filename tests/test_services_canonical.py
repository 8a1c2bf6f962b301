"""service.json's canonical form (canonical/services.py): ARM definitions without read-only and per-remote parts,
model versions in place of trained-model uris, the way back, the three-way merge, and refusals naming the path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amlvc.canonical.services import (
    arm_definition,
    arm_document,
    changed_properties,
    dumps_service,
    load,
    merge3,
    parse_ref,
)
from amlvc.errors import InvalidDocument, MissingSecret, ValidationError
from amlvc.sync.retrain import evaluation_of, subject

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MODEL_URI = "https://amlvclocal.blob.core.windows.net/amlvc-models/" + "a" * 64 + ".ilearner"


def arm_fixture() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "webservice--base.json").read_text(encoding="utf-8"))
    return doc


def test_an_arm_definition_keeps_no_read_only_or_per_remote_part_and_names_its_model() -> None:
    doc = arm_fixture()
    [model] = [k for k, a in doc["properties"]["assets"].items() if a["locationInfo"]["uri"].endswith(".ilearner")]
    canon, volatile = arm_document(doc, lambda uri: "churn-model@4" if uri.endswith(".ilearner") else None,
                                   source="webservice--base.json")
    props = canon["properties"]
    assert {"id", "name", "type"}.isdisjoint(canon) and canon["$kind"] == "arm"
    assert {"createdOn", "modifiedOn", "provisioningState", "swaggerLocation", "commitmentPlan",
            "machineLearningWorkspace", "keys"}.isdisjoint(props)
    assert props["storageAccount"] == {"key": "${secret:STORAGE_ACCOUNT_KEY}"}
    assert props["assets"][model] == {**{k: v for k, v in doc["properties"]["assets"][model].items()
                                         if k != "locationInfo"}, "$model": "churn-model@4"}
    assert volatile["properties.modifiedOn"] == doc["properties"]["modifiedOn"]
    assert doc["properties"]["storageAccount"]["key"] not in dumps_service(canon).decode()
    # back: the per-remote parts of the target, the model's uri, the key filled from the secrets
    back = arm_definition(canon, per_remote={"storageAccount": {"name": "prodstore"},
                                             "commitmentPlan": {"id": "/subscriptions/s/plan"},
                                             "machineLearningWorkspace": {"id": "w" * 32}, "location": "West Europe"},
                          model_uris={model: MODEL_URI}, secrets={"STORAGE_ACCOUNT_KEY": "k" * 88}, source="x")
    assert back["location"] == "West Europe"
    assert back["properties"]["storageAccount"] == {"name": "prodstore", "key": "k" * 88}
    assert back["properties"]["assets"][model]["locationInfo"] == {"uri": MODEL_URI, "credentials": ""}
    assert changed_properties(canon, canon) == []
    # an update without the key sends none (the service keeps its own)
    update = arm_definition(canon, per_remote={}, model_uris={model: MODEL_URI}, secrets={}, source="x")
    assert "storageAccount" not in update["properties"]


def test_a_secret_placeholder_without_a_value_is_refused_on_the_way_back() -> None:
    canon, _ = arm_document(arm_fixture(), lambda uri: None, source="x")
    canon["properties"]["description"] = "${secret:SOMETHING}"
    with pytest.raises(MissingSecret, match="SOMETHING"):
        arm_definition(canon, per_remote={}, model_uris={}, secrets={}, source="webservices/x/service.json")


@pytest.mark.parametrize(("change", "pointer"), [
    ({"$format": "amlvc/service@0"}, "/$format"),
    ({"$kind": "other"}, "/$kind"),
    ({"Endpoints": []}, "/Endpoints"),
    ({"Endpoints": {"ep2": {"Resources": {"r": "churn-model"}}}}, "/Endpoints/ep2"),
    ({"Endpoints": {"ep2": {"Resources": {"r": 4}}}}, "/Endpoints/ep2/Resources/r"),
])
def test_an_invalid_service_json_is_refused_naming_the_path(change: dict[str, Any], pointer: str) -> None:
    doc = {"$format": "amlvc/service@1", "$kind": "classic", "Name": "s", "Endpoints": {}, **change}
    with pytest.raises(ValidationError) as info:
        load(json.dumps(doc).encode(), "webservices/s/service.json")
    assert "webservices/s/service.json" in info.value.message and pointer in info.value.message
    with pytest.raises(InvalidDocument, match="duplicate key"):
        load(b'{"$format": "amlvc/service@1", "$format": "x"}', "webservices/s/service.json")


def test_model_references() -> None:
    assert parse_ref("churn-model@4") == ("churn-model", 4)
    assert parse_ref("Kündigung – Logistische Regression@12") == ("Kündigung – Logistische Regression", 12)
    for bad in ("churn-model", "churn-model@0", "@3", "churn@v2"):
        with pytest.raises(ValidationError, match="NAME@VERSION"):
            parse_ref(bad)


def test_the_three_way_merge_takes_each_sides_change_and_names_conflicts() -> None:
    base = {"Endpoints": {"default": {"Description": "d"}, "ep2": {"Description": "a", "MaxConcurrentCalls": 4}}}
    ours = {"Endpoints": {"default": {"Description": "d"}, "ep2": {"Description": "ours", "MaxConcurrentCalls": 4}}}
    theirs = {"Endpoints": {"default": {"Description": "d"}, "ep2": {"Description": "a", "MaxConcurrentCalls": 8},
                            "ep3": {"Description": "new"}}}
    merged, conflicts = merge3(base, ours, theirs)
    assert conflicts == []
    assert merged["Endpoints"]["ep2"] == {"Description": "ours", "MaxConcurrentCalls": 8}
    assert merged["Endpoints"]["ep3"] == {"Description": "new"}
    removed, _ = merge3(base, {"Endpoints": {"default": {"Description": "d"}}}, base)
    assert removed == {"Endpoints": {"default": {"Description": "d"}}}
    theirs["Endpoints"]["ep2"]["Description"] = "theirs"
    _, conflicts = merge3(base, ours, theirs)
    assert conflicts == ["/Endpoints/ep2/Description"]


def test_the_retrain_subject_names_the_first_metric_both_evaluations_have() -> None:
    before = evaluation_of(b"AUC,Accuracy\r\n0.81,0.7\r\n")
    after = evaluation_of(b"AUC,Accuracy\r\n0.83,0.72\r\n")
    assert subject("churn-model@5", before, after) == "retrain: churn-model@5 (AUC 0.81 → 0.83)"
    assert subject("churn-model@5", None, after) == "retrain: churn-model@5 (AUC 0.83)"
    assert subject("churn-model@5", before, evaluation_of(b"output,digest\r\nevaluation,ab12\r\n")) == \
        "retrain: churn-model@5"
    assert evaluation_of(b"just one line\n") is None
