"""The terminal rendering: one git-like block per experiment, one line per change, ANSI colours on a terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amlvc.render.common import ADDED, REMOVED, active, describe, size, summary
from amlvc.review.records import ExperimentDiff

_RESET = "\033[0m"
_STYLE = {"header": "\033[1m", ADDED: "\033[32m", REMOVED: "\033[31m", "~": "\033[33m", "breaking": "\033[1;31m",
          "hunk": "\033[36m"}


def render_text(diffs: Sequence[ExperimentDiff], *, color: bool = False) -> str:
    def paint(style: str, text: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if color else text

    out: list[str] = []
    for d in active(diffs):
        name = f" ({d.name})" if d.name and d.name != d.slug else ""
        what = f"{d.status} ({size(d)})" if d.status in ("added", "removed") else f"{d.status}, {summary(d)}"
        out.append(paint("header", f"experiment {d.slug}{name}: {what}"))
        for change in d.changes:
            line = describe(change)
            flag = paint("breaking", " [BREAKING]") if line.breaking else ""
            body = f"{line.sigil} {line.subject}" + (f": {line.text}" if line.text else "")
            out.append(paint(line.sigil, body) + flag)
            if change.kind == "script.changed":
                out.extend("    " + _paint_diff_line(ln, paint) for ln in change.detail.splitlines())
        out.append("")
    return "\n".join(out)


def _paint_diff_line(line: str, paint: Callable[[str, str], str]) -> str:
    if line.startswith(("+++", "---")):
        return paint("header", line)
    if line.startswith("@@"):
        return paint("hunk", line)
    if line.startswith("+"):
        return paint(ADDED, line)
    if line.startswith("-"):
        return paint(REMOVED, line)
    return line
