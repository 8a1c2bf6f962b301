"""The release plan (`amlvc release PLAN.toml`): its file, checked key by key, and its progress in `.amlvc/release/`.

A plan names, in four tables, what the ALM article's steps act on: the dataset file to upload (`[dataset]`), the
training experiment to copy, run and promote a model from (`[training]`), the predictive experiment to copy, bump
and run (`[predictive]`) and the web service to deploy, its endpoint and a sample to score (`[service]`). Paths
are relative to the plan's folder. The progress file records each step's state and what it made (the copies'
folders, the dataset and model versions), so `--resume` continues at the failed step with the same values.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amlvc import rules
from amlvc.canonical.services import parse_ref
from amlvc.errors import ConfigError, LocalError, UsageError
from amlvc.worktree.experiments import slugify
from amlvc.worktree.files import atomic_write, check_targets

# The tables of a plan: table -> (required keys, optional keys).
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dataset": (("file", "name"), ("format", "description")),
    "training": (("experiment", "copy", "node", "model"), ("output",)),
    "predictive": (("experiment", "copy"), ()),
    "service": (("name",), ("endpoint", "sample", "model", "description")),
}


@dataclass(frozen=True)
class Plan:
    path: Path
    sha256: str
    remote: str | None
    tables: Mapping[str, Mapping[str, str]]

    def get(self, table: str, key: str) -> str | None:
        return self.tables.get(table, {}).get(key)

    def value(self, table: str, key: str) -> str:
        found = self.get(table, key)
        assert found is not None  # required keys are checked when the plan is read
        return found

    def file(self, table: str, key: str) -> Path | None:
        """A path of the plan, relative to the plan's folder."""
        given = self.get(table, key)
        return (self.path.parent / given) if given else None


def load_plan(path: Path) -> Plan:
    """The plan file parsed and checked; ConfigError (3) naming the file and the key otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LocalError(f"{path}: cannot read ({exc.strerror}); give the path of a release plan") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc}); see docs/examples/release.toml") from None
    unknown = sorted(set(doc) - {*TABLES, "remote"})
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key (tables: {', '.join(TABLES)}; and remote)")
    remote = doc.get("remote")
    if remote is not None and not isinstance(remote, str):
        raise ConfigError(f"{path}: remote: expected a remote's name")
    tables: dict[str, dict[str, str]] = {}
    for table, (required, optional) in TABLES.items():
        body = doc.get(table)
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{table}]: missing (see docs/examples/release.toml)")
        for key, value in body.items():
            if key not in (*required, *optional):
                raise ConfigError(f"{path}: {table}.{key}: unknown key (known: {', '.join((*required, *optional))})")
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{path}: {table}.{key}: expected a non-empty string")
        missing = [key for key in required if key not in body]
        if missing:
            raise ConfigError(f"{path}: {table}.{missing[0]}: missing")
        tables[table] = dict(body)
    if "model" in tables["service"]:
        parse_ref(tables["service"]["model"], f"{path}: service.model")
    if tables["service"].get("endpoint") == rules.DEFAULT_ENDPOINT:
        raise ConfigError(f"{path}: service.endpoint: the default endpoint exists with every service; name another")
    return Plan(path, hashlib.sha256(data).hexdigest(), remote, tables)


# -- progress in .amlvc/release/<plan>.json ----------------------------------------------------------------------


@dataclass
class Progress:
    """What a release did so far: each step's state and result, and the values later steps read."""

    path: Path
    plan_sha256: str
    remote: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def state(self, step: str) -> str:
        return str(self.steps.get(step, {}).get("state") or "pending")

    def mark(self, step: str, state: str, **extra: Any) -> None:
        self.steps[step] = {"state": state, "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **extra}
        self.save()

    def save(self) -> None:
        doc = {"plan_sha256": self.plan_sha256, "remote": self.remote, "steps": self.steps, "values": self.values}
        atomic_write(self.path, (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())

    @property
    def failed(self) -> str | None:
        return next((s for s, v in self.steps.items() if v.get("state") in ("failed", "running")), None)


def progress_path(root: Path, plan: Plan) -> str:
    return f"{rules.RELEASE_DIR}/{slugify(plan.path.stem)}.json"


def open_progress(root: Path, plan: Plan, remote: str, *, resume: bool) -> Progress:
    """The progress of this plan: a new one, or (with --resume) the one a stopped release left. A release that
    stopped is not started over silently (exit 2: --resume), nor resumed with a changed plan (exit 2)."""
    rel = progress_path(root, plan)
    check_targets(root, [rel])
    path = root / rel
    if not path.is_file():
        return Progress(path, plan.sha256, remote)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(f"{rel}: unreadable; delete it to start the release over") from None
    found = Progress(path, str(doc.get("plan_sha256")), str(doc.get("remote")), dict(doc.get("steps") or {}),
                     dict(doc.get("values") or {}))
    if found.failed and not resume:
        raise UsageError(f"a release of {plan.path.name} stopped at step {found.failed!r} ({rel}); continue it with "
                         f"`amlvc release {plan.path} --resume`, or delete {rel} to start over")
    if found.plan_sha256 != plan.sha256 or found.remote != remote:
        if resume:
            raise UsageError(f"{plan.path.name} (or its remote) changed since the release recorded in {rel} "
                             "started; put it back to resume, or delete the progress file to start over")
        return Progress(path, plan.sha256, remote)
    return found
