"""Edits of service.json (`endpoint add|patch|rm`, `webservice patch`), `endpoint refresh`, and `webservice deploy`.

An edit changes `webservices/<name>/service.json` in the work tree, to be reviewed (`git diff`), committed and
pushed; with `--push` the push is planned (and refused) first, then the edit is committed as it is and pushed,
and the push records the workspace's new state in a second commit. Every edit is shown as an RFC 6902 patch of
service.json. `deploy` (New-AmlWebService) and `refresh` act on the workspace at once and commit what it has.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch

from amlvc import repo, rules
from amlvc.canonical.services import dumps_service, model_assets, resources_of
from amlvc.client import webservices as api
from amlvc.errors import ConflictError, RunFailed, UsageError, ValidationError
from amlvc.sync.remote import Target, canonical, module_names, open_remote
from amlvc.sync.runs import Located, Poll, finished
from amlvc.sync.servicemodels import ModelBook
from amlvc.sync.servicepush import ServicePlan, ServicePushResult, apply, plan_service, refuse
from amlvc.sync.webservices import classic_fingerprint, fetch_classic, key_of
from amlvc.worktree import journal, lockfile
from amlvc.worktree import services as files
from amlvc.worktree.files import atomic_write

ENDPOINT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")  # reference §3.2
Progress = Callable[[str, int, int], None]
ShowPlan = Callable[[Sequence[ServicePlan]], None]


@dataclass(frozen=True)
class Options:
    """What every workspace-facing edit takes: `--push`, `--dry-run`, the remote and its token."""

    push: bool = False
    dry_run: bool = False
    remote: str | None = None
    token_env: str | None = None
    poll: Poll | None = None
    progress: Progress | None = None
    show_plan: ShowPlan | None = None


@dataclass(frozen=True)
class EditResult:
    name: str
    change: str
    patch: tuple[dict[str, Any], ...]  # RFC 6902 operations on service.json
    written: bool  # service.json changed in the work tree (or committed, with --push)
    commit: str | None = None  # the edit's commit (--push)
    pushed: ServicePushResult | None = None

    def to_json(self) -> dict[str, Any]:
        return {"service": self.name, "file": files.path(self.name), "change": self.change, "patch": list(self.patch),
                "written": self.written, "commit": self.commit,
                "push": self.pushed.to_json() if self.pushed else None}


Edit = Callable[[dict[str, Any], ModelBook], str]  # changes the service.json in place; returns the change in words


def edit(start: Path, name: str, change: Edit, options: Options, *, book: ModelBook | None = None) -> EditResult:
    """Apply `change` to service.json; write it (no --push), or plan, refuse, commit and push it (--push)."""
    root = repo.find_root(start)
    book = book or ModelBook.load(root)
    old = files.parsed(root, name)
    new = copy.deepcopy(old)
    words = change(new, book)
    patch = tuple(jsonpatch.make_patch(old, new).patch)
    data = dumps_service(new)
    if not options.push:
        if not options.dry_run:
            atomic_write(root / files.path(name), data)
        return EditResult(name, words, patch, not options.dry_run and bool(patch))
    files.refuse_dirty(root, {files.path(name): None})
    target = open_remote(root, options.remote, token_env=options.token_env)
    with target.client, journal.operation_lock(root):
        plan = plan_service(root, target, book, name, new)
        if options.show_plan is not None:
            options.show_plan([plan])
        store = refuse(root, target, book, [plan])
        if options.dry_run:
            return EditResult(name, words, patch, False, None, ServicePushResult(target.name, (plan,), True, None))
        commit = files.write_and_commit(root, services={name: data}, manifests=list(book.changed.values()),
                                        message=f"{words}\n")
        book.changed.clear()
        pushed, operations = apply(root, target, book, [plan], store, poll=options.poll, progress=options.progress,
                                   subject=f"Push web service {name} to {target.name}")
    return EditResult(name, words, patch, True, commit, ServicePushResult(target.name, (plan,), False, pushed,
                                                                          operations))


def _classic(canon: Mapping[str, Any], name: str) -> None:
    if canon["$kind"] != "classic":
        raise UsageError(f"web service {name!r} is an ARM service: it has no endpoints; change its model with "
                         f"`amlvc webservice patch {name} --model NAME@VERSION`")


def _endpoint(canon: Mapping[str, Any], service: str, endpoint: str) -> dict[str, Any]:
    found: dict[str, Any] | None = canon["Endpoints"].get(endpoint)
    if found is None:
        raise ValidationError(f"web service {service!r} has no endpoint {endpoint!r} (endpoints: "
                              f"{', '.join(sorted(canon['Endpoints']))}); nothing was changed")
    return found


def _not_default(service: str, endpoint: str, what: str) -> None:
    if endpoint == rules.DEFAULT_ENDPOINT:
        raise ValidationError(f"web service {service!r}: the default endpoint follows the experiment and {what}; "
                              f"nothing was changed. Add an endpoint (`amlvc endpoint add {service} ep2`) and "
                              "patch that one")


def add_endpoint(service: str, endpoint: str, *, description: str = "", throttle: str = "High",
                 max_calls: int | None = None) -> Edit:
    def change(canon: dict[str, Any], book: ModelBook) -> str:
        _classic(canon, service)
        if not ENDPOINT_NAME.match(endpoint):
            raise ValidationError(f"endpoint name {endpoint!r}: use at most 24 lower-case letters, digits and "
                                  "hyphens, not starting or ending with a hyphen; nothing was changed")
        if endpoint in canon["Endpoints"]:
            raise ValidationError(f"web service {service!r} already has an endpoint {endpoint!r}; nothing was "
                                  "changed")
        calls = 4 if throttle == "Low" else (max_calls or 20)
        canon["Endpoints"][endpoint] = {
            "Description": description, "DiagnosticsTraceLevel": "None", "MaxConcurrentCalls": calls,
            "PreventUpdate": False, "ThrottleLevel": throttle,
            "Resources": resources_of(canon, rules.DEFAULT_ENDPOINT)}
        return f"endpoint add {service}/{endpoint}"
    return change


def patch_endpoint(service: str, endpoint: str, model: str, resource: str | None = None) -> Edit:
    def change(canon: dict[str, Any], book: ModelBook) -> str:
        _classic(canon, service)
        _not_default(service, endpoint, "its trained model cannot be replaced")
        entry = _endpoint(canon, service, endpoint)
        chosen = _resource(entry.get("Resources") or {}, service, endpoint, resource)
        text = book.canonical(model)
        book.read(text)  # the bytes are there and match the manifest (exit 6 otherwise)
        before = entry["Resources"][chosen]
        entry["Resources"][chosen] = text
        return f"endpoint patch {service}/{endpoint}: {chosen}: {before} -> {text}"
    return change


def _resource(resources: Mapping[str, str], service: str, endpoint: str, wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in resources:
            raise ValidationError(f"endpoint {service}/{endpoint} has no resource {wanted!r} (resources: "
                                  f"{', '.join(resources) or 'none'}); nothing was changed")
        return wanted
    if len(resources) != 1:
        what = "has no trained-model resource" if not resources else f"has several resources ({', '.join(resources)})"
        raise ValidationError(f"endpoint {service}/{endpoint} {what}; name one with --resource" if resources else
                              f"endpoint {service}/{endpoint} {what} (a training service?); nothing was changed")
    return next(iter(resources))


def remove_endpoint(service: str, endpoint: str) -> Edit:
    def change(canon: dict[str, Any], book: ModelBook) -> str:
        _classic(canon, service)
        _not_default(service, endpoint, "cannot be removed (delete the service instead)")
        _endpoint(canon, service, endpoint)
        del canon["Endpoints"][endpoint]
        return f"endpoint rm {service}/{endpoint}"
    return change


def patch_model(service: str, model: str, asset: str | None = None) -> Edit:
    """`webservice patch NAME --model X@V`: an ARM service's trained-model asset reads X@V."""
    def change(canon: dict[str, Any], book: ModelBook) -> str:
        if canon["$kind"] != "arm":
            raise UsageError(f"web service {service!r} is classic: patch one of its endpoints "
                             f"(`amlvc endpoint patch {service} ENDPOINT --model {model}`)")
        assets = model_assets(canon)
        if asset is not None and asset not in assets:
            raise ValidationError(f"web service {service!r} has no trained-model asset {asset!r} (assets: "
                                  f"{', '.join(assets) or 'none'}); nothing was changed")
        if asset is None and len(assets) != 1:
            raise ValidationError(f"web service {service!r} has {len(assets)} trained-model assets "
                                  f"({', '.join(assets) or 'none'}); name one with --asset; nothing was changed")
        chosen = asset or next(iter(assets))
        text = book.canonical(model)
        book.read(text)
        target = canon["properties"]["assets"][chosen]
        before = target.get(rules.MODEL_REF_KEY) or (target.get("locationInfo") or {}).get("uri")
        target.pop("locationInfo", None)
        target[rules.MODEL_REF_KEY] = text
        return f"webservice patch {service}: {chosen} ({target.get('name')}): {before} -> {text}"
    return change


