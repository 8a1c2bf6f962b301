"""Layout XML: template regeneration, raw fallback, hostile XML refused with the path."""

from __future__ import annotations

import pytest

from amlvc import rules
from amlvc.canonical import layout
from amlvc.errors import InvalidDocument

POSITIONS = [{"node": "a-1", "position": "40,-180,200,200"}, {"node": "b&'<2", "position": "1,2,3,4"}]


def test_template_round_trip_without_raw() -> None:
    xml = layout.render(POSITIONS)
    assert xml.startswith("<?xml version='1.0' encoding='utf-16'?><DataV1 ")
    assert "Node='b&amp;&apos;&lt;2'" in xml
    assert layout.parse(xml, "f", "/Graph/SerializedClientData") == {"positions": POSITIONS}
    assert layout.unparse({"positions": POSITIONS}, "f", "/Graph") == xml


def test_empty_positions() -> None:
    xml = layout.render([])
    assert "<NodePositions />" in xml
    assert layout.parse(xml, "f", "") == {"positions": []}


def test_other_forms_keep_raw_while_positions_unchanged() -> None:
    xml = layout.render(POSITIONS).replace("<NodeGroups />", "<NodeGroups><Group Id='g'/></NodeGroups>")
    entry = layout.parse(xml, "f", "")
    assert entry == {"positions": POSITIONS, "raw": xml}
    assert layout.unparse(entry, "f", "") == xml
    moved = {"positions": [POSITIONS[0], {"node": "b&'<2", "position": "9,9,3,4"}], "raw": xml}
    assert layout.unparse(moved, "f", "") == layout.render(moved["positions"])


def test_double_quoted_attributes_are_kept_raw() -> None:
    xml = layout.render(POSITIONS[:1]).replace("Node='a-1'", 'Node="a-1"')
    assert layout.parse(xml, "f", "")["raw"] == xml


def test_unreadable_layout_is_kept_verbatim() -> None:
    for text in ("", "not xml", "<a><b></a>", "<Other/>"):
        entry = layout.parse(text, "f", "")
        assert entry == {"raw": text}
        assert layout.unparse(entry, "f", "") == text


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<DataV1><NodePositions><NodePosition Node="&lol3;" Position="1"/></NodePositions></DataV1>"""


@pytest.mark.parametrize("xml", [
    BOMB,
    "<!DOCTYPE DataV1 SYSTEM 'http://example.com/x.dtd'><DataV1/>",
    "<!DOCTYPE DataV1 [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><DataV1>&x;</DataV1>",
])
def test_hostile_xml_is_refused_with_path(xml: str) -> None:
    with pytest.raises(InvalidDocument) as info:
        layout.parse(xml, "exp.json", "/Graph/SerializedClientData")
    assert info.value.source == "exp.json"
    assert info.value.path == "/Graph/SerializedClientData"
    assert "DTDs and entities are not allowed" in info.value.message


def test_oversized_xml_is_refused() -> None:
    xml = "<DataV1>" + " " * rules.MAX_LAYOUT_XML + "</DataV1>"
    with pytest.raises(InvalidDocument, match="over the limit"):
        layout.parse(xml, "exp.json", ("", "Graph"))


@pytest.mark.parametrize(("entry", "problem"), [
    ([], "expected an object"),
    ({}, "needs 'positions' or 'raw'"),
    ({"positions": [{"node": 1, "position": "1"}]}, "expected a string"),
    ({"positions": [{"node": "a"}]}, "exactly the keys"),
    ({"raw": 5}, "expected a string"),
])
def test_bad_layout_entries(entry: object, problem: str) -> None:
    with pytest.raises(InvalidDocument, match=problem):
        layout.unparse(entry, "layout.json", "/Graph")


def test_node_order() -> None:
    assert layout.node_order({"positions": POSITIONS}) == {"a-1": 0, "b&'<2": 1}
    assert layout.node_order({"raw": "x"}) == {}
    assert layout.node_order(None) == {}
