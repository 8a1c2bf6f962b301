"""Column-picker codec: decoded only when re-encoding gives the very same bytes."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from amlvc.canonical import columns

LABELS = ("%7B%22isFilter%22%3Atrue%2C%22rules%22%3A%5B%7B%22ruleType%22%3A%22ColumnNames%22%2C%22columns%22%3A"
          "%5B%22labels%22%5D%2C%22exclude%22%3Afalse%7D%5D%7D")


def test_reference_value_decodes_and_reencodes() -> None:
    picker = columns.decode(LABELS)
    assert picker == {"isFilter": True, "rules": [{"ruleType": "ColumnNames", "columns": ["labels"],
                                                   "exclude": False}]}
    assert columns.encode(picker) == LABELS
    # keys come back from git sorted; the encoder restores the browser's order
    assert columns.encode(json.loads(json.dumps(picker, sort_keys=True))) == LABELS


def test_captured_values_are_byte_exact(captured: Path) -> None:
    doc = json.loads((captured / "experiment-training-2016.json").read_text(encoding="utf-8"))
    values = [p["Value"] for n in doc["Graph"]["ModuleNodes"] for p in n["ModuleParameters"]
              if p["Value"].startswith("%7B")]
    assert len(values) == 4
    for value in values:
        picker = columns.decode(value)
        assert picker is not None and columns.encode(picker) == value


@pytest.mark.parametrize("value", [
    "labels",  # not encoded
    "%7Bnot json",
    "%7B%22a%22%3A1%7D",  # JSON object, but not a picker
    "%7B%22rules%22%3A%5B%5D%2C%22isFilter%22%3Atrue%7D",  # another key order: kept raw
    "%7B%22isFilter%22%3A%20true%7D",  # a space the browser would not write
    "%7b%22isFilter%22%3Atrue%7D",  # lower-case escapes
    "%7B%22isFilter%22%3Atrue%7D%FF",  # invalid UTF-8
])
def test_values_that_would_not_reencode_stay_raw(value: str) -> None:
    assert columns.decode(value) is None


def test_non_ascii_and_ui_block() -> None:
    picker = {"isFilter": True, "rules": [{"ruleType": "ColumnNames", "columns": ["Étiquette", "名前"],
                                           "exclude": False}], "ui": {"withRules": True}}
    value = columns.encode(picker)
    assert value == quote(json.dumps(picker, separators=(",", ":"), ensure_ascii=False), safe="!~*'()")
    assert columns.decode(value) == picker


def test_uri_component_matches_quote_on_every_ascii_character() -> None:
    text = "".join(chr(code) for code in range(128))
    assert columns.uri_component(text) == quote(text, safe="!~*'()")


def test_uri_decode_matches_unquote() -> None:
    from urllib.parse import unquote

    for text in ["", "abc", "%7B%22a%22%7D", "%2541", "%25%7B", "%C3%A9t%C3%A9", "100%", "%7b", "%2", "a%20b%3D"]:
        assert columns.uri_decode(text) == unquote(text, errors="strict"), text
