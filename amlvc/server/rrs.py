"""Request-Response Service (RRS, api-version 2.0) of the local workspace: `POST …/execute` of endpoints and services.

Reference web-services.md §4.2 and the apihelp page: `POST {ApiLocation}/execute?api-version=2.0[&details=true]`
with `{"Inputs": {"input1": {"ColumnNames": […], "Values": [[…]]}}, "GlobalParameters": {}}` answers
`{"Results": {"output1": {"type": "table", "value": {"ColumnNames", "ColumnTypes", "Values"}}}}`; without
`details=true` there are no `ColumnTypes` (apihelp: "This would cause ColumnTypes to be omitted").
`format=swagger` takes and gives rows as objects. Auth and targets are those of BES (targets.py).
Nothing is computed: each table output is the first input's rows plus, for a service with trained
models, `Scored Labels` and `Scored Probabilities` derived from the row, the graph, the models'
fingerprints and the global parameters — deterministic, and different for another model.
Errors use the catalogue of DOC-ERRORS: `BadArgument` (`RequestBodyInvalid`, `MissingRequestInput`,
`InvalidInputNames`, `UnexpectedParameter`), `BadUserArgument` (`InputMismatchError` for columns that are
not the input's, `InputParseError` for a row of the wrong length), `InvalidOperation`/`IncompatibleModel`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request

from amlvc.server.targets import ServiceFault, Target, bad, load_target
from amlvc.server.wire import json_body, json_response

bp = Blueprint("rrs", __name__)

SCORE_COLUMNS = (("Scored Labels", "String"), ("Scored Probabilities", "Double"))
TRUE = ("true", "1")


@dataclass(frozen=True)
class Table:
    """One input of a request: its column names and rows."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def user_error(code: str, message: str) -> ServiceFault:
    return ServiceFault(400, "BadUserArgument", "Invalid user argument provided.", (code, message))


def _ci(body: Mapping[str, Any], name: str) -> Any:
    return next((value for key, value in body.items() if str(key).lower() == name.lower()), None)


def _table(name: str, value: Any, swagger: bool) -> Table:
    """An input as a Table: `{ColumnNames, Values}`, or with format=swagger a list of row objects."""
    if swagger:
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise bad("RequestBodyInvalid", f"Inputs.{name} must be a list of objects (format=swagger)")
        columns = tuple(str(k) for k in value[0]) if value else ()
        if any(tuple(row) != columns for row in value):
            raise user_error("InputParseError", f"Parsing of input vector failed. Verify the input vector has the "
                                                f"correct number of columns and data types. Additional details: "
                                                f"every row of {name} must have the columns {list(columns)}.")
        return Table(columns, tuple(tuple(row.values()) for row in value))
    if not isinstance(value, dict):
        raise bad("RequestBodyInvalid", f"Inputs.{name} must be an object with ColumnNames and Values")
    columns, values = _ci(value, "ColumnNames"), _ci(value, "Values")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise bad("RequestBodyInvalid", f"Inputs.{name}.ColumnNames must be a list of strings")
    if not isinstance(values, list) or not all(isinstance(row, list) for row in values):
        raise bad("RequestBodyInvalid", f"Inputs.{name}.Values must be a list of rows (lists)")
    for index, row in enumerate(values):
        if len(row) != len(columns):
            raise user_error("InputParseError", f"Parsing of input vector failed. Verify the input vector has the "
                                                f"correct number of columns and data types. Additional details: "
                                                f"{name} row {index} has {len(row)} values for {len(columns)} "
                                                "columns.")
        if any(isinstance(cell, dict | list) for cell in row):
            raise bad("RequestBodyInvalid", f"Inputs.{name} row {index}: a value must be a string, number, "
                                            "boolean or null")
    return Table(tuple(columns), tuple(tuple(row) for row in values))


def _parse(body: Any, target: Target, swagger: bool) -> tuple[dict[str, Table], dict[str, str]]:
    if not isinstance(body, dict):
        raise bad("RequestBodyInvalid", "No request body provided or error in deserializing the request body.")
    given = _ci(body, "Inputs")
    if given is None and target.inputs:
        raise bad("MissingRequestInput", "The web service expects an input, but no input was provided. Ensure "
                                         f"valid inputs are provided ({', '.join(target.inputs)}) and try again.")
    if given is not None and not isinstance(given, dict):
        raise bad("RequestBodyInvalid", "Inputs must be an object mapping input names to tables")
    unknown = [name for name in (given or {}) if name not in target.inputs]
    if unknown:
        raise bad("InvalidInputNames", f"Invalid service input name(s) specified in the request: {', '.join(unknown)}. "
                                       f"Please map the input data to the correct service inputs "
                                       f"({', '.join(target.inputs)}) and try again.")
    tables = {name: _table(name, value, swagger) for name, value in (given or {}).items()}
    for name, table in tables.items():
        expected = target.input_columns.get(name)
        if expected and sorted(table.columns) != sorted(expected):
            raise user_error("InputMismatchError", f"Input data does not match input port schema: {name} has the "
                                                   f"columns {list(expected)}, the request sent "
                                                   f"{list(table.columns)}.")
    parameters = _ci(body, "GlobalParameters") or {}
    if not isinstance(parameters, dict) or any(isinstance(v, dict | list) for v in parameters.values()):
        raise bad("RequestBodyInvalid", "GlobalParameters must map parameter names to values")
    unexpected = [name for name in parameters if name not in target.parameters]
    if unexpected:
        raise bad("UnexpectedParameter", f"Unexpected parameters provided: {', '.join(unexpected)}. Verify all "
                                         "parameter names are spelled correctly, only expected parameters are passed, "
                                         "and try again.")
    return tables, {str(k): "" if v is None else str(v) for k, v in parameters.items()}


