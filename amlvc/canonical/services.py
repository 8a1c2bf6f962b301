"""Canonical service.json of a deployed web service, classic or ARM, and its way back to what the service takes.

Classic (reference web-services §3): the service's `Name` and `Description` and an `Endpoints` map, each endpoint
with the settings of an endpoint PUT (`rules.ENDPOINT_SETTINGS`) and `Resources`: resource name -> model version
("churn-model@4", a manifest under models/). Keys, host-bearing URLs, times and ids are left out
(`rules.ENDPOINT_VOLATILE`).

ARM (§2): the definition as `canonical.webservice` writes it (camelCase, read-only fields out, secrets as
`${secret:…}`) without the per-remote parts (`rules.ARM_PER_REMOTE`, the storage account's name: amlvc.toml),
the storage key as `${secret:STORAGE_ACCOUNT_KEY}`, and each trained-model asset whose model amlvc knows
reading `"$model": "churn-model@4"` instead of its `locationInfo`, which becomes the model's uri at push.

No git and no HTTP here: model versions come in as names, uris go out as given.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from amlvc import rules
from amlvc.canonical.checks import expect_dict, expect_str, fail
from amlvc.canonical.jsonio import dumps, load_canonical
from amlvc.canonical.secrets import fill_strings, placeholder
from amlvc.canonical.webservice import normalize_wsd
from amlvc.errors import ValidationError

# uri of a trained-model asset -> model version, or None when amlvc cannot name the model behind it
ModelNamer = Callable[[str], str | None]


def parse_ref(text: str, where: str = "--model") -> tuple[str, int]:
    """("churn-model", 4) of "churn-model@4"; ValidationError (6) otherwise."""
    match = rules.MODEL_REF.match(text.strip())
    if match is None:
        raise ValidationError(f"{where}: {text!r} is not a model version; write NAME@VERSION (e.g. churn-model@4, "
                              f"a manifest under {rules.MODELS_DIR}/)")
    return match.group("name"), int(match.group("version"))


def ref(name: str, version: int) -> str:
    return f"{name}@{version}"


def dumps_service(canon: Mapping[str, Any]) -> bytes:
    return dumps(dict(canon))


def load(data: bytes | None, source: str) -> dict[str, Any]:
    """service.json parsed and its shape checked; InvalidDocument (6) naming the file and the JSON path."""
    canon = expect_dict(load_canonical(data, source), source, "")
    if canon.get("$format") != rules.SERVICE_FORMAT:
        fail(source, "/$format", f"expected {rules.SERVICE_FORMAT!r}")
    kind = canon.get("$kind")
    if kind not in rules.SERVICE_KINDS:
        fail(source, "/$kind", f"expected one of {', '.join(rules.SERVICE_KINDS)}")
    if kind == "classic":
        endpoints = expect_dict(canon.get("Endpoints"), source, "/Endpoints")
        for name, endpoint in endpoints.items():
            where = f"/Endpoints/{name}"
            resources = expect_dict(expect_dict(endpoint, source, where).get("Resources", {}), source,
                                    f"{where}/Resources")
            for resource, value in resources.items():
                parse_ref(expect_str(value, source, f"{where}/Resources/{resource}"), f"{source}: {where}")
    else:
        properties = expect_dict(canon.get("properties"), source, "/properties")
        for asset_id, asset in expect_dict(properties.get("assets", {}), source, "/properties/assets").items():
            where = f"/properties/assets/{asset_id}"
            named = expect_dict(asset, source, where).get(rules.MODEL_REF_KEY)
            if named is not None:
                parse_ref(expect_str(named, source, f"{where}/{rules.MODEL_REF_KEY}"), f"{source}: {where}")
    return canon


# -- classic --------------------------------------------------------------------------------------------------


def classic_document(service: Mapping[str, Any], endpoints: Sequence[Mapping[str, Any]],
                     resource_ref: Callable[[str, Mapping[str, Any]], str], *,
                     experiment: str | None) -> dict[str, Any]:
    """service.json of a classic service: `resource_ref(endpoint, resource)` names each resource's model version."""
    out: dict[str, Any] = {"$format": rules.SERVICE_FORMAT, "$kind": "classic", "Name": service.get("Name"),
                           "Description": service.get("Description") or "", "Endpoints": {}}
    if experiment:
        out["$experiment"] = experiment
    for endpoint in endpoints:
        name = str(endpoint.get("Name"))
        entry = {key: endpoint.get(key) for key in rules.ENDPOINT_SETTINGS if key in endpoint}
        entry["Resources"] = {str(r.get("Name")): resource_ref(name, r) for r in endpoint.get("Resources") or []
                              if isinstance(r, Mapping)}
        out["Endpoints"][name] = entry
    return out


