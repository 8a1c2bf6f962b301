"""The canvas layout XML (SerializedClientData): parsed with defusedxml, regenerated from the observed template."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from amlvc import rules
from amlvc.canonical.checks import expect_dict, expect_list, expect_str, fail
from amlvc.canonical.paths import Where, at

# The form the service writes (reference 3.6); anything else is kept verbatim in "raw".
XML_HEAD = (
    "<?xml version='1.0' encoding='utf-16'?><DataV1 xmlns:xsd='http://www.w3.org/2001/XMLSchema' "
    "xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'><Meta />"
)
XML_TAIL = "<NodeGroups /></DataV1>"
_ATTRIBUTE_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;"})


def render(positions: list[dict[str, str]]) -> str:
    """The layout XML of `positions` in the service's own form."""
    if not positions:
        return XML_HEAD + "<NodePositions />" + XML_TAIL
    body = "".join(
        f"<NodePosition Node='{p['node'].translate(_ATTRIBUTE_ESCAPES)}' "
        f"Position='{p['position'].translate(_ATTRIBUTE_ESCAPES)}'/>"
        for p in positions
    )
    return XML_HEAD + "<NodePositions>" + body + "</NodePositions>" + XML_TAIL


def _positions(root: Element) -> list[dict[str, str]] | None:
    """NodePosition entries of a DataV1 document, or None when its shape is not the one amlvc understands."""
    if root.tag != "DataV1":
        return None
    container = root.find("NodePositions")
    if container is None:
        return None
    result: list[dict[str, str]] = []
    for element in container:
        node = element.get("Node")
        position = element.get("Position")
        if element.tag != "NodePosition" or node is None or position is None:
            return None
        result.append({"node": node, "position": position})
    return result


def parse(xml: str, source: str, path: Where) -> dict[str, Any]:
    """The layout.json entry of one SerializedClientData string: {"positions": [...]} plus "raw" when needed."""
    if len(xml) > rules.MAX_LAYOUT_XML or len(xml.encode("utf-8", "surrogatepass")) > rules.MAX_LAYOUT_XML:
        fail(source, path, f"layout XML is over the limit of {rules.MAX_LAYOUT_XML:,} bytes")
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        fail(source, path, f"layout XML refused ({type(exc).__name__}): DTDs and entities are not allowed")
    except (ParseError, ValueError):
        # The service treats the string as opaque; keep what we cannot read, verbatim.
        return {"raw": xml}
    positions = _positions(root)
    if positions is None:
        return {"raw": xml}
    if render(positions) == xml:
        return {"positions": positions}
    return {"positions": positions, "raw": xml}


def unparse(entry: Any, source: str, path: Where) -> str:
    """The SerializedClientData string of a layout.json entry (raw kept while its positions are unchanged)."""
    entry = expect_dict(entry, source, path)
    raw = entry.get("raw")
    if "positions" not in entry:
        if raw is None:
            fail(source, path, "a layout entry needs 'positions' or 'raw'")
        return expect_str(raw, source, at(path, "raw"))
    positions = check_positions(entry["positions"], source, at(path, "positions"))
    if raw is not None:
        raw = expect_str(raw, source, at(path, "raw"))
        if parse(raw, source, at(path, "raw")).get("positions") == positions:
            return raw
    return render(positions)


def check_positions(value: Any, source: str, path: Where) -> list[dict[str, str]]:
    items = expect_list(value, source, path)
    for index, item in enumerate(items):
        where = at(path, index)
        item = expect_dict(item, source, where)
        if set(item) != {"node", "position"}:
            fail(source, where, "a position has exactly the keys 'node' and 'position'")
        expect_str(item["node"], source, at(where, "node"))
        expect_str(item["position"], source, at(where, "position"))
    return items


def node_order(entry: Any) -> dict[str, int]:
    """Index of each node id in a layout entry's positions (the service keeps them in ModuleNodes order)."""
    order: dict[str, int] = {}
    if isinstance(entry, dict) and isinstance(entry.get("positions"), list):
        for index, item in enumerate(entry["positions"]):
            if isinstance(item, dict) and isinstance(item.get("node"), str):  # unparse reports bad entries
                order.setdefault(item["node"], index)
    return order
