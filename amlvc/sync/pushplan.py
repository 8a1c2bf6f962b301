"""The push plan: what `amlvc push` / `amlvc check` would do (create / update / unchanged, references, secrets),
computed before anything is written, and the refusals of SPEC "Push safety"."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import config, repo, rules
from amlvc.canonical.denormalize import denormalize, recorded_module_names
from amlvc.errors import AmlvcError, ConflictError, DirtyTree, MissingAssets, MissingSecret, UsageError, some
from amlvc.sync.check import CheckResult, Inventory, Remap, check_document, parse_remap
from amlvc.worktree import lockfile, mirror, project

SECRET_ENV_PREFIX = "AMLVC_SECRET_"
BACKUP_REF_PREFIX = "refs/amlvc/backup"
_PLACEHOLDER = re.compile(rb"\$\{secret:([A-Za-z0-9_]+)\}")
# Files of an experiment directory that are not part of the experiment document (pushed by their own commands).
_NOT_EXPERIMENT = frozenset({rules.WEBSERVICE_FILE})


@dataclass(frozen=True)
class PushOptions:
    """What `amlvc push` / `amlvc check` were asked to do."""

    experiments: tuple[str, ...] = ()
    remote: str | None = None
    rev: str | None = None
    as_new: str | None = None
    dry_run: bool = False
    force: bool = False
    run: bool = False
    remap: str | None = None
    token_env: str | None = None
    jobs: int = 8


@dataclass(frozen=True)
class SecretFill:
    """A placeholder and where its value comes from (never the value); `source` None = missing."""

    name: str
    source: str | None


@dataclass(frozen=True)
class PlannedExperiment:
    """One experiment's line in the plan."""

    slug: str
    name: str
    action: str  # "create" | "update" | "unchanged"
    reason: str
    experiment_id: str | None
    lock_etag: str | None
    workspace_etag: str | None
    stale: bool
    content_hash: str
    check: CheckResult | None
    secrets: tuple[SecretFill, ...]
    secret_sections: tuple[str, ...] = ()  # sections of the secrets file to read, first wins
    files: Mapping[str, bytes] = field(repr=False, default_factory=dict)

    @property
    def writes(self) -> bool:
        return self.action != "unchanged"

    @property
    def missing_secrets(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.secrets if s.source is None)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.slug, "name": self.name, "action": self.action, "reason": self.reason,
            "experiment_id": self.experiment_id, "stale": self.stale,
            "remaps": self.check.remaps if self.check else {},
            "missing": [r.reference.id for r in self.check.missing] if self.check else [],
            "secrets": [{"name": s.name, "source": s.source} for s in self.secrets],
        }


@dataclass(frozen=True)
class PushPlan:
    """What a push will do, experiment by experiment; computed before anything is written."""

    remote: str
    workspace_id: str
    rev: str | None
    options: PushOptions
    experiments: tuple[PlannedExperiment, ...]

    def count(self, action: str) -> int:
        return sum(1 for e in self.experiments if e.action == action)

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "workspace_id": self.workspace_id, "rev": self.rev,
                "experiments": [e.to_json() for e in self.experiments],
                "summary": {a: self.count(a) for a in ("create", "update", "unchanged")}}


# -- selecting and reading ---------------------------------------------------------------------


def select(root: Path, wanted: Sequence[str], rev: str | None) -> list[str]:
    """The experiment slugs to work on: those named (by slug or directory), else every one there is."""
    if rev is not None:
        present = sorted({p.split("/")[1] for p in repo.list_at(root, rev, mirror.EXPERIMENTS)
                          if p.endswith("/" + rules.EXPERIMENT_FILE) and p.count("/") == 2})
    else:
        base = root / mirror.EXPERIMENTS
        present = sorted(p.name for p in base.iterdir() if (p / rules.EXPERIMENT_FILE).is_file()) \
            if base.is_dir() else []
    if not wanted:
        if not present:
            raise UsageError(f"no experiments under {mirror.EXPERIMENTS}/{f' at {rev}' if rev else ''}; "
                             f"run `amlvc pull` or `amlvc import FILE` first")
        return present
    chosen = []
    for name in wanted:
        slug = name.rstrip("/").removeprefix(mirror.EXPERIMENTS + "/")
        if slug not in present:
            known = some(present, limit=10) or "none"
            raise UsageError(f"no experiment {name!r} in {mirror.EXPERIMENTS}/{f' at {rev}' if rev else ''} "
                             f"(experiments: {known})")
        chosen.append(slug)
    return list(dict.fromkeys(chosen))


def read_files(root: Path, slug: str, rev: str | None) -> dict[str, bytes]:
    if rev is not None:
        return mirror.read_experiment_files_at(root, rev, slug)
    return mirror.read_experiment_files(root, slug)


