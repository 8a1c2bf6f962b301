"""`amlvc pull`: workspace experiments (and their run history) into normalized files and one commit."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlvc import repo
from amlvc.canonical.normalize import Normalized, normalize
from amlvc.canonical.webservice import normalize_wsd
from amlvc.errors import ApiError, DirtyTree, UsageError, some
from amlvc.sync import messages as history
from amlvc.sync import pullmerge
from amlvc.worktree import lockfile, mirror
from amlvc.worktree.project import WEBSERVICE_FILE as WSD

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Fetched:
    """One experiment as the workspace has it now, in canonical form."""

    slug: str
    name: str
    experiment_id: str
    etag: str
    run_id: str | None
    identity: dict[str, Any]
    files: dict[str, bytes]
    secrets: dict[str, str]

    @property
    def content_hash(self) -> str:
        return mirror.experiment_hash(self.files)


@dataclass(frozen=True)
class PullResult:
    """What a pull did; `commit` is None when nothing changed."""

    remote: str
    workspace_id: str
    commit: str | None
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    recorded: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    diverged: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()
    unchanged: int = 0
    snapshots: tuple[str, ...] = ()
    recovered: bool = False
    requests: int = 0
    history_commits: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote, "workspace_id": self.workspace_id, "commit": self.commit,
            "added": list(self.added), "changed": list(self.changed), "removed": list(self.removed),
            "recorded": list(self.recorded), "deleted_in_workspace": list(self.gone),
            "diverged": list(self.diverged), "merged": list(self.merged), "unchanged": self.unchanged,
            "snapshots": list(self.snapshots), "history_commits": list(self.history_commits),
            "recovered": self.recovered, "requests": self.requests,
        }


def pull(
    root: Path,
    experiments: Sequence[str] = (),
    *,
    remote: str | None = None,
    history_: bool = False,
    jobs: int = 8,
    prune: bool = False,
    token_env: str | None = None,
    progress: Progress | None = None,
    subject: str | None = None,
    theirs: bool = False,
) -> PullResult:
    """Bring the workspace's experiments into the repository at `root`; one commit, or none."""
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    target = mirror.open_remote(root, remote, token_env=token_env, jobs=jobs)
    with target.client, mirror.operation_lock(root):
        recovered = mirror.recover_interrupted(root)
        lock = mirror.read_lock(root)
        entries = mirror.lock_entries(lock, target.name)
        summaries = mirror.user_experiments(target.client.list_experiments())
        plan = _plan(root, lock, target.name, entries, summaries, experiments)
        _refuse_dirty(root, [mirror.experiment_dir(slug) for slug in plan.prune_slugs(prune)], prune=True)
        snapshots: list[tuple[str, dict[str, Any]]] = []
        wanted = dict(plan.fetch)
        if history_:
            imported = repo.trailer_values(root, history.TRAILER_SNAPSHOT)
            snapshots = _fetch_history(target, plan, imported, jobs, progress)
            for slug, _doc in snapshots:
                wanted.setdefault(slug, plan.by_slug[slug])
        fetched: dict[str, Fetched] = {}
        names: dict[str, str] = {}
        if wanted:
            names = mirror.module_names(target.client)
            fetched = _fetch_all(target, wanted, names, jobs, progress)
        local = {slug: mirror.read_experiment_files(root, slug) for slug in fetched}
        rewritten = {slug for slug, _doc in snapshots}
        decision = _decide(entries, fetched, local, rewritten)
        if decision.diverged and not theirs:  # three-way merge, or ConflictError before anything is written
            merged = pullmerge.merge_diverged(root, entries, {s: fetched[s].files for s in decision.diverged})
            decision = replace(decision, writes={**decision.writes, **merged}, merged=tuple(sorted(merged)))
        _refuse_dirty_writes(root, decision.writes, lock_changes=decision.lock_changes or bool(plan.prune_slugs(prune)))
        history_commits = _commit_history(root, target, snapshots, fetched, names) if snapshots else []
        commit = _write_leaves(root, target, lock, entries, plan, fetched, decision, prune, subject)
        return PullResult(
            remote=target.name, workspace_id=target.workspace_id, commit=commit,
            added=decision.added, changed=decision.changed, removed=tuple(plan.prune_slugs(prune)),
            recorded=decision.recorded, gone=tuple(plan.gone) if not prune else (), diverged=decision.diverged,
            merged=decision.merged,
            unchanged=len(plan.unchanged), snapshots=tuple(str(d.get("ExperimentId")) for _s, d in snapshots),
            recovered=recovered, requests=target.client.requests_made, history_commits=tuple(history_commits),
        )


