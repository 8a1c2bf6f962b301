"""The standalone report: per experiment the graph (render/svg.py) to pan and zoom, the changes beside it."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from amlvc.render.common import active, describe, size, summary
from amlvc.render.svg import svg
from amlvc.review.records import Change, ExperimentDiff

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#fff}
header{padding:12px 20px;border-bottom:1px solid #d0d7de;background:#f6f8fa}h1{font-size:20px;margin:0}
section.experiment{padding:12px 20px;border-bottom:1px solid #d0d7de}h2{font-size:17px;margin:4px 0 8px}
.cols{display:flex;gap:16px;align-items:flex-start}.graph{flex:3;min-width:0;border:1px solid #d0d7de;
border-radius:6px;position:relative;overflow:hidden}.graph svg{display:block;width:100%;cursor:grab;touch-action:none}
.graph svg.panning{cursor:grabbing}.zoom{position:absolute;right:6px;top:6px;display:flex;gap:4px}
.zoom button{font:12px system-ui,sans-serif;border:1px solid #d0d7de;background:#fff;border-radius:4px;padding:2px 8px;
cursor:pointer}.hint{position:absolute;left:8px;bottom:4px;font-size:11px;color:#59636e;pointer-events:none}
ol.changes{flex:2;margin:0;padding:0 0 0 4px;list-style:none;max-height:80vh;overflow:auto}
li.change{padding:4px 8px;margin:2px 0;border-left:4px solid #d4a72c;background:#fff8c5;border-radius:3px;
cursor:pointer}li.added{border-color:#1a7f37;background:#dafbe1}li.removed{border-color:#cf222e;background:#ffebe9}
li.breaking .flag{color:#fff;background:#cf222e;border-radius:3px;padding:0 4px;font-weight:600;margin-left:6px}
li pre{margin:4px 0 0;font-size:12px;white-space:pre-wrap;background:#fff;border-radius:3px;padding:2px 0}
pre .add{display:block;background:#dafbe1;color:#116329}pre .del{display:block;background:#ffebe9;color:#82071e}
pre .hunk{display:block;color:#0550ae;background:#ddf4ff}pre .file{display:block;color:#59636e;font-weight:600}
pre .ctx{display:block}.sigil{font-family:monospace;font-weight:700;margin-right:6px}
g.node rect{fill:#fff;stroke:#8c959f;stroke-width:1.5}g.node text{font-size:13px;fill:#1f2328}
g.node.asset rect{fill:#f6f8fa;stroke-dasharray:2 2}g.node.asset text{fill:#59636e;font-size:12px}
g.node.added rect{fill:#dafbe1;stroke:#1a7f37;stroke-width:3}g.node.removed rect{fill:#ffebe9;stroke:#cf222e;
stroke-width:3;stroke-dasharray:6 4}g.node.changed rect{fill:#fff8c5;stroke:#9a6700;stroke-width:3}
g.node.focus rect{stroke:#0969da;stroke-width:5}path.edge{fill:none;stroke:#8c959f;stroke-width:1.5}
path.edge.added{stroke:#1a7f37;stroke-width:2.5}path.edge.removed{stroke:#cf222e;stroke-width:2.5;stroke-dasharray:6 4}
g.port rect{fill:#ddf4ff;stroke:#0969da;stroke-width:1.5}g.port text{font-size:12px;fill:#0550ae}
g.port path.wire{stroke:#0969da;stroke-dasharray:3 3;fill:none}g.port.added rect{fill:#dafbe1;stroke:#1a7f37}
g.port.removed rect{fill:#ffebe9;stroke:#cf222e;stroke-dasharray:6 4}g.port.changed rect{fill:#fff8c5;stroke:#9a6700}
g.port.breaking rect{stroke:#cf222e;stroke-width:4}
.legend span{margin-right:12px}.sw{display:inline-block;width:12px;height:12px;border:2px solid #9a6700;
background:#fff8c5;margin-right:4px;vertical-align:-2px;border-radius:2px}.sw.added{border-color:#1a7f37;
background:#dafbe1}.sw.removed{border-color:#cf222e;background:#ffebe9}.meta{color:#59636e}
"""
# The graph opens on what changed at a readable size (the whole graph when it fits so); drag pans, Ctrl+wheel
# and the buttons zoom, clicking a change centres its node. Without script the SVG shows the changed part.
_JS = """
(function(){var READABLE=0.85;
function box(s){var v=s.split(' ').map(Number);return{x:v[0],y:v[1],w:v[2],h:v[3]};}
function fit(svg,b){var r=svg.getBoundingClientRect();return Math.min(r.width/b.w,r.height/b.h);}
function show(svg,cx,cy,k){var r=svg.getBoundingClientRect();if(!r.width||!r.height)return;var w=r.width/k,h=r.height/k;
svg.setAttribute('viewBox',[cx-w/2,cy-h/2,w,h].join(' '));svg.dataset.k=k;}
function frame(svg,b,least,most){show(svg,b.x+b.w/2,b.y+b.h/2,Math.max(least,Math.min(most,fit(svg,b))));}
function view(svg){var v=box(svg.getAttribute('viewBox'));return{v:v,k:+svg.dataset.k||1};}
function zoom(svg,f,px,py){var s=view(svg),v=s.v,k=Math.max(0.05,Math.min(4,s.k*f));
if(px===undefined){px=v.x+v.w/2;py=v.y+v.h/2;}
show(svg,px+(v.x+v.w/2-px)*s.k/k,py+(v.y+v.h/2-py)*s.k/k,k);}
function start(svg){var full=box(svg.dataset.full),focus=box(svg.dataset.focus),first=box(svg.dataset.first);
if(fit(svg,full)>=READABLE)frame(svg,full,0,1);else if(fit(svg,focus)>=READABLE)frame(svg,focus,READABLE,1);
else frame(svg,first,READABLE,1);}
document.querySelectorAll('svg.canvas').forEach(function(svg){start(svg);var drag=null;
svg.addEventListener('pointerdown',function(e){drag={x:e.clientX,y:e.clientY,v:view(svg)};svg.classList.add('panning');
svg.setPointerCapture(e.pointerId);});
svg.addEventListener('pointermove',function(e){if(!drag)return;var v=drag.v.v,k=drag.v.k;
show(svg,v.x+v.w/2-(e.clientX-drag.x)/k,v.y+v.h/2-(e.clientY-drag.y)/k,k);});
svg.addEventListener('pointerup',function(){drag=null;svg.classList.remove('panning');});
svg.addEventListener('wheel',function(e){if(!(e.ctrlKey||e.metaKey))return;e.preventDefault();
var r=svg.getBoundingClientRect(),s=view(svg);
zoom(svg,e.deltaY<0?1.15:1/1.15,s.v.x+(e.clientX-r.left)/s.k,s.v.y+(e.clientY-r.top)/s.k);},{passive:false});
svg.parentNode.querySelectorAll('button[data-zoom]').forEach(function(b){b.addEventListener('click',function(){
var z=b.dataset.zoom;if(z==='in')zoom(svg,1.25);else if(z==='out')zoom(svg,0.8);
else if(z==='all')frame(svg,box(svg.dataset.full),0,1);else frame(svg,box(svg.dataset.focus),READABLE,1);});});});
document.querySelectorAll('li.change[data-node]').forEach(function(li){li.addEventListener('click',function(){
var s=li.closest('section');s.querySelectorAll('g.node.focus').forEach(function(g){g.classList.remove('focus')});
var g=s.querySelector('g.node[data-node-id="'+li.dataset.node+'"]');if(!g)return;g.classList.add('focus');
var svg=g.ownerSVGElement,b=g.getBBox();show(svg,b.x+b.width/2,b.y+b.height/2,Math.max(READABLE,view(svg).k));
svg.scrollIntoView({block:'nearest'});});});})();
"""


