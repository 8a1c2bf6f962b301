"""Property tests: generated experiment documents round-trip exactly and normalize idempotently."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amlvc import rules
from amlvc.canonical import columns, layout
from amlvc.canonical.denormalize import denormalize
from amlvc.canonical.normalize import normalize
from amlvc.canonical.roundtrip import verify_roundtrip

# PROPERTY_EXAMPLES=1000 for a long local run; CI keeps the default small.
SETTINGS = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
WS = "9d0c5e7a1b3f42c68e0a4b6d8f1c3e5a"

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)
names = st.sampled_from(["Label column", "Random seed", "Données", "Account Key", "storage_key", "R Script",
                         "Python script", "SQL Query Script", "Trainer R script", "mode", "Password", "名前"])
script_lines = st.lists(st.sampled_from(["x <- 1", "# é", "", "print('a')", "select 1;", "AccountKey=abc=="]),
                        max_size=5)


@st.composite
def script_values(draw: st.DrawFn) -> str:
    lines = draw(script_lines)
    newline = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


picker_values = st.builds(
    lambda cols, exclude, ui: columns.encode({"isFilter": True, "rules": [
        {"ruleType": "ColumnNames", "columns": cols, "exclude": exclude}],
        **({"ui": {"withRules": True}} if ui else {})}),
    st.lists(text, min_size=1, max_size=3), st.booleans(), st.booleans())
SECRET_MARKERS = ("k" * 86 + "==", "AbC%2Fd%3D", "hunter2", "Q" * 88)
secret_values = st.sampled_from([
    "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + "k" * 86 + "==;",
    "https://a.blob.core.windows.net/c/b?sv=2015&sig=AbC%2Fd%3D&sp=r",
    "Server=x;Password=hunter2;", "Q" * 88,
])
values = st.one_of(text, script_values(), picker_values, secret_values, st.none())


@st.composite
def parameters(draw: st.DrawFn, ws_names: list[str]) -> dict[str, Any]:
    param: dict[str, Any] = {}
    if draw(st.booleans()):
        param["ValueType"] = draw(st.sampled_from(["Literal", "Literal", "GraphParameterName"]))
    if draw(st.booleans()):
        param["LinkedGlobalParameter"] = draw(st.sampled_from([None, *ws_names]))
    param["Name"] = draw(names)
    param["Value"] = draw(values)
    return param


def port(node_id: str, name: str, draw: st.DrawFn, inputs: bool) -> dict[str, Any]:
    table = rules.REDUNDANT_INPUT_PORT if inputs else rules.REDUNDANT_OUTPUT_PORT
    order = rules.INPUT_PORT_ORDER if inputs else rules.OUTPUT_PORT_ORDER
    result: dict[str, Any] = {}
    for key in order:
        if key == "Name":
            result[key] = name
            continue
        choice = draw(st.sampled_from(["default", "default", "other", "absent"]))
        if choice == "absent":
            continue
        default = table[key]
        if choice == "default":
            result[key] = node_id if default is rules.NODE_ID_DEFAULT else default
        elif key in rules.ASSET_PORT_KEYS:
            result[key] = f"{WS}.{draw(st.sampled_from(['a' * 32, 'b' * 32]))}.v1-default-{draw(st.integers(0, 99))}"
        else:
            result[key] = draw(st.sampled_from(["other", 3, None, True]))
    return result


@st.composite
def experiments(draw: st.DrawFn) -> dict[str, Any]:
    ws_names = draw(st.lists(st.sampled_from(["Training path", "Api token", "Rows"]), unique=True, max_size=3))
    count = draw(st.integers(0, 5))
    numbers = draw(st.lists(st.integers(1, 10**6), min_size=count, max_size=count, unique=True))
    nodes = []
    for number in numbers:
        node_id = f"19956206-a7a7-46db-8849-31aaebf9bea5-{number}"
        node: dict[str, Any] = {"Id": node_id}
        family = draw(st.sampled_from([*list(rules.MODULE_FAMILIES)[:5], "0" * 32]))
        node["ModuleId"] = draw(st.sampled_from([f"{rules.BUILTIN_OWNER}.{family}.v1-default-1718", "odd id"]))
        node["Comment"] = draw(text)
        for key, default in (("CommentCollapsed", True), ("Language", "DotNet"), ("Version", "4.5.0")):
            choice = draw(st.sampled_from(["default", "other", "absent"]))
            if choice != "absent":
                node[key] = default if choice == "default" else draw(st.sampled_from([False, "R", "5.0"]))
        node["UsePreviousResults"] = draw(st.booleans())
        node["ModuleParameters"] = draw(st.lists(parameters(ws_names), max_size=4))
        if draw(st.booleans()):
            node["IsPartOfPartialRun"] = draw(st.booleans())
        node["InputPortsInternal"] = [port(node_id, n, draw, True) for n in draw(
            st.lists(st.sampled_from(["Dataset", "Trained model", "in"]), unique=True, max_size=2))]
        node["OutputPortsInternal"] = [port(node_id, n, draw, False) for n in draw(
            st.lists(st.sampled_from(["Results dataset", "out"]), unique=True, max_size=2))]
        if draw(st.booleans()):
            node["Extra"] = draw(st.dictionaries(st.sampled_from(["a", "b"]), st.integers() | text, max_size=2))
        nodes.append(node)
    positions = [{"node": n["Id"], "position": f"{i},{-i},200,200"} for i, n in enumerate(nodes)]
    xml = layout.render(positions)
    xml = draw(st.sampled_from([xml, xml.replace("<Meta />", "<Meta></Meta>"), "", "not xml"]))
    if "NodePositions" not in xml:
        # No readable layout: node order falls back to node id (a documented exception to list order).
        nodes.sort(key=lambda n: n["Id"])
    edges = []
    pairs = draw(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=6, unique=True))
    for source, target in sorted(pairs):
        if source < len(nodes) and target < len(nodes):
            edge: dict[str, Any] = {"SourceOutputPortId": f"{nodes[source]['Id']}:out",
                                    "DestinationInputPortId": f"{nodes[target]['Id']}:in"}
            index = draw(st.sampled_from(["default", "absent", 2]))
            if index != "absent":
                edge["DestinationInputPortIndex"] = None if index == "default" else index
            edges.append(edge)
    graph: dict[str, Any] = {"ModuleNodes": nodes, "SerializedClientData": xml}
    for key in ("PublishInfo", "Parameters"):
        if draw(st.booleans()):
            graph[key] = draw(st.sampled_from([None, {"InputPortsForPublish": []}]))
    graph["EdgesInternal"] = edges
    doc: dict[str, Any] = {"ExperimentId": f"{WS}.f-id.{'1' * 32}", "Summary": draw(text),
                           "Description": draw(text), "Graph": graph}
    if draw(st.booleans()):
        doc.update({"Etag": "W/\"x\"", "RunId": None, "Status": {"StatusCode": "Finished"}, "NodeStatuses": [],
                    "IsPartialRun": False, "Creator": draw(text), "IsLeaf": True, "Category": "user", "Tags": []})
    if draw(st.booleans()):
        port_ids = [f"6b1c5e2d-0000-4000-8000-00000000000{i}-{i}" for i in range(draw(st.integers(0, 3)))]
        ws_xml = layout.render([{"node": pid, "position": "0,0,200,200"} for pid in port_ids])
        params = [{"Name": n, "Value": draw(st.sampled_from(["", "v", "pw"])), "ParameterDefinition": {
            "Name": n, "ParameterType": draw(st.sampled_from(["String", "Credential", "Int"])), "DefaultValue": "d",
            "ParameterRules": [{"$type": "T", "Min": 1, "Max": 2}], "CredentialDescriptor": None}} for n in ws_names]
        doc["WebService"] = {"IsWebServiceExperiment": draw(st.booleans()),
                             "Inputs": [{"Id": pid, "PortId": "n:in", "Name": f"input{i}"}
                                        for i, pid in enumerate(port_ids)],
                             "Outputs": [], "Parameters": params, "WebServiceGroupId": None,
                             "SerializedClientData": ws_xml}
    else:
        doc["WebService"] = draw(st.sampled_from([None, {"Inputs": [], "Outputs": [], "Parameters": []}]))
    return doc


def _canonical_order(doc: dict[str, Any]) -> dict[str, Any]:
    """What the service sends: keys in class order (unknown keys last); the generator's order is arbitrary."""
    result = normalize(doc)
    return denormalize(result.files, identity=result.identity, volatile=result.volatile, secrets=result.secrets)


