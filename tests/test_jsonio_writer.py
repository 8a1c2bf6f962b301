"""The canonical writer: byte for byte the standard library's sorted, indented JSON, on orjson's path and off it."""

from __future__ import annotations

import enum
import json
import math
import os
from collections import OrderedDict
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amlvc.canonical import jsonio
from amlvc.canonical.jsonio import dumps

SETTINGS = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "300")), deadline=None)


def reference(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
scalars = st.one_of(st.none(), st.booleans(), text, st.integers(min_value=-(2**70), max_value=2**70),
                    st.integers(min_value=-(2**63), max_value=2**64 - 1))
numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([1e-05, 1.5e-07, 0.00001234, 1e16, 1e22, -0.0, 5e-324, 123.0]))


def documents(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, max_size=4), st.tuples(children, children),
        st.dictionaries(text, children, max_size=4)), max_leaves=25)


@SETTINGS
@given(documents(scalars))
def test_plain_documents_go_through_orjson_byte_for_byte(value: Any) -> None:
    assert jsonio._plain(value)
    if ints_fit(value):  # else orjson refuses it and the other writer takes it
        assert orjson.dumps(value, option=jsonio._ORJSON) == reference(value)
    assert dumps(value) == reference(value)


@SETTINGS
@given(documents(st.one_of(scalars, numbers)))
def test_documents_with_numbers_of_any_kind_match_the_standard_library(value: Any) -> None:
    assert dumps(value) == reference(value)


def ints_fit(value: Any) -> bool:
    """orjson writes integers within [-2**63, 2**64) and refuses the others."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    items = value.values() if isinstance(value, dict) else value
    return all(ints_fit(item) for item in items)


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


@pytest.mark.parametrize("value", [
    {"a": 1e-05}, [0.00001234, 1.5e-07], {"x": 1e16}, 2**64, -(2**63) - 1, {"n": [2**70]},
    {1: "int key"}, {"b": 1, "a": (1, [2, {}])}, OrderedDict(b=1, a=2), {"k": Colour.RED}, {"k": Text("t")},
    {Text("k"): "v"}, "\u2028\x00\x7f\x1f\b\f", [[[[[]]]]],
])
def test_values_orjson_would_spell_otherwise_take_the_exact_writer(value: Any) -> None:
    assert dumps(value) == reference(value)


def test_nan_and_infinity_are_refused_as_before() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            dumps({"x": [bad]})


def test_a_lone_surrogate_fails_to_encode_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        dumps({"x": "\ud800"})


def test_deep_nesting_past_orjson_limit_still_writes() -> None:
    value: Any = []
    for _ in range(300):
        value = [value]
    assert dumps(value) == reference(value)
