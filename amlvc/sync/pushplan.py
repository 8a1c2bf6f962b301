"""The push plan: what `amlvc push` would do (create / update / unchanged, references, secrets), computed before
anything is written, and the refusals of SPEC "Push safety"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from amlvc.sync.remote import Fetched, Target, fetch_one, module_names
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
    reconciled: Fetched | None = field(repr=False, default=None)  # the workspace has these files: record it
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
            "secrets": [{"name": s.name, "source": s.source, "changed": s.changed} for s in self.secrets],
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
    """Work out what the push would do; reads the workspace, writes nothing, raises only on usage errors.

    A push sends a revision: `--rev`, else HEAD. Uncommitted changes to what it would send are refused
    (exit 3): a push never commits on the user's behalf, past their pre-commit hooks.
    """
    source = options.rev or "HEAD"
    if options.rev is not None:
        repo.resolve(root, options.rev)
    slugs = _select(root, options)
    if options.as_new is not None and (len(slugs) != 1 or len(options.experiments) != 1 or not options.as_new.strip()):
        raise UsageError("--as-new NAME needs a non-empty NAME and exactly one experiment named on the command line")
    _refuse_uncommitted(root, slugs if options.rev is None else [])
    planner = _Planner(root, target, options)
    planned = [planner.plan(slug, experiments.read(root, slug, source)) for slug in slugs]
    return PushPlan(target.name, target.workspace_id, options.rev, options, tuple(planned))


def _select(root: Path, options: PushOptions) -> list[str]:
    try:
        return experiments.select(root, options.experiments, options.rev or "HEAD")
    except UsageError:
        fresh = [name for name in options.experiments if options.rev is None
                 and name.rstrip("/").removeprefix("experiments/") in experiments.slugs(root, with_experiment=True)]
        if fresh:
            raise DirtyTree(f"experiment {some(fresh)} is not committed; a push sends a revision: commit it "
                            f"(`git add experiments/ && git commit`), then push") from None
        raise


def _refuse_uncommitted(root: Path, slugs: Sequence[str]) -> None:
    dirty = repo.dirty_paths(root, [LOCK_FILE, *(experiments.path(s) for s in slugs)])
    if LOCK_FILE in dirty:
        raise DirtyTree(f"{LOCK_FILE} has uncommitted changes; commit or discard them before pushing "
                        f"(`git diff {LOCK_FILE}`)")
    if dirty:
        raise DirtyTree(f"uncommitted changes in {some(dirty)}: a push sends committed revisions (HEAD by default); "
                        f"commit them (`git commit`) or stash them, then push")


class _Planner:
    """What one plan reads once, however many experiments it covers: the listing, the lock, asset lists."""

    def __init__(self, root: Path, target: Target, options: PushOptions) -> None:
        self.root, self.target, self.options = root, target, options
        self.remap = parse_remap(options.remap)
        self.listed = {e.get("ExperimentId"): e for e in target.client.list_experiments()}
        lock = lockfile.load(root)
        self.entries = lockfile.entries(lock, target.name)
        self.imported = lockfile.entries(lock, IMPORT_REMOTE)
        self.inventory: Inventory | None = None
        self.names: dict[str, str] | None = None
        self.sources = Sources()

    def plan(self, slug: str, files: Mapping[str, bytes]) -> PlannedExperiment:
        options, target = self.options, self.target
        entry = self.entries.get(slug) or _imported_from(self.imported.get(slug), target.workspace_id)
        decision = self._decide(slug, entry, files)
        name, result = options.as_new or slug, None
        if decision.action != "unchanged":  # an unchanged experiment is neither rebuilt nor checked
            doc = denormalize(experiments.without_webservice(files), source=experiments.path(slug))
            name = options.as_new or str(doc.get("Description") or slug)
            if self.inventory is None:
                self.inventory = Inventory.fetch(target.client)
            result = check_experiment(self.root, target, slug, doc, files, self.inventory, self.remap, self.sources)
        # An adopted import is this workspace's own export: the values scrubbed from it are this workspace's.
        sections = (target.name,) if slug in self.entries or entry is None else (target.name, IMPORT_REMOTE)
        names = placeholders_of(experiments.without_webservice(files))
        fills, _ = secretfile.lookup(names, secretfile.stored(self.root, slug, sections),
                                     seen=secretfile.synced(self.root, target.name, slug))
        changes = _changes(self.root, slug, entry, files) if decision.action == "update" else ()
        return PlannedExperiment(slug, name, decision.action, decision.reason, decision.experiment_id,
                                 decision.lock_etag, decision.workspace_etag, decision.stale,
                                 experiments.content_hash_of(files), result, fills, sections, files,
                                 decision.reconciled, changes)

    def _decide(self, slug: str, entry: Mapping[str, Any] | None, files: Mapping[str, bytes]) -> _Decision:
        options = self.options
        if options.as_new is not None:
            return _Decision("create", f"as a new experiment {options.as_new!r}")
        if entry is None or not entry.get("id"):
            return _Decision("create", "not in this workspace yet")
        exp_id = str(entry["id"])
        lock_etag = entry.get("etag")
        current = self.listed.get(exp_id)
        if current is None:
            return _Decision("create", "deleted in the workspace since the last pull; created again")
        ws_etag = current.get("Etag")
        if ws_etag != lock_etag:
            fetched = self._fetch(slug, current)
            if fetched.files == dict(files):  # an earlier push of these files was cut off before recording
                return _Decision("unchanged", "the workspace already has these files (a push cut off before it "
                                              "recorded them); its Etag is recorded", exp_id, lock_etag, ws_etag,
                                 reconciled=fetched)
            reason = "changed in the workspace since the last pull"
            if options.force:
                reason += "; --force: its current version is backed up, then overwritten"
            return _Decision("update", reason, exp_id, lock_etag, ws_etag, stale=True)
        if entry.get("content_hash") == lockfile.hash_like(entry, files):
            return _Decision("unchanged", "the workspace has these files", exp_id, lock_etag, ws_etag)
        synced = experiments.synced_files(self.root, slug, entry) if entry.get("content_hash") else None
        if synced is not None and experiments.without_webservice(synced) == experiments.without_webservice(files):
            return _Decision("unchanged", "only webservice.json changed here, which push does not send",
                             exp_id, lock_etag, ws_etag)
        return _Decision("update", "local changes", exp_id, lock_etag, ws_etag)

    def _fetch(self, slug: str, summary: Mapping[str, Any]) -> Fetched:
        if self.names is None:
            self.names = module_names(self.target.client)
        return fetch_one(self.target, slug, summary, self.names)


@dataclass(frozen=True)
class _Decision:
    action: str
    reason: str
    experiment_id: str | None = None
    lock_etag: str | None = None
    workspace_etag: str | None = None
    stale: bool = False
    reconciled: Fetched | None = None


def _changes(root: Path, slug: str, entry: Mapping[str, Any] | None, files: Mapping[str, bytes]
             ) -> tuple[Change, ...]:
    """What the update writes, as change records against the files as last synced (none found: no records)."""
    synced = experiments.synced_files(root, slug, entry) if entry and entry.get("content_hash") else None
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
