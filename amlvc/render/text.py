"""The terminal rendering: one git-like block per experiment, one line per change, ANSI colours on a terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amlvc.render.common import ADDED, REMOVED, active, describe, size, summary
from amlvc.review.records import Change, ExperimentDiff

_RESET = "\033[0m"
_STYLE = {"header": "\033[1m", ADDED: "\033[32m", REMOVED: "\033[31m", "~": "\033[33m", "breaking": "\033[1;31m",
          "hunk": "\033[36m"}


def render_text(diffs: Sequence[ExperimentDiff], *, color: bool = False) -> str:
    def paint(style: str, text: str) -> str:
        return _paint(style, text, color)

    out: list[str] = []
    for d in active(diffs):
        name = f" ({d.name})" if d.name and d.name != d.slug else ""
        what = f"{d.status} ({size(d)})" if d.status in ("added", "removed") else f"{d.status}, {summary(d)}"
        out.append(paint("header", f"experiment {d.slug}{name}: {what}"))
        for change in d.changes:
            out.append(record_line(change, color=color))
            if change.kind == "script.changed":
                out.extend("    " + _paint_diff_line(ln, paint) for ln in change.detail.splitlines())
        out.append("")
    return "\n".join(out)


def record_line(change: Change, *, color: bool = False) -> str:
    """One record as a line: `~ parameter Split Data [8c2e…-45]: Random seed: 1 → 2`, `[BREAKING]` when it is."""
    line = describe(change)
    flag = _paint("breaking", " [BREAKING]", color) if line.breaking else ""
    return _paint(line.sigil, f"{line.sigil} {line.subject}" + (f": {line.text}" if line.text else ""), color) + flag


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


_BAR = 40  # the widest --stat bar, as git's


def render_stat(diffs: Sequence[ExperimentDiff], *, color: bool = False) -> str:
    """`diff --stat`: one line per experiment, its record count and a bar of + - ~, then the totals."""
    shown = active(diffs)
    if not shown:
        return ""
    width = max(len(d.slug) for d in shown)
    most = max((len(d.changes) for d in shown), default=0)
    out = []
    for d in shown:
        if d.status in ("added", "removed"):
            out.append(f" {d.slug:<{width}} | {d.status} ({size(d)})")
            continue
        sigils = "".join(describe(c).sigil for c in d.changes)
        scale = min(1.0, _BAR / most) if most else 1.0
        bar = "".join(_paint(s, s * max(1, round(sigils.count(s) * scale)), color) for s in (ADDED, REMOVED, "~")
                      if sigils.count(s))
        flag = "  " + _paint("breaking", "[BREAKING]", color) if d.breaking else ""
        out.append(f" {d.slug:<{width}} | {len(d.changes):>{len(str(most))}} {bar}{flag}")
    statuses = [d.status for d in shown]
    parts = [f"{statuses.count(s)} {s}" for s in ("added", "removed", "modified") if statuses.count(s)]
    records = sum(len(d.changes) for d in shown)
    breaking = sum(1 for d in shown for c in d.changes if c.breaking)
    total = f" {len(shown)} experiment{'s' if len(shown) != 1 else ''} changed: {', '.join(parts)}; " \
            f"{records} change{'s' if records != 1 else ''}" + (f" ({breaking} breaking)" if breaking else "")
    return "\n".join([*out, total]) + "\n"


def render_names(diffs: Sequence[ExperimentDiff]) -> str:
    """`diff --name-only`: the slug of each experiment that differs, one a line."""
    return "".join(f"{d.slug}\n" for d in active(diffs))


def _paint(style: str, text: str, color: bool) -> str:
    return f"{_STYLE[style]}{text}{_RESET}" if color else text
