"""The pull-request rendering: a summary table, then each experiment's changes and flowchart folded in <details>,
every value escaped to show as typed, cut to fit a comment without leaving a fence or a tag open."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from amlvc.errors import UsageError
from amlvc.render.common import ADDED, COLUMNS, REMOVED, active, counts, describe, size, summary
from amlvc.render.mermaid import flowchart
from amlvc.review.records import ExperimentDiff

# GitHub refuses a comment over 65,536 characters; counting UTF-8 bytes never counts fewer.
COMMENT_LIMIT = 65_536
# Reports of up to this many experiments show their details unfolded.
OPEN_UP_TO = 3
_ICON = {ADDED: "➕", REMOVED: "➖", "~": "✏️"}
# ASCII punctuation CommonMark or GitHub would read as markup (emphasis, code, links, raw HTML, entities,
# tables, strikethrough, math, headings' closing #): backslash-escaped, which CommonMark allows before any.
_MARKUP = re.compile(r"([\\`*_\[\]<>#!|~$&])")
_BACKTICKS = re.compile(r"`+")


def text(value: str) -> str:
    """Inline markdown that shows `value` as typed (on one line)."""
    return _MARKUP.sub(r"\\\1", value.replace("\r", " ").replace("\n", " "))


def html_text(value: str) -> str:
    """Text inside raw HTML (a <summary>), where markdown is not read: entities instead of escapes."""
    return html.escape(value.replace("\r", " ").replace("\n", " "), quote=False)


def fence(body: str, info: str = "") -> list[str]:
    """A fenced code block one backtick longer than the longest run of backticks in `body` (at least three)."""
    marks = "`" * max(3, 1 + max((len(run) for run in _BACKTICKS.findall(body)), default=0))
    return [marks + info, body, marks]


def render_markdown(diffs: Sequence[ExperimentDiff], *, title: str = "", max_bytes: int | None = None,
                    summary_only: bool = False) -> str:
    """The report; with `max_bytes` it is cut (table first, then whole experiments) to at most that many bytes."""
    shown = active(diffs)
    # The title is the caller's own markdown (a link, "PR #7"), on one line.
    heading = [f"## {' '.join((title or 'amlvc diff').split())}", ""]
    if not shown:
        return "\n".join([*heading, "No experiment changed.", ""])
    report = _Report(max_bytes or None)
    report.start([*heading, *_warning(shown), *_table_header()])
    report.rows([_row(d) for d in shown], last=summary_only)
    if not summary_only:
        order = sorted(shown, key=lambda d: not d.breaking)  # breaking ones first: never the ones cut
        opened = len(shown) <= OPEN_UP_TO
        for index, d in enumerate(order):
            if not report.experiment(d, opened, last=index == len(order) - 1):
                report.notice(f"_{len(order) - index} more experiment{'s' if len(order) - index != 1 else ''}: "
                              "see the HTML report / job artifact._")
                break
    return report.text()


def _warning(shown: Sequence[ExperimentDiff]) -> list[str]:
    breaking = [d.slug for d in shown if d.breaking]
    if not breaking:
        return []
    names = ", ".join(f"`{s}`" for s in breaking[:10]) + (f" and {len(breaking) - 10} more" if len(breaking) > 10
                                                         else "")
    return [f"> [!WARNING]\n> **Breaking web-service change** in {names}: callers of the deployed service must "
            "change.", ""]


def _table_header() -> list[str]:
    return ["| experiment | status | " + " | ".join(col for col, _ in COLUMNS) + " | breaking |",
            "| --- | --- | " + " | ".join("---:" for _ in COLUMNS) + " | --- |"]


def _row(d: ExperimentDiff) -> str:
    n = counts(d)
    cells = " | ".join(str(n[col]) if n[col] else "" for col, _ in COLUMNS)
    return f"| `{d.slug}` | {d.status} | {cells} | {'**BREAKING**' if d.breaking else ''} |"


def _records(d: ExperimentDiff) -> list[str]:
    """One list item per record (an added or removed experiment is one item)."""
    if d.status in ("added", "removed"):
        what = "new experiment" if d.status == "added" else "experiment removed"
        return [f"- {_ICON[ADDED if d.status == 'added' else REMOVED]} {what}: {text(size(d))}"]
    out = []
    for change in d.changes:
        line = describe(change)
        flag = " **BREAKING**" if line.breaking else ""
        words = f": {text(line.text)}" if line.text else ""
        out.append(f"- {_ICON[line.sigil]} {text(line.subject)}{words}{flag}")
    return out


def _extras(d: ExperimentDiff) -> list[str]:
    """Script line diffs and the flowchart (folded when nothing in the graph changed)."""
    out: list[str] = []
    for change in d.changes:
        if change.kind == "script.changed" and change.detail:
            out += [f"<details><summary>{html_text(describe(change).subject)}</summary>", "",
                    *fence(change.detail, "diff"), "", "</details>", ""]
    graph = flowchart(d)
    if graph:
        block = [*fence(graph, "mermaid"), ""]
        shown = counts(d)  # the experiment's own fields ("other") and canvas positions leave the flowchart as it was
        if d.status in ("added", "removed") or not any(shown[col] for col, _ in COLUMNS
                                                       if col not in ("layout", "other")):
            what = "graph" if d.status in ("added", "removed") else "graph (unchanged)"
            block = [f"<details><summary>{what}</summary>", "", *block, "</details>", ""]
        out += block
    return out


def _block(d: ExperimentDiff, opened: bool, records: list[str], extras: list[str] | None) -> str:
    name = f" — {html_text(d.name)}" if d.name and d.name != d.slug else ""
    flag = " ⚠️" if d.breaking else ""  # summary() ends in "(BREAKING)"
    what = size(d) if d.status in ("added", "removed") else summary(d)
    lines = [f"<details{' open' if opened else ''}><summary><code>{html_text(d.slug)}</code>{name} "
             f"({d.status}: {html_text(what)}){flag}</summary>", "", *records, ""]
    if extras is None:
        lines += ["_Graph and script diffs left out to fit: see the HTML report / job artifact._", ""]
    else:
        lines += extras
    return "\n".join([*lines, "</details>", ""]) + "\n"


@dataclass
class _Report:
    """The report's lines, within a byte budget (None: no limit); every part added is whole."""

    limit: int | None
    parts: list[str] = field(default_factory=list)
    used: int = 0
    # Room kept for the closing "N more experiments" line.
    reserve: int = 120

    def _fits(self, part: str, reserve: int = 0) -> bool:
        return self.limit is None or self.used + len(part.encode("utf-8")) + reserve <= self.limit

    def _add(self, part: str) -> None:
        self.parts.append(part)
        self.used += len(part.encode("utf-8"))

    def start(self, lines: list[str]) -> None:
        part = "\n".join(lines) + "\n"
        if not self._fits(part, self.reserve):
            need = len(part.encode("utf-8")) + self.reserve
            raise UsageError(f"--max-bytes {self.limit} cannot hold the report's heading and table header "
                             f"({need} bytes); give at least {need}, or 0 for no limit")
        self._add(part)

    def rows(self, rows: list[str], *, last: bool) -> None:
        """Table rows while they fit (keeping room for a "… N more" row, and for the notice unless `last`)."""
        after = 0 if last else self.reserve
        for index, row in enumerate(rows):
            if not self._fits(row + "\n", after + (self.reserve if index < len(rows) - 1 else 0)):
                self._add(f"| … {len(rows) - index} more | | {' | '.join('' for _ in COLUMNS)} | |\n")
                break
            self._add(row + "\n")
        self._add("\n")

    def experiment(self, d: ExperimentDiff, opened: bool, *, last: bool) -> bool:
        """Add the experiment's details, whole, or without graph and script diffs, or its first records."""
        records = _records(d)
        reserve = 0 if last else self.reserve
        for candidate in (_block(d, opened, records, _extras(d)), _block(d, opened, records, None)):
            if self._fits(candidate, reserve):
                self._add(candidate)
                return True
        more = "- … {} more changes: see the HTML report / job artifact"
        room = (self.limit or 0) - self.used - reserve - len(_block(d, opened, [more], None).encode("utf-8"))
        keep = 0
        for record in records:
            room -= len(record.encode("utf-8")) + 1
            if room < 0:
                break
            keep += 1
        if keep == 0:
            return False
        self._add(_block(d, opened, [*records[:keep], more.format(len(records) - keep)], None))
        return True

    def notice(self, line: str) -> None:
        self._add(line + "\n")

    def text(self) -> str:
        return "".join(self.parts)
