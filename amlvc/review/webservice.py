"""Change records for webservice.json: the callers' contract (inputs, outputs, parameters) and the rest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from amlvc.canonical.paths import pointer
from amlvc.review import labels
from amlvc.review.records import Change
from amlvc.rules import WEBSERVICE_FILE as WEBSERVICE

_MODULE_URI = "aml://module/"


def get_ci(value: Any, key: str) -> tuple[str, Any]:
    """(actual key, value) of `key` read case-insensitively, as the service reads WSDs; ("", None) if absent."""
    if isinstance(value, Mapping):
        for actual, item in value.items():
            if str(actual).lower() == key.lower():
                return str(actual), item
    return "", None


def _section(doc: Mapping[str, Any], *keys: str) -> tuple[str, Mapping[str, Any]]:
    path, value = "", doc
    for key in keys:
        actual, value = get_ci(value, key)
        path += pointer(actual or key)
    return path, value if isinstance(value, Mapping) else {}


def diff_webservice_file(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[Change]:
    """Records of webservice.json; a definition that appeared or went is one record (its callers are unaffected)."""
    if old is None and new is None:
        return []
    if old is None or new is None:
        present = new if new is not None else old
        _, title = get_ci(_section(present or {}, "properties")[1], "title")
        kind = "webservice.definition_added" if old is None else "webservice.definition_removed"
        shown = str(title) if title else "web service"
        return [Change(kind, "", WEBSERVICE, label=shown, old=None if old is None else shown,
                       new=None if new is None else shown)]
    return diff_wsd(old, new)


def diff_wsd(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Records between two versions of a deployed service's definition: its contract changes can break callers."""
    out: list[Change] = []
    seen: set[str] = set()
    for side in ("input", "output"):
        path_a, ports_a = _section(old, "properties", side, "properties")
        path_b, ports_b = _section(new, "properties", side, "properties")
        seen.add(f"/properties/{side}")
        out.extend(_diff_ports(side, path_a, path_b, ports_a, ports_b))
    path_a, params_a = _section(old, "properties", "parameters")
    path_b, params_b = _section(new, "properties", "parameters")
    seen.add("/properties/parameters")
    for name in sorted(set(params_a) | set(params_b)):
        a, b = params_a.get(name), params_b.get(name)
        if name not in params_b:
            out.append(Change("webservice.parameter_removed", path_a + pointer(name), WEBSERVICE, label=name, old=a,
                              breaking=True))
        elif name not in params_a:
            out.append(Change("webservice.parameter_added", path_b + pointer(name), WEBSERVICE, label=name, new=b,
                              breaking=not _has_value(b)))
        elif a != b:
            out.append(Change("webservice.parameter_changed", path_b + pointer(name), WEBSERVICE, label=name, old=a,
                              new=b, breaking=_has_value(a) and not _has_value(b)))
    out.extend(_asset_kind(c, old, new) for c in _diff_rest(old, new, "", seen))
    return out


def _asset_kind(change: Change, old: Mapping[str, Any], new: Mapping[str, Any]) -> Change:
    """An asset's `locationInfo.uri` is the WSD's asset reference: a module batch bump or another blob."""
    parts = [p.lower() for p in change.path.split("/")[1:]]
    if parts[:2] != ["properties", "assets"] or parts[3:] != ["locationinfo", "uri"]:
        return change
    asset = change.path.split("/")[3]
    _, new_assets = _section(new, "properties", "assets")
    _, old_assets = _section(old, "properties", "assets")
    _, name = get_ci(new_assets.get(asset) or old_assets.get(asset), "name")
    a, b = (str(v).removeprefix(_MODULE_URI) if isinstance(v, str) else v for v in (change.old, change.new))
    same = (isinstance(change.old, str) and isinstance(change.new, str) and change.old.startswith(_MODULE_URI)
            and change.new.startswith(_MODULE_URI) and labels.same_family(a, b))
    return Change("asset.version_changed" if same else "asset.replaced", change.path, WEBSERVICE,
                  label=f"{asset} ({name})" if name else asset, old=change.old, new=change.new,
                  detail=labels.version_detail(a, b) if same else "")


def _has_value(parameter: Any) -> bool:
    _, value = get_ci(parameter, "value") if isinstance(parameter, Mapping) else ("", parameter)
    return value not in (None, "")


def _columns(table: Any) -> Mapping[str, Any]:
    _, columns = get_ci(table, "properties")
    return columns if isinstance(columns, Mapping) else {}


def _diff_ports(side: str, path_a: str, path_b: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> Iterator[Change]:
    kind = f"webservice.{side}"
    for name in sorted(set(a) | set(b)):
        if name not in b:
            yield Change(kind + "_removed", path_a + pointer(name), WEBSERVICE, label=name, old=a[name], breaking=True)
        elif name not in a:
            yield Change(kind + "_added", path_b + pointer(name), WEBSERVICE, label=name, new=b[name],
                         breaking=side == "input")
        elif a[name] != b[name]:
            ca, cb = _columns(a[name]), _columns(b[name])
            removed = sorted(set(ca) - set(cb))
            added = sorted(set(cb) - set(ca))
            retyped = sorted(c for c in set(ca) & set(cb) if ca[c] != cb[c])
            # Callers send every input column and read output columns by name.
            breaking = bool(removed or retyped or (added and side == "input"))
            detail = "; ".join(f"{what}: {', '.join(cols)}" for what, cols in
                               (("columns removed", removed), ("columns added", added), ("columns changed", retyped))
                               if cols) or "schema changed"
            yield Change(kind + "_changed", path_b + pointer(name), WEBSERVICE, label=name, old=a[name], new=b[name],
                         breaking=breaking, detail=detail)


def _diff_rest(old: Any, new: Any, path: str, seen: set[str]) -> Iterator[Change]:
    """Everything outside the contract, one record per changed leaf (a whole object when one side lacks it)."""
    if path.lower() in seen or old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            yield from _diff_rest(old.get(key), new.get(key), path + pointer(key), seen)
        return
    yield Change("webservice.property_changed", path, WEBSERVICE, label=path.lstrip("/").replace("/", "."), old=old,
                 new=new)
