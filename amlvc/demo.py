"""`amlvc demo`: the main job end to end on an embedded local workspace, in a temporary directory."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.canonical.normalize import to_push_body
from amlvc.client import Client, RetryPolicy, hosts_for
from amlvc.config import Remote
from amlvc.errors import LocalError
from amlvc.rules import EXPERIMENT_FILE
from amlvc.worktree import experiments

Say = Callable[[str], None]
TOKEN_ENV = "AMLVC_DEMO_TOKEN"
# git needs an identity to commit; the demo supplies one only where the user has none.
_IDENTITY = {"GIT_AUTHOR_NAME": "amlvc demo", "GIT_AUTHOR_EMAIL": "demo@amlvc.invalid",
             "GIT_COMMITTER_NAME": "amlvc demo", "GIT_COMMITTER_EMAIL": "demo@amlvc.invalid"}


@dataclass(frozen=True)
class DemoResult:
    repository: Path | None  # kept with --keep, else removed
    steps: int
    seconds: float


@contextlib.contextmanager
def _environment(values: Mapping[str, str], *, only_if_unset: bool = False) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if not (only_if_unset and os.environ.get(key)):
            os.environ[key] = value
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def demo(say: Say, *, keep: Path | None = None) -> DemoResult:
    """Start a seeded local workspace, then init, pull, edit as Studio, pull, diff, push, restore."""
    from amlvc.server import DEMO_WORKSPACE_ID
    from amlvc.server.runner import start_server
    from amlvc.server.seed import demo_seed_dir

    started = time.monotonic()
    seed = demo_seed_dir()
    if seed is None:
        raise LocalError("the demo seed (amlvc/data/fixtures or fixtures/) is missing from this installation; "
                         "reinstall amlvc")
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise LocalError(f"{keep}: not empty; give --keep a new or empty directory")
    scratch = Path(tempfile.mkdtemp(prefix="amlvc-demo-"))
    root = keep.resolve() if keep is not None else scratch / "repo"
    root.mkdir(parents=True, exist_ok=True)
    steps = 0

    def step(text: str) -> None:
        nonlocal steps
        steps += 1
        say(f"\n[{steps}] {text}")

    try:
        step("Starting a local Studio (classic) workspace on 127.0.0.1 with the demo experiments.")
        with start_server(scratch / "workspace-data", seed=seed) as server:
            _ws, token, _secondary = server.workspaces[0]
            say(f"    workspace {DEMO_WORKSPACE_ID} at {server.url}")
            with _environment({TOKEN_ENV: token}), _environment(_IDENTITY, only_if_unset=True):
                _run(step, say, root, server.url, DEMO_WORKSPACE_ID)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - started
    say(f"\nDone in {seconds:.1f} s." + (f" The repository is in {root}." if keep is not None else ""))
    return DemoResult(root if keep is not None else None, steps, seconds)


def _run(step: Callable[[str], None], say: Say, root: Path, url: str, workspace_id: str) -> None:
    from amlvc.offline.init import init
    from amlvc.review.revisions import diff_revisions
    from amlvc.sync.pull import pull
    from amlvc.sync.push import push
    from amlvc.sync.pushplan import PushOptions
    from amlvc.sync.restore import restore
    from amlvc.sync.status import status

    step(f"amlvc init --remote dev --endpoint {url} --workspace-id {workspace_id}")
    init(root, Remote("dev", workspace_id, endpoint=url, token_env=TOKEN_ENV))
    say(f"    a git repository with amlvc.toml, amlvc.lock, .gitattributes in {root}")

    step("amlvc pull --history: every experiment fetched in parallel and normalized; each run-history "
         "snapshot becomes a commit dated and authored as the run, then one commit of the current versions.")
    first = pull(root, history_=True)
    say(f"    {len(first.history_commits)} run-history commit(s)")
    for slug in first.added:
        say(f"    added {slug}")
    say(f"    commit {str(first.commit)[:12]}")

    slug, exp_id = _pick(root, first.added)
    step(f"In Studio, someone changes a parameter of '{slug}' and drags a node (GET, edit, POST IsDraft:true).")
    api = Client("dev", workspace_id, hosts_for(endpoint=url), os.environ[TOKEN_ENV], retry=RetryPolicy())
    with api:
        what = _studio_edit(api, exp_id)
    say(f"    {what}")

    step("amlvc status, then amlvc pull: only the changed experiment is fetched.")
    for e in status(root).experiments:
        if e.state != "synced":
            say(f"    {e.state}: {e.slug}")
    second = pull(root)
    say(f"    changed: {', '.join(second.changed) or 'nothing'}; commit {str(second.commit)[:12]}")

    step("amlvc diff HEAD~1 HEAD: what changed, semantically (the drag is a layout-only change).")
    from amlvc.render import render

    text = render(diff_revisions(root, "HEAD~1", "HEAD"), "text")
    for line in text.rstrip().splitlines():
        say(f"    {line}")

    step(f"A local edit of '{slug}' (its Summary), committed, then amlvc push.")
    experiment = experiments.folder(root, slug) / EXPERIMENT_FILE
    text_json = experiment.read_text(encoding="utf-8")
    edited = re.sub(r'("Summary": )"((?:[^"\\]|\\.)*)"', r'\1"\2 (reviewed in git)"', text_json, count=1)
    experiment.write_text(edited, encoding="utf-8")
    repo.commit_paths(root, [experiments.path(slug, EXPERIMENT_FILE)], f"Review note on {slug}\n")
    pushed = push(root, PushOptions(experiments=(slug,)))
    for item in pushed.pushed:
        say(f"    {item.action}d {item.slug} in '{pushed.plan.remote}' ({item.experiment_id})")

    _bump_step(step, say, root, slug)

    step(f"amlvc restore {slug} --rev {str(first.commit)[:12]}: the first pulled version goes back.")
    restored = restore(root, slug, rev=str(first.commit))
    say(f"    restored from {restored.source}; commit {str(restored.commit)[:12]}")

    step("amlvc status: everything is in sync again.")
    for e in status(root).experiments:
        say(f"    {e.state}: {e.slug}")


def _bump_step(step: Callable[[str], None], say: Say, root: Path, slug: str) -> None:
    """A new dataset version in the workspace; `outdated` finds who pins the old one; `bump`, diff, commit, push."""
    from amlvc.render import render
    from amlvc.review.revisions import diff_revisions
    from amlvc.sync.assets import bump, outdated
    from amlvc.sync.datasets import list_datasets, upload
    from amlvc.sync.push import push
    from amlvc.sync.pushplan import PushOptions

    datasets = list_datasets(root).datasets
    if not datasets:
        return
    name = str(datasets[0].info.name)
    step(f"A colleague uploads a new version of dataset '{name}' (amlvc dataset upload); amlvc outdated lists "
         f"the experiments that pin the old one; amlvc bump {slug} --datasets, reviewed, committed, pushed.")
    with tempfile.TemporaryDirectory(prefix="amlvc-demo-upload-") as scratch:
        csv = Path(scratch) / "kunden-2017.csv"
        csv.write_bytes(b"Kunde,Tarif,Gekuendigt\r\n1,M,0\r\n2,L,1\r\n")
        uploaded = upload(root, csv, name=name)
    say(f"    uploaded version {uploaded.info.version if uploaded.info else '?'} of '{name}'")
    for item in outdated(root).items:
        say(f"    outdated: {item.experiment} pins {item.kind} '{item.name}' {item.current.label}, latest "
            f"{item.latest.label}")
    bump(root, [slug], kinds=["dataset"])
    for line in render(diff_revisions(root, None, None, [slug]), "text").rstrip().splitlines():
        say(f"    {line}")
    repo.commit_paths(root, [experiments.path(slug)], f"Bump the datasets of {slug}\n")
    for pushed in push(root, PushOptions(experiments=(slug,))).pushed:
        say(f"    {pushed.action}d {pushed.slug} in the workspace")


def _pick(root: Path, added: tuple[str, ...]) -> tuple[str, str]:
    """The demo's experiment: a training experiment with a numeric parameter (the first that has one)."""
    from amlvc.worktree import lockfile

    entries = lockfile.entries(lockfile.load(root), "dev")
    for slug in sorted(added, key=lambda s: ("training" not in s, s)):
        if slug in entries:
            return slug, str(entries[slug]["id"])
    raise LocalError("the demo workspace has no experiment to edit")


def _studio_edit(api: Client, exp_id: str) -> str:
    doc = api.get_experiment(exp_id)
    edited: dict[str, Any] = copy.deepcopy(doc)
    changed = "no parameter"
    for node in edited["Graph"]["ModuleNodes"]:
        for param in node.get("ModuleParameters") or []:
            value = param.get("Value")
            if isinstance(value, str) and value.isdigit():
                param["Value"] = str(int(value) + 15)
                changed = f"parameter '{param['Name']}': {value} -> {param['Value']}"
                break
        else:
            continue
        break
    xml = edited["Graph"].get("SerializedClientData") or ""
    match = re.search(r"Position=(['\"])(-?[\d.]+),", xml)
    if match:
        moved = f"{float(match.group(2)) + 60:g}"
        edited["Graph"]["SerializedClientData"] = xml[:match.start(2)] + moved + xml[match.end(2):]
        changed += f"; a node dragged from x={match.group(2)} to x={moved}"
    api.save_experiment(exp_id, to_push_body(edited))
    return changed