def document(files: Mapping[str, bytes], slug: str, secrets: Mapping[str, str] | None) -> dict[str, Any]:
    experiment_files = {k: v for k, v in files.items() if k not in _NOT_EXPERIMENT}
    return denormalize(experiment_files, secrets=secrets, source=f"{mirror.EXPERIMENTS}/{slug}")


@dataclass
class Sources:
    """What `source_names` reads once per command, however many experiments it checks: the lock and the
    asset lists of the other workspaces (None for one without a token or out of reach)."""

    lock: lockfile.Lock | None = None
    inventories: dict[str, Inventory | None] = field(default_factory=dict)


def check_experiment(root: Path, target: mirror.Target, slug: str, doc: Mapping[str, Any], files: Mapping[str, bytes],
           inventory: Inventory, remap: Remap, sources: Sources) -> CheckResult:
    """The reference check; references still missing are looked up by the name they have where they came from."""
    names = recorded_module_names(files)
    result = check_document(doc, inventory, experiment=slug, remote=target.name, remap=remap, source_names=names)
    if result.ok or remap.mode not in (None, "name"):
        return result
    names = {**source_names(root, slug, target.name, sources), **names}
    return check_document(doc, inventory, experiment=slug, remote=target.name, remap=remap, source_names=names)


def source_names(root: Path, slug: str, target: str, sources: Sources) -> dict[str, str]:
    """Asset id -> name in the other workspaces this experiment is recorded for (the ones it came from).

    Best effort: a workspace without a token or out of reach just contributes no names.
    """
    if sources.lock is None:
        sources.lock = mirror.read_lock(root)
    lock = sources.lock
    cache = sources.inventories
    names: dict[str, str] = {}
    for remote in lock.remotes():
        if remote == target or slug not in lock.entries(remote):
            continue
        if remote not in cache:
            cache[remote] = None
            try:
                other = mirror.open_remote(root, remote, jobs=4)
                with other.client:
                    cache[remote] = Inventory.fetch(other.client)
            except AmlvcError:
                pass
        inventory = cache[remote]
        if inventory is not None:
            names.update({a.id: a.name for a in inventory.assets if a.name})
    return names


# -- secrets -------------------------------------------------------------------------------------


def placeholders(files: Mapping[str, bytes]) -> tuple[str, ...]:
    """The `${secret:NAME}` names used in an experiment's files (web-service file excluded), sorted."""
    names: set[str] = set()
    for rel, data in files.items():
        if rel not in _NOT_EXPERIMENT:
            names.update(m.decode() for m in _PLACEHOLDER.findall(data))
    return tuple(sorted(names))


def stored_secrets(root: Path, remote: str, slug: str) -> dict[str, str]:
    """`.amlvc/secrets.json` remotes[remote][slug] (architecture §2.3); {} when there is none."""
    return project.secrets_for(root, slug, remote)