@SETTINGS
@given(experiments())
def test_round_trip_is_exact(doc: dict[str, Any]) -> None:
    before = copy.deepcopy(doc)
    result = normalize(doc)
    assert doc == before  # the input is never modified
    back = denormalize(result.files, identity=result.identity, volatile=result.volatile, secrets=result.secrets)
    assert back == doc
    assert json.dumps(_canonical_order(back)) == json.dumps(back)
    assert verify_roundtrip(doc) == []


@SETTINGS
@given(experiments())
def test_idempotent(doc: dict[str, Any]) -> None:
    first = normalize(doc)
    back = denormalize(first.files, identity=first.identity, volatile=first.volatile, secrets=first.secrets)
    second = normalize(back)
    assert second.files == first.files
    assert second.secrets == first.secrets
    # without secret values, placeholders stay placeholders and the files still do not change
    assert normalize(denormalize(first.files)).files == first.files


@SETTINGS
@given(experiments(), st.randoms(use_true_random=False))
def test_list_order_of_identity_lists_does_not_matter(doc: dict[str, Any], rng: Any) -> None:
    shuffled = copy.deepcopy(doc)
    rng.shuffle(shuffled["Graph"]["ModuleNodes"])
    rng.shuffle(shuffled["Graph"]["EdgesInternal"])
    assert normalize(shuffled).files == normalize(doc).files
    assert verify_roundtrip(shuffled) == []


