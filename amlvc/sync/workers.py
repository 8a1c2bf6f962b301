"""Worker processes of a pull: GET bodies parsed and normalized on every core, with an in-process fallback."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import BrokenExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from amlvc.canonical.jsonio import loads
from amlvc.canonical.normalize import Normalized, normalize
from amlvc.sync.remote import Fetched, Target, assemble, canonical, get_document, head
from amlvc.worktree import journal

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

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
    journal.drop_inherited_locks()
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
        doc = loads(body, source)  # as strict as `amlvc import`: no duplicate keys, no NaN, bounded nesting
        if not isinstance(doc, dict):
            return None
        normalized = normalize(doc, source=source, module_names=_worker_names)
    except Exception:  # whatever it is, the in-process retry reports it
        return None
    return head(doc), replace(normalized, volatile={})  # volatile (NodeStatuses…) is not needed here


def fetch_in_worker(workers: ProcessPoolExecutor, target: Target, slug: str,
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
        return assemble(target, slug, head, normalized.files, normalized.identity, normalized.secrets,
                         with_wsd=True)
    return canonical(target, slug, get_document(target, exp_id, body), names, with_wsd=True)
