"""The HTML report opens in headless Chromium: nodes drawn from layout.json, changed ones marked, no network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browserkit import chromium, needs_chromium
from reviewkit import fixture_files

from amlvc.render import render
from amlvc.review.diff import diff_trees
from amlvc.review.parsed import Parsed as Tree

pytestmark = needs_chromium

# Appended to a copy of the report: what the browser actually laid out and painted, written into the DOM.
PROBE = """<script>
var out = {nodes: [], changes: document.querySelectorAll('li.change').length};
document.querySelectorAll('g.node').forEach(function (g) {
  var box = g.getBBox(); var rect = g.querySelector('rect');
  out.nodes.push({id: g.dataset.nodeId, state: g.dataset.state, width: box.width, height: box.height,
                  fill: getComputedStyle(rect).fill, stroke: getComputedStyle(rect).stroke});
});
var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


@pytest.fixture(scope="module")
def report() -> tuple[str, dict[str, str]]:
    base = Tree.from_files(fixture_files("training--base"))
    variant = Tree.from_files(fixture_files("training--node-added"))
    exp = json.loads(json.dumps(variant.experiment))
    changed = next(i for i, n in exp["Graph"]["ModuleNodes"].items() if n["$module"]["name"] == "Split Data")
    exp["Graph"]["ModuleNodes"][changed]["Comment"] = "now 80/20"
    d = diff_trees(base, Tree(exp, variant.layout, variant.scripts, None), "training")
    states = {c.node: "added" if c.kind == "node.added" else "changed" for c in d.changes if c.node}
    return render([d], "html", title="PR review"), states


def test_report_is_self_contained(report: tuple[str, dict[str, str]]) -> None:
    html, _ = report
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html


def test_report_renders_nodes_and_marks_changes(tmp_path: Path, report: tuple[str, dict[str, str]]) -> None:
    html, states = report
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    shot = tmp_path / "report.png"
    taken = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1000", page.as_uri())
    assert shot.is_file(), taken.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

    dumped = chromium(tmp_path, "--dump-dom", page.as_uri())
    match = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert match, dumped.stderr[-2000:]
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    nodes = {n["id"]: n for n in probe["nodes"]}
    assert len([n for n in nodes if not n.startswith("asset:")]) == 13  # the base's 12 nodes and the added one
    assert [n["state"] for i, n in nodes.items() if i.startswith("asset:")] == ["unchanged"]  # the dataset
    assert all(n["width"] > 0 and n["height"] > 0 for n in nodes.values())  # laid out and drawn
    assert {i: n["state"] for i, n in nodes.items() if n["state"] != "unchanged"} == states
    assert sorted(states.values()) == ["added", "changed"]
    added = next(n for i, n in nodes.items() if states.get(i) == "added")
    changed = next(n for i, n in nodes.items() if states.get(i) == "changed")
    plain = next(n for n in nodes.values() if n["state"] == "unchanged")
    assert added["fill"] == "rgb(218, 251, 225)" and changed["fill"] == "rgb(255, 248, 197)"
    assert plain["fill"] == "rgb(255, 255, 255)"
    assert probe["changes"] == 4  # node added, comment, edge added, layout
