"""`amlvc restore`: put an old git revision or a run-history snapshot back into the workspace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.canonical.normalize import to_push_body
from amlvc.errors import ApiError, ConflictError, DirtyTree, UsageError, some
from amlvc.rules import BACKUP_REF_PREFIX, EXPERIMENTS_DIR, LOCK_FILE
from amlvc.sync import messages
from amlvc.sync.backup import save_backup
from amlvc.sync.pull import pull
from amlvc.sync.push import push
from amlvc.sync.pushplan import PushOptions
from amlvc.sync.remote import open_remote
from amlvc.worktree import experiments, journal, lockfile


@dataclass(frozen=True)
class RestoreResult:
    """What was put back where; `commit` is the repository commit recording it."""

    slug: str
    source: str  # "rev <sha>" or "snapshot <run id>"
    remote: str
    experiment_id: str
    created: bool
    backup_ref: str | None
    commit: str | None
    new_slug: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"experiment": self.slug, "source": self.source, "remote": self.remote,
                "experiment_id": self.experiment_id, "created": self.created, "backup_ref": self.backup_ref,
                "commit": self.commit, "new_experiment": self.new_slug}


def restore(root: Path, experiment: str, *, rev: str | None = None, snapshot: str | None = None,
            as_new: str | None = None, remote: str | None = None, force: bool = False,
            token_env: str | None = None) -> RestoreResult:
    """Overwrite the experiment in the workspace with REV's files or a snapshot (or create a copy with --as-new)."""
    if (rev is None) == (snapshot is None):
        raise UsageError("give exactly one of --rev REV or --snapshot RUN_ID")
    if as_new is not None and not as_new.strip():
        raise UsageError("--as-new needs a non-empty experiment name")
    if rev is not None:
        return _restore_rev(root, experiment, rev, as_new=as_new, remote=remote, force=force, token_env=token_env)
    assert snapshot is not None
    return _restore_snapshot(root, experiment, snapshot, as_new=as_new, remote=remote, force=force,
                             token_env=token_env)


def _slug_at(root: Path, experiment: str, rev: str) -> str:
    slugs = experiments.slugs(root, rev)
    if experiment in slugs:
        return experiment
    named = sorted(experiments.display_names(root, rev).get(experiment, set()))
    if len(named) == 1:  # the experiment's name, as diff, log and push take it
        return named[0]
    raise UsageError(f"no experiment {experiment!r} at revision {rev!r} (there: {', '.join(slugs) or 'none'}); "
                     f"name it by its directory under {EXPERIMENTS_DIR}/")


def _restore_rev(root: Path, experiment: str, rev: str, *, as_new: str | None, remote: str | None, force: bool,
                 token_env: str | None) -> RestoreResult:
    sha = repo.resolve(root, rev)
    slug = _slug_at(root, experiment, sha)
    if as_new is None:
        _refuse_dirty(root, slug)
    # One commit: the push records the lock and puts REV's files in the work tree (when it writes nothing, the
    # commit below does the latter).
    options = PushOptions(experiments=(slug,), remote=remote, rev=sha, as_new=as_new, force=force,
                          token_env=token_env, restore=as_new is None)
    result = push(root, options)
    pushed = result.pushed[0] if result.pushed else None
    remote_name = result.plan.remote
    if as_new is not None:
        assert pushed is not None
        return RestoreResult(slug, f"rev {sha[:12]}", remote_name, pushed.experiment_id, True, None,
                             result.commit, new_slug=pushed.slug)
    commit = result.commit
    if commit is None:  # the workspace had REV's files already: only the work tree is put back
        message = messages.compose(
            f"Restore {slug} to {sha[:12]} in {remote_name}",
            [f"{slug} in workspace '{remote_name}' already holds the files of {sha}"],
            [*messages.trailers(remote_name, result.plan.workspace_id, experiment=slug), ("Amlvc-Rev", sha)])
        with journal.operation_lock(root):
            commit = journal.write_and_commit(root, writes={slug: experiments.read(root, slug, sha)}, delete=[],
                                             lock=None, secrets=None, message=message)
    planned = result.plan.experiments[0]
    exp_id = pushed.experiment_id if pushed else str(planned.experiment_id)
    return RestoreResult(slug, f"rev {sha[:12]}", remote_name, exp_id, False,
                         pushed.backup_ref if pushed else None, commit)


