"""Runs: start the workspace's version of an experiment, poll it to Finished, Failed or Canceled, name failed nodes.

`Start-AmlExperiment` (reference §4.1): GET, then the same document POSTed with `IsDraft:false`, then GET until
`Status.StatusCode` is final; a failed node's error is in its `NodeStatuses[].Status.StatusDetail` (or its error
log). After a finished wait the run's Etag and RunId are recorded in amlvc.lock (one commit) when the workspace
still holds exactly what the lock says, so a later push is not refused as stale because of a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.canonical.normalize import to_push_body
from amlvc.client import Client
from amlvc.errors import AmlvcError, RemoteError, RunFailed, ValidationError
from amlvc.sync.remote import Target, canonical, module_names, open_remote, user_experiments
from amlvc.worktree import experiments, journal, lockfile

FIRST_POLL = 0.2  # seconds before the first poll; each later wait is 1.5 times longer, up to MAX_POLL
MAX_POLL = 5.0
LOG_TAIL = 2000  # bytes of a failed node's error log shown when its status has no detail


@dataclass(frozen=True)
class NodeState:
    """One node of a run: id, module name, status code and the service's detail (the error text when failed)."""

    node: str
    module: str
    status: str
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "module": self.module, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class RunState:
    """A run as one poll saw it."""

    status: str
    run_id: str | None
    nodes: tuple[NodeState, ...]

    @property
    def final(self) -> bool:
        return self.status in rules.RUN_FINAL_STATES

    @property
    def failed(self) -> tuple[NodeState, ...]:
        return tuple(n for n in self.nodes if n.status in rules.RUN_FAILED_STATES)


@dataclass(frozen=True)
class Located:
    """An experiment named on the command line: its folder (None if only in the workspace), id and name."""

    slug: str | None
    experiment_id: str
    name: str


@dataclass(frozen=True)
class RunResult:
    remote: str
    experiment: Located
    state: RunState
    waited: bool
    differs: bool  # the workspace's version is not the committed one (False for a workspace-only experiment)
    commit: str | None = None  # the lock commit recording the finished run
    lock_note: str | None = None  # why the run was not recorded in amlvc.lock
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.state.status not in rules.RUN_FAILED_STATES

    def to_json(self) -> dict[str, Any]:
        e = self.experiment
        return {"remote": self.remote, "experiment": e.slug, "experiment_id": e.experiment_id, "name": e.name,
                "status": self.state.status, "run_id": self.state.run_id, "waited": self.waited,
                "differs_from_commit": self.differs, "commit": self.commit, "seconds": round(self.seconds, 3),
                "nodes": [n.to_json() for n in self.state.nodes],
                "failed": [n.to_json() for n in self.state.failed]}


Watch = Callable[[RunState, Sequence[NodeState]], None]  # the state and the nodes whose status just changed


@dataclass(frozen=True)
class Poll:
    """How long and how often to wait; `sleep` and `clock` are the real ones outside tests of the timing."""

    timeout: float = 3600.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    watch: Watch | None = field(default=None, compare=False)


def locate(root: Path, remote: str, name: str, summaries: Sequence[Mapping[str, Any]]) -> Located:
    """EXP as slug, experiment id or name, in amlvc.lock or in the workspace's list; ValidationError (6) if unknown."""
    entries = lockfile.entries(lockfile.load(root), remote)
    by_id = {str(e.get("id")): slug for slug, e in entries.items()}
    listed = {str(s.get("ExperimentId")): s for s in user_experiments(summaries)}
    slug = name if name in entries else by_id.get(name)
    if slug is not None:
        exp_id = str(entries[slug]["id"])
        if exp_id in listed:
            return Located(slug, exp_id, str(listed[exp_id].get("Description") or slug))
        raise ValidationError(f"experiment '{slug}' ({exp_id}) is no longer in workspace '{remote}'; "
                              f"push it first (`amlvc push {slug} --remote {remote}`)")
    named = [s for s in listed.values() if s.get("Description") == name or s.get("ExperimentId") == name]
    if len(named) == 1:
        exp_id = str(named[0]["ExperimentId"])
        return Located(by_id.get(exp_id), exp_id, str(named[0].get("Description") or exp_id))
    if name in experiments.slugs(root):
        raise ValidationError(f"experiment '{name}' is not in workspace '{remote}' yet; push it first "
                              f"(`amlvc push {name} --remote {remote}`)")
    what = "several experiments are" if named else "no experiment is"
    raise ValidationError(f"{what} called {name!r} in workspace '{remote}' or in this repository; nothing was "
                          f"run. Name it by folder (see `ls {rules.EXPERIMENTS_DIR}/`) or by id (`amlvc status`)")


