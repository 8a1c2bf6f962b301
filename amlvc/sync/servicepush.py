"""`amlvc webservice push`: the plan (what each endpoint or definition change does), the refusals before any write,
the writes (models put into storage first, then PUT/PATCH/DELETE; ARM operations polled to the end), and one
commit recording the workspace's new state in amlvc.lock.

Refusals, in this order, with nothing written: the service changed in the workspace since the last pull (4); the
default endpoint's model or existence changed (6: it follows the experiment); a model version that does not
exist or whose stored bytes no longer match its manifest (6); no storage key to put a model with (6). An ARM
operation that ends Failed is exit 7 with the service's message, and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.canonical.services import (
    arm_definition,
    arm_document,
    changed_properties,
    endpoint_settings,
    load,
    model_assets,
    resources_of,
)
from amlvc.client import webservices as api
from amlvc.errors import AmlvcError, ApiError, ConflictError, DirtyTree, RunFailed, UsageError, ValidationError
from amlvc.sync.remote import Target, open_remote
from amlvc.sync.runs import Poll
from amlvc.sync.servicemodels import ModelBook, Storage, resource_location, settings, storage, upload_model
from amlvc.sync.webservices import arm_for, classic_fingerprint, fetch_arm, fetch_classic
from amlvc.worktree import journal, lockfile
from amlvc.worktree import services as files

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Action:
    """One write of a push: `verb` add | update | patch | remove (classic endpoints), create | change (ARM)."""

    verb: str
    target: str  # the endpoint, or the ARM service
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"action": self.verb, "target": self.target, "detail": self.detail}


@dataclass(frozen=True)
class ServicePlan:
    name: str
    kind: str
    remote: str
    key: str  # classic service id or ARM resource name
    actions: tuple[Action, ...]
    models: tuple[str, ...]  # model versions to put into the storage account
    stale: str | None  # why the workspace moved since the last pull (refused with exit 4)
    desired: Mapping[str, Any] = field(repr=False, default_factory=dict)
    changed: tuple[str, ...] = ()  # ARM: the properties a PATCH sends

    def to_json(self) -> dict[str, Any]:
        return {"service": self.name, "kind": self.kind, "remote": self.remote, "id": self.key,
                "actions": [a.to_json() for a in self.actions], "models": list(self.models), "stale": self.stale}


@dataclass(frozen=True)
class ServicePushResult:
    remote: str
    plans: tuple[ServicePlan, ...]
    dry_run: bool
    commit: str | None
    operations: tuple[str, ...] = ()  # ARM operations that ended Succeeded

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "dry_run": self.dry_run, "commit": self.commit,
                "services": [p.to_json() for p in self.plans], "operations": list(self.operations)}


# -- the plan ---------------------------------------------------------------------------------------------------


def plan_service(root: Path, target: Target, book: ModelBook, name: str, desired: Mapping[str, Any]) -> ServicePlan:
    """What pushing `desired` (a service.json) as service `name` would do; reads, never writes."""
    if desired["$kind"] == "classic":
        return _plan_classic(root, target, book, name, desired)
    return _plan_arm(root, target, book, name, desired)


def _plan_classic(root: Path, target: Target, book: ModelBook, name: str, desired: Mapping[str, Any]) -> ServicePlan:
    entry = files.entries(lockfile.load(root), target.name).get(name)
    if entry is None or entry.get("kind") != "classic":
        raise UsageError(f"web service {name!r} is not deployed in remote '{target.name}' (a classic service comes "
                         f"from an experiment: `amlvc webservice deploy EXP --name {name} --remote {target.name}`)")
    key = str(entry["id"])
    moved = classic_fingerprint(target.client, key) != entry.get("fingerprint")
    base = files.synced(root, name, entry.get("content_hash"))
    current = load(base, files.path(name)) if base is not None else load(
        fetch_classic(target.client, book, lockfile.load(root), target.name, name, key).data, files.path(name))
    have, want = current["Endpoints"], desired["Endpoints"]
    default_resources = resources_of(current, rules.DEFAULT_ENDPOINT)
    actions: list[Action] = []
    for endpoint in sorted(set(have) | set(want)):
        if endpoint not in want:
            actions.append(Action("remove", endpoint, "delete the endpoint"))
            continue
        settings_now = endpoint_settings(current, endpoint) if endpoint in have else None
        if settings_now != endpoint_settings(desired, endpoint):
            actions.append(Action("add" if endpoint not in have else "update", endpoint,
                                  _settings_text(endpoint_settings(desired, endpoint))))
        before = resources_of(current, endpoint) if endpoint in have else default_resources
        after = resources_of(desired, endpoint)
        changes = [f"{r}: {before.get(r, 'none')} -> {m}" for r, m in sorted(after.items()) if before.get(r) != m]
        if changes:
            actions.append(Action("patch", endpoint, "; ".join(changes)))
    _refuse_default(name, actions)
    models = sorted({m for a in actions if a.verb == "patch" for m in resources_of(desired, a.target).values()})
    stale = "its endpoints changed in the workspace since the last pull" if moved else None
    return ServicePlan(name, "classic", target.name, key, tuple(actions), tuple(models), stale, desired)


def _settings_text(body: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v!r}" for k, v in body.items() if v is not None)


def _refuse_default(name: str, actions: Sequence[Action]) -> None:
    for action in actions:
        if action.target == rules.DEFAULT_ENDPOINT and action.verb in ("patch", "remove"):
            what = "its trained model cannot be replaced" if action.verb == "patch" else "it cannot be removed"
            raise ValidationError(
                f"web service {name!r}: the default endpoint follows the experiment, {what}; nothing was changed. "
                f"Add an endpoint (`amlvc endpoint add {name} ep2`) and patch that one")


def _plan_arm(root: Path, target: Target, book: ModelBook, name: str, desired: Mapping[str, Any]) -> ServicePlan:
    arm = arm_for(root, target, required=True)
    assert arm is not None
    entry = files.entries(lockfile.load(root), target.name).get(name)
    if entry is not None and entry.get("resource_group") != arm.resource_group:
        entry = None  # amlvc.toml names another resource group now: what the lock records is another service
    resource = str(entry["resource"]) if entry else name
    doc = arm.get(resource)
    stale = None
    if doc is None:
        changed = sorted(k for k in desired.get("properties", {}))
        actions = [Action("create", resource, f"PUT the definition in resource group {arm.resource_group}")]
    else:
        if entry is None:
            stale = "it exists in the workspace but was never pulled here"
        elif (doc.get("properties") or {}).get("modifiedOn") != entry.get("fingerprint"):
            stale = "it was modified in the workspace since the last pull"
        current, _ = arm_document(doc, book.name_uri, source=resource)
        changed = changed_properties(current, desired)
        actions = [Action("change", resource, f"PATCH {', '.join(changed)}")] if changed else []
    assets = model_assets(desired) if "assets" in changed else {}
    models = sorted({str(a[rules.MODEL_REF_KEY]) for a in assets.values() if rules.MODEL_REF_KEY in a})
    return ServicePlan(name, "arm", target.name, resource, tuple(actions), tuple(models), stale, desired,
                       tuple(changed))


def refuse(root: Path, target: Target, book: ModelBook, plans: Sequence[ServicePlan]) -> Storage | None:
    """Stale (4), then model versions that do not exist or do not match their bytes (6), then the storage key and
    an ARM create's per-remote settings (6); nothing has been written. The storage the models go to."""
    for plan in plans:
        if plan.stale:
            raise ConflictError(f"web service {plan.name!r}: {plan.stale} (remote '{plan.remote}'); nothing was "
                                f"written. Run `amlvc webservice pull {plan.name} --remote {plan.remote}`, review, "
                                "then push again")
    for plan in plans:
        for text in plan.models:
            book.read(text)  # ValidationError (6): no such version, or bytes that no longer match
    needs = [p for p in plans if p.models or any(a.verb == "create" for a in p.actions)]
    if not needs:
        return None
    for plan in needs:
        if any(a.verb == "create" for a in plan.actions):
            ws = settings(root, target.name)
            missing = [k for k, v in (("commitment_plan", ws.commitment_plan), ("storage_account",
                                                                                ws.storage_account)) if not v]
            if missing:
                raise ValidationError(f"creating ARM web service {plan.name!r} needs {' and '.join(missing)} in "
                                      f"[remotes.{target.name}.webservices] of {rules.CONFIG_FILE}; nothing was "
                                      "written")
    return storage(root, target, needs[0].name, f"putting models of web service {needs[0].name!r} into storage")


