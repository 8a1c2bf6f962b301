"""Hostile input: malformed JSON, wrong types, entity bombs, huge strings give InvalidDocument with file and path."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from amlvc import rules
from amlvc.canonical import layout
from amlvc.canonical.checks import classify
from amlvc.canonical.denormalize import denormalize
from amlvc.canonical.jsonio import load_json_file
from amlvc.canonical.normalize import normalize
from amlvc.errors import ExitCode, InvalidDocument, LocalError

BOMB = ("<?xml version='1.0'?><!DOCTYPE DataV1 [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>"
        "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;'><!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;'>]>"
        "<DataV1><NodePositions><NodePosition Node='&d;' Position='1'/></NodePositions></DataV1>")
FIFTY_MB = 50 * 1024 * 1024


def small_doc() -> dict[str, Any]:
    node_id = "19956206-a7a7-46db-8849-31aaebf9bea5-1"
    return {
        "ExperimentId": "ws.f-id.x", "Description": "d", "Summary": "",
        "Graph": {
            "ModuleNodes": [{
                "Id": node_id, "ModuleId": "m", "Comment": "",
                "ModuleParameters": [{"ValueType": "Literal", "LinkedGlobalParameter": None, "Name": "p",
                                      "Value": "v"}],
                "InputPortsInternal": [{"Name": "in", "NodeId": node_id}],
                "OutputPortsInternal": [{"Name": "out", "NodeId": node_id}],
            }],
            "SerializedClientData": layout.render([{"node": node_id, "position": "1,2,200,200"}]),
            "EdgesInternal": [{"SourceOutputPortId": f"{node_id}:out", "DestinationInputPortId": f"{node_id}:in"}],
        },
        "WebService": {"Inputs": [], "Outputs": [], "Parameters": []},
    }


def refused(doc: Any, source: str = "exp.json") -> InvalidDocument:
    with pytest.raises(InvalidDocument) as info:
        normalize(doc, source=source)
    assert info.value.exit_code == ExitCode.VALIDATION
    assert info.value.source == source
    assert "\n" not in info.value.message
    return info.value


# --- files on disk ---------------------------------------------------------------------------------------------------


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="no such file") as info:
        load_json_file(tmp_path / "nope.json")
    assert info.value.exit_code == ExitCode.LOCAL and str(tmp_path / "nope.json") in info.value.message
    with pytest.raises(LocalError, match="is a directory"):
        load_json_file(tmp_path)


def test_file_over_the_limit_is_refused_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(rules.MAX_DOCUMENT_BYTES + 1)  # sparse: no memory, no disk
    with pytest.raises(InvalidDocument, match="over the limit") as info:
        load_json_file(big)
    assert info.value.source == str(big)


@pytest.mark.parametrize(("data", "problem"), [
    (b"{\n  \"a\": 1,\n  \"b\": }", "invalid JSON at line 3 column 8"),
    (b"", "invalid JSON at line 1 column 1"),
    (b"{\"a\": \xff}", "not valid UTF-8 at byte 6"),
    (b"{\"a\": 1, \"a\": 2}", "duplicate key 'a'"),
    (b"{\"a\": NaN}", "NaN is not valid JSON"),
    (b"{\"a\": 1e400}", "out of range"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"{\"a\": 1" + b"0" * 5000 + b"}", "invalid JSON"),
])
def test_malformed_json(tmp_path: Path, data: bytes, problem: str) -> None:
    file = tmp_path / "bad.json"
    file.write_bytes(data)
    with pytest.raises(InvalidDocument) as info:
        load_json_file(file)
    assert problem in info.value.message
    assert info.value.message.startswith(str(file))


def test_bom_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "bom.json"
    file.write_bytes(b"\xef\xbb\xbf" + json.dumps(small_doc()).encode())
    assert load_json_file(file) == small_doc()


def test_fifty_megabyte_string_in_a_file(tmp_path: Path) -> None:
    file = tmp_path / "huge.json"
    doc = small_doc()
    doc["Description"] = "x" * FIFTY_MB
    file.write_text(json.dumps(doc), encoding="utf-8")
    del doc
    error = refused(load_json_file(file), source=str(file))
    assert error.path == "/Description"
    assert "over the limit" in error.message


@pytest.mark.parametrize("where", ["param", "script", "layout", "unknown", "comment"])
def test_fifty_megabyte_strings_anywhere(where: str) -> None:
    doc = small_doc()
    node = doc["Graph"]["ModuleNodes"][0]
    huge = "y" * FIFTY_MB
    expected = {
        "param": "/Graph/ModuleNodes/0/ModuleParameters/0/Value",
        "script": "/Graph/ModuleNodes/0/ModuleParameters/0/Value",
        "layout": "/Graph/SerializedClientData",
        "unknown": "/Graph/ModuleNodes/0/Extra/deep/0",
        "comment": "/Graph/ModuleNodes/0/Comment",
    }[where]
    if where == "param":
        node["ModuleParameters"][0]["Value"] = huge
    elif where == "script":
        node["ModuleParameters"][0] = {"Name": "R Script", "Value": huge}
    elif where == "layout":
        doc["Graph"]["SerializedClientData"] = huge
    elif where == "unknown":
        node["Extra"] = {"deep": [huge]}
    else:
        node["Comment"] = huge
    assert refused(doc).path == expected


# --- XML -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Graph", "WebService"])
def test_entity_bomb_in_layout(key: str) -> None:
    doc = small_doc()
    doc[key]["SerializedClientData"] = BOMB
    error = refused(doc)
    assert error.path == f"/{key}/SerializedClientData"
    assert "DTDs and entities are not allowed" in error.message


# --- wrong types -----------------------------------------------------------------------------------------------------

NODE = "/Graph/ModuleNodes/0"


@pytest.mark.parametrize(("change", "path", "problem"), [
    (lambda d: d.__setitem__("Graph", []), "/Graph", "expected an object, got a list"),
    (lambda d: d["Graph"].__setitem__("ModuleNodes", {}), "/Graph/ModuleNodes", "expected a list, got an object"),
    (lambda d: d["Graph"]["ModuleNodes"].append("x"), "/Graph/ModuleNodes/1", "expected an object, got a string"),
    (lambda d: d["Graph"]["ModuleNodes"][0].pop("Id"), NODE, "needs an 'Id'"),
    (lambda d: d["Graph"]["ModuleNodes"][0].__setitem__("Id", 7), f"{NODE}/Id", "expected a string, got a number"),
    (lambda d: d["Graph"]["ModuleNodes"].append(copy.deepcopy(d["Graph"]["ModuleNodes"][0])),
     "/Graph/ModuleNodes/1/Id", "duplicate node id"),
    (lambda d: d["Graph"]["ModuleNodes"][0]["ModuleParameters"][0].__setitem__("Value", 0.5),
     f"{NODE}/ModuleParameters/0/Value", "expected a string, got a number"),
    (lambda d: d["Graph"]["ModuleNodes"][0]["ModuleParameters"][0].__setitem__("Value", {"a": 1}),
     f"{NODE}/ModuleParameters/0/Value", "expected a string, got an object"),
    (lambda d: d["Graph"]["ModuleNodes"][0]["ModuleParameters"][0].__setitem__("Name", None),
     f"{NODE}/ModuleParameters/0/Name", "expected a string, got null"),
    (lambda d: d["Graph"]["ModuleNodes"][0].__setitem__("ModuleParameters", "p=v"),
     f"{NODE}/ModuleParameters", "expected a list, got a string"),
    (lambda d: d["Graph"]["ModuleNodes"][0]["InputPortsInternal"][0].__setitem__("DataSourceId", True),
     f"{NODE}/InputPortsInternal/0/DataSourceId", "expected a string, got a boolean"),
    (lambda d: d["Graph"]["ModuleNodes"][0].__setitem__("ModuleId", 12),
     f"{NODE}/ModuleId", "expected a string, got a number"),
    (lambda d: d["Graph"]["EdgesInternal"][0].__setitem__("SourceOutputPortId", None),
     "/Graph/EdgesInternal/0/SourceOutputPortId", "expected a string, got null"),
    (lambda d: d["Graph"].__setitem__("SerializedClientData", 5), "/Graph/SerializedClientData",
     "expected a string"),
    (lambda d: d["WebService"].__setitem__("Inputs", [1]), "/WebService/Inputs/0", "expected an object"),
    (lambda d: d["WebService"].__setitem__("Parameters", {}), "/WebService/Parameters", "expected a list"),
    (lambda d: d["Graph"]["ModuleNodes"][0].__setitem__("$module", {}), f"{NODE}/$module", "reserved"),
    (lambda d: d.__setitem__("Summary", "\ud800"), "/Summary", "unpaired surrogate"),
    (lambda d: d.__setitem__("Summary", float("nan")), "/Summary", "NaN"),
    (lambda d: d["Graph"]["ModuleNodes"][0].__setitem__("Extra", [float("inf")]), f"{NODE}/Extra/0", "infinite"),
])
def test_wrong_types_name_the_path(change: Any, path: str, problem: str) -> None:
    doc = small_doc()
    change(doc)
    error = refused(doc)
    assert error.path == path
    assert problem in error.message
    assert error.message.startswith(f"exp.json: {path}: ")


def test_deep_nesting_in_a_pass_through_value() -> None:
    doc = small_doc()
    deep: Any = "x"
    for _ in range(rules.MAX_DEPTH + 5):
        deep = [deep]
    doc["Extra"] = deep
    assert "nested deeper" in refused(doc).message


@pytest.mark.parametrize("doc", [[], "text", {"foo": 1}, {"properties": {"title": "x"}}])
def test_unknown_schema(doc: Any) -> None:
    with pytest.raises(InvalidDocument, match="unknown schema") as info:
        classify(doc, "in.json")
    assert info.value.source == "in.json"


def test_normalize_refuses_other_schemas() -> None:
    assert "unknown schema" in refused({"foo": 1}).message
    assert "web-service definition" in refused({"properties": {"packageType": "Graph"}}).message
    assert "expected a JSON object" in refused([1]).message


def test_classify_kinds() -> None:
    assert classify(small_doc()) == "experiment"
    assert classify({**small_doc(), "ExperimentId": "ws.s-id.g.9953-08-08t05.48.40"}) == "snapshot"
    assert classify({"Properties": {"Package": {}}}) == "wsd"


# --- hand-edited canonical files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("edit", "where", "problem"), [
    (lambda f: f.__setitem__("experiment.json", b"{ nope"), "exp/experiment.json", "invalid JSON at line 1"),
    (lambda f: f.__setitem__("layout.json", b"[]"), "exp/layout.json", "expected an object"),
    (lambda f: f.__setitem__("experiment.json", json.dumps(
        {"$format": rules.EXPERIMENT_FORMAT, "Graph": {"ModuleNodes": []}}).encode()),
     "exp/experiment.json: /Graph/ModuleNodes", "expected an object"),
    (lambda f: f.__setitem__("experiment.json", json.dumps(
        {"$format": rules.EXPERIMENT_FORMAT, "Graph": {"ModuleNodes": {"n": {"ModuleParameters": [
            {"Name": "p", "Value": 3}]}}}}).encode()),
     "exp/experiment.json: /Graph/ModuleNodes/n/ModuleParameters/0/Value", "expected an object"),
    (lambda f: f.__setitem__("experiment.json", json.dumps(
        {"$format": rules.EXPERIMENT_FORMAT, "Graph": {"$absent": "PublishInfo"}}).encode()),
     "exp/experiment.json: /Graph/$absent", "expected a list of key names"),
    (lambda f: f.__setitem__("layout.json", json.dumps(
        {"$format": rules.LAYOUT_FORMAT, "Graph": {"positions": [], "raw": BOMB}}).encode()),
     "exp/layout.json: /Graph/raw", "DTDs and entities"),
])
def test_bad_canonical_files(edit: Any, where: str, problem: str) -> None:
    files = dict(normalize(small_doc()).files)
    edit(files)
    with pytest.raises(InvalidDocument) as info:
        denormalize(files, source="exp")
    assert info.value.message.startswith(where)
    assert problem in info.value.message


def test_merge_conflict_markers_are_not_canonical() -> None:
    result = normalize(small_doc())
    canon = json.loads(result.files["experiment.json"])
    canon["Graph"]["ModuleNodes"]["19956206-a7a7-46db-8849-31aaebf9bea5-1"]["Comment"] = {
        "$conflict": {"base": "", "ours": "a", "theirs": "b", "reason": "both changed"}}
    files = {**result.files, "experiment.json": json.dumps(canon).encode()}
    with pytest.raises(InvalidDocument, match="unresolved merge conflict") as info:
        denormalize(files, source="exp")
    assert info.value.path == "/Graph/ModuleNodes/19956206-a7a7-46db-8849-31aaebf9bea5-1/Comment"
    # the text "$conflict" inside a string is not a marker
    canon["Graph"]["ModuleNodes"]["19956206-a7a7-46db-8849-31aaebf9bea5-1"]["Comment"] = 'say "$conflict"'
    denormalize({**result.files, "experiment.json": json.dumps(canon).encode()}, source="exp")


def test_git_conflict_lines_in_a_script_are_refused() -> None:
    doc = small_doc()
    doc["Graph"]["ModuleNodes"][0]["ModuleParameters"][0] = {"Name": "R Script", "Value": "x <- 1\n"}
    result = normalize(doc)
    name = next(n for n in result.files if n.startswith("scripts/"))
    conflicted = b"<<<<<<< ours\nx <- 1\n=======\nx <- 2\n>>>>>>> theirs\n"
    with pytest.raises(InvalidDocument, match="unresolved merge conflict") as info:
        denormalize({**result.files, name: conflicted}, source="exp")
    assert info.value.source == f"exp/{name}"


# --- fuzzing: anything in, InvalidDocument or a lossless result out ------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from amlvc.canonical.jsonio import loads  # noqa: E402
from amlvc.canonical.roundtrip import verify_roundtrip  # noqa: E402

FUZZ = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
KEYS = ["Graph", "ModuleNodes", "ModuleParameters", "Value", "Name", "Id", "InputPortsInternal", "EdgesInternal",
        "WebService", "Inputs", "Parameters", "SerializedClientData", "DataSourceId", "LinkedGlobalParameter"]


def _replace_somewhere(doc: Any, data: st.DataObject) -> Any:
    """Replace one value at a random path of `doc` by an arbitrary JSON value."""
    target = doc
    for _ in range(data.draw(st.integers(0, 5))):
        if isinstance(target, dict) and target:
            key = data.draw(st.sampled_from(sorted(target)))
            if not isinstance(target[key], dict | list) or not target[key]:
                target[key] = data.draw(json_values)
                return doc
            target = target[key]
        elif isinstance(target, list) and target:
            index = data.draw(st.integers(0, len(target) - 1))
            if not isinstance(target[index], dict | list) or not target[index]:
                target[index] = data.draw(json_values)
                return doc
            target = target[index]
    if isinstance(target, dict):
        target[data.draw(st.sampled_from(KEYS))] = data.draw(json_values)
    return doc


@FUZZ
@given(st.data())
def test_any_mutation_is_refused_cleanly_or_lossless(data: st.DataObject) -> None:
    doc = _replace_somewhere(small_doc(), data)
    try:
        problems = verify_roundtrip(doc, "fuzz.json")
    except InvalidDocument as error:
        assert error.source == "fuzz.json" and "\n" not in error.message
        return
    assert problems == []


@FUZZ
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    try:
        loads(data, "fuzz.json")
    except InvalidDocument as error:
        assert error.message.startswith("fuzz.json: ")


@FUZZ
@given(st.data())
def test_any_edit_of_the_canonical_files_is_refused_cleanly(data: st.DataObject) -> None:
    result = normalize(small_doc())
    canon = _replace_somewhere(json.loads(result.files["experiment.json"]), data)
    layout_doc = _replace_somewhere(json.loads(result.files["layout.json"]), data)
    files = {"experiment.json": json.dumps(canon).encode(), "layout.json": json.dumps(layout_doc).encode()}
    try:
        back = denormalize(files, source="exp")
    except InvalidDocument as error:
        assert error.message.startswith("exp/") and "\n" not in error.message
        return
    assert isinstance(back, dict)


# --- hostile answers from a workspace: pull reads them as strictly as import reads files --------------------------

HOSTILE_WS = "0123456789abcdef0123456789abcdef"


def _answer(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8")


def _valid(exp_id: str, name: str) -> dict[str, Any]:
    return {**small_doc(), "ExperimentId": exp_id, "Description": name, "Etag": "e1", "RunId": None}


HOSTILE_ANSWERS: list[tuple[str, Any, str]] = [
    ("nested 100,000 deep", lambda i: b'{"ExperimentId": "%s", "Graph": ' % i.encode() + b"[" * 100_000
     + b"]" * 100_000 + b"}", "nested too deeply"),
    ("over 64 MiB", lambda i: b'{"ExperimentId": "%s", "Summary": "' % i.encode() + b"x" * (65 << 20) + b'"}',
     "bytes refused"),
    ("no Graph", lambda i: _answer({k: v for k, v in _valid(i, "n").items() if k != "Graph"}), "/Graph: missing"),
    ("Description 42", lambda i: _answer({**_valid(i, "n"), "Description": 42}),
     "/Description: expected a string, got a number"),
    ("Graph a list", lambda i: _answer({**_valid(i, "n"), "Graph": []}), "/Graph: expected an object, got a list"),
    ("duplicate keys", lambda i: _answer(_valid(i, "n"))[:-1] + b', "Summary": "twice"}', "duplicate key"),
    ("NaN", lambda i: _answer(_valid(i, "n"))[:-1] + b', "X": NaN}', "NaN"),
    ("not UTF-8", lambda i: _answer(_valid(i, "n")).replace(b'"n"', b'"\xff"'), "not valid UTF-8"),
    ("a list, not a document", lambda i: b"[1, 2]", "expected an object, got a list"),
]


class _HostileStudio:
    """A workspace answering the Studio API with one given hostile answer (and one valid experiment, unless
    `alone`)."""

    def __init__(self, hostile: Any, alone: bool = False) -> None:
        import http.server
        import threading

        self.ids = {"good": f"{HOSTILE_WS}.f-id.{'a' * 32}", "bad": f"{HOSTILE_WS}.f-id.{'b' * 32}"}
        bodies = {self.ids["good"]: _answer(_valid(self.ids["good"], "Good one")),
                  self.ids["bad"]: hostile(self.ids["bad"])}
        listed = (("Bad one", self.ids["bad"]),) if alone else (("Good one", self.ids["good"]),
                                                                  ("Bad one", self.ids["bad"]))
        listing = _answer([{"ExperimentId": i, "Description": n, "Etag": "e1", "RunId": None, "Category": "user"}
                           for n, i in listed])

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tail = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                body = listing if tail == "experiments" else b"[]" if tail == "modules" else bodies.get(tail)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def repository(self, tmp_path: Path, run_cli: Any) -> tuple[Path, dict[str, str]]:
        """A repository whose remote `dev` is this workspace, and the environment holding its token."""
        root = tmp_path / "repo"
        root.mkdir()
        env = {"HOSTILE_TOKEN": "t"}
        assert run_cli(["init", "--remote", "dev", "--endpoint", self.url, "--workspace-id", HOSTILE_WS,
                        "--token-env", "HOSTILE_TOKEN"], cwd=root, env=env).exit_code == 0
        return root, env

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("what", "hostile", "problem"), HOSTILE_ANSWERS, ids=[a[0] for a in HOSTILE_ANSWERS])
def test_a_hostile_answer_is_refused_and_the_other_experiments_still_pulled(
        tmp_path: Path, run_cli: Any, what: str, hostile: Any, problem: str) -> None:
    import subprocess

    studio = _HostileStudio(hostile)
    try:
        root, env = studio.repository(tmp_path, run_cli)
        result = run_cli(["pull", "--jobs", "2"], cwd=root, env=env)
        assert result.exit_code == ExitCode.VALIDATION, result.stderr
        assert "skipped  bad-one: " in result.stderr and studio.ids["bad"] in result.stderr
        assert problem in result.stderr
        assert result.exception is None  # a message, never a traceback
        pulled = sorted(p.name for p in (root / "experiments").iterdir())
        assert pulled == ["good-one"]
        lock = json.loads((root / "amlvc.lock").read_text(encoding="utf-8"))
        assert sorted(lock["remotes"]["dev"]["experiments"]) == ["good-one"]
        log = subprocess.run(["git", "log", "--format=%s"], cwd=root, capture_output=True, text=True).stdout
        assert log.splitlines()[0] == "Pull from dev: 1 added"
        again = run_cli(["pull", "--json"], cwd=root, env=env)  # still refused, still reported, nothing new
        assert again.exit_code == ExitCode.VALIDATION
        assert [i["experiment"] for i in json.loads(again.stdout)["invalid"]] == ["bad-one"]
    finally:
        studio.close()


@pytest.mark.parametrize(("what", "hostile", "problem"), HOSTILE_ANSWERS, ids=[a[0] for a in HOSTILE_ANSWERS])
def test_a_hostile_answer_alone_leaves_the_repository_byte_for_byte_unchanged(
        tmp_path: Path, run_cli: Any, what: str, hostile: Any, problem: str) -> None:
    import hashlib

    def fingerprint(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and p.name != "index"}

    studio = _HostileStudio(hostile, alone=True)
    try:
        root, env = studio.repository(tmp_path, run_cli)
        before = fingerprint(root)
        result = run_cli(["pull"], cwd=root, env=env)
        assert result.exit_code == ExitCode.VALIDATION, result.stderr
        assert problem in result.stderr and result.exception is None
        assert fingerprint(root) == before
    finally:
        studio.close()
