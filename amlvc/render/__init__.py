"""Renderers of change records: text (terminal), markdown (+ mermaid), json (+ RFC 6902 patches), html (+ svg)."""

from __future__ import annotations

from collections.abc import Sequence

from amlvc.review.records import ExperimentDiff

FORMATS = ("text", "markdown", "json", "html")


def render(diffs: Sequence[ExperimentDiff], fmt: str, *, color: bool = False, title: str = "",
           max_bytes: int | None = None, summary_only: bool = False) -> str:
    """The whole report in one format (`color` only affects text; `max_bytes` and `summary_only` markdown)."""
    if fmt == "text":
        from amlvc.render.text import render_text

        return render_text(diffs, color=color)
    if fmt == "markdown":
        from amlvc.render.markdown import render_markdown

        return render_markdown(diffs, title=title, max_bytes=max_bytes, summary_only=summary_only)
    if fmt == "json":
        from amlvc.render.json import render_json

        return render_json(diffs)
    if fmt == "html":
        from amlvc.render.html import render_html

        return render_html(diffs, title=title)
    raise ValueError(f"unknown format {fmt!r}")