# -- the writes -------------------------------------------------------------------------------------------------


def execute(root: Path, target: Target, book: ModelBook, plan: ServicePlan, store: Storage | None, *,
            poll: Poll | None = None, progress: Progress | None = None) -> tuple[lockfile.Lock, str | None]:
    """Put the plan's models into storage, make its writes, and return the lock recording the workspace's new
    state (and the ARM operation)."""
    uris: dict[str, str] = {}
    for text in plan.models:
        assert store is not None
        version, data = book.read(text)
        uris[text] = upload_model(target.client, store, version, data, text)
    operation = None
    if plan.kind == "classic":
        _write_classic(target, plan, uris, progress)
    else:
        operation = _write_arm(root, target, plan, uris, store, poll or Poll(), progress)
    return _record(root, target, book, plan), operation


def _write_classic(target: Target, plan: ServicePlan, uris: Mapping[str, str], progress: Progress | None) -> None:
    for done, action in enumerate(plan.actions, start=1):
        endpoint = action.target
        if action.verb in ("add", "update"):
            api.put_endpoint(target.client, plan.key, endpoint, endpoint_settings(plan.desired, endpoint))
        elif action.verb == "remove":
            api.delete_endpoint(target.client, plan.key, endpoint)
        elif action.verb == "patch":
            current = {r.get("Name"): r for r in api.get_endpoint(target.client, plan.key, endpoint)["Resources"]}
            wanted = resources_of(plan.desired, endpoint)
            body = [{"Name": r, "Location": resource_location(uris[m])} for r, m in sorted(wanted.items())
                    if r in current and m in uris]
            if body:
                api.patch_endpoint(target.client, plan.key, endpoint, {"Resources": body})
        if progress is not None:
            progress(f"Pushing {plan.name}", done, len(plan.actions))