# -- refresh and deploy: act on the workspace, then commit what it has -----------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A workspace action and the commit recording its outcome."""

    name: str
    action: str
    service_id: str | None
    commit: str | None
    dry_run: bool = False
    changed: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"service": self.name, "action": self.action, "id": self.service_id, "commit": self.commit,
                "dry_run": self.dry_run, "changed": self.changed, "file": files.path(self.name)}


def _guard(root: Path, target: Target, name: str) -> dict[str, Any]:
    entry = files.entries(lockfile.load(root), target.name).get(name)
    if entry is None or entry.get("kind") != "classic":
        raise UsageError(f"web service {name!r} is not a classic service of remote '{target.name}' in "
                         f"{rules.LOCK_FILE}; `amlvc webservice pull` or `deploy` it first")
    if classic_fingerprint(target.client, str(entry["id"])) != entry.get("fingerprint"):
        raise ConflictError(f"web service {name!r} changed in workspace '{target.name}' since the last pull; nothing "
                            f"was written. Run `amlvc webservice pull {name} --remote {target.name}`, review, then "
                            "try again")
    return entry


def _commit(root: Path, target: Target, book: ModelBook, name: str, service_id: str, subject: str,
            lock: lockfile.Lock | None = None) -> str | None:
    lock = lock or lockfile.load(root)
    fetched = fetch_classic(target.client, book, lock, target.name, name, service_id)
    files.refuse_dirty(root, {files.path(name): fetched.data})
    lock = files.with_entry(lock, target.name, name, fetched.entry)
    body = [f"+ model {m}" for m in book.added]
    message = "\n".join([subject, "", *body, "", f"Amlvc-Remote: {target.name}",
                         f"Amlvc-Workspace: {target.workspace_id}"]) + "\n"
    return files.write_and_commit(root, services={name: fetched.data}, manifests=list(book.changed.values()),
                                  lock=lock, message=message)


