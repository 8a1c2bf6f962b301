"""Commit messages, trailers, authors and dates of the commits pull makes (leaf and run-history)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from amlvc.worktree.journal import Signature

TRAILER_REMOTE = "Amlvc-Remote"
TRAILER_WORKSPACE = "Amlvc-Workspace"
TRAILER_SNAPSHOT = "Amlvc-Snapshot"
TRAILER_EXPERIMENT = "Amlvc-Experiment"

_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")
_TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): (.*)$")
# A run-history id: {ws}.s-id.{guid}.{reverse timestamp} (reference §1.6).
SNAPSHOT_ID = re.compile(r"^[0-9a-f]{32}\.s-id\.[0-9a-f]{32}\.\d{4}-\d{2}-\d{2}t\d{2}\.\d{2}\.\d{2}$")


def parse_service_date(value: Any) -> datetime | None:
    """`/Date(ms)/` (the service's Json.NET dates) as an aware UTC datetime; None when absent or odd."""
    if not isinstance(value, str):
        return None
    match = _DATE.match(value.strip())
    if match is None:
        return None
    millis = int(match.group(1))
    if millis <= 0:
        return None  # DateTime.MinValue of a run that never started
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def snapshot_signature(doc: Mapping[str, Any]) -> Signature:
    """Author of a run-history commit: the snapshot's Creator, dated by its Status.CreationTime."""
    creator = doc.get("Creator")
    name = creator.strip() if isinstance(creator, str) and creator.strip() else "unknown"
    email = name if "@" in name else ""
    status = doc.get("Status")
    date = parse_service_date(status.get("CreationTime")) if isinstance(status, Mapping) else None
    return Signature(name=name, email=email, date=date)


def snapshot_date(doc: Mapping[str, Any]) -> datetime:
    """Sort key of a snapshot: its run's creation time (oldest first); unknown dates sort first."""
    return snapshot_signature(doc).date or datetime.fromtimestamp(0, tz=UTC)


def trailers(remote: str, workspace_id: str, **extra: str) -> list[tuple[str, str]]:
    """The trailers naming where a commit's content came from."""
    pairs = [(TRAILER_REMOTE, remote), (TRAILER_WORKSPACE, workspace_id)]
    names = {"snapshot": TRAILER_SNAPSHOT, "experiment": TRAILER_EXPERIMENT}
    pairs.extend((names[key], value) for key, value in sorted(extra.items()))
    return pairs


def compose(subject: str, body: Sequence[str], trailer_pairs: Iterable[tuple[str, str]]) -> str:
    """subject, blank line, body lines, blank line, trailers (git interpret-trailers shape)."""
    parts = [subject.strip()]
    if body:
        parts.append("\n".join(body))
    parts.append("\n".join(f"{key}: {value}" for key, value in trailer_pairs))
    return "\n\n".join(parts) + "\n"


def parse_trailers(message: str) -> dict[str, list[str]]:
    """The trailers of the last paragraph of a commit message (key -> values in order)."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    found: dict[str, list[str]] = {}
    if len(paragraphs) < 2:
        return found
    for line in paragraphs[-1].splitlines():
        match = _TRAILER.match(line.strip())
        if match is None:
            return {}
        found.setdefault(match.group(1), []).append(match.group(2).strip())
    return found


def pull_message(remote: str, workspace_id: str, added: Sequence[str], changed: Sequence[str],
                 removed: Sequence[str], touched: Sequence[str] = (), *, subject: str | None = None) -> str:
    """The message of the one commit a pull makes: a summary line, one line per experiment, trailers."""
    counts = [f"{len(names)} {label}" for names, label in
              ((added, "added"), (changed, "changed"), (removed, "removed")) if names]
    if counts:
        subject_line = f"Pull from {remote}: " + ", ".join(counts)
    else:
        subject_line = f"Pull from {remote}: workspace versions recorded"
    body = [f"added: {name}" for name in added]
    body += [f"changed: {name}" for name in changed]
    body += [f"removed: {name}" for name in removed]
    body += [f"recorded: {name} (saved or run in the workspace, content unchanged)" for name in touched]
    return compose(subject or subject_line, body, trailers(remote, workspace_id))


def snapshot_message(remote: str, workspace_id: str, slug: str, doc: Mapping[str, Any]) -> str:
    """The message of one run-history commit."""
    status = doc.get("Status")
    code = status.get("StatusCode") if isinstance(status, Mapping) else None
    run_id = str(doc.get("ExperimentId", ""))
    subject = f"Run of {slug} in {remote}" + (f" ({code})" if isinstance(code, str) and code else "")
    body = [f"run-history snapshot {run_id}"]
    return compose(subject, body, trailers(remote, workspace_id, snapshot=run_id, experiment=slug))