def _type_of(values: list[Any]) -> str:
    """The .NET type name of a column, from its values (the local workspace knows no column schema)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "Boolean"
    texts = [str(v) for v in present]
    for name, parse in (("Int32", int), ("Double", float)):
        try:
            for text in texts:
                parse(text)
        except ValueError:
            continue
        return name if texts else "String"
    return "String"


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _score(target: Target, output: str, parameters: Mapping[str, str], columns: tuple[str, ...],
           row: tuple[Any, ...]) -> list[str]:
    material = json.dumps([target.graph, list(target.models), output, dict(sorted(parameters.items())),
                           dict(zip(columns, row, strict=True))], sort_keys=True, default=str)
    probability = int(hashlib.sha256(material.encode()).hexdigest()[:13], 16) / 16**13
    return ["1" if probability >= 0.5 else "0", f"{probability:.15g}"]


def execute(target: Target) -> Response:
    args = {k.lower(): v.lower() for k, v in request.args.items()}
    swagger, details = args.get("format") == "swagger", args.get("details") in TRUE
    tables, parameters = _parse(json_body("mgmt"), target, swagger)
    outputs = [name for name, kind in target.outputs.items() if kind == "dataset"]
    if not outputs:
        raise ServiceFault(400, "InvalidOperation", "The request is invalid in the current context.",
                           ("IncompatibleModel", "The model is incompatible with the request version. The request "
                                                 "version only supports single datatable output models."))
    source = next(iter(tables.values()), Table((), ()))
    scored = SCORE_COLUMNS if target.models else ()
    columns = [*source.columns, *(name for name, _ in scored)]
    types = [_type_of([row[i] for row in source.rows]) for i in range(len(source.columns))] + [t for _, t in scored]
    results: dict[str, Any] = {}
    for output in outputs:
        values: list[list[str | None]] = []
        for row in source.rows:
            scores = _score(target, output, parameters, source.columns, row) if scored else []
            values.append([*(_cell(v) for v in row), *scores])
        if swagger:
            results[output] = [dict(zip(columns, row, strict=True)) for row in values]
        else:
            table: dict[str, Any] = {"ColumnNames": columns}
            if details:
                table["ColumnTypes"] = types
            table["Values"] = values
            results[output] = {"type": "table", "value": table}
    return json_response({"Results": results})


def swagger_path() -> dict[str, Any]:
    """The `/execute` entry of a service's swagger document."""
    parameters = [{"name": "api-version", "in": "query", "required": True, "type": "string", "default": "2.0"},
                  {"name": "details", "in": "query", "required": False, "type": "boolean",
                   "description": "true: the answer carries ColumnTypes"},
                  {"name": "format", "in": "query", "required": False, "type": "string", "enum": ["swagger"]},
                  {"name": "body", "in": "body", "required": True,
                   "schema": {"$ref": "#/definitions/ExecutionRequest"}}]
    return {"post": {"operationId": "ExecuteRequestResponse", "parameters": parameters,
                     "responses": {"200": {"description": "OK",
                                           "schema": {"$ref": "#/definitions/ExecutionResults"}}}}}


def swagger_definitions(target: Target) -> dict[str, Any]:
    """`ExecutionRequest` (with each input's columns where known) and `ExecutionResults` of a service."""
    def table(columns: tuple[str, ...]) -> dict[str, Any]:
        names: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
        if columns:
            names["example"] = list(columns)
        return {"type": "object", "properties": {"ColumnNames": names, "Values": {
            "type": "array", "items": {"type": "array", "items": {"type": "string"}}}}}

    inputs = {name: table(target.input_columns.get(name, ())) for name in target.inputs}
    outputs = {name: {"type": "object", "properties": {"type": {"type": "string"}, "value": table(())}}
               for name, kind in target.outputs.items() if kind == "dataset"}
    parameters = {name: {"type": "string"} for name in target.parameters}
    return {"ExecutionRequest": {"type": "object", "properties": {
                "Inputs": {"type": "object", "properties": inputs},
                "GlobalParameters": {"type": "object", "properties": parameters}}},
            "ExecutionResults": {"type": "object", "properties": {
                "Results": {"type": "object", "properties": outputs}}}}


@bp.post("/workspaces/<ws>/services/<guid>/execute")
def classic_execute(ws: str, guid: str) -> Response:
    return execute(load_target(ws, guid, None))


@bp.post("/subscriptions/<sub>/services/<sid>/execute")
def arm_execute(sub: str, sid: str) -> Response:
    return execute(load_target(None, sid, sub))