def refresh(start: Path, service: str, endpoint: str, options: Options) -> Recorded:
    """Refresh-AmlWebServiceEndpoint: the endpoint takes the default endpoint's graph and trained models."""
    root = repo.find_root(start)
    _not_default(service, endpoint, "always runs the experiment's graph (a refresh is for other endpoints)")
    canon = files.parsed(root, service)
    _classic(canon, service)
    _endpoint(canon, service, endpoint)
    target = open_remote(root, options.remote, token_env=options.token_env)
    with target.client, journal.operation_lock(root):
        entry = _guard(root, target, service)
        if options.dry_run:
            return Recorded(service, f"refresh {endpoint}", str(entry["id"]), None, True)
        changed = api.refresh_endpoint(target.client, str(entry["id"]), endpoint)
        commit = _commit(root, target, ModelBook.load(root), service, str(entry["id"]),
                         f"endpoint refresh {service}/{endpoint} in {target.name}") if changed else None
    return Recorded(service, f"refresh {endpoint}", str(entry["id"]), commit, changed=changed)


def deploy(start: Path, experiment: str, *, name: str | None = None, update: bool = False,
           options: Options = Options()) -> Recorded:
    """New-AmlWebService from EXP (predictive: a scoring service; training: a retraining service), polled to the
    end and recorded in webservices/ (and the experiment's new Etag in amlvc.lock when it is otherwise unchanged)."""
    root = repo.find_root(start)
    target = open_remote(root, options.remote, token_env=options.token_env)
    with target.client, journal.operation_lock(root):
        client = target.client
        located, doc = finished(root, client, target.name, experiment, "nothing was deployed")
        label = located.slug or located.name
        group = (doc.get("WebService") or {}).get("WebServiceGroupId")
        name = _service_name(root, target, doc, name, update, group)
        if options.dry_run:
            return Recorded(name, "update" if update else "deploy", group if update else None, None, True)
        activity = api.deploy(client, located.experiment_id, update=update)
        _wait_deploy(target, activity, label, options.poll or Poll())
        service_id = str(activity.get("WebServiceGroupId"))
        lock = _record_experiment(root, target, located)
        commit = _commit(root, target, ModelBook.load(root), name, service_id,
                         f"{'Update' if update else 'Deploy'} web service {name} from {label} in {target.name}", lock)
    return Recorded(name, "update" if update else "deploy", service_id, commit)