@SETTINGS
@given(experiments())
def test_no_secret_value_in_files(doc: dict[str, Any]) -> None:
    result = normalize(doc)
    blob = b"".join(result.files.values()).decode()
    for marker in SECRET_MARKERS:  # the secret parts of every secret-shaped value the generator uses
        assert marker not in blob


@settings(max_examples=100, deadline=None)
@given(st.lists(text, min_size=1, max_size=4), st.booleans(), st.sampled_from(["ColumnNames", "ColumnTypes"]))
def test_column_picker_codec(cols: list[str], exclude: bool, rule_type: str) -> None:
    picker = {"isFilter": True, "rules": [{"ruleType": rule_type, "columns": cols, "exclude": exclude}]}
    value = columns.encode(picker)
    assert columns.decode(value) == picker


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({"node": text, "position": text}), max_size=5))
def test_layout_template_round_trip(positions: list[dict[str, str]]) -> None:
    xml = layout.render(positions)
    entry = layout.parse(xml, "f", "")
    assert layout.unparse(entry, "f", "") == xml


# --- web-service definitions ---------------------------------------------------------------------------------------

user_keys = st.text(alphabet="abcXYZ é_-", min_size=1, max_size=8)


def recase(draw: st.DrawFn, key: str) -> str:
    return draw(st.sampled_from([key, key[:1].upper() + key[1:], key.upper() if key.isalpha() else key]))


@st.composite
def wsds(draw: st.DrawFn) -> dict[str, Any]:
    nodes = {name: {recase(draw, "assetId"): draw(st.sampled_from(["asset1", "asset2"])),
                    recase(draw, "parameters"): {p: {recase(draw, "value"): draw(text | secret_values)}
                                                 for p in draw(st.lists(user_keys | names, max_size=2))}}
             for name in draw(st.lists(user_keys, max_size=3, unique=True))}
    edges = [{recase(draw, "sourceNodeId"): draw(user_keys), recase(draw, "targetNodeId"): draw(user_keys),
              recase(draw, "targetPortId"): draw(text)} for _ in range(draw(st.integers(0, 3)))]
    properties = {
        recase(draw, "packageType"): "Graph",
        recase(draw, "title"): draw(text),
        recase(draw, "assets"): {key: {recase(draw, "name"): draw(text), recase(draw, "locationInfo"): {
            recase(draw, "uri"): draw(st.sampled_from(["aml://module/x", "https://a/b?sv=1&sig=AbC%2Fd%3D&sp=r"])),
            recase(draw, "credentials"): draw(st.sampled_from(["", "AccountKey=" + "k" * 86 + "=="]))}}
            for key in draw(st.lists(user_keys, max_size=2, unique=True))},
        recase(draw, "package"): {recase(draw, "nodes"): nodes, recase(draw, "edges"): edges},
        recase(draw, "parameters"): {key: draw(text) for key in draw(st.lists(user_keys | names, max_size=2))},
    }
    if draw(st.booleans()):
        properties[recase(draw, "storageAccount")] = {"name": "s", recase(draw, "key"): "hunter2"}
    doc: dict[str, Any] = {recase(draw, "location"): "West Europe", recase(draw, "properties"): properties,
                           recase(draw, "tags"): {key: draw(text) for key in draw(st.lists(user_keys, max_size=2))}}
    if draw(st.booleans()):
        doc["id"] = "/subscriptions/x/webServices/y"
        doc["name"] = "y"
    return doc


@SETTINGS
@given(wsds())
def test_wsd_round_trip_modulo_case_and_idempotent(doc: dict[str, Any]) -> None:
    from amlvc.canonical.webservice import denormalize_wsd, normalize_wsd, verify_wsd

    assert verify_wsd(doc) == []
    first = normalize_wsd(doc)
    blob = b"".join(first.files.values()).decode()
    for marker in SECRET_MARKERS:
        assert marker not in blob
    back = denormalize_wsd(first.files, volatile=first.volatile, secrets=first.secrets)
    assert normalize_wsd(back).files == first.files