# -- planning ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """Per listed experiment: fetch (Etag moved or new) or unchanged; lock entries the workspace lost."""

    fetch: dict[str, dict[str, Any]] = field(default_factory=dict)  # slug -> list summary
    unchanged: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    by_slug: dict[str, dict[str, Any]] = field(default_factory=dict)

    def prune_slugs(self, prune: bool) -> list[str]:
        return sorted(self.gone) if prune else []


def _plan(root: Path, lock: lockfile.Lock, remote: str, entries: Mapping[str, Mapping[str, Any]],
          summaries: Sequence[Mapping[str, Any]], selectors: Sequence[str]) -> Plan:
    slug_of_id = {str(e.get("id")): slug for slug, e in entries.items()}
    taken = mirror.taken_slugs(root, lock)
    plan = Plan()
    listed: set[str] = set()
    ordered = sorted(summaries, key=lambda s: (str(s.get("Description") or ""), str(s.get("ExperimentId"))))
    for summary in ordered:
        exp_id = str(summary["ExperimentId"])
        slug = slug_of_id.get(exp_id)
        if slug is None:
            slug = mirror.new_slug(str(summary.get("Description") or exp_id), exp_id, taken)
            taken.add(slug)
        plan.by_slug[slug] = dict(summary)
        listed.add(exp_id)
    wanted = _select(plan.by_slug, entries, selectors, remote)
    for slug in sorted(wanted):
        listed_as = plan.by_slug.get(slug)
        if listed_as is None:
            continue
        entry = entries.get(slug)
        if entry is not None and entry.get("etag") == listed_as.get("Etag") and entry.get("etag"):
            plan.unchanged.append(slug)
        else:
            plan.fetch[slug] = listed_as
    plan.gone = sorted(slug for slug, e in entries.items() if str(e.get("id")) not in listed and slug in wanted)
    return plan


def _select(by_slug: Mapping[str, Mapping[str, Any]], entries: Mapping[str, Mapping[str, Any]],
            selectors: Sequence[str], remote: str) -> set[str]:
    everything = set(by_slug) | set(entries)
    if not selectors:
        return everything
    chosen: set[str] = set()
    for selector in selectors:
        hits = {slug for slug in everything if selector == slug
                or selector == by_slug.get(slug, {}).get("Description")
                or selector in (by_slug.get(slug, {}).get("ExperimentId"), entries.get(slug, {}).get("id"))}
        if not hits:
            raise UsageError(f"no experiment {selector!r} in workspace '{remote}' or in amlvc.lock; "
                             f"use a slug from experiments/, an experiment name or an id (see `amlvc status`)")
        chosen |= hits
    return chosen


# -- fetching ---------------------------------------------------------------------------------


Normalizer = Callable[[Mapping[str, Any], str, Mapping[str, str]], Normalized]


def _normalize_here(doc: Mapping[str, Any], source: str, names: Mapping[str, str]) -> Normalized:
    return normalize(doc, source=source, module_names=names)


def _fetch_all(target: mirror.Target, wanted: Mapping[str, Mapping[str, Any]], names: Mapping[str, str],
               jobs: int, progress: Progress | None) -> dict[str, Fetched]:
    """GET every wanted experiment (and its web-service definition) in parallel; all or nothing.

    Threads wait for the network; parsing and normalizing (most of a pull's CPU) run in worker
    processes when there are enough experiments for them to pay off, so they use every core.
    """
    result: dict[str, Fetched] = {}
    workers = workers_for(len(wanted), names)
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            if workers is None:
                futures = {pool.submit(fetch_one, target, slug, summary, names): slug
                           for slug, summary in wanted.items()}
            else:
                futures = {pool.submit(_fetch_in_worker, workers, target, slug, summary, names): slug
                           for slug, summary in wanted.items()}
            try:
                for done, future in enumerate(as_completed(futures), 1):
                    item = future.result()
                    result[item.slug] = item
                    if progress is not None:
                        progress("fetch", done, len(futures))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)
    return result


def fetch_one(target: mirror.Target, slug: str, summary: Mapping[str, Any], names: Mapping[str, str],
              norm: Normalizer = _normalize_here) -> Fetched:
    """GET one experiment (plus its WSD when it is a predictive experiment) and normalize it."""
    exp_id = str(summary["ExperimentId"])
    doc = target.client.get_experiment(exp_id)
    return canonical(target, slug, doc, names, with_wsd=True, norm=norm)


