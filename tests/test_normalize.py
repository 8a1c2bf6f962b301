"""The canonical form of experiments: exact round trip, idempotence, diff noise, tables, secrets, the inverse."""

from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from amlvc import rules
from amlvc.canonical import layout
from amlvc.canonical.columns import encode
from amlvc.canonical.denormalize import denormalize, recorded_module_names
from amlvc.canonical.jsonio import load_json_file
from amlvc.canonical.normalize import content_hash, dumps, normalize, to_push_body
from amlvc.canonical.roundtrip import verify_roundtrip
from amlvc.errors import InvalidDocument, MissingSecret

WS = "9d0c5e7a1b3f42c68e0a4b6d8f1c3e5a"
BUILTIN = rules.BUILTIN_OWNER
SESSION = "8c2e4a6b-1d3f-4e5a-9b7c-0d2e4f6a8b1c"
STORAGE_KEY = "Zm9vYmFy" * 11  # 88 characters of base64 alphabet
SAS_SIG = "AbCdEf0123%2B%2Fxyz%3D"


def in_port(node: str, name: str, **assets: str) -> dict[str, Any]:
    return {"Name": name, "DataSourceId": assets.get("data"), "TrainedModelId": assets.get("model"),
            "TransformModuleId": assets.get("transform"), "Language": "DotNet", "Version": "4.5.0",
            "PortIndex": None, "NodeId": node}


def out_port(node: str, name: str, output_type: str | None = None) -> dict[str, Any]:
    return {"Name": name, "NodeId": node, "OutputType": output_type}


def param(name: str, value: str | None, linked: str | None = None) -> dict[str, Any]:
    return {"ValueType": "Literal", "LinkedGlobalParameter": linked, "Name": name, "Value": value}


def node(number: int, family: str, params: list[dict[str, Any]], inputs: list[str], outputs: list[str],
         **assets: dict[str, str]) -> dict[str, Any]:
    node_id = f"{SESSION}-{number}"
    return {
        "Id": node_id, "ModuleId": f"{BUILTIN}.{family}.v1-default-1718", "Comment": "", "CommentCollapsed": True,
        "Language": "DotNet", "Version": "4.5.0", "UsePreviousResults": False, "ModuleParameters": params,
        "IsPartOfPartialRun": False,
        "InputPortsInternal": [in_port(node_id, name, **assets.get(name, {})) for name in inputs],
        "OutputPortsInternal": [out_port(node_id, name) for name in outputs],
    }


def edge(source: int, source_port: str, target: int, target_port: str) -> dict[str, Any]:
    return {"SourceOutputPortId": f"{SESSION}-{source}:{source_port}",
            "DestinationInputPortId": f"{SESSION}-{target}:{target_port}", "DestinationInputPortIndex": None}


