"""Checks of documents against the canonical form's shapes and limits; every failure names the JSON path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, NoReturn

from amlvc import rules
from amlvc.canonical.paths import Where, child, pointer_of
from amlvc.errors import InvalidDocument

DocumentKind = Literal["experiment", "wsd", "snapshot"]
_INFINITY = float("inf")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def fail(source: str, path: Where, problem: str) -> NoReturn:
    raise InvalidDocument(source, pointer_of(path), problem)


def expect_dict(value: Any, source: str, path: Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(source, path, f"expected an object, got {type_name(value)}")
    return value


def expect_list(value: Any, source: str, path: Where) -> list[Any]:
    if not isinstance(value, list):
        fail(source, path, f"expected a list, got {type_name(value)}")
    return value


def expect_str(value: Any, source: str, path: Where) -> str:
    if not isinstance(value, str):
        fail(source, path, f"expected a string, got {type_name(value)}")
    if len(value) > rules.MAX_STRING_LENGTH:
        fail(source, path, f"string of {len(value):,} characters is over the limit of {rules.MAX_STRING_LENGTH:,}")
    return value


def expect_opt_str(value: Any, source: str, path: Where) -> str | None:
    if value is None:
        return None
    return expect_str(value, source, path)


def check_tree(value: Any, source: str, path: Where, depth: int = 0) -> None:
    """Check a pass-through value: every string within the length limit, nesting within MAX_DEPTH."""
    if isinstance(value, str):
        if len(value) > rules.MAX_STRING_LENGTH:
            expect_str(value, source, path)
    elif isinstance(value, dict):
        if depth >= rules.MAX_DEPTH:
            fail(source, path, f"nested deeper than {rules.MAX_DEPTH} levels")
        for key, item in value.items():
            if type(item) is str:
                if len(item) > rules.MAX_STRING_LENGTH:
                    expect_str(item, source, (path, key))
            elif isinstance(item, dict | list | float):
                check_tree(item, source, (path, key), depth + 1)
    elif isinstance(value, list):
        if depth >= rules.MAX_DEPTH:
            fail(source, path, f"nested deeper than {rules.MAX_DEPTH} levels")
        for index, item in enumerate(value):
            if type(item) is str:
                if len(item) > rules.MAX_STRING_LENGTH:
                    expect_str(item, source, (path, index))
            elif isinstance(item, dict | list | float):
                check_tree(item, source, (path, index), depth + 1)
    elif isinstance(value, float) and (value != value or value in (_INFINITY, -_INFINITY)):
        fail(source, path, "NaN and infinite numbers are not JSON values")


def check_no_reserved(keys: Iterable[str], source: str, path: Where) -> None:
    """Keys starting with '$' are amlvc's annotations; a document that already uses them cannot round-trip."""
    for key in keys:
        if key[:1] == "$":
            fail(source, (path, key), "keys starting with '$' are reserved for amlvc annotations")


def find_surrogate(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "/"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = find_surrogate(key, child(path, key)) or find_surrogate(item, child(path, key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_surrogate(item, child(path, index))
            if found:
                return found
    return None


def _lower_keys(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {key.lower(): value for key, value in doc.items()}


def classify(doc: Any, source: str = "<document>") -> DocumentKind:
    """Tell a GET-experiment document, a run-history snapshot and a web-service definition apart."""
    if not isinstance(doc, dict):
        fail(source, "", f"unknown schema: expected a JSON object, got {type_name(doc)}")
    if "Graph" in doc or "ExperimentId" in doc:
        experiment_id = doc.get("ExperimentId")
        if isinstance(experiment_id, str) and ".s-id." in experiment_id:
            return "snapshot"
        if doc.get("IsLeaf") is False:
            return "snapshot"
        return "experiment"
    lowered = _lower_keys(doc)
    properties = lowered.get("properties")
    if isinstance(properties, dict):
        inner = _lower_keys(properties)
        if "package" in inner or "packagetype" in inner or "assets" in inner:
            return "wsd"
    fail(source, "", "unknown schema: neither a GET-experiment document (no 'Graph') nor a web-service "
                     "definition (no 'properties.package'); export it with Export-AmlExperimentGraph or "
                     "Export-AzMlWebService")


# --- canonical files: the shapes amlvc's own files must have, and merge conflict markers ---------------------


def _expect(value: Any, kind: type, source: str, path: str, optional: bool = True) -> Any:
    if value is None and optional:
        return kind()
    if not isinstance(value, kind):
        wanted = "an object" if kind is dict else "a list"
        raise InvalidDocument(source, path, f"expected {wanted}, got {type(value).__name__}; run "
                                            "`amlvc normalize --check` to see what is wrong with the file")
    return value


def experiment_shape(doc: dict[str, Any], source: str) -> dict[str, Any]:
    """A canonical experiment.json has the shapes the diff and the merge walk (objects and lists where expected)."""
    graph = _expect(doc.get("Graph"), dict, source, "/Graph")
    nodes = _expect(graph.get("ModuleNodes"), dict, source, "/Graph/ModuleNodes")
    for node_id, node in nodes.items():
        where = f"/Graph/ModuleNodes/{node_id}"
        _expect(node, dict, source, where, optional=False)
        for key in ("ModuleParameters", "InputPortsInternal", "OutputPortsInternal"):
            for index, item in enumerate(_expect(node.get(key), list, source, f"{where}/{key}")):
                _expect(item, dict, source, f"{where}/{key}/{index}", optional=False)
    for index, edge in enumerate(_expect(graph.get("EdgesInternal"), list, source, "/Graph/EdgesInternal")):
        _expect(edge, dict, source, f"/Graph/EdgesInternal/{index}", optional=False)
    ws = _expect(doc.get("WebService"), dict, source, "/WebService")
    for key in ("Inputs", "Outputs", "Parameters"):
        for index, item in enumerate(_expect(ws.get(key), list, source, f"/WebService/{key}")):
            _expect(item, dict, source, f"/WebService/{key}/{index}", optional=False)
    return doc


def layout_shape(doc: dict[str, Any], source: str) -> dict[str, Any]:
    for canvas in ("Graph", "WebService"):
        section = _expect(doc.get(canvas), dict, source, f"/{canvas}")
        for index, item in enumerate(_expect(section.get("positions"), list, source, f"/{canvas}/positions")):
            _expect(item, dict, source, f"/{canvas}/positions/{index}", optional=False)
    return doc


def find_conflict(value: Any, path: str = "") -> str | None:
    """JSON Pointer of the first `$conflict` marker in value (inner markers first), or None."""
    if isinstance(value, dict):
        if rules.CONFLICT_KEY in value and path:
            return path
        for key, item in value.items():
            if key == rules.CONFLICT_KEY:
                continue
            found = find_conflict(item, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}")
            if found is not None:
                return found
        if rules.CONFLICT_KEY in value:
            return "/"
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_conflict(item, f"{path}/{index}")
            if found is not None:
                return found
    return None
