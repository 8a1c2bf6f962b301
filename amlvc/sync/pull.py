"""`amlvc pull`: workspace experiments (and their run history) into normalized files and one commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.errors import ApiError, DirtyTree, InvalidDocument, UsageError, some
from amlvc.rules import LOCK_FILE
from amlvc.rules import WEBSERVICE_FILE as WSD
from amlvc.sync import messages
from amlvc.sync.remote import (
    Fetched,
    Target,
    canonical,
    fetch_one,
    get_document,
    module_names,
    open_remote,
    user_experiments,
)
from amlvc.worktree import experiments as folders
from amlvc.worktree import journal, lockfile
from amlvc.worktree import services as service_files

Progress = Callable[[str, int, int], None]


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
    invalid: tuple[tuple[str, str], ...] = ()  # (slug, why): refused by validation, not pulled (exit 6)
    webservices: dict[str, Any] | None = None  # what sync/webservices.mirror did (its own commit), when tracked

    def as_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote, "workspace_id": self.workspace_id, "commit": self.commit,
            "added": list(self.added), "changed": list(self.changed), "removed": list(self.removed),
            "recorded": list(self.recorded), "deleted_in_workspace": list(self.gone),
            "diverged": list(self.diverged), "merged": list(self.merged), "unchanged": self.unchanged,
            "snapshots": list(self.snapshots), "history_commits": list(self.history_commits),
            "recovered": self.recovered, "requests": self.requests,
            "invalid": [{"experiment": slug, "problem": why} for slug, why in self.invalid],
            "webservices": self.webservices,
        }


def pull(
    root: Path,
    experiments: Sequence[str] = (),
    *,
    remote: str | None = None,
    history_: bool = False,
    jobs: int = 32,
    prune: bool = False,
    token_env: str | None = None,
    progress: Progress | None = None,
    subject: str | None = None,
    theirs: bool = False,
) -> PullResult:
    """Bring the workspace's experiments into the repository at `root`; one commit, or none."""
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    target = open_remote(root, remote, token_env=token_env, jobs=jobs)
    with target.client, journal.operation_lock(root):
        recovered = journal.recover_interrupted(root)
        lock = lockfile.load(root)
        entries = lockfile.entries(lock, target.name)
        summaries = user_experiments(target.client.list_experiments())
        plan = _plan(root, lock, target.name, entries, summaries, experiments)
        _refuse_dirty(root, [folders.path(slug) for slug in plan.prune_slugs(prune)], prune=True)
        snapshots: list[tuple[str, dict[str, Any]]] = []
        wanted = dict(plan.fetch)
        invalid: dict[str, str] = {}
        if history_:
            imported = repo.trailer_values(root, messages.TRAILER_SNAPSHOT)
            snapshots = _fetch_history(target, plan, imported, jobs, progress, invalid)
            for slug, _doc in snapshots:
                wanted.setdefault(slug, plan.by_slug[slug])
            for slug in invalid:
                wanted.pop(slug, None)
        fetched: dict[str, Fetched] = {}
        names: dict[str, str] = {}
        new = [] if history_ else [slug for slug in wanted if slug not in entries]
        # New experiments' files go to git as they arrive (one pack, while later GETs are in flight).
        with repo.pack_stream(root, 2 * len(new)) as stream:
            if wanted:
                fetched, refused, names = _fetch_all(target, wanted, jobs, progress, _sender(stream, entries))
                invalid.update(refused)
                snapshots = [(slug, doc) for slug, doc in snapshots if slug not in invalid]
            local = {slug: folders.read(root, slug) for slug in fetched}
            rewritten = {slug for slug, _doc in snapshots}
            decision = _decide(entries, fetched, local, rewritten)
            if decision.diverged and not theirs:  # three-way merge, or ConflictError before anything is written
                from amlvc.sync import pullmerge

                merged = pullmerge.merge_diverged(root, entries, {s: fetched[s].files for s in decision.diverged})
                decision = replace(decision, writes={**decision.writes, **merged}, merged=tuple(sorted(merged)))
            _refuse_dirty_writes(root, decision.writes,
                                 lock_changes=decision.lock_changes or bool(plan.prune_slugs(prune)))
            history_commits = _commit_history(root, target, snapshots, fetched, names) if snapshots else []
            commit = _write_leaves(root, target, lock, entries, plan, fetched, decision, prune, subject, stream)
        services = None
        if not experiments and service_files.tracked(root):
            from amlvc.sync import webservices  # only a repository that tracks web services pays for this import

            services = webservices.mirror(root, target, progress=progress)
        return PullResult(
            remote=target.name, workspace_id=target.workspace_id, commit=commit,
            added=decision.added, changed=decision.changed, removed=tuple(plan.prune_slugs(prune)),
            recorded=decision.recorded, gone=tuple(plan.gone) if not prune else (), diverged=decision.diverged,
            merged=decision.merged,
            unchanged=len(plan.unchanged), snapshots=tuple(str(d.get("ExperimentId")) for _s, d in snapshots),
            recovered=recovered, requests=target.client.requests_made, history_commits=tuple(history_commits),
            invalid=tuple(sorted(invalid.items())), webservices=services.to_json() if services else None,
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
    taken = folders.taken_slugs(root, lock)
    plan = Plan()
    listed: set[str] = set()
    ordered = sorted(summaries, key=lambda s: (str(s.get("Description") or ""), str(s.get("ExperimentId"))))
    for summary in ordered:
        exp_id = str(summary["ExperimentId"])
        slug = slug_of_id.get(exp_id)
        if slug is None:
            slug = folders.unique_slug(str(summary.get("Description") or exp_id), exp_id, taken)
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


def _fetch_all(target: Target, wanted: Mapping[str, Mapping[str, Any]], jobs: int, progress: Progress | None,
               keep: Callable[[Fetched], None] | None = None,
               ) -> tuple[dict[str, Fetched], dict[str, str], dict[str, str]]:
    """GET every wanted experiment (and its web-service definition) in parallel: the experiments, the
    invalid ones (slug -> why) left out, and the module names; any other failure stops the pull before
    anything is written.

    Threads wait for the network; parsing and normalizing (most of a pull's CPU) run in worker
    processes when there are enough experiments for them to pay off, so they use every core.
    """
    # Imported here, before any fork: the normalizer and its tables are what the workers run (and a pull with
    # nothing to fetch never needs them).
    from amlvc.sync.workers import fetch_in_workers, names_in_background, workers_for

    result: dict[str, Fetched] = {}
    invalid: dict[str, str] = {}
    workers = workers_for(len(wanted))
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            try:
                finished: Iterator[tuple[str, Future[Fetched]]]
                if workers is None:
                    names: Future[dict[str, str]] = Future()
                    names.set_result(module_names(target.client))
                    futures = {pool.submit(fetch_one, target, slug, summary, names.result()): slug
                               for slug, summary in wanted.items()}
                    finished = ((futures[f], f) for f in as_completed(futures))
                else:
                    names = names_in_background(pool, target)
                    finished = fetch_in_workers(workers, pool, target, wanted, names)
                for done, (slug, future) in enumerate(finished, 1):
                    try:
                        item = future.result()
                    except InvalidDocument as exc:  # reported, left out: the others are still pulled
                        invalid[slug] = exc.message
                    else:
                        result[item.slug] = item
                        if keep is not None:
                            keep(item)
                    if progress is not None:
                        progress("fetch", done, len(wanted))
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)
    return result, invalid, names.result()