def _write_arm(root: Path, target: Target, plan: ServicePlan, uris: Mapping[str, str], store: Storage | None,
               poll: Poll, progress: Progress | None) -> str | None:
    if not plan.actions:
        return None
    arm = arm_for(root, target, required=True)
    assert arm is not None
    ws = settings(root, target.name)
    create = plan.actions[0].verb == "create"
    per_remote: dict[str, Any] = {"machineLearningWorkspace": {"id": target.workspace_id}}
    if ws.storage_account:
        per_remote["storageAccount"] = {"name": ws.storage_account}
    if create:
        per_remote["commitmentPlan"] = {"id": ws.plan_id()}
        per_remote["location"] = ws.location
    model_uris = {asset_id: uris[str(asset[rules.MODEL_REF_KEY])]
                  for asset_id, asset in model_assets(plan.desired).items() if rules.MODEL_REF_KEY in asset
                  and str(asset[rules.MODEL_REF_KEY]) in uris}
    secrets = {rules.STORAGE_KEY_SECRET: store.key} if store is not None else {}
    definition = arm_definition(plan.desired, per_remote=per_remote, model_uris=model_uris, secrets=secrets,
                                source=files.path(plan.name))
    if create:
        url = arm.write("PUT", plan.key, definition)
    else:
        props = definition["properties"]
        body = {"properties": {"packageType": props.get("packageType", "Graph"),
                               **{k: props[k] for k in plan.changed if k in props}}}
        url = arm.write("PATCH", plan.key, body)
    if url is None:
        return None
    return wait_operation(arm, url, plan, poll, progress)


def wait_operation(arm: api.Arm, url: str, plan: ServicePlan, poll: Poll, progress: Progress | None) -> str:
    """Poll an ARM operation to Succeeded; RunFailed (7) with the service's message when it ends otherwise."""
    started, delay = poll.clock(), 0.2
    while True:
        status = arm.operation(url)
        state = str(status.get("status") or status.get("provisioningState") or "")
        if progress is not None:
            progress(f"Provisioning {plan.key}", int(100 * float(status.get("percentComplete") or 0)), 100)
        if state in rules.ARM_FINAL_STATES:
            break
        if poll.clock() - started >= poll.timeout:
            raise ApiError(f"the operation on web service {plan.key!r} is still {state or 'running'} after "
                           f"{poll.timeout:g} s; it goes on in Azure. Pull the service later to record it")
        poll.sleep(delay)
        delay = min(delay * 1.5, 5.0)
    if state != "Succeeded":
        error = status.get("error") or status.get("errorInfo") or {}
        details = "; ".join(f"{d.get('code')}: {d.get('message')}" for d in error.get("details") or []
                            if isinstance(d, Mapping))
        raise RunFailed(f"the {plan.actions[0].verb} of web service {plan.key!r} in remote '{plan.remote}' ended "
                        f"{state}: {error.get('message') or 'no message'}" + (f" ({details})" if details else "")
                        + "; the service keeps its previous definition and nothing was recorded. Fix the "
                          "definition and push again")
    return str(status.get("name") or url)


