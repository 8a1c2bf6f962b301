"""`amlvc push`: make the plan (pushplan.py), refuse, write in parallel, record in one commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.canonical.normalize import normalize, to_push_body
from amlvc.client import Client
from amlvc.errors import ApiError
from amlvc.sync.backup import save_backup
from amlvc.sync.check import apply_remaps
from amlvc.sync.pushplan import PlannedExperiment, PushOptions, PushPlan, make_plan, refuse
from amlvc.sync.remote import Target, open_remote
from amlvc.worktree import experiments, journal, lockfile, secretfile

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PushedExperiment:
    slug: str
    action: str
    experiment_id: str
    etag: str | None
    backup_ref: str | None


@dataclass(frozen=True)
class PushResult:
    plan: PushPlan
    pushed: tuple[PushedExperiment, ...]
    commit: str | None
    requests: int = 0  # HTTP attempts made to the workspace, retries included

    def to_json(self) -> dict[str, Any]:
        return {**self.plan.to_json(), "commit": self.commit, "dry_run": self.plan.options.dry_run,
                "requests": self.requests,
                "pushed": [{"experiment": p.slug, "action": p.action, "experiment_id": p.experiment_id,
                            "etag": p.etag, "backup_ref": p.backup_ref} for p in self.pushed]}



# -- entry points ------------------------------------------------------------------------------


def push(start: Path, options: PushOptions, *, show_plan: Callable[[PushPlan], None] | None = None,
         progress: Progress | None = None) -> PushResult:
    """Plan, show the plan, refuse what SPEC "Push safety" refuses, then write and commit the lock."""
    root = repo.find_root(start)
    target = open_remote(root, options.remote, token_env=options.token_env, jobs=options.jobs)
    with target.client, journal.operation_lock(root):
        plan = make_plan(root, target, options)
        if show_plan is not None:
            show_plan(plan)
        refuse(plan)
        if options.dry_run or not any(e.writes or e.reconciled for e in plan.experiments):
            return PushResult(plan, (), None, target.client.requests_made)
        result = _execute(root, target, plan, progress)
        return replace(result, requests=target.client.requests_made)



# -- writing -------------------------------------------------------------------------------------


def _execute(root: Path, target: Target, plan: PushPlan, progress: Progress | None) -> PushResult:
    """Backups first (--force), then each write; the lock records every write that happened, in one commit."""
    todo = [e for e in plan.experiments if e.writes]
    backups: dict[str, str] = {}
    for e in todo:
        if e.stale and e.experiment_id:
            backups[e.slug] = save_backup(root, target, e.slug, e.experiment_id, str(e.workspace_etag),
                                          "a forced push")
    entries = lockfile.entries(lockfile.load(root), target.name)
    pushed: list[PushedExperiment] = []
    new_entries = {e.slug: lockfile.record(e.reconciled.experiment_id, e.reconciled.etag, e.reconciled.run_id,
                                           e.reconciled.identity, e.reconciled.content_hash)
                   for e in plan.experiments if e.reconciled is not None}
    copies: dict[str, tuple[dict[str, bytes], dict[str, str]]] = {}  # --as-new: slug -> (files, secrets)
    sent: dict[str, dict[str, str]] = {}  # slug -> the secret values written to the workspace
    failure: BaseException | None = None
    try:
        # Writes go out in parallel (the pool holds --jobs connections); results are recorded in plan order.
        with ThreadPoolExecutor(max_workers=max(1, min(plan.options.jobs, len(todo)))) as pool:
            futures = {pool.submit(_push_one, root, target, plan, e): e for e in todo}
            written: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {}
            for done, future in enumerate(as_completed(futures)):
                e = futures[future]
                try:
                    written[e.slug] = future.result()
                except BaseException as exc:  # keep recording what the others wrote
                    failure = failure or exc
                if progress is not None:
                    progress(f"{e.action} {e.slug}", done + 1, len(todo))
        for e in todo:
            if e.slug not in written:
                continue
            exp_id, current, sent[e.slug] = written[e.slug]
            etag = _str(current.get("Etag"))
            slug, digest = e.slug, e.content_hash
            norm = normalize(current, source=f"{target.name}:{exp_id}")  # identity as a pull records it
            if plan.options.as_new is not None:
                # The copy becomes an experiment of its own in the repository, as a pull would write it.
                slug = experiments.unique_slug(plan.options.as_new, exp_id,
                                               experiments.taken_slugs(root, lockfile.load(root)) | set(copies))
                copies[slug] = (dict(norm.files), dict(norm.secrets))
                digest = experiments.content_hash_of(norm.files)
            new_entries[slug] = lockfile.record(exp_id, etag or "", _str(current.get("RunId")), norm.identity,
                                                digest)
            pushed.append(PushedExperiment(slug, e.action, exp_id, etag, backups.get(e.slug)))
    finally:
        commit = _record(root, target, plan, {**entries, **new_entries}, pushed, copies, sent) \
            if pushed or new_entries else None
    if failure is not None:
        raise failure
    return PushResult(plan, tuple(pushed), commit)


def _push_one(root: Path, target: Target, plan: PushPlan, e: PlannedExperiment
              ) -> tuple[str, dict[str, Any], dict[str, str]]:
    """Write one experiment, then GET it: its id, the document the workspace now has (new Etag, RunId) and
    the secret values sent."""
    names = [fill.name for fill in e.secrets]
    _, values = secretfile.lookup(names, secretfile.stored(root, e.slug, e.secret_sections))
    exp_id = _write_one(target, plan, e, values)
    return exp_id, target.client.get_experiment(exp_id), values


def _write_one(target: Target, plan: PushPlan, e: PlannedExperiment, values: Mapping[str, str]) -> str:
    doc = e.document(values)
    if e.check is not None:
        doc = apply_remaps(doc, e.check.remaps)
    if plan.options.as_new is not None:
        doc["Description"] = plan.options.as_new
    body = to_push_body(doc, is_draft=not plan.options.run)
    if e.action == "create":
        return _create(target.client, body, e.name)
    assert e.experiment_id is not None
    etag = e.workspace_etag if e.stale else e.lock_etag
    target.client.save_experiment(e.experiment_id, body, etag=etag)
    return e.experiment_id


def _create(client: Client, body: Mapping[str, Any], name: str) -> str:
    """POST experiments/; after an ambiguous failure, adopt the copy the service made instead of making two."""
    before = {e.get("ExperimentId") for e in client.list_experiments()}
    try:
        created = client.create_experiment(body)
    except ApiError:
        fresh = [e for e in client.list_experiments()
                 if e.get("ExperimentId") not in before and e.get("Description") == name]
        if len(fresh) != 1:
            raise
        return str(fresh[0]["ExperimentId"])
    exp_id = created.get("ExperimentId")
    if not isinstance(exp_id, str):
        raise ApiError(f"workspace '{client.remote}' created {name!r} but did not answer its id")
    return exp_id


def _record(root: Path, target: Target, plan: PushPlan, entries: Mapping[str, Mapping[str, Any]],
            pushed: Sequence[PushedExperiment], copies: Mapping[str, tuple[dict[str, bytes], dict[str, str]]],
            sent: Mapping[str, Mapping[str, str]]) -> str | None:
    """One commit: the lock, --as-new copies as experiments of their own, and for `restore --rev` REV's files
    (so the work tree says what the workspace has); the secret values the workspace now has are recorded in
    the secrets file (what the next push compares with)."""
    lock = lockfile.with_entries(lockfile.load(root), target.name, entries)
    writes: dict[str, Mapping[str, bytes]] = {slug: files for slug, (files, _) in copies.items()}
    if plan.options.restore:
        by_slug = {e.slug: e for e in plan.experiments}
        writes.update({p.slug: by_slug[p.slug].files for p in pushed if p.slug in by_slug})
    secrets = {**sent, **{slug: values for slug, (_, values) in copies.items()}}
    if plan.options.as_new is not None:
        secrets = {slug: values for slug, (_, values) in copies.items()}
    return journal.write_and_commit(root, writes=writes, delete=[], lock=lock, secrets=(target.name, secrets),
                                   message=_commit_message(plan, pushed))


def _commit_message(plan: PushPlan, pushed: Sequence[PushedExperiment]) -> str:
    created = [p.slug for p in pushed if p.action == "create"]
    updated = [p.slug for p in pushed if p.action == "update"]
    recorded = [e.slug for e in plan.experiments if e.reconciled is not None]
    parts = [f"{verb} {', '.join(slugs)}" for verb, slugs in
             (("create", created), ("update", updated), ("record", recorded)) if slugs]
    subject = f"Push to {plan.remote}: {'; '.join(parts)}"
    if plan.options.restore and plan.rev:
        subject = f"Restore {', '.join(p.slug for p in pushed)} to {plan.rev[:12]} in {plan.remote}"
    lines = [subject, ""]
    for p in pushed:
        backup = f" (previous version: {p.backup_ref})" if p.backup_ref else ""
        lines.append(f"- {p.slug}: {p.action}d {p.experiment_id}{backup}")
    lines += [f"- {slug}: already in the workspace (an interrupted push); its Etag recorded" for slug in recorded]
    lines += ["", f"Amlvc-Remote: {plan.remote}", f"Amlvc-Workspace: {plan.workspace_id}"]
    if plan.rev:
        lines.append(f"Amlvc-Rev: {plan.rev}")
    return "\n".join(lines) + "\n"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
