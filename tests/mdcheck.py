"""Markdown read back as GitHub reads it (CommonMark with tables): the text shown, fences and <details> balanced."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from markdown_it import MarkdownIt

PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


@dataclass(frozen=True)
class Parsed:
    html: str
    text: str  # every piece of text a reader sees (code blocks excluded), entities decoded
    fences: list[tuple[str, str]]  # (info, content) of each fenced code block
    table_rows: int


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre":
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def parse(markdown: str) -> Parsed:
    """Parse `markdown`; assert every fence is closed by its own marks and every <details> is closed, in order."""
    tokens = PARSER.parse(markdown)
    lines = markdown.split("\n")
    fences = []
    depth = 0
    for token in tokens:
        if token.type == "fence":
            assert token.map is not None
            closing = lines[token.map[1] - 1].strip()
            assert closing == token.markup and token.map[1] - token.map[0] >= 2, f"unclosed fence at {token.map}"
            fences.append((token.info, token.content))
        elif token.type in ("html_block", "html_inline"):
            for tag in re.findall(r"<(/?)details\b", token.content):
                depth += -1 if tag else 1
                assert depth >= 0, "a </details> closes nothing"
    assert depth == 0, f"{depth} <details> left open"
    html = PARSER.render(markdown)
    reader = _Text()
    reader.feed(html)
    rows = sum(1 for t in tokens if t.type == "tr_open") - sum(1 for t in tokens if t.type == "thead_open")
    return Parsed(html, "".join(reader.parts), fences, rows)