def endpoint_settings(canon: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The members of an endpoint PUT (Add-AmlWebServiceEndpoint) for endpoint `name`."""
    entry = canon["Endpoints"][name]
    body = {key: entry[key] for key in rules.ENDPOINT_SETTINGS if key in entry}
    if body.get("ThrottleLevel") == "Low":
        body["MaxConcurrentCalls"] = None  # what azuremlps sends for Low (the service fixes it at 4)
    return body


def resources_of(canon: Mapping[str, Any], name: str) -> dict[str, str]:
    return dict((canon.get("Endpoints", {}).get(name) or {}).get("Resources") or {})


# -- ARM ------------------------------------------------------------------------------------------------------


def _is_model_asset(asset: Mapping[str, Any]) -> bool:
    uri = str((asset.get("locationInfo") or {}).get("uri") or "").split("?")[0]
    return str(asset.get("type", "")).lower() == "resource" and (
        rules.MODEL_REF_KEY in asset or uri.lower().endswith(".ilearner")
        or str(asset.get("name", "")).endswith(rules.TRAINED_MODEL_SUFFIX))


def model_assets(canon: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """asset id -> asset of every trained-model asset of an ARM service.json (a `Resource` with an .ilearner)."""
    assets = (canon.get("properties") or {}).get("assets") or {}
    return {asset_id: asset for asset_id, asset in sorted(assets.items())
            if isinstance(asset, dict) and _is_model_asset(asset)}


def arm_document(doc: Mapping[str, Any], namer: ModelNamer, *, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(service.json, read-only fields) of an ARM definition (a GET of webServices, or a Studio export)."""
    normalized = normalize_wsd(doc, source=source)
    canon = load_canonical(normalized.files[rules.WEBSERVICE_FILE], source)
    canon.update({"$format": rules.SERVICE_FORMAT, "$kind": "arm"})
    properties = canon.setdefault("properties", {})
    for key in rules.ARM_PER_REMOTE:
        properties.pop(key, None)
    properties.pop("keys", None)  # written by the service, read by listKeys: never a file's business
    properties["storageAccount"] = {"key": placeholder(rules.STORAGE_KEY_SECRET)}
    for asset in model_assets(canon).values():
        uri = (asset.get("locationInfo") or {}).get("uri")
        named = namer(str(uri)) if isinstance(uri, str) else None
        if named is not None:
            asset.pop("locationInfo", None)
            asset[rules.MODEL_REF_KEY] = named
    return canon, dict(normalized.volatile)


def arm_definition(canon: Mapping[str, Any], *, per_remote: Mapping[str, Any], model_uris: Mapping[str, str],
                   secrets: Mapping[str, str], source: str) -> dict[str, Any]:
    """The definition a PUT or PATCH sends: per-remote parts added (`per_remote`: location, storageAccount,
    commitmentPlan, machineLearningWorkspace, each only when given), `$model` assets pointed at `model_uris`
    (asset id -> uri) and placeholders filled from `secrets` (MissingSecret, exit 6, when one has no value; a
    storage key without a value is left out, which an update allows)."""
    doc = {key: copy.deepcopy(value) for key, value in canon.items() if not key.startswith("$")}
    properties = doc.setdefault("properties", {})
    account = dict(per_remote.get("storageAccount") or {})
    if rules.STORAGE_KEY_SECRET in secrets:
        account["key"] = placeholder(rules.STORAGE_KEY_SECRET)
    properties.pop("storageAccount", None)
    if account:
        properties["storageAccount"] = account
    for key in ("commitmentPlan", "machineLearningWorkspace"):
        if per_remote.get(key):
            properties[key] = dict(per_remote[key])
    if per_remote.get("location"):
        doc["location"] = per_remote["location"]
    for asset_id, asset in (properties.get("assets") or {}).items():
        if isinstance(asset, dict) and rules.MODEL_REF_KEY in asset:
            asset.pop(rules.MODEL_REF_KEY)
            asset["locationInfo"] = {"uri": model_uris[asset_id], "credentials": ""}
    filled: dict[str, Any] = fill_strings(doc, secrets, source)
    return filled


def changed_properties(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The top-level members of `properties` whose canonical values differ (what a PATCH sends)."""
    a, b = old.get("properties") or {}, new.get("properties") or {}
    return sorted(key for key in set(a) | set(b) if a.get(key) != b.get(key))


# -- three-way merge of two edits of one service.json ------------------------------------------------------------


def merge3(base: Any, ours: Any, theirs: Any, path: str = "") -> tuple[Any, list[str]]:
    """Merge member by member: a side that left a value as it was takes the other side's; both changed it alike,
    it; both differently, a conflict (its JSON Pointer in the list; ours is kept there)."""
    if ours == theirs or theirs == base:
        return ours, []
    if ours == base:
        return theirs, []
    if isinstance(base, dict) and isinstance(ours, dict) and isinstance(theirs, dict):
        merged: dict[str, Any] = {}
        conflicts: list[str] = []
        missing = object()
        for key in sorted(set(base) | set(ours) | set(theirs)):
            value, found = merge3(base.get(key, missing), ours.get(key, missing), theirs.get(key, missing),
                                  f"{path}/{key}")
            conflicts += found
            if value is not missing:
                merged[key] = value
        return merged, conflicts
    return ours, [path or "/"]
