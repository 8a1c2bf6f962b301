"""The push plan: what `amlvc push` would do (create / update / unchanged, references, secrets), computed before
anything is written, and the refusals of SPEC "Push safety"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.canonical.denormalize import denormalize
from amlvc.canonical.secrets import placeholders_of
from amlvc.errors import ConflictError, DirtyTree, MissingAssets, MissingSecret, UsageError, some
from amlvc.review.diff import diff_trees
from amlvc.review.parsed import Parsed
from amlvc.review.records import Change
from amlvc.rules import BACKUP_REF_PREFIX, IMPORT_REMOTE, LOCK_FILE, SECRET_ENV_PREFIX, SECRETS_FILE
from amlvc.sync.check import CheckResult, Inventory, Sources, check_experiment, parse_remap
from amlvc.sync.remote import Target
from amlvc.worktree import experiments, lockfile, secretfile
from amlvc.worktree.secretfile import SecretFill


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
    restore: bool = False  # `restore --rev`: the commit also puts REV's files in the work tree, and says so


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
    changes: tuple[Change, ...] = ()  # an update's records against the files as last pulled or pushed

    @property
    def writes(self) -> bool:
        return self.action != "unchanged"

    @property
    def missing_secrets(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.secrets if s.source is None)

    def document(self, secrets: Mapping[str, str] | None) -> dict[str, Any]:
        """The experiment as the service takes it, placeholders filled from `secrets` (None leaves them)."""
        return denormalize(experiments.without_webservice(self.files), secrets=secrets,
                           source=experiments.path(self.slug))

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.slug, "name": self.name, "action": self.action, "reason": self.reason,
            "experiment_id": self.experiment_id, "stale": self.stale,
            "remaps": self.check.remaps if self.check else {},
            "missing": [r.reference.id for r in self.check.missing] if self.check else [],
            "secrets": [{"name": s.name, "source": s.source} for s in self.secrets],
            "changes": [c.to_json() for c in self.changes],
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


# -- planning ------------------------------------------------------------------------------------


def make_plan(root: Path, target: Target, options: PushOptions) -> PushPlan:
    """Work out what the push would do; reads the workspace, writes nothing, raises only on usage errors."""
    slugs = experiments.select(root, options.experiments, options.rev)
    if options.as_new is not None and (len(slugs) != 1 or len(options.experiments) != 1 or not options.as_new.strip()):
        raise UsageError("--as-new NAME needs a non-empty NAME and exactly one experiment named on the command line")
    if options.rev is not None:
        repo.resolve(root, options.rev)
    dirty = repo.dirty_paths(root, [LOCK_FILE])
    if dirty:
        raise DirtyTree(f"{LOCK_FILE} has uncommitted changes; commit or discard them before pushing "
                        f"(`git diff {LOCK_FILE}`)")
    remap = parse_remap(options.remap)
    client = target.client
    listed = {e.get("ExperimentId"): e for e in client.list_experiments()}
    lock = lockfile.load(root)
    entries = lockfile.entries(lock, target.name)
    imported = lockfile.entries(lock, IMPORT_REMOTE)
    inventory: Inventory | None = None
    sources = Sources()
    planned = []
    for slug in slugs:
        files = experiments.read(root, slug, options.rev)
        digest = experiments.content_hash_of(files)
        entry = entries.get(slug) or _imported_from(imported.get(slug), target.workspace_id)
        action, reason, exp_id, lock_etag, ws_etag, stale = _decide(options, entry, listed, digest)
        name, result = options.as_new or slug, None
        if action != "unchanged":  # an unchanged experiment is neither rebuilt nor checked: nothing is sent
            doc = denormalize(experiments.without_webservice(files), source=experiments.path(slug))
            name = options.as_new or str(doc.get("Description") or slug)
            if inventory is None:
                inventory = Inventory.fetch(client)
            result = check_experiment(root, target, slug, doc, files, inventory, remap, sources)
        # An adopted import is this workspace's own export: the values scrubbed from it are this workspace's.
        sections = (target.name,) if slug in entries or entry is None else (target.name, IMPORT_REMOTE)
        names = placeholders_of(experiments.without_webservice(files))
        fills, _ = secretfile.lookup(names, secretfile.stored(root, slug, sections))
        changes = _changes(root, slug, entry, files) if action == "update" else ()
        planned.append(PlannedExperiment(slug, name, action, reason, exp_id, lock_etag, ws_etag, stale, digest,
                                         result, fills, sections, files, changes))
    return PushPlan(target.name, target.workspace_id, options.rev, options, tuple(planned))


def _changes(root: Path, slug: str, entry: Mapping[str, Any] | None, files: Mapping[str, bytes]
             ) -> tuple[Change, ...]:
    """What the update writes, as change records against the files as last synced (none found: no records)."""
    synced = experiments.synced_files(root, slug, str(entry.get("content_hash"))) if entry else None
    if synced is None:
        return ()
    source = experiments.path(slug)
    return diff_trees(Parsed.from_files(experiments.without_webservice(synced), source),
                      Parsed.from_files(experiments.without_webservice(files), source), slug).changes


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
                f"{SECRETS_FILE} under remotes.{plan.remote}.{e.slug}"
            )