def _refuse_dirty(root: Path, slug: str) -> None:
    dirty = repo.dirty_paths(root, [experiments.path(slug), LOCK_FILE])
    if dirty:
        raise DirtyTree(f"uncommitted changes in {some(dirty)}: restore would overwrite them; commit "
                        f"or discard them (git status), then restore again")


def snapshot_id(leaf_id: str, run: str) -> str:
    """A full run-history id from RUN_ID: the id itself, or its reverse-timestamp suffix (`9952-07-21t15.18.32`)."""
    if messages.SNAPSHOT_ID.match(run):
        return run
    parts = leaf_id.split(".")
    candidate = f"{parts[0]}.s-id.{parts[-1]}.{run}" if len(parts) == 3 else run
    if not messages.SNAPSHOT_ID.match(candidate):
        raise UsageError(f"--snapshot {run!r}: expected a run-history id ({{ws}}.s-id.{{guid}}.{{timestamp}}) "
                         f"or its timestamp part; `amlvc log` and `git log --grep Amlvc-Snapshot` show them")
    return candidate


def _restore_snapshot(root: Path, experiment: str, run: str, *, as_new: str | None, remote: str | None,
                      force: bool, token_env: str | None) -> RestoreResult:
    target = open_remote(root, remote, token_env=token_env)
    backup: str | None = None
    with target.client, journal.operation_lock(root):
        entries = lockfile.entries(lockfile.load(root), target.name)
        entry = entries.get(experiment)
        if entry is None or not entry.get("id"):
            known = ", ".join(sorted(entries)) or "none"
            raise UsageError(f"experiment {experiment!r} was never pulled from '{target.name}' (known: {known}); "
                             f"run `amlvc pull --remote {target.name}` first")
        leaf_id = str(entry["id"])
        sid = snapshot_id(leaf_id, run)
        if sid.split(".")[2] != leaf_id.split(".")[-1]:
            raise UsageError(f"--snapshot {run!r} is not a run of '{experiment}' ({leaf_id})")
        if as_new is None:
            _refuse_dirty(root, experiment)
        try:
            doc = target.client.get_experiment(sid)
        except ApiError as exc:
            if exc.status == 404:
                raise UsageError(f"no run-history snapshot {sid} of '{experiment}' in workspace "
                                 f"'{target.name}'; `amlvc pull --history` imports the ones there are") from None
            raise
        if as_new is not None:
            body = to_push_body({**doc, "Description": as_new})
            created = target.client.create_experiment(body)
            new_id = str(created.get("ExperimentId"))
        else:
            listed = {str(s.get("ExperimentId")): s for s in target.client.list_experiments()}
            current = listed.get(leaf_id)
            if current is None:
                raise UsageError(f"'{experiment}' ({leaf_id}) no longer exists in workspace '{target.name}'; "
                                 f"restore it as a copy with --as-new NAME")
            ws_etag = current.get("Etag")
            if ws_etag != entry.get("etag"):
                if not force:
                    raise ConflictError(
                        f"experiment '{experiment}' changed in workspace '{target.name}' since your last pull; "
                        f"nothing was restored. Run `amlvc pull --remote {target.name}`, review, then restore "
                        f"again (or `--force` to overwrite it after a backup under {BACKUP_REF_PREFIX}/)")
                backup = save_backup(root, target, experiment, leaf_id, str(ws_etag), "a forced restore")
            target.client.save_experiment(leaf_id, to_push_body(doc), etag=str(ws_etag) if ws_etag else None)
            new_id = leaf_id
    stamp = sid.split(".", 3)[3]
    reason = f"Restore {experiment} to run {stamp} in {target.name}"
    if as_new is not None:
        reason = f"Restore run {stamp} of {experiment} as {as_new!r} in {target.name}"
    pulled = pull(root, [new_id], remote=target.name, token_env=token_env, subject=reason, theirs=True)
    new_slug = (pulled.added or (None,))[0] if as_new is not None else None
    return RestoreResult(experiment, f"snapshot {sid}", target.name, new_id, as_new is not None, backup,
                         pulled.commit, new_slug=new_slug)