def stored_for(root: Path, sections: Sequence[str], slug: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for section in reversed(sections):
        values.update(stored_secrets(root, section, slug))
    return values


def secret_values(names: Sequence[str], stored: Mapping[str, str],
                  environ: Mapping[str, str]) -> tuple[tuple[SecretFill, ...], dict[str, str]]:
    """Where each secret comes from: $AMLVC_SECRET_<NAME> first, then the secrets file."""
    fills, values = [], {}
    for name in names:
        env_name = SECRET_ENV_PREFIX + name
        if environ.get(env_name):
            fills.append(SecretFill(name, f"${env_name}"))
            values[name] = environ[env_name]
        elif stored.get(name):
            fills.append(SecretFill(name, mirror.SECRETS_NAME))
            values[name] = stored[name]
        else:
            fills.append(SecretFill(name, None))
    return tuple(fills), values


# -- planning ------------------------------------------------------------------------------------


def make_plan(root: Path, target: mirror.Target, options: PushOptions) -> PushPlan:
    """Work out what the push would do; reads the workspace, writes nothing, raises only on usage errors."""
    slugs = select(root, options.experiments, options.rev)
    if options.as_new is not None and (len(slugs) != 1 or len(options.experiments) != 1 or not options.as_new.strip()):
        raise UsageError("--as-new NAME needs a non-empty NAME and exactly one experiment named on the command line")
    if options.rev is not None:
        repo.resolve(root, options.rev)
    dirty = repo.dirty_paths(root, [mirror.LOCK_NAME])
    if dirty:
        raise DirtyTree(f"{mirror.LOCK_NAME} has uncommitted changes; commit or discard them before pushing "
                        f"(`git diff {mirror.LOCK_NAME}`)")
    remap = parse_remap(options.remap)
    client = target.client
    listed = {e.get("ExperimentId"): e for e in client.list_experiments()}
    lock = mirror.read_lock(root)
    entries = mirror.lock_entries(lock, target.name)
    imported = mirror.lock_entries(lock, config.IMPORT_REMOTE)
    inventory: Inventory | None = None
    sources = Sources()
    planned = []
    for slug in slugs:
        files = read_files(root, slug, options.rev)
        digest = mirror.experiment_hash(files)
        entry = entries.get(slug) or _imported_from(imported.get(slug), target.workspace_id)
        action, reason, exp_id, lock_etag, ws_etag, stale = _decide(options, entry, listed, digest)
        name, result = options.as_new or slug, None
        if action != "unchanged":  # an unchanged experiment is neither rebuilt nor checked: nothing is sent
            doc = document(files, slug, secrets=None)
            name = options.as_new or str(doc.get("Description") or slug)
            if inventory is None:
                inventory = Inventory.fetch(client)
            result = check_experiment(root, target, slug, doc, files, inventory, remap, sources)
        # An adopted import is this workspace's own export: the values scrubbed from it are this workspace's.
        sections = (target.name,) if slug in entries or entry is None else (target.name, config.IMPORT_REMOTE)
        fills, _ = secret_values(placeholders(files), stored_for(root, sections, slug), os.environ)
        planned.append(PlannedExperiment(slug, name, action, reason, exp_id, lock_etag, ws_etag, stale, digest,
                                         result, fills, sections, files))
    return PushPlan(target.name, target.workspace_id, options.rev, options, tuple(planned))


def _imported_from(entry: Mapping[str, Any] | None, workspace_id: str) -> dict[str, Any] | None:
    """An `amlvc import`ed export of this very workspace: its id and Etag are the baseline (no content hash)."""
    if entry is None or not str(entry.get("id") or "").startswith(workspace_id + "."):
        return None
    return {"id": entry["id"], "etag": entry.get("etag"), "content_hash": None}


def _decide(options: PushOptions, entry: Mapping[str, Any] | None, listed: Mapping[Any, Mapping[str, Any]],
            digest: str) -> tuple[str, str, str | None, str | None, str | None, bool]:
    """(action, reason, experiment id, lock Etag, workspace Etag, stale) of one experiment."""
    if options.as_new is not None:
        return "create", f"as a new experiment {options.as_new!r}", None, None, None, False
    if entry is None or not entry.get("id"):
        return "create", "not in this workspace yet", None, None, None, False
    exp_id = str(entry["id"])
    lock_etag = entry.get("etag")
    current = listed.get(exp_id)
    if current is None:
        return "create", "deleted in the workspace since the last pull; created again", None, None, None, False
    ws_etag = current.get("Etag")
    if ws_etag != lock_etag:
        reason = "changed in the workspace since the last pull"
        if options.force:
            reason += "; --force: its current version is backed up, then overwritten"
        return "update", reason, exp_id, lock_etag, ws_etag, True
    if entry.get("content_hash") == digest:
        return "unchanged", "the workspace has these files", exp_id, lock_etag, ws_etag, False
    return "update", "local changes", exp_id, lock_etag, ws_etag, False


def refuse(plan: PushPlan) -> None:
    """Raise the refusal of SPEC "Push safety", if any: stale (exit 4), dangling reference or secret (exit 6)."""
    stale = [e for e in plan.experiments if e.stale and not plan.options.force]
    if stale:
        names = some(e.slug for e in stale)
        raise ConflictError(
            f"experiment {names} changed in workspace '{plan.remote}' since your last pull; nothing was pushed. "
            f"Run `amlvc pull --remote {plan.remote}`, review and merge, then push again "
            f"(or overwrite it with --force, which first backs it up under {BACKUP_REF_PREFIX}/)"
        )
    for e in plan.experiments:
        if e.writes and e.check is not None and not e.check.ok:
            ids = ", ".join(f"{r.reference.kind} {r.reference.id}" for r in e.check.missing)
            raise MissingAssets(
                f"experiment '{e.slug}' references what workspace '{plan.remote}' does not have: {ids}; "
                f"nothing was pushed. Create them there, or map them with --remap family|name|FILE "
                f"(see `amlvc check --remote {plan.remote}`)"
            )
    for e in plan.experiments:
        if e.writes and e.missing_secrets:
            first = e.missing_secrets[0]
            raise MissingSecret(
                f"experiment '{e.slug}' needs secret {', '.join(e.missing_secrets)} for workspace "
                f"'{plan.remote}'; nothing was pushed. Set {SECRET_ENV_PREFIX}{first} or add it to "
                f"{mirror.SECRETS_NAME} under remotes.{plan.remote}.{e.slug}"
            )