def _service_name(root: Path, target: Target, doc: Mapping[str, Any], name: str | None, update: bool,
                  group: Any) -> str:
    known = files.entries(lockfile.load(root), target.name)
    by_key = {key_of(e): n for n, e in known.items()}
    if update:
        found = by_key.get(str(group)) if group else None
        if found is None:
            raise UsageError(f"--update: '{doc.get('Description')}' has no web service recorded for remote "
                             f"'{target.name}'; deploy it without --update first")
        if name is not None and name != found:
            raise UsageError(f"--update: its web service is {found!r} here, not {name!r}")
        _guard(root, target, found)
        return found
    chosen = name or files.local_name(str(doc.get("Description") or "webservice"))
    if chosen in known or files.read(root, chosen) is not None:
        raise UsageError(f"{files.path(chosen)} exists already; redeploy into it with --update, or choose another "
                         "--name; nothing was deployed")
    return chosen


def _wait_deploy(target: Target, activity: Mapping[str, Any], label: str, poll: Poll) -> None:
    started, delay = poll.clock(), 0.2
    status = str(activity.get("Status") or "")
    while status not in ("Completed", "Failed", "Canceled", "Cancelled"):
        if poll.clock() - started >= poll.timeout:
            raise RunFailed(f"the deployment of '{label}' is still {status} after {poll.timeout:g} s")
        poll.sleep(delay)
        delay = min(delay * 1.5, 5.0)
        status = str(api.deploy_status(target.client, str(activity.get("ActivityId"))).get("Status") or "")
    if status != "Completed":
        raise RunFailed(f"the deployment of '{label}' in workspace '{target.name}' ended {status}; nothing was "
                        "recorded")


def _record_experiment(root: Path, target: Target, located: Located) -> lockfile.Lock:
    """The lock with the experiment's new Etag (a deploy writes its web-service ids) when its content is what the
    lock records, so a later push of it is not refused as stale."""
    lock = lockfile.load(root)
    entries = lockfile.entries(lock, target.name)
    entry = entries.get(located.slug or "")
    if entry is None or located.slug is None:
        return lock
    doc = target.client.get_experiment(located.experiment_id)
    fetched = canonical(target, located.slug, doc, module_names(target.client), with_wsd=True)
    if lockfile.hash_like(entry, fetched.files) != entry.get("content_hash"):
        return lock
    entries[located.slug] = lockfile.record(located.experiment_id, fetched.etag, fetched.run_id, fetched.identity,
                                            fetched.content_hash)
    return lockfile.with_entries(lock, target.name, entries)


def adopt(start: Path, name: str, service_id: str, *, remote: str | None = None,
          token_env: str | None = None) -> Recorded:
    """Record a service the workspace has (a deploy whose answer was lost) as webservices/<name>/, one commit."""
    root = repo.find_root(start)
    target = open_remote(root, remote, token_env=token_env)
    with target.client, journal.operation_lock(root):
        commit = _commit(root, target, ModelBook.load(root), name, service_id,
                         f"Record web service {name} ({service_id}) of {target.name}")
    return Recorded(name, "record", service_id, commit)
