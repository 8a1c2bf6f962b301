"""Canonical webservice.json of web-service definitions (ARM webServices JSON, Studio webservicedefinition)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amlvc import rules
from amlvc.canonical.checks import check_no_reserved, check_tree, expect_dict, expect_list, expect_str, fail
from amlvc.canonical.compare import compare
from amlvc.canonical.jsonio import load_canonical
from amlvc.canonical.normalize import Normalized, dumps
from amlvc.canonical.paths import child
from amlvc.canonical.secrets import SecretNamer, fill, is_secret_name, placeholder, placeholders_in, scrub

_KNOWN = {key.lower(): key for key in rules.WSD_KNOWN_KEYS}
_READ_ONLY_TOP = ("id", "name", "type")
_READ_ONLY_PROPERTIES = ("createdOn", "modifiedOn", "provisioningState", "swaggerLocation")
# Fields that hold a secret as a whole: path patterns over camelCase keys ("*" = any key of a user-named map).
_SECRET_PATHS = {
    ("properties", "keys", "primary"): "KEYS_PRIMARY",
    ("properties", "keys", "secondary"): "KEYS_SECONDARY",
    ("properties", "storageAccount", "key"): "STORAGE_ACCOUNT_KEY",
    ("properties", "assets", "*", "locationInfo", "credentials"): "CREDENTIALS",
    ("properties", "payloadsLocation", "credentials"): "PAYLOADS_CREDENTIALS",
}
_EDGES = ("properties", "package", "edges")
_EDGE_LIST_POINTER = "/properties/package/edges"


def camel(key: str) -> str:
    """The camelCase spelling of a WSD key: the known spelling, else the first letter lowered."""
    known = _KNOWN.get(key.lower())
    if known is not None:
        return known
    return key[:1].lower() + key[1:]


class _WsdNormalizer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.namer = SecretNamer()
        self.volatile: dict[str, Any] = {}

    def value(self, value: Any, shape: tuple[str, ...], path: str, label: str, depth: int = 0) -> Any:
        """Re-case keys (outside user-named maps), scrub secrets, sort package edges."""
        if depth > rules.MAX_DEPTH:
            fail(self.source, path, f"nested deeper than {rules.MAX_DEPTH} levels")
        if isinstance(value, dict):
            user_map = shape in rules.WSD_USER_MAPS
            out: dict[str, Any] = {}
            # Visit keys in the file's (sorted) order, so secret names do not depend on the input's key order.
            keys = sorted((key if user_map else camel(key), key) for key in value)
            for name, key in keys:
                item = value[key]
                if name in out:
                    fail(self.source, child(path, key), f"key {key!r} appears twice (keys are case-insensitive)")
                step = "*" if user_map else name
                out[name] = self.value(item, (*shape, step), child(path, key), key if user_map else label, depth + 1)
            return out
        if isinstance(value, list):
            items = [self.value(item, shape, child(path, index), label, depth + 1)
                     for index, item in enumerate(value)]
            if shape == _EDGES:
                items.sort(key=_edge_key)
            return items
        if isinstance(value, str):
            expect_str(value, self.source, path)
            whole_base = _SECRET_PATHS.get(shape)
            if whole_base is not None:
                if whole_base == "CREDENTIALS":  # one per asset: named after the asset's key
                    return scrub(value, label, None, self.namer, whole=True, suffix="_CREDENTIALS")
                return scrub(value, whole_base, None, self.namer, whole=True)
            if _is_secret_parameter(shape, label):
                return scrub(value, label, None, self.namer, whole=True)
            field = shape[-1] if shape and shape[-1] not in ("*", "value") else ""
            return scrub(value, f"{label} {field}".strip() or "value", None, self.namer, whole=False)
        check_tree(value, self.source, path)
        return value


def _is_secret_parameter(shape: tuple[str, ...], label: str) -> bool:
    """A node parameter or web-service parameter whose name says it holds a secret (2016 and 2017 shapes)."""
    in_parameters = (shape[:2] == ("properties", "parameters")
                     or shape[:5] == ("properties", "package", "nodes", "*", "parameters"))
    if not in_parameters or not is_secret_name(label):
        return False
    # 2016: name -> string; 2017: name -> {value, certificateThumbprint}
    return shape[-1] in ("*", "value")


def _edge_key(edge: Any) -> tuple[str, ...]:
    if not isinstance(edge, dict):
        return ("",) * 4
    return tuple(str(edge.get(key, "")) for key in rules.WSD_EDGE_SORT)


def normalize_wsd(doc: Mapping[str, Any], *, source: str = "<document>") -> Normalized:
    """webservice.json of an ARM or Studio web-service definition; read-only fields go to `volatile`."""
    doc = expect_dict(doc, source, "")
    check_no_reserved(doc, source, "")
    run = _WsdNormalizer(source)
    canon = run.value(doc, (), "", "")
    for key in _READ_ONLY_TOP:
        if key in canon:
            run.volatile[key] = canon.pop(key)
    properties = canon.get("properties")
    if isinstance(properties, dict):
        for key in _READ_ONLY_PROPERTIES:
            if key in properties:
                run.volatile[f"properties.{key}"] = properties.pop(key)
    canon["$format"] = rules.WEBSERVICE_FORMAT
    return Normalized(files={rules.WEBSERVICE_FILE: dumps(canon)}, identity={}, volatile=run.volatile,
                      secrets=run.namer.found)


def _fill(value: Any, secrets: Mapping[str, str] | None, source: str, path: str) -> Any:
    if isinstance(value, str):
        return fill(value, secrets, source, path)
    if isinstance(value, dict):
        return {key: _fill(item, secrets, source, child(path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, secrets, source, child(path, index)) for index, item in enumerate(value)]
    return value


def denormalize_wsd(files: Mapping[str, bytes], *, volatile: Mapping[str, Any] | None = None,
                    secrets: Mapping[str, str] | None = None, source: str = "<files>") -> dict[str, Any]:
    """The web-service definition (camelCase) of webservice.json; secrets filled when given."""
    file_source = f"{source}/{rules.WEBSERVICE_FILE}"
    data = files.get(rules.WEBSERVICE_FILE)
    if data is None:
        fail(file_source, "", "file is missing")
    canon = expect_dict(load_canonical(data, file_source), file_source, "")
    if canon.get("$format") != rules.WEBSERVICE_FORMAT:
        fail(file_source, "/$format", f"expected {rules.WEBSERVICE_FORMAT!r}")
    doc: dict[str, Any] = _fill({key: value for key, value in canon.items() if not key.startswith("$")}, secrets,
                                file_source, "")
    package = doc.get("properties", {}).get("package") if isinstance(doc.get("properties"), dict) else None
    if isinstance(package, dict) and "edges" in package:
        expect_list(package["edges"], file_source, _EDGE_LIST_POINTER)
    for key, value in (volatile or {}).items():
        if key.startswith("properties."):
            if isinstance(doc.get("properties"), dict):
                doc["properties"][key.split(".", 1)[1]] = value
        else:
            doc[key] = value
    return doc


def verify_wsd(doc: Mapping[str, Any], source: str = "<document>") -> list[str]:
    """Lines for every field of a WSD that would not survive the round trip (modulo key case, edges as a set)."""
    result = normalize_wsd(doc, source=source)
    secrets = {name: placeholder(name) for name in placeholders_in(doc)}
    secrets.update(result.secrets)
    back = denormalize_wsd(result.files, volatile=result.volatile, secrets=secrets, source=source)
    problems = compare(dict(doc), back, identity_lists=[_EDGE_LIST_POINTER], fold_case=True)
    again = normalize_wsd(back, source=source)
    if again.files != result.files:
        problems.append(f"{rules.WEBSERVICE_FILE}: normalizing the restored definition changes it (not idempotent)")
    return problems