def canonical(target: mirror.Target, slug: str, doc: Mapping[str, Any], names: Mapping[str, str],
              *, with_wsd: bool, norm: Normalizer = _normalize_here) -> Fetched:
    """A GET document in canonical form, with the workspace's web-service definition when it has one."""
    exp_id = str(doc.get("ExperimentId"))
    normalized = norm(doc, f"{target.name}:{exp_id}", names)
    return _assemble(target, slug, _head(doc), normalized.files, normalized.identity, normalized.secrets,
                     with_wsd=with_wsd)


def _head(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a GET document that `_assemble` reads (all a worker process sends back of it)."""
    web = doc.get("WebService")
    predictive = isinstance(web, Mapping) and web.get("IsWebServiceExperiment") is True
    return {"ExperimentId": doc.get("ExperimentId"), "Description": doc.get("Description"),
            "Etag": doc.get("Etag"), "RunId": doc.get("RunId"), "predictive": predictive}


def _assemble(target: mirror.Target, slug: str, doc: Mapping[str, Any], canonical_files: Mapping[str, bytes],
              identity: Mapping[str, Any], found_secrets: Mapping[str, str], *, with_wsd: bool) -> Fetched:
    exp_id = str(doc.get("ExperimentId"))
    files = dict(canonical_files)
    secrets = dict(found_secrets)
    if with_wsd and doc.get("predictive") is True:
        wsd = _fetch_wsd(target, exp_id)
        if wsd is not None:
            files.update(wsd.files)
            secrets.update(wsd.secrets)
    etag = doc.get("Etag")
    run_id = doc.get("RunId")
    return Fetched(slug=slug, name=str(doc.get("Description") or slug), experiment_id=exp_id,
                   etag=etag if isinstance(etag, str) else "", run_id=run_id if isinstance(run_id, str) else None,
                   identity=dict(identity), files=files, secrets=secrets)


# -- worker processes ---------------------------------------------------------------------------

POOL_MIN = 16  # experiments; fewer are normalized in-process (starting workers would cost more)
_worker_names: dict[str, str] = {}


def workers_for(count: int, names: Mapping[str, str]) -> ProcessPoolExecutor | None:
    """Worker processes for `count` experiments, forked now; None when in-process is better or unsafe.

    Forked (nothing to re-import) while this process has no other thread, so no lock is copied
    mid-use; each worker drops the inherited operation lock, leaves Ctrl-C to the pull and dies with it.
    """
    cores = os.cpu_count() or 1
    # Another thread (a server run in-process, as in the demo and the tests) could hold a lock at the
    # moment of the fork, which the worker would then wait for forever: normalize in-process then.
    if count < POOL_MIN or cores < 2 or sys.platform != "linux" or threading.active_count() > 1:
        return None
    # Imported here: 25 ms that a pull of a few experiments (and every other command) does not need.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=min(cores, 4), mp_context=multiprocessing.get_context("fork"),
                               initializer=_worker_started, initargs=(os.getpid(), dict(names)))
    try:
        pool.submit(int).result()  # with "fork", every worker is started at the first submit
    except BrokenProcessPool:
        pool.shutdown(wait=False)
        return None
    return pool


def _worker_started(parent: int, names: dict[str, str]) -> None:
    gc.freeze()  # the parent's objects are never collected here (no finalizer of theirs runs twice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pull stops the workers itself
    mirror.drop_inherited_locks()
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the pull
    if os.getppid() != parent:  # the pull died before prctl took effect
        os._exit(1)
    _worker_names.update(names)


def _parse_and_normalize(body: bytes, source: str) -> tuple[dict[str, Any], Normalized] | None:
    """In a worker: the document's head fields and canonical files; None for anything unusual.

    The caller then redoes the work in-process, where errors keep their type and message (and
    amlvc's exceptions need not survive pickling).
    """
    try:
        doc = json.loads(body.decode("utf-8-sig"))
        if not isinstance(doc, dict):
            return None
        normalized = normalize(doc, source=source, module_names=_worker_names)
    except Exception:  # whatever it is, the in-process retry reports it
        return None
    return _head(doc), replace(normalized, volatile={})  # volatile (NodeStatuses…) is not needed here


def _fetch_in_worker(workers: ProcessPoolExecutor, target: mirror.Target, slug: str,
                     summary: Mapping[str, Any], names: Mapping[str, str]) -> Fetched:
    """`fetch_one`, with the parsing and normalizing done by a worker process."""
    exp_id = str(summary["ExperimentId"])
    body = target.client.get_experiment_body(exp_id)
    try:
        done = workers.submit(_parse_and_normalize, body, f"{target.name}:{exp_id}").result()
    except BrokenExecutor:  # a worker died (out of memory?): this process does it
        done = None
    if done is not None:
        head, normalized = done
        return _assemble(target, slug, head, normalized.files, normalized.identity, normalized.secrets,
                         with_wsd=True)
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except ValueError:
        doc = None
    if not isinstance(doc, dict):  # unreadable: the client's own GET retries and reports it
        doc = target.client.get_experiment(exp_id)
    return canonical(target, slug, doc, names, with_wsd=True)


def _fetch_wsd(target: mirror.Target, exp_id: str) -> Normalized | None:
    try:
        doc = target.client.get_webservice_definition(exp_id)
    except ApiError as exc:
        # The service only exports a definition of a predictive experiment that has run (reference §2.2).
        if exc.status is not None and 400 <= exc.status < 500:
            return None
        raise
    return normalize_wsd(doc, source=f"{target.name}:{exp_id}/webservicedefinition")


def _fetch_history(target: mirror.Target, plan: Plan, imported: set[str], jobs: int,
                   progress: Progress | None) -> list[tuple[str, dict[str, Any]]]:
    """Every run-history snapshot not imported yet, as (slug, document), oldest first."""
    slugs = sorted(set(plan.fetch) | set(plan.unchanged))
    found: list[tuple[str, dict[str, Any]]] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_walk_history, target, plan.by_slug[s], imported) for s in slugs]
        for slug, future in zip(slugs, futures, strict=True):
            found.extend((slug, doc) for doc in future.result())
            if progress is not None:
                progress("history", len(found), len(found))
    found.sort(key=lambda item: (history.snapshot_date(item[1]), item[0], str(item[1].get("ExperimentId"))))
    return found


def _walk_history(target: mirror.Target, summary: Mapping[str, Any], imported: set[str]) -> list[dict[str, Any]]:
    """Follow RunId / ParentExperimentId links from the leaf through its snapshots; stop at imported ones."""
    exp_id = str(summary["ExperimentId"])
    guid = exp_id.split(".")[-1]
    seen: set[str] = set()
    todo = [summary.get("RunId")]
    docs: list[dict[str, Any]] = []
    while todo:
        sid = todo.pop()
        if not isinstance(sid, str) or sid in seen or sid in imported:
            continue
        if not history.SNAPSHOT_ID.match(sid) or sid.split(".")[2] != guid:
            continue
        seen.add(sid)
        try:
            doc = target.client.get_experiment(sid)
        except ApiError as exc:
            if exc.status == 404:  # a snapshot deleted from the history: nothing to import
                continue
            raise
        docs.append(doc)
        todo.extend([doc.get("ParentExperimentId"), doc.get("RunId")])
    return docs


# -- deciding and local safety -----------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Per fetched experiment: what the pull writes (three-way: lock = base, workspace, working tree)."""

    writes: dict[str, dict[str, bytes]]
    added: tuple[str, ...]
    changed: tuple[str, ...]
    recorded: tuple[str, ...]
    diverged: tuple[str, ...]
    lock_changes: bool
    merged: tuple[str, ...] = ()  # diverged ones whose writes are the merge (local edits kept)


def _decide(entries: Mapping[str, Mapping[str, Any]], fetched: Mapping[str, Fetched],
            local: Mapping[str, Mapping[str, bytes]], rewritten: set[str]) -> Decision:
    writes: dict[str, dict[str, bytes]] = {}
    added: list[str] = []
    changed: list[str] = []
    recorded: list[str] = []
    diverged: list[str] = []
    for slug in sorted(fetched):
        item = fetched[slug]
        entry = entries.get(slug)
        mine = local.get(slug) or {}
        base = entry.get("content_hash") if entry else None
        if entry is None:
            added.append(slug)
            writes[slug] = item.files
        elif item.content_hash == base:
            # Saved or run in the workspace without a content change: local edits stay, the Etag is recorded.
            if entry.get("etag") != item.etag or entry.get("run_id") != item.run_id:
                recorded.append(slug)
            wsd_moved = item.files.get(WSD) != mine.get(WSD)
            if slug in rewritten or wsd_moved:  # history commits replaced the files, or a new WSD: write
                kept = {k: v for k, v in mine.items() if k != WSD} if mine else dict(item.files)
                writes[slug] = {**kept, **({WSD: item.files[WSD]} if WSD in item.files else {})}
        else:
            changed.append(slug)
            if mine and mirror.experiment_hash(mine) not in (base, item.content_hash):
                diverged.append(slug)
            writes[slug] = item.files
    lock_changes = bool(added or changed or recorded)
    return Decision(writes, tuple(added), tuple(changed), tuple(recorded), tuple(diverged), lock_changes)


def _refuse_dirty(root: Path, paths: Iterable[str], *, prune: bool = False) -> None:
    dirty = repo.dirty_paths(root, list(paths))
    if dirty:
        what = "remove" if prune else "overwrite"
        raise DirtyTree(
            f"uncommitted changes in {some(sorted(dirty))}: "
            f"pull would {what} them; commit or discard them (git status), then pull again"
        )


def _refuse_dirty_writes(root: Path, writes: Mapping[str, Mapping[str, bytes]], *, lock_changes: bool) -> None:
    """Uncommitted edits to what the pull writes are refused, unless they already are exactly its result."""
    paths = [mirror.experiment_dir(slug) for slug in writes] + ([mirror.LOCK_NAME] if lock_changes else [])
    dirty = repo.dirty_paths(root, paths)
    if not dirty:
        return
    if mirror.LOCK_NAME in dirty:
        raise DirtyTree(f"{mirror.LOCK_NAME} has uncommitted changes; commit or discard them "
                        f"(git status), then pull again")
    for slug, files in sorted(writes.items()):
        prefix = mirror.experiment_dir(slug) + "/"
        mine = sorted(p for p in dirty if p.startswith(prefix))
        if mine and mirror.read_experiment_files(root, slug) != files:
            raise DirtyTree(
                f"uncommitted changes in {some(mine)}: the workspace "
                f"changed '{slug}' and pull would overwrite them; commit or discard them (git status), "
                f"then pull again"
            )


# -- writing ----------------------------------------------------------------------------------


def _write_leaves(root: Path, target: mirror.Target, lock: lockfile.Lock,
                  entries: Mapping[str, Mapping[str, Any]], plan: Plan, fetched: Mapping[str, Fetched],
                  decision: Decision, prune: bool, subject: str | None) -> str | None:
    removed = plan.prune_slugs(prune)
    if not (decision.writes or decision.lock_changes or removed):
        return None
    new_entries = {slug: dict(e) for slug, e in entries.items()}
    for slug, item in fetched.items():
        entry = entries.get(slug)
        digest = item.content_hash if (entry is None or slug in decision.changed) else str(entry.get("content_hash"))
        new_entries[slug] = mirror.lock_entry(item.experiment_id, item.etag, item.run_id, item.identity, digest)
    for slug in removed:
        new_entries.pop(slug, None)
    new_lock = mirror.with_entries(lock, target.name, new_entries)
    delete_dirs = [slug for slug in removed if not mirror.slug_used_elsewhere(lock, target.name, slug)]
    secrets = {slug: fetched[slug].secrets for slug in decision.writes if slug in fetched}
    message = history.pull_message(target.name, target.workspace_id, decision.added, decision.changed,
                                   removed, decision.recorded, subject=subject)
    message = pullmerge.note_merges(message, decision.merged)
    return mirror.write_and_commit(root, writes=decision.writes, delete=delete_dirs, lock=new_lock,
                                   secrets=(target.name, secrets), message=message)


def _commit_history(root: Path, target: mirror.Target, snapshots: Sequence[tuple[str, Mapping[str, Any]]],
                    fetched: Mapping[str, Fetched], names: Mapping[str, str]) -> list[str]:
    """One commit per snapshot, oldest first, authored and dated as the run."""
    commits: list[str] = []
    for slug, doc in snapshots:
        item = canonical(target, slug, doc, names, with_wsd=False)
        files = dict(item.files)
        current = mirror.read_experiment_files(root, slug)
        for path, data in current.items():
            if path == "webservice.json":
                files.setdefault(path, data)
        if slug in fetched and "webservice.json" in fetched[slug].files:
            files.setdefault("webservice.json", fetched[slug].files["webservice.json"])
        message = history.snapshot_message(target.name, target.workspace_id, slug, doc)
        sha = mirror.write_and_commit(root, writes={slug: files}, delete=[], lock=None, secrets=None,
                                    message=message, author=history.snapshot_signature(doc))
        if sha is not None:
            commits.append(sha)
    return commits