def _sender(stream: repo.PackStream | None, entries: Mapping[str, Any]) -> Callable[[Fetched], None] | None:
    """What sends a new experiment's files to `stream` as it arrives: a new one is always written as fetched."""
    if stream is None:
        return None

    def send(item: Fetched) -> None:
        if item.slug not in entries:
            for rel, data in item.files.items():
                stream.add(folders.path(item.slug, rel), data)

    return send


def _fetch_history(target: Target, plan: Plan, imported: set[str], jobs: int, progress: Progress | None,
                   invalid: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Every run-history snapshot not imported yet, as (slug, document), oldest first; an experiment with an
    invalid snapshot goes to `invalid` (slug -> why) with none of its history."""
    slugs = sorted(set(plan.fetch) | set(plan.unchanged))
    found: list[tuple[str, dict[str, Any]]] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_walk_history, target, plan.by_slug[s], imported) for s in slugs]
        for slug, future in zip(slugs, futures, strict=True):
            try:
                found.extend((slug, doc) for doc in future.result())
            except InvalidDocument as exc:
                invalid[slug] = exc.message
            if progress is not None:
                progress("history", len(found), len(found))
    # Oldest run first. Where runs have no usable creation time (or the same one), their ids decide: a
    # snapshot id ends in a reverse timestamp, so the older run has the greater id (reference 1.6).
    found.sort(key=lambda item: str(item[1].get("ExperimentId")), reverse=True)
    found.sort(key=lambda item: (messages.snapshot_date(item[1]), item[0]))
    return found


def _walk_history(target: Target, summary: Mapping[str, Any], imported: set[str]) -> list[dict[str, Any]]:
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
        if not messages.SNAPSHOT_ID.match(sid) or sid.split(".")[2] != guid:
            continue
        seen.add(sid)
        try:
            doc = get_document(target, sid)
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
        legacy = entry is not None and entry.get(lockfile.HASH_SCOPE) == lockfile.LEGACY_SCOPE
        theirs = lockfile.hash_like(entry, item.files) if legacy else item.content_hash  # hashed once
        if entry is None:
            added.append(slug)
            writes[slug] = item.files
        elif theirs == base:
            # Saved or run in the workspace without a content change: local edits stay, the Etag is recorded
            # (and an entry of lock format 1 gets today's hash, which counts webservice.json too).
            if entry.get("etag") != item.etag or entry.get("run_id") != item.run_id or legacy:
                recorded.append(slug)
            if slug in rewritten:  # history commits replaced the files: the local ones go back
                writes[slug] = dict(mine) if mine else dict(item.files)
            elif legacy and mine and item.files.get(WSD) != mine.get(WSD):  # format 1 did not track the WSD
                kept = {k: v for k, v in mine.items() if k != WSD}
                writes[slug] = {**kept, **({WSD: item.files[WSD]} if WSD in item.files else {})}
        else:
            changed.append(slug)
            if mine and lockfile.hash_like(entry, mine) not in (base, theirs):
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
    paths = [folders.path(slug) for slug in writes] + ([LOCK_FILE] if lock_changes else [])
    dirty = repo.dirty_paths(root, paths)
    if not dirty:
        return
    if LOCK_FILE in dirty:
        raise DirtyTree(f"{LOCK_FILE} has uncommitted changes; commit or discard them "
                        f"(git status), then pull again")
    for slug, files in sorted(writes.items()):
        prefix = folders.path(slug) + "/"
        mine = sorted(p for p in dirty if p.startswith(prefix))
        if mine and folders.read(root, slug) != files:
            raise DirtyTree(
                f"uncommitted changes in {some(mine)}: the workspace "
                f"changed '{slug}' and pull would overwrite them; commit or discard them (git status), "
                f"then pull again"
            )


# -- writing ----------------------------------------------------------------------------------


def _write_leaves(root: Path, target: Target, lock: lockfile.Lock,
                  entries: Mapping[str, Mapping[str, Any]], plan: Plan, fetched: Mapping[str, Fetched],
                  decision: Decision, prune: bool, subject: str | None, stream: repo.PackStream | None,
                  ) -> str | None:
    removed = plan.prune_slugs(prune)
    if not (decision.writes or decision.lock_changes or removed):
        return None
    new_entries = {slug: dict(e) for slug, e in entries.items()}
    for slug, item in fetched.items():
        # The workspace's files are the new base: for a content-unchanged one they are the old base (and a
        # format-1 entry is rehashed over every file); for a merged one, push then sends the local merge.
        new_entries[slug] = lockfile.record(item.experiment_id, item.etag, item.run_id, item.identity,
                                            item.content_hash)
    for slug in removed:
        new_entries.pop(slug, None)
    new_lock = lockfile.with_entries(lock, target.name, new_entries)
    delete_dirs = [slug for slug in removed if not lockfile.used_elsewhere(lock, target.name, slug)]
    # The workspace's current secret values, for every fetched experiment (a key changed in Studio changes
    # no canonical file, but a later push must send the new one).
    secrets = {slug: item.secrets for slug, item in fetched.items()}
    message = messages.pull_message(target.name, target.workspace_id, decision.added, decision.changed,
                                   removed, decision.recorded, subject=subject)
    if decision.merged:
        from amlvc.sync import pullmerge

        message = pullmerge.note_merges(message, decision.merged)
    return journal.write_and_commit(root, writes=decision.writes, delete=delete_dirs, lock=new_lock,
                                   secrets=(target.name, secrets), message=message, stream=stream)


def _commit_history(root: Path, target: Target, snapshots: Sequence[tuple[str, Mapping[str, Any]]],
                    fetched: Mapping[str, Fetched], names: Mapping[str, str]) -> list[str]:
    """One commit per snapshot, oldest first, authored and dated as the run."""
    commits: list[str] = []
    for slug, doc in snapshots:
        item = canonical(target, slug, doc, names, with_wsd=False)
        files = dict(item.files)
        current = folders.read(root, slug)
        for path, data in current.items():
            if path == WSD:
                files.setdefault(path, data)
        if slug in fetched and WSD in fetched[slug].files:
            files.setdefault(WSD, fetched[slug].files[WSD])
        message = messages.snapshot_message(target.name, target.workspace_id, slug, doc)
        sha = journal.write_and_commit(root, writes={slug: files}, delete=[], lock=_claim(root, target, slug, item),
                                       secrets=None, message=message, author=messages.snapshot_signature(doc))
        if sha is not None:
            commits.append(sha)
    return commits


def _claim(root: Path, target: Target, slug: str, snapshot: Fetched) -> lockfile.Lock | None:
    """The lock with `slug` claimed for its experiment by the first snapshot commit of a new experiment.

    Without it, a pull killed between the snapshot commits and the leaf commit would leave a folder no lock
    entry names, and the next pull would give the experiment a second slug. The entry has no Etag, so the
    next pull fetches the leaf and finishes the job; the leaf commit then records it in full.
    """
    lock = lockfile.load(root)
    if slug in lock.entries(target.name):
        return None
    sid = snapshot.experiment_id.split(".", 3)
    leaf = f"{sid[0]}.f-id.{sid[2]}" if len(sid) == 4 else snapshot.experiment_id
    entry = lockfile.record(leaf, "", None, snapshot.identity, snapshot.content_hash)
    return lockfile.with_entries(lock, target.name, {**lockfile.entries(lock, target.name), slug: entry})