def finished(root: Path, client: Client, remote: str, name: str, nothing: str) -> tuple[Located, dict[str, Any]]:
    """EXP located and its GET document, whose latest run must be Finished; ValidationError (6) saying `nothing` (what
    was not done) and how to run it otherwise."""
    located = locate(root, remote, name, client.list_experiments())
    doc = client.get_experiment(located.experiment_id)
    label = located.slug or located.name
    status = str((doc.get("Status") or {}).get("StatusCode"))
    if status != "Finished":
        raise ValidationError(f"the latest run of '{label}' is {status}, not Finished; {nothing}. "
                              f"Run it first: `amlvc run {label} --wait`")
    return located, doc


def module_name(node: Mapping[str, Any] | None, names: Mapping[str, str]) -> str:
    module_id = str((node or {}).get("ModuleId") or "")
    parts = module_id.split(".")
    family = parts[1] if len(parts) == 3 else ""
    return names.get(module_id) or names.get(family) or rules.MODULE_FAMILIES.get(family) or module_id or "?"


def read_state(client: Client, doc: Mapping[str, Any], names: Mapping[str, str]) -> RunState:
    """The run state of a GET document: its status and each node's status (failed ones with their error text)."""
    graph = doc.get("Graph") or {}
    nodes = {str(n.get("Id")): n for n in graph.get("ModuleNodes") or [] if isinstance(n, Mapping)}
    states = []
    for item in doc.get("NodeStatuses") or []:
        if not isinstance(item, Mapping):
            continue
        status = item.get("Status") or {}
        code = str(status.get("StatusCode") or "")
        detail = status.get("StatusDetail")
        detail = detail if isinstance(detail, str) and detail not in ("", "None") else None
        if code in rules.RUN_FAILED_STATES and detail is None:
            detail = _error_log(client, item.get("StandardErrorEndpoint"))
        node_id = str(item.get("NodeId"))
        states.append(NodeState(node_id, module_name(nodes.get(node_id), names), code, detail))
    status = doc.get("Status") or {}
    run_id = doc.get("RunId")
    return RunState(str(status.get("StatusCode") or "Unknown"), run_id if isinstance(run_id, str) else None,
                    tuple(states))


def _error_log(client: Client, endpoint: Any) -> str | None:
    """The last line of a failed node's error log (best effort: a log that cannot be read gives no text)."""
    if not isinstance(endpoint, Mapping):
        return None
    url = "".join(str(endpoint.get(k) or "") for k in ("BaseUri", "Location", "AccessCredential"))
    try:
        text = client.download_blob(url, what="error log")[-LOG_TAIL:].decode("utf-8", "replace")
    except AmlvcError:
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else None


def wait(client: Client, experiment_id: str, names: Mapping[str, str], poll: Poll,
         first: RunState | None = None) -> tuple[RunState, dict[str, Any]]:
    """GET the experiment until its status is final; `poll.watch` sees every change. RemoteError on timeout."""
    started = poll.clock()
    delay = FIRST_POLL
    seen: dict[str, str] = {n.node: n.status for n in first.nodes} if first else {}
    last_status = first.status if first else None
    while True:
        doc = client.get_experiment(experiment_id)
        state = read_state(client, doc, names)
        changed = [n for n in state.nodes if seen.get(n.node) != n.status]
        if poll.watch is not None and (changed or state.status != last_status):
            poll.watch(state, changed)
        seen.update({n.node: n.status for n in changed})
        last_status = state.status
        if state.final:
            return state, doc
        if poll.clock() - started >= poll.timeout:
            raise RemoteError(
                f"the run of {experiment_id} is still {state.status} after {poll.timeout:g} s; it goes on in the "
                f"workspace. Follow it in Studio, or wait longer with --timeout")
        poll.sleep(delay)
        delay = min(delay * 1.5, MAX_POLL)


