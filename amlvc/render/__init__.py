"""Renderers of change records: text (terminal), markdown (+ mermaid), json (+ RFC 6902 patches), html (+ svg)."""

from __future__ import annotations

from collections.abc import Sequence

from amlvc.review.records import ExperimentDiff

FORMATS = ("text", "markdown", "json", "html")


def render(diffs: Sequence[ExperimentDiff], fmt: str, *, color: bool = False, title: str = "") -> str:
    """The whole report in one format (`color` only affects text)."""
    if fmt == "text":
        from amlvc.render.text import render_text

        return render_text(diffs, color=color)
    if fmt == "markdown":
        from amlvc.render.markdown import render_markdown

        return render_markdown(diffs, title=title)
    if fmt == "json":
        from amlvc.render.json import render_json

        return render_json(diffs)
    if fmt == "html":
        from amlvc.render.html import render_html

        return render_html(diffs, title=title)
    raise ValueError(f"unknown format {fmt!r}")
