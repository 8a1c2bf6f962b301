"""Worker processes of a pull: GET bodies parsed and normalized on every core, with an in-process fallback."""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import BrokenExecutor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from amlvc.canonical.jsonio import loads
from amlvc.canonical.normalize import Normalized, normalize
from amlvc.sync.remote import Fetched, Target, assemble, canonical, get_document, head, module_names
from amlvc.worktree import journal
from amlvc.worktree.experiments import content_hash_of

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

POOL_MIN = 16  # experiments; fewer are normalized in-process (starting workers would cost more)
_worker_names: dict[str, str] = {}


def workers_for(count: int) -> ProcessPoolExecutor | None:
    """Worker processes for `count` experiments, forked now; None when in-process is better or unsafe.

    Forked (nothing to re-import) while this process has no other thread, so no lock is copied
    mid-use; each worker drops the inherited operation lock, leaves Ctrl-C to the pull and dies with it.
    The module names reach the workers with the bodies (they are asked for while the first GETs run).
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
                               initializer=_worker_started, initargs=(os.getpid(),))
    try:
        pool.submit(int).result()  # with "fork", every worker is started at the first submit
    except BrokenProcessPool:
        pool.shutdown(wait=False)
        return None
    return pool


def _worker_started(parent: int) -> None:
    gc.freeze()  # the parent's objects are never collected here (no finalizer of theirs runs twice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pull stops the workers itself
    journal.drop_inherited_locks()
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the pull
    if os.getppid() != parent:  # the pull died before prctl took effect
        os._exit(1)


def _parse_and_normalize(body: bytes, source: str, names: bytes) -> tuple[dict[str, Any], Normalized, str] | None:
    """In a worker: the document's head fields, canonical files and their content hash; None for anything unusual.

    The caller then redoes the work in-process, where errors keep their type and message (and
    amlvc's exceptions need not survive pickling). `names` is the pickled module-name table, the same
    bytes for every body of a pull: unpickled once per worker.
    """
    try:
        if not _worker_names:
            _worker_names.update(pickle.loads(names))
        doc = loads(body, source)  # as strict as `amlvc import`: no duplicate keys, no NaN, bounded nesting
        if not isinstance(doc, dict):
            return None
        normalized = normalize(doc, source=source, module_names=_worker_names)
    except Exception:  # whatever it is, the in-process retry reports it
        return None
    # volatile (NodeStatuses…) is not needed here
    return head(doc), replace(normalized, volatile={}), content_hash_of(normalized.files)


@dataclass
class _Item:
    """One wanted experiment on its way: GET (a thread), parse and normalize (a worker), finish."""

    slug: str
    exp_id: str
    body: bytes = b""


def fetch_in_workers(workers: ProcessPoolExecutor, pool: ThreadPoolExecutor, target: Target,
                     wanted: Mapping[str, Mapping[str, Any]], names: Future[dict[str, str]],
                     ) -> Iterator[tuple[str, Future[Fetched]]]:
    """Every wanted experiment as (slug, future of its `Fetched`), in the order they are done.

    The threads only GET: a body goes to a worker process and the thread takes the next GET at once, so
    the network never waits for the CPU. Bodies wait for the module names (`names`, asked for alongside
    the first GETs). A body a worker could not take (bad JSON, an invalid document, a dead worker) is
    redone in-process on a thread, as `fetch_one` would, so errors keep their type and message; so is
    the web-service definition of a predictive experiment.
    """
    done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
    stage: dict[Future[Any], tuple[str, _Item]] = {}

    def track(future: Future[Any], step: str, item: _Item) -> None:
        stage[future] = (step, item)
        future.add_done_callback(done.put)

    track(names, "names", _Item("", ""))
    for slug, summary in wanted.items():
        item = _Item(slug, str(summary["ExperimentId"]))
        track(pool.submit(target.client.get_experiment_body, item.exp_id), "get", item)
    blob: bytes | None = None
    waiting: list[_Item] = []
    while stage:
        future = done.get()
        step, item = stage.pop(future)
        if step == "names":
            blob = pickle.dumps(future.result())
            ready, waiting = waiting, []
        elif step == "get":
            item.body = future.result()
            ready = [item]
        elif step == "parse":
            finished = _finish_here(target, item, future)
            if finished is None:
                track(pool.submit(_finish, target, item, future, names.result()), "finish", item)
            else:
                yield item.slug, finished
            continue
        else:
            yield item.slug, future
            continue
        if blob is None:
            waiting.extend(ready)
            continue
        for one in ready:
            track(_hand_over(workers, target, one, blob), "parse", one)


_Done = tuple[dict[str, Any], Normalized, str]  # a worker's head fields, canonical files and content hash


def _hand_over(workers: ProcessPoolExecutor, target: Target, item: _Item, names: bytes) -> Future[_Done | None]:
    try:
        return workers.submit(_parse_and_normalize, item.body, f"{target.name}:{item.exp_id}", names)
    except (BrokenExecutor, RuntimeError):  # a worker died (out of memory?): this process does it
        failed: Future[_Done | None] = Future()
        failed.set_result(None)
        return failed


def _worker_result(future: Future[Any]) -> _Done | None:
    try:
        result: _Done | None = future.result()
    except BrokenExecutor:
        return None
    return result


def _finish_here(target: Target, item: _Item, future: Future[Any]) -> Future[Fetched] | None:
    """The `Fetched` of a body a worker normalized, at once when no request remains; None otherwise."""
    done = _worker_result(future)
    if done is None or done[0].get("predictive") is True:
        return None
    head_, normalized, hashed = done
    result: Future[Fetched] = Future()
    result.set_result(assemble(target, item.slug, head_, normalized.files, normalized.identity,
                               normalized.secrets, with_wsd=True, hashed=hashed))
    return result


def _finish(target: Target, item: _Item, future: Future[Any], names: Mapping[str, str]) -> Fetched:
    """On a thread: the web-service definition of a predictive experiment, or the in-process redo."""
    done = _worker_result(future)
    if done is not None:
        head_, normalized, hashed = done
        return assemble(target, item.slug, head_, normalized.files, normalized.identity, normalized.secrets,
                        with_wsd=True, hashed=hashed)
    return canonical(target, item.slug, get_document(target, item.exp_id, item.body), names, with_wsd=True)


def names_in_background(pool: ThreadPoolExecutor, target: Target) -> Future[dict[str, str]]:
    """The workspace's module names, asked for on a thread of `pool`."""
    return pool.submit(module_names, target.client)
