"""Column-picker codec: encodeURIComponent(JSON.stringify(picker)) to a decoded object and back, byte-exact."""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import quote, unquote

from amlvc import rules


def _ordered(obj: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """The browser's key order: known keys first in table order, the rest sorted (as they come back from git)."""
    known = [key for key in order if key in obj]
    rest = sorted(key for key in obj if key not in order)
    return {key: obj[key] for key in (*known, *rest)}


def _ordered_rule(rule: Any) -> Any:
    if type(rule) is dict and rule.keys() == _PLAIN_RULE:  # the common shape, in one step
        return {"ruleType": rule["ruleType"], "columns": rule["columns"], "exclude": rule["exclude"]}
    return _ordered(rule, rules.COLUMN_RULE_KEY_ORDER) if isinstance(rule, dict) else rule


_PLAIN_RULE = {"ruleType", "columns", "exclude"}
_PICKER_KEYS = frozenset(rules.COLUMN_PICKER_KEY_ORDER)


def _with_order(picker: dict[str, Any]) -> dict[str, Any]:
    if picker.keys() <= _PICKER_KEYS:
        result = {key: picker[key] for key in rules.COLUMN_PICKER_KEY_ORDER if key in picker}
    else:
        result = _ordered(picker, rules.COLUMN_PICKER_KEY_ORDER)
    rule_list = result.get("rules")
    if isinstance(rule_list, list):
        result["rules"] = [_ordered_rule(rule) for rule in rule_list]
    return result


_UNRESERVED = frozenset(string.ascii_letters + string.digits + "_.-~" + rules.URI_COMPONENT_SAFE)
# ASCII fast path of urllib.parse.quote (which walks bytes in Python): same output, one C call.
_ASCII_ESCAPES = {code: f"%{code:02X}" for code in range(128) if chr(code) not in _UNRESERVED}


def uri_component(text: str) -> str:
    """encodeURIComponent(text)."""
    if text.isascii():
        return text.translate(_ASCII_ESCAPES)
    return quote(text, safe=rules.URI_COMPONENT_SAFE)


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(picker: dict[str, Any]) -> str:
    """encodeURIComponent(JSON.stringify(picker)) with the browser's key order."""
    return uri_component(_COMPACT.encode(_with_order(picker)))


_ASCII_ESCAPE = re.compile(r"%[0-7][0-9A-F]")
_OTHER_ESCAPE = re.compile(r"%(?![0-7][0-9A-F])")


def uri_decode(value: str) -> str:
    """decodeURIComponent; raises UnicodeDecodeError on a malformed UTF-8 sequence."""
    if not value.isascii() or _OTHER_ESCAPE.search(value):
        return unquote(value, errors="strict")
    # Only ASCII escapes: one C-level replace per distinct escape ("%25" last, so "%2541" stays "%41").
    escapes = set(_ASCII_ESCAPE.findall(value))
    percent = "%25" in escapes
    escapes.discard("%25")
    for escape in escapes:
        value = value.replace(escape, chr(int(escape[1:], 16)))
    return value.replace("%25", "%") if percent else value


def decode(value: str) -> dict[str, Any] | None:
    """The decoded picker when `value` is one and re-encoding gives the very same bytes; else None."""
    if not value.startswith(rules.COLUMN_PICKER_PREFIX):
        return None
    try:
        text = uri_decode(value)
        obj = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or not any(marker in obj for marker in rules.COLUMN_PICKER_MARKERS):
        return None
    try:
        if encode(obj) != value:
            return None
    except ValueError:
        return None
    return obj