def run(start: Path, name: str, *, remote: str | None = None, wait_: bool = False, poll: Poll | None = None,
        token_env: str | None = None, warn: Callable[[str], None] | None = None) -> RunResult:
    """Run the workspace's version of EXP (`warn` hears when it is not the committed one); with `wait_`, to the end."""
    root = repo.find_root(start)
    poll = poll or Poll()
    target = open_remote(root, remote, token_env=token_env)
    began = poll.clock()
    with target.client as client:
        located = locate(root, target.name, name, client.list_experiments())
        doc = client.get_experiment(located.experiment_id)
        names = module_names(client)
        differs = located.slug is not None and _differs(root, target, located.slug, doc, names)
        if differs and warn is not None:
            warn(f"the workspace's version of {located.slug!r} differs from the committed one; this runs the "
                 f"workspace's version (push first to run yours: `amlvc push {located.slug} --remote {target.name}`)")
        client.run_experiment(located.experiment_id, to_push_body(doc), etag=str(doc.get("Etag") or "") or None)
        if not wait_:
            state = read_state(client, client.get_experiment(located.experiment_id), names)
            return RunResult(target.name, located, state, False, differs, seconds=poll.clock() - began)
        state, final = wait(client, located.experiment_id, names, poll)
        commit, note = record_run(root, target, located, final, names)
    return RunResult(target.name, located, state, True, differs, commit, note, poll.clock() - began)


def _differs(root: Path, target: Target, slug: str, doc: Mapping[str, Any], names: Mapping[str, str]) -> bool:
    committed = experiments.read(root, slug, "HEAD") if repo.head(root) else {}
    fetched = canonical(target, slug, doc, names, with_wsd=False)
    return fetched.content_hash != experiments.content_hash_of(committed)


def record_run(root: Path, target: Target, located: Located, doc: Mapping[str, Any],
               names: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Record a Finished run's Etag and RunId in amlvc.lock (one commit) if the workspace holds what the lock says."""
    if located.slug is None:
        return None, "the experiment is not in this repository"
    status = str((doc.get("Status") or {}).get("StatusCode"))
    if status != "Finished":  # a failed run leaves the repository as it was; a pull records it when wanted
        return None, f"the run ended {status}"
    with journal.operation_lock(root):
        lock = lockfile.load(root)
        entries = lockfile.entries(lock, target.name)
        entry = entries.get(located.slug)
        fetched = canonical(target, located.slug, doc, names, with_wsd=False)
        if entry is None or entry.get("content_hash") != fetched.content_hash:
            return None, (f"the workspace's version differs from what {rules.LOCK_FILE} records; "
                          f"`amlvc pull --remote {target.name}` takes it")
        if repo.dirty_paths(root, [rules.LOCK_FILE]):
            return None, f"{rules.LOCK_FILE} has uncommitted changes"
        entries[located.slug] = lockfile.record(located.experiment_id, fetched.etag, fetched.run_id,
                                                fetched.identity, fetched.content_hash)
        message = (f"Run {located.slug} in {target.name}: {status}\n\n"
                   f"Amlvc-Remote: {target.name}\nAmlvc-Workspace: {target.workspace_id}\n"
                   f"Amlvc-Run: {fetched.run_id}\n")
        commit = journal.write_and_commit(root, writes={}, delete=[], lock=lockfile.with_entries(
            lock, target.name, entries), secrets=None, message=message)
    return commit, None


def follow(start: Path, pushed: Sequence[tuple[str, str]], *, remote: str | None = None, poll: Poll | None = None,
           token_env: str | None = None) -> list[RunResult]:
    """`push --run --wait`: wait for the runs a push started ((slug, experiment id) pairs) and record them."""
    root = repo.find_root(start)
    poll = poll or Poll()
    target = open_remote(root, remote, token_env=token_env)
    results = []
    with target.client as client:
        names = module_names(client)
        for slug, exp_id in pushed:
            began = poll.clock()
            located = Located(slug, exp_id, slug)
            state, final = wait(client, exp_id, names, poll)
            commit, note = record_run(root, target, located, final, names)
            results.append(RunResult(target.name, located, state, True, False, commit, note, poll.clock() - began))
    return results


def raise_for_failures(results: Sequence[RunResult]) -> None:
    """RunFailed (exit 7) naming each failed node of each failed run, with its module and error text."""
    failed = [r for r in results if not r.succeeded]
    if not failed:
        return
    parts = []
    for r in failed:
        nodes = "; ".join(f"{n.module} [{n.node}]: {n.detail or n.status}" for n in r.state.failed)
        parts.append(f"the run of '{r.experiment.slug or r.experiment.name}' in workspace '{r.remote}' ended "
                     f"{r.state.status}" + (f" ({nodes})" if nodes else ""))
    raise RunFailed("; ".join(parts) + ". Fix the failed nodes (see `amlvc check`), push, and run again")