def _record(root: Path, target: Target, book: ModelBook, plan: ServicePlan) -> lockfile.Lock:
    """The lock with the service as the workspace has it now (its fingerprint and the hash of its service.json)."""
    lock = lockfile.load(root)
    if plan.kind == "classic":
        fetched = fetch_classic(target.client, book, lock, target.name, plan.name, plan.key)
    else:
        arm = arm_for(root, target, required=True)
        assert arm is not None
        found = fetch_arm(arm, book, plan.name, plan.key)
        assert found is not None
        fetched = found
    return files.with_entry(lock, target.name, plan.name, fetched.entry)


# -- amlvc webservice push ----------------------------------------------------------------------------------------


def committed(root: Path, name: str) -> dict[str, Any]:
    """HEAD's service.json (a push sends a committed revision): DirtyTree (3) when the file has uncommitted edits."""
    if repo.dirty_paths(root, [files.path(name)]):
        raise DirtyTree(f"{files.path(name)} has uncommitted changes; a push sends a committed revision: commit "
                        f"them (or `git checkout {files.path(name)}`), then push; nothing was written")
    return files.parsed(root, name, "HEAD")


def message(plans: Sequence[ServicePlan], target: Target, subject: str | None = None) -> str:
    lines = [f"- {p.name}: {a.verb} {a.target}: {a.detail}" for p in plans for a in p.actions]
    head = subject or f"Push web services to {target.name}: {', '.join(p.name for p in plans)}"
    return "\n".join([head, "", *lines, "", f"Amlvc-Remote: {target.name}",
                      f"Amlvc-Workspace: {target.workspace_id}"]) + "\n"


def apply(root: Path, target: Target, book: ModelBook, plans: Sequence[ServicePlan], store: Storage | None, *,
          poll: Poll | None = None, progress: Progress | None = None, subject: str | None = None,
          ) -> tuple[str | None, tuple[str, ...]]:
    """Execute plans that were refused nothing, then one commit: the lock (and any model versions learned)."""
    lock, operations = lockfile.load(root), []
    if not any(p.actions for p in plans):
        return None, ()
    try:
        for plan in plans:
            if not plan.actions:
                continue
            try:
                new_lock, operation = execute(root, target, book, plan, store, poll=poll, progress=progress)
            except RunFailed:
                raise  # a failed ARM operation leaves the definition as it was: nothing to record
            except AmlvcError:
                if plan.kind == "classic":  # some endpoints may have been written: record what the workspace has
                    new_lock = _record(root, target, book, plan)
                    lock = files.with_entry(lock, target.name, plan.name, files.entries(new_lock, target.name)[
                        plan.name])
                raise
            lock = files.with_entry(lock, target.name, plan.name, files.entries(new_lock, target.name)[plan.name])
            operations += [operation] if operation else []
    finally:
        commit = files.write_and_commit(root, manifests=list(book.changed.values()), lock=lock,
                                        message=message(plans, target, subject)) \
            if lock != lockfile.load(root) else None
    return commit, tuple(operations)


def push(start: Path, names: Sequence[str] = (), *, remote: str | None = None, dry_run: bool = False,
         token_env: str | None = None, poll: Poll | None = None, progress: Progress | None = None,
         show_plan: Callable[[Sequence[ServicePlan]], None] | None = None) -> ServicePushResult:
    """`amlvc webservice push [NAME…]`: plan every named service (default: all of webservices/), refuse, write."""
    root = repo.find_root(start)
    chosen = list(names) or files.names(root)
    if not chosen:
        raise UsageError(f"no web services under {rules.WEBSERVICES_DIR}/ to push")
    target = open_remote(root, remote, token_env=token_env)
    with target.client, journal.operation_lock(root):
        book = ModelBook.load(root)
        plans = [plan_service(root, target, book, name, committed(root, name)) for name in chosen]
        if show_plan is not None:
            show_plan(plans)
        store = refuse(root, target, book, plans)
        if dry_run:
            return ServicePushResult(target.name, tuple(plans), True, None)
        commit, operations = apply(root, target, book, plans, store, poll=poll, progress=progress)
    return ServicePushResult(target.name, tuple(plans), False, commit, operations)