def render_html(diffs: Sequence[ExperimentDiff], *, title: str = "") -> str:
    shown = active(diffs)
    heading = escape(title or "amlvc diff")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{heading}</title>",
             f"<style>{_CSS}</style></head><body>", f"<header><h1>{heading}</h1>",
             f'<div class="meta">{len(shown)} experiment(s) changed'
             f'{"; <strong>breaking web-service changes</strong>" if any(d.breaking for d in shown) else ""}</div>',
             "</header>"]
    if not shown:
        parts.append('<section class="experiment empty"><p>No experiment changed.</p></section>')
    parts += [_section(d) for d in shown]
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _section(d: ExperimentDiff) -> str:
    name = f" — {escape(d.name)}" if d.name and d.name != d.slug else ""
    items = [_item(change) for change in d.changes]
    if d.status in ("added", "removed"):
        what = "new experiment" if d.status == "added" else "experiment removed"
        items = [f'<li class="change {d.status}"><span class="sigil">{"+" if d.status == "added" else "-"}</span>'
                 f"{what}: {escape(size(d))}</li>"]
    what = size(d) if d.status in ("added", "removed") else summary(d)
    return (f'<section class="experiment{" breaking" if d.breaking else ""}" data-slug="{escape(d.slug)}">'
            f"<h2>{escape(d.slug)}{name} <small>({d.status}: {escape(what)})</small></h2>"
            '<div class="legend"><span><i class="sw added"></i>added</span>'
            '<span><i class="sw removed"></i>removed</span><span><i class="sw changed"></i>changed</span></div>'
            f'<div class="cols"><div class="graph">{svg(d)}<div class="zoom"><button data-zoom="in" title="zoom in">+'
            '</button><button data-zoom="out" title="zoom out">−</button><button data-zoom="changes">changes'
            '</button><button data-zoom="all">all</button></div><div class="hint">drag to pan, Ctrl+wheel to zoom'
            f'</div></div><ol class="changes">{"".join(items)}</ol></div></section>')


def _item(change: Change) -> str:
    line = describe(change)
    cls = {"+": "added", "-": "removed"}.get(line.sigil, "changed")
    flag = '<span class="flag">BREAKING</span>' if line.breaking else ""
    node = f' data-node="{escape(change.node)}"' if change.node else ""
    text = f": {escape(line.text)}" if line.text else ""
    extra = _script_diff(change.detail) if change.kind == "script.changed" and change.detail else ""
    return (f'<li class="change {cls}{" breaking" if line.breaking else ""}" data-kind="{change.kind}" '
            f'data-path="{escape(change.path)}" data-file="{change.file}"{node}>'
            f'<span class="sigil">{escape(line.sigil)}</span>{escape(line.subject)}{text}{flag}{extra}</li>')


def _script_diff(detail: str) -> str:
    """A unified diff with its added lines green and removed ones red, as on GitHub."""
    spans = []
    for line in detail.splitlines():
        kind = ("file" if line.startswith(("+++", "---")) else "hunk" if line.startswith("@@")
                else "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx")
        spans.append(f'<span class="{kind}">{escape(line) or " "}</span>')
    return f'<pre class="script-diff">{"".join(spans)}</pre>'