def synthetic_experiment() -> dict[str, Any]:
    """A training experiment with every feature of the canonical form (scripts, pickers, secrets, web service)."""
    dataset = f"{WS}.e41a7c3b95d24f0e8c6b1a2d3f4e5a6b.v1-default-23"
    model = f"{WS}.b69320dfc7bc4aacbd8e59ed43bc6eb0.v1-default-48"
    picker = encode({"isFilter": True, "rules": [{"ruleType": "ColumnNames", "columns": ["Étiquette"],
                                                  "exclude": False}]})
    nodes = [
        node(10, "4e1b0fe6aded4b3fa36f39b8862b9004", [
            param("Please Specify Data Source", "AzureBlobStorage"),
            param("Account Name", "examplestore"),
            param("Account Key", STORAGE_KEY),
            param("Path to container or directory or blob", "data/train.csv", linked="Training path"),
        ], [], ["Results dataset"]),
        node(11, "70530644c97a4ab685f788bf30a8be5f", [
            param("Splitting mode", "Split Rows"),
            param("Fraction of rows in the first output dataset", "0.7"),
        ], ["Dataset"], ["Results dataset1", "Results dataset2"], Dataset={"data": dataset}),
        node(12, "30806023392b42e094d66b775a6e0fd5", [
            param("R Script", "dataset <- maml.mapInputPort(1)\r\n# données\r\nmaml.mapOutputPort(\"dataset\");\r\n"),
            param("Random Seed", ""),
        ], ["Dataset1", "Dataset2"], ["Result Dataset"]),
        node(13, "cdb56f957f4c404dbde75bb972e6f232", [
            param("Python script", "def azureml_main(df):\n    return df,\n"),
        ], ["Dataframe1"], ["Result Dataset"]),
        node(14, "90381e8067c34d9987541db785b7ea37", [
            param("SQL Query Script", "select * from t1;\rselect 2;"),
        ], ["Table1"], ["Results dataset"]),
        node(15, "5cc7053eaa30450d96c0dae4be720977", [param("Label column", picker)],
             ["Untrained model", "Dataset"], ["Trained model"]),
        node(16, "401b4f92e7244d5abe81d5b0ff9bdb33", [param("Append score columns to output", "True")],
             ["Trained model", "Dataset"], ["Scored dataset"], **{"Trained model": {"model": model}}),
        node(17, f"{'0' * 31}1", [
            param("connection", f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={STORAGE_KEY};"),
            param("sas_url", f"https://x.blob.core.windows.net/c/b.csv?sv=2015-02-21&sr=b&sig={SAS_SIG}&sp=r"),
            param("db", "Server=tcp:x;Database=y;User ID=u;Password=hunter2!;Encrypt=True"),
            param("token", "", linked="Api token"),
            param("secret value", "not-shaped", linked="Api token"),
        ], ["in"], ["out"]),
    ]
    nodes[5]["OutputPortsInternal"][0]["OutputType"] = "TrainedModel"
    nodes[2]["CommentCollapsed"] = False
    nodes[2]["Comment"] = "Nettoyage — étape 2"
    edges = [edge(10, "Results dataset", 11, "Dataset"), edge(11, "Results dataset1", 12, "Dataset1"),
             edge(11, "Results dataset2", 15, "Dataset"), edge(12, "Result Dataset", 13, "Dataframe1"),
             edge(13, "Result Dataset", 14, "Table1"), edge(14, "Results dataset", 16, "Dataset"),
             edge(15, "Trained model", 16, "Trained model")]  # the service's order: by source, then target node
    positions = [{"node": n["Id"], "position": f"{i * 10},{-i * 20},200,200"} for i, n in enumerate(nodes)]
    positions.append({"node": dataset, "position": "0,-400,200,200"})
    ws_positions = [{"node": f"{SESSION}-900", "position": "100,100,200,200"},
                    {"node": f"{SESSION}-901", "position": "200,600,200,200"}]
    definition = {"HasRules": False, "Name": "Training path", "IsOptional": False, "ParameterType": "String",
                  "ParameterRules": [], "MarkupType": "Parameter", "HasDefaultValue": False, "DefaultValue": "",
                  "ScriptName": None, "ModeValuesInfo": None, "CredentialDescriptor": None,
                  "Description": "Training path", "FriendlyName": "Training path"}
    credential = {**definition, "Name": "Api token", "ParameterType": "Credential", "DefaultValue": "tok-default",
                  "Description": "Api token", "FriendlyName": "Api token"}
    int_rules = {**definition, "Name": "Workers", "HasRules": True, "ParameterType": "Int", "ParameterRules": [
        {"$type": "Microsoft.MachineLearning.Common.Contracts.Package.ParameterRuleInt, "
                   "Microsoft.MachineLearning.Common", "Min": 1, "Max": 100}]}
    return {
        "ExperimentId": f"{WS}.f-id.05126fa5778a4ad0a26931487d3a0821",
        "RunId": f"{WS}.s-id.05126fa5778a4ad0a26931487d3a0821.9953-08-08t05.48.40",
        "ParentExperimentId": None, "OriginalExperimentDocumentationLink": None,
        "Summary": "Régression logistique", "Description": "Churn — training",
        "Graph": {"ModuleNodes": nodes, "SerializedClientData": layout.render(positions), "PublishInfo": None,
                  "Parameters": None, "EdgesInternal": edges},
        "Status": {"StatusCode": "Finished", "StatusDetail": "None", "CreationTime": "/Date(1464199879696)/",
                   "StartTime": "/Date(1464199882204)/", "EndTime": "/Date(1464200095073)/", "Metadata": None},
        "Etag": "W/\"datetime'2016-05-25T20%3A22%3A48.9673538Z'\"",
        "NodeStatuses": [{"NodeId": nodes[0]["Id"], "Status": {"StatusCode": "Finished"},
                          "OutputEndpoints": [{"AccessCredential": f"?sig={SAS_SIG}"}]}],
        "Creator": "jdoe@contoso.com", "IsLeaf": True, "DisableNodesUpdate": None,
        "WebService": {
            "IsWebServiceExperiment": False,
            "Inputs": [{"Id": f"{SESSION}-900", "PortId": f"{SESSION}-16:Dataset", "Name": "input1"}],
            "Outputs": [{"Id": f"{SESSION}-901", "PortId": f"{SESSION}-16:Scored dataset", "Name": "output1"}],
            "Parameters": [{"Name": "Training path", "Value": "", "ParameterDefinition": definition},
                           {"Name": "Api token", "Value": "tok-value", "ParameterDefinition": credential},
                           {"Name": "Workers", "Value": "4", "ParameterDefinition": int_rules}],
            "WebServiceGroupId": "05ae846fb85147a8a38eb8640c95be9a", "ModelPackageId": None, "RunId": None,
            "SerializedClientData": layout.render(ws_positions), "ArmWebServiceId": None,
        },
        "Category": "user", "Tags": [], "IsPartialRun": False,
    }


def roundtrip(doc: dict[str, Any]) -> dict[str, Any]:
    result = normalize(doc)
    return denormalize(result.files, identity=result.identity, volatile=result.volatile, secrets=result.secrets)


def changed_lines(before: bytes, after: bytes) -> list[str]:
    diff = difflib.unified_diff(before.decode().splitlines(), after.decode().splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def changed_files(a: dict[str, bytes], b: dict[str, bytes]) -> set[str]:
    return {name for name in set(a) | set(b) if a.get(name) != b.get(name)}


# --- the captured sample -----------------------------------------------------------------------------------------


def test_captured_round_trip_is_exact_with_key_order(captured: Path) -> None:
    doc = load_json_file(captured / "experiment-training-2016.json")
    back = roundtrip(doc)
    assert back == doc
    assert json.dumps(back) == json.dumps(doc)  # same key order everywhere
    assert back["Graph"]["SerializedClientData"] == doc["Graph"]["SerializedClientData"]
    assert back["WebService"]["SerializedClientData"] == doc["WebService"]["SerializedClientData"]
    assert verify_roundtrip(doc) == []


def test_captured_layout_regenerates_from_template(captured: Path) -> None:
    result = normalize(load_json_file(captured / "experiment-training-2016.json"))
    layout_doc = json.loads(result.files["layout.json"])
    assert "raw" not in layout_doc["Graph"]  # the template reproduces the service's XML byte for byte
    assert len(layout_doc["Graph"]["positions"]) == 14


def test_captured_idempotent(captured: Path) -> None:
    doc = load_json_file(captured / "experiment-training-2016.json")
    first = normalize(doc)
    assert normalize(roundtrip(doc)).files == first.files
    assert normalize(doc).files == first.files  # deterministic


def test_captured_secrets_never_reach_files_identity_or_lock(captured: Path) -> None:
    raw = (captured / "experiment-training-2016.json").read_text(encoding="utf-8")
    doc = json.loads(raw)
    values = [p["Value"] for n in doc["Graph"]["ModuleNodes"] for p in n["ModuleParameters"]
              if p["Name"] in ("Account Key", "storage_key", "workspace_key")]


    signatures = re.findall(r"sig%3D([A-Za-z0-9%]+?)%26", raw) + re.findall(r"signature=([^&]+)&", raw)
    assert len(values) == 3 and signatures
    result = normalize(doc)
    to_lock = json.dumps([result.identity, result.volatile.get("Etag"), result.volatile.get("RunId")])
    blob = b"".join(result.files.values()).decode() + to_lock
    for secret in values + signatures:
        assert secret not in blob
    assert set(result.secrets.values()) == set(values)
    assert "${secret:ACCOUNT_KEY_172}" in result.files["experiment.json"].decode()


def test_captured_scripts_are_files_with_crlf_noted(captured: Path) -> None:
    result = normalize(load_json_file(captured / "experiment-training-2016.json"))
    scripts = sorted(name for name in result.files if name.startswith("scripts/"))
    assert scripts == [
        "scripts/19956206-a7a7-46db-8849-31aaebf9bea5-10292--scorer-r-script.R",
        "scripts/19956206-a7a7-46db-8849-31aaebf9bea5-10292--trainer-r-script.R",
        "scripts/d12a13ad-9766-4041-b120-34bac41922c2-3136--r-script.R",
    ]
    for name in scripts:
        assert b"\r" not in result.files[name]
    assert '"newline": "\\r\\n"' in result.files["experiment.json"].decode()


# --- synthetic documents -------------------------------------------------------------------------------------------


def test_synthetic_round_trip_exact() -> None:
    doc = synthetic_experiment()
    back = roundtrip(doc)
    assert back == doc
    assert json.dumps(back) == json.dumps(doc)
    assert verify_roundtrip(doc) == []


def test_synthetic_idempotent() -> None:
    doc = synthetic_experiment()
    first = normalize(doc)
    assert normalize(roundtrip(doc)).files == first.files
    assert normalize(roundtrip(doc)).secrets == first.secrets


def test_experiment_json_shape() -> None:
    canon = json.loads(normalize(synthetic_experiment()).files["experiment.json"])
    assert canon["$format"] == rules.EXPERIMENT_FORMAT
    for key in (*rules.IDENTITY_TOP_LEVEL, *rules.VOLATILE_TOP_LEVEL):
        assert key not in canon
    nodes = canon["Graph"]["ModuleNodes"]
    assert list(nodes) == sorted(nodes)
    split = nodes[f"{SESSION}-11"]
    assert split["$module"] == {"batch": 1718, "family": "70530644c97a4ab685f788bf30a8be5f", "name": "Split Data"}
    assert split["InputPortsInternal"][0]["$asset"] == {
        "kind": "dataset", "owner": WS, "family": "e41a7c3b95d24f0e8c6b1a2d3f4e5a6b", "batch": 23}
    assert split["InputPortsInternal"][0]["DataSourceId"].endswith("-23")
    assert nodes[f"{SESSION}-16"]["InputPortsInternal"][0]["$asset"]["kind"] == "trained-model"
    assert nodes[f"{SESSION}-17"]["$module"]["name"] is None  # custom module, no name known
    for n in nodes.values():
        assert "CommentCollapsed" not in n and "IsPartOfPartialRun" not in n and "Language" not in n
        for port in n["InputPortsInternal"] + n["OutputPortsInternal"]:
            assert "NodeId" not in port and "PortIndex" not in port
    picker = nodes[f"{SESSION}-15"]["ModuleParameters"][0]["Value"]
    assert picker == {"$columns": {"isFilter": True, "rules": [
        {"ruleType": "ColumnNames", "columns": ["Étiquette"], "exclude": False}]}}
    edges = canon["Graph"]["EdgesInternal"]
    keys = [(e["SourceOutputPortId"], e["DestinationInputPortId"]) for e in edges]
    assert keys == sorted(keys)
    assert edges[0] == {"DestinationInputPortId": f"{SESSION}-11:Dataset",
                        "SourceOutputPortId": f"{SESSION}-10:Results dataset"}
    assert "Étiquette" in normalize(synthetic_experiment()).files["experiment.json"].decode()  # no \\u escapes


def test_scripts_newline_rules() -> None:
    result = normalize(synthetic_experiment())
    canon = json.loads(result.files["experiment.json"])
    nodes = canon["Graph"]["ModuleNodes"]
    r_value = nodes[f"{SESSION}-12"]["ModuleParameters"][0]["Value"]
    assert r_value == {"$script": f"scripts/{SESSION}-12--r-script.R", "newline": "\r\n"}
    assert result.files[r_value["$script"]].decode() == (
        "dataset <- maml.mapInputPort(1)\n# données\nmaml.mapOutputPort(\"dataset\");\n")
    py_value = nodes[f"{SESSION}-13"]["ModuleParameters"][0]["Value"]
    assert py_value == {"$script": f"scripts/{SESSION}-13--python-script.py"}  # LF only: bytes unchanged
    sql_value = nodes[f"{SESSION}-14"]["ModuleParameters"][0]["Value"]
    assert sql_value == {"$script": f"scripts/{SESSION}-14--sql-query-script.sql"}  # a lone CR: kept as is
    assert result.files[sql_value["$script"]] == b"select * from t1;\rselect 2;"


def test_script_file_with_crlf_from_an_editor_means_the_same() -> None:
    doc = synthetic_experiment()
    result = normalize(doc)
    name = f"scripts/{SESSION}-12--r-script.R"
    files = dict(result.files)
    files[name] = files[name].replace(b"\n", b"\r\n")
    back = denormalize(files, identity=result.identity, volatile=result.volatile, secrets=result.secrets)
    assert back == doc


def test_secrets_scrubbed_by_name_shape_and_credential() -> None:
    result = normalize(synthetic_experiment())
    text = b"".join(result.files.values()).decode()
    for secret in (STORAGE_KEY, SAS_SIG, "hunter2!", "not-shaped", "tok-value", "tok-default"):
        assert secret not in text
    custom = json.loads(result.files["experiment.json"])["Graph"]["ModuleNodes"][f"{SESSION}-17"]
    values = [p["Value"] for p in custom["ModuleParameters"]]
    assert values[0] == "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=${secret:CONNECTION_17};"
    assert values[1].startswith("https://x.blob.core.windows.net/c/b.csv?sv=2015-02-21&sr=b&sig=${secret:SAS_URL_17}")
    assert values[1].endswith("&sp=r")
    assert values[2] == "Server=tcp:x;Database=y;User ID=u;Password=${secret:DB_17};Encrypt=True"
    assert values[3] == ""  # an empty secret stays empty: nothing to hide
    assert values[4] == "${secret:SECRET_VALUE_17}"  # linked to a Credential web-service parameter
    assert result.secrets["ACCOUNT_KEY_10"] == STORAGE_KEY
    assert result.secrets["API_TOKEN_WEBSERVICE"] == "tok-value"
    assert result.secrets["API_TOKEN_WEBSERVICE_DEFAULT"] == "tok-default"


def test_missing_secret_refused_and_none_leaves_placeholders() -> None:
    result = normalize(synthetic_experiment())
    partial = dict(result.secrets)
    del partial["ACCOUNT_KEY_10"]
    with pytest.raises(MissingSecret, match="ACCOUNT_KEY_10") as info:
        denormalize(result.files, secrets=partial)
    assert STORAGE_KEY not in str(info.value)
    kept = denormalize(result.files)
    values = {p["Name"]: p["Value"] for n in kept["Graph"]["ModuleNodes"] for p in n["ModuleParameters"]}
    assert values["Account Key"] == "${secret:ACCOUNT_KEY_10}"
    # Normalizing a document that already holds placeholders keeps them (and records nothing new).
    again = normalize(kept)
    assert again.files == result.files
    assert "ACCOUNT_KEY_10" not in again.secrets


def test_identity_and_volatile_are_restored_only_when_given() -> None:
    doc = synthetic_experiment()
    result = normalize(doc)
    assert result.identity == {key: doc[key] for key in rules.IDENTITY_TOP_LEVEL}
    assert result.volatile["Etag"] == doc["Etag"] and result.volatile["RunId"] == doc["RunId"]
    assert result.volatile["WebService.WebServiceGroupId"] == "05ae846fb85147a8a38eb8640c95be9a"
    bare = denormalize(result.files, secrets=result.secrets)
    for key in (*rules.IDENTITY_TOP_LEVEL, *rules.VOLATILE_TOP_LEVEL):
        assert key not in bare
    assert "WebServiceGroupId" not in bare["WebService"]
    assert all("IsPartOfPartialRun" not in n for n in bare["Graph"]["ModuleNodes"])
    assert bare["Graph"]["ModuleNodes"][2]["CommentCollapsed"] is False  # layout is not volatile


def test_absent_keys_stay_absent_and_non_defaults_are_explicit() -> None:
    doc = synthetic_experiment()
    first = doc["Graph"]["ModuleNodes"][0]
    del first["Language"]
    del first["OutputPortsInternal"][0]["NodeId"]
    del doc["Graph"]["PublishInfo"]
    first["Version"] = "5.0"
    doc["Graph"]["EdgesInternal"][0]["DestinationInputPortIndex"] = 0
    first["ModuleParameters"][0]["ValueType"] = "GraphParameterName"
    canon = json.loads(normalize(doc).files["experiment.json"])
    node0 = canon["Graph"]["ModuleNodes"][f"{SESSION}-10"]
    assert node0["$absent"] == ["Language"] and node0["Version"] == "5.0"
    assert node0["OutputPortsInternal"][0]["$absent"] == ["NodeId"]
    assert canon["Graph"]["$absent"] == ["PublishInfo"]
    assert node0["ModuleParameters"][0]["ValueType"] == "GraphParameterName"
    assert roundtrip(doc) == doc


def test_unknown_keys_pass_through_after_known_ones() -> None:
    doc = synthetic_experiment()
    doc["SchemaVersion"] = 2
    doc["Graph"]["ModuleNodes"][0]["Zeta"] = {"b": 1, "a": [1, 2]}
    doc["Graph"]["ModuleNodes"][0]["InputPortsInternal"] = [{**in_port(f"{SESSION}-10", "x"), "Extra": True}]
    back = roundtrip(doc)
    assert back == doc
    assert list(back)[-1] == "SchemaVersion"
    assert list(back["Graph"]["ModuleNodes"][0])[-1] == "Zeta"


def test_module_names_from_workspace_list_win() -> None:
    doc = synthetic_experiment()
    custom_id = doc["Graph"]["ModuleNodes"][7]["ModuleId"]
    result = normalize(doc, module_names={custom_id: "Vox scorer", "70530644c97a4ab685f788bf30a8be5f": "Split"})
    nodes = json.loads(result.files["experiment.json"])["Graph"]["ModuleNodes"]
    assert nodes[f"{SESSION}-17"]["$module"]["name"] == "Vox scorer"
    assert nodes[f"{SESSION}-11"]["$module"]["name"] == "Split"


def test_annotations_are_ignored_on_denormalize() -> None:
    result = normalize(synthetic_experiment())
    canon = json.loads(result.files["experiment.json"])
    canon["Graph"]["ModuleNodes"][f"{SESSION}-11"]["$module"]["name"] = "edited by hand"
    canon["Graph"]["ModuleNodes"][f"{SESSION}-11"]["InputPortsInternal"][0]["$asset"] = {"kind": "nonsense"}
    files = {**result.files, "experiment.json": dumps(canon)}
    assert denormalize(files, identity=result.identity, volatile=result.volatile, secrets=result.secrets) \
        == synthetic_experiment()


def test_node_and_edge_order_follow_layout() -> None:
    doc = synthetic_experiment()
    back = roundtrip(doc)
    assert [n["Id"] for n in back["Graph"]["ModuleNodes"]] == [n["Id"] for n in doc["Graph"]["ModuleNodes"]]
    assert back["Graph"]["EdgesInternal"] == doc["Graph"]["EdgesInternal"]
    # A document whose nodes are not in layout order still round-trips as a set (verify says nothing).
    shuffled = copy.deepcopy(doc)
    shuffled["Graph"]["ModuleNodes"].reverse()
    shuffled["Graph"]["EdgesInternal"].reverse()
    assert verify_roundtrip(shuffled) == []


# --- diff noise (SPEC 2.5, 2.6, 6) -----------------------------------------------------------------------------------


def test_drag_changes_only_layout() -> None:
    doc = synthetic_experiment()
    moved = copy.deepcopy(doc)
    positions = [{"node": n["Id"], "position": f"{i * 10},{-i * 20},200,200"}
                 for i, n in enumerate(doc["Graph"]["ModuleNodes"])]
    positions.append({"node": doc["Graph"]["ModuleNodes"][1]["InputPortsInternal"][0]["DataSourceId"],
                      "position": "0,-400,200,200"})
    positions[3]["position"] = "333,444,200,200"
    moved["Graph"]["SerializedClientData"] = layout.render(positions)
    a, b = normalize(doc).files, normalize(moved).files
    assert changed_files(a, b) == {"layout.json"}
    assert len(changed_lines(a["layout.json"], b["layout.json"])) == 2


def test_one_script_line_changes_one_line_of_one_file() -> None:
    doc = synthetic_experiment()
    edited = copy.deepcopy(doc)
    script = edited["Graph"]["ModuleNodes"][2]["ModuleParameters"][0]
    script["Value"] = script["Value"].replace("# données", "# données nettoyées")
    a, b = normalize(doc).files, normalize(edited).files
    name = f"scripts/{SESSION}-12--r-script.R"
    assert changed_files(a, b) == {name}
    assert changed_lines(a[name], b[name]) == ["-# données", "+# données nettoyées"]


def test_one_parameter_changes_at_most_two_lines() -> None:
    doc = synthetic_experiment()
    edited = copy.deepcopy(doc)
    edited["Graph"]["ModuleNodes"][1]["ModuleParameters"][1]["Value"] = "0.8"
    a, b = normalize(doc).files, normalize(edited).files
    assert changed_files(a, b) == {"experiment.json"}
    assert len(changed_lines(a["experiment.json"], b["experiment.json"])) <= 2


def test_column_picker_change_is_small() -> None:
    doc = synthetic_experiment()
    edited = copy.deepcopy(doc)
    edited["Graph"]["ModuleNodes"][5]["ModuleParameters"][0]["Value"] = encode(
        {"isFilter": True, "rules": [{"ruleType": "ColumnNames", "columns": ["Churn"], "exclude": False}]})
    a, b = normalize(doc).files, normalize(edited).files
    assert len(changed_lines(a["experiment.json"], b["experiment.json"])) == 2


# --- helpers of the API ------------------------------------------------------------------------------------------


def test_dumps_is_the_canonical_writer() -> None:
    value = {"b": [1, 2.5, None, True, {"z": "é\u2028\"\\"}], "a": {}, "c": [], "d": -0.0, "e": 10**20}
    expected = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert dumps(value) == expected.encode()
    assert dumps({1: "x"}) == (json.dumps({1: "x"}, sort_keys=True, indent=2) + "\n").encode()  # fallback


def test_content_hash_depends_on_paths_and_bytes() -> None:
    files = {"experiment.json": b"{}\n", "layout.json": b"{}\n"}
    assert content_hash(files) == content_hash(dict(reversed(list(files.items()))))
    assert content_hash(files) != content_hash({**files, "layout.json": b"{ }\n"})
    assert content_hash(files) != content_hash({"experiment.json": b"{}\n", "scripts/a": b"{}\n"})
    assert len(content_hash(files)) == 64


def test_to_push_body_shape() -> None:
    doc = roundtrip(synthetic_experiment())
    body = to_push_body(doc, is_draft=True, parent_id=doc["ExperimentId"])
    assert list(body) == ["Description", "Summary", "IsDraft", "ParentExperimentId", "DisableNodesUpdate",
                          "Category", "ExperimentGraph", "WebService"]
    assert body["ExperimentGraph"] is doc["Graph"] and body["Category"] == "user"
    assert to_push_body({"Description": "x"})["Category"] == "user"


def test_verify_reports_lossy_fields() -> None:
    from amlvc.canonical.compare import compare

    doc = synthetic_experiment()
    changed = copy.deepcopy(doc)
    changed["Graph"]["ModuleNodes"][0]["ModuleParameters"][2]["Value"] = "other"
    del changed["Summary"]
    problems = compare(doc, changed, identity_lists=rules.IDENTITY_LISTS)
    assert problems == [
        "/Summary: a string of 21 characters would be lost",
        "/Graph/ModuleNodes/0/ModuleParameters/2/Value: string differs at character 0 (88 characters would become 5)",
    ]
    assert all(STORAGE_KEY not in line for line in problems)


def test_denormalize_rejects_foreign_files() -> None:
    result = normalize(synthetic_experiment())
    with pytest.raises(InvalidDocument, match=r"exp/experiment.json: /\$format"):
        denormalize({**result.files, "experiment.json": b'{"$format": "other"}'}, source="exp")
    with pytest.raises(InvalidDocument, match=r"experiment\.json: file is missing"):
        denormalize({"layout.json": result.files["layout.json"]}, source="exp")
    name = f"scripts/{SESSION}-13--python-script.py"
    files = {k: v for k, v in result.files.items() if k != name}
    with pytest.raises(InvalidDocument, match=r"script file .* is missing"):
        denormalize(files, source="exp")
    with pytest.raises(InvalidDocument, match=re.escape(f"exp/{name}: not valid UTF-8")):
        denormalize({**result.files, name: b"\xff\xfe"}, source="exp")


def test_captured_edits_touch_only_what_changed(captured: Path) -> None:
    doc = load_json_file(captured / "experiment-training-2016.json")
    base = normalize(doc).files
    dragged = copy.deepcopy(doc)
    dragged["Graph"]["SerializedClientData"] = dragged["Graph"]["SerializedClientData"].replace(
        "Position='51,61,200,200'", "Position='91,71,200,200'")
    assert changed_files(base, normalize(dragged).files) == {"layout.json"}
    param = copy.deepcopy(doc)
    param["Graph"]["ModuleNodes"][7]["ModuleParameters"][1]["Value"] = "0.2"  # scan_prop
    after = normalize(param).files
    assert changed_files(base, after) == {"experiment.json"}
    assert len(changed_lines(base["experiment.json"], after["experiment.json"])) <= 2
    script = copy.deepcopy(doc)
    value = script["Graph"]["ModuleNodes"][2]["ModuleParameters"][0]["Value"]
    script["Graph"]["ModuleNodes"][2]["ModuleParameters"][0]["Value"] = value.replace("library(RCurl);",
                                                                                      "library(RCurl); # v2", 1)
    after = normalize(script).files
    name = "scripts/d12a13ad-9766-4041-b120-34bac41922c2-3136--r-script.R"
    assert changed_files(base, after) == {name}
    assert len(changed_lines(base[name], after[name])) == 2  # one line out, one line in


def test_recorded_module_names_skip_a_malformed_annotation() -> None:
    experiment = {"Graph": {"ModuleNodes": {"a": {"ModuleId": "m1", "$module": {"name": "Split Data"}},
                                            "b": {"ModuleId": "m2", "$module": "not an object"},
                                            "c": {"ModuleId": "m3", "$module": {"name": None}}}}}
    assert recorded_module_names({"experiment.json": json.dumps(experiment).encode()}) == {"m1": "Split Data"}
    assert recorded_module_names({"experiment.json": b"not json"}) == {}
    assert recorded_module_names({}) == {}
