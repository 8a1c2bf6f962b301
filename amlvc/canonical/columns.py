"""Column-picker codec: encodeURIComponent(JSON.stringify(picker)) to a decoded object and back, byte-exact."""

from __future__ import annotations

import json
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
_UNSAFE_CHARS = frozenset(chr(code) for code in _ASCII_ESCAPES)


def uri_component(text: str) -> str:
    """encodeURIComponent(text)."""
    if not text.isascii():
        return quote(text, safe=rules.URI_COMPONENT_SAFE)
    unsafe = set(text).intersection(_UNSAFE_CHARS)
    if "%" in unsafe:  # escape the escape character first
        text = text.replace("%", "%25")
        unsafe.discard("%")
    for char in unsafe:  # one C-level replace per distinct character (a picker has about eight)
        text = text.replace(char, _ASCII_ESCAPES[ord(char)])
    return text


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(picker: dict[str, Any]) -> str:
    """encodeURIComponent(JSON.stringify(picker)) with the browser's key order."""
    return uri_component(_COMPACT.encode(_with_order(picker)))


# What JSON.stringify output escapes to; decoded by plain replaces, the rest by urllib.
_JSON_ESCAPES = (("%22", '"'), ("%7B", "{"), ("%7D", "}"), ("%3A", ":"), ("%2C", ","), ("%5B", "["), ("%5D", "]"),
                 ("%20", " "))


def uri_decode(value: str) -> str:
    """decodeURIComponent; raises UnicodeDecodeError on a malformed UTF-8 sequence."""
    if "%25" not in value:
        text = value
        for escape, char in _JSON_ESCAPES:
            if escape in text:
                text = text.replace(escape, char)
        if "%" not in text:
            return text
    return unquote(value, errors="strict")


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
