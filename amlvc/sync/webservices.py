"""Web services as the workspace has them, in canonical form, and `amlvc webservice list|pull|show`.

Classic services are listed by the management API (a service and its endpoints: reference web-services §3);
ARM services are those of the resource group `[remotes.NAME.webservices]` names (§2). A service is fetched in
full only when its fingerprint moved since amlvc.lock (classic: its endpoints without keys, SAS or times; ARM:
`modifiedOn`), so a pull with nothing changed downloads nothing. A service changed both here and in the
workspace is merged member by member against the version last pulled (a conflict stops with exit 4 and nothing
written). `mirror` is what `amlvc pull` calls at its end, when the repository tracks web services.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.canonical.services import arm_document, classic_document, dumps_service, load, merge3
from amlvc.client import Client
from amlvc.client import webservices as api
from amlvc.errors import ConflictError, UsageError, ValidationError, some
from amlvc.sync.remote import Target, open_remote
from amlvc.sync.servicemodels import ModelBook, settings, sha_of_url
from amlvc.worktree import journal, lockfile, objects
from amlvc.worktree import services as files

Progress = Callable[[str, int, int], None]
_EXPERIMENT_IN_URL = re.compile(r"[0-9a-f]{32}\.f-id\.[0-9a-f]{32}")


@dataclass(frozen=True)
class Fetched:
    """One service as the workspace has it: its folder, service.json bytes and the lock entry to record."""

    name: str
    data: bytes
    entry: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.entry["kind"])


@dataclass(frozen=True)
class Listed:
    """A service of the workspace as its list shows it, with the fingerprint that says whether it moved."""

    kind: str
    key: str  # classic service id, or the ARM resource name
    title: str
    fingerprint: str | None  # None: not known without a GET (classic: its endpoints)
    item: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the list's item


def arm_for(root: Path, target: Target, required: bool = False) -> api.Arm | None:
    """ARM access for the remote's resource group; ConfigError-like UsageError when required and not configured."""
    ws = settings(root, target.name)
    if not (ws.subscription and ws.resource_group):
        if required:
            raise UsageError(f"remote '{target.name}' names no ARM subscription and resource group: add "
                             f"subscription and resource_group to [remotes.{target.name}.webservices] in "
                             f"{rules.CONFIG_FILE}")
        return None
    token = None
    if ws.token_env:
        token = os.environ.get(ws.token_env)
        if not token:
            raise UsageError(f"${ws.token_env} (token_env of [remotes.{target.name}.webservices]) is not set; "
                             "put the Azure Resource Manager token there")
    return api.Arm(target.client, ws.subscription, ws.resource_group, token)


def _fingerprint(service: Mapping[str, Any], endpoints: Sequence[Mapping[str, Any]]) -> str:
    """What a classic service is, without keys, SAS, hosts or the endpoint count: moves with every change."""
    def endpoint(e: Mapping[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in e.items() if k not in rules.ENDPOINT_VOLATILE or k in ("Version", "CreationTime")}
        kept["Resources"] = [{"Name": r.get("Name"), "Location": {k: (r.get("Location") or {}).get(k) for k in
                                                                   ("BaseLocation", "RelativeLocation")}}
                             for r in e.get("Resources") or [] if isinstance(r, Mapping)]
        return kept

    body = {"Name": service.get("Name"), "Description": service.get("Description"),
            "Endpoints": sorted((endpoint(e) for e in endpoints), key=lambda e: str(e.get("Name")))}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def experiment_of(endpoints: Sequence[Mapping[str, Any]], lock: lockfile.Lock, remote: str) -> str | None:
    """The folder of the experiment a classic service was deployed from (its endpoints' ExperimentLocation)."""
    for endpoint in endpoints:
        found = _EXPERIMENT_IN_URL.search(str(endpoint.get("ExperimentLocation") or ""))
        if found:
            return lock.slug_of(remote, found.group(0))
    return None


def fetch_classic(client: Client, book: ModelBook, lock: lockfile.Lock, remote: str, name: str,
                  service_id: str) -> Fetched:
    """A classic service and its endpoints in canonical form (each resource's model named, learned if new)."""
    service = api.get_service(client, service_id)
    endpoints = api.list_endpoints(client, service_id)
    known: dict[str, str] = {}

    def resource_ref(_endpoint: str, resource: Mapping[str, Any]) -> str:
        loc = resource.get("Location") or {}
        base = f"{loc.get('BaseLocation') or ''}".rstrip("/") + "/" + str(loc.get("RelativeLocation") or "")
        if base not in known:
            named = book.name_uri(base)
            sha = sha_of_url(base)
            if named is None or (sha and not objects.check(book.root, sha).ok):  # a clone without the bytes
                url = base + str(loc.get("SasBlobToken") or "")
                data = client.download_blob(url, what=f"model of resource {resource.get('Name')!r}")
                named = book.learn(client, str(resource.get("Name")), data, base)
            known[base] = named
        return known[base]

    canon = classic_document(service, endpoints, resource_ref, experiment=experiment_of(endpoints, lock, remote))
    data = dumps_service(canon)
    entry = {"kind": "classic", "id": service_id, "fingerprint": _fingerprint(service, endpoints),
             "content_hash": files.digest(data)}
    return Fetched(name, data, entry)


def classic_fingerprint(client: Client, service_id: str, service: Mapping[str, Any] | None = None) -> str:
    """The fingerprint of a classic service now (`service`: its item of the list, saving a GET)."""
    return _fingerprint(service or api.get_service(client, service_id), api.list_endpoints(client, service_id))


def fetch_arm(arm: api.Arm, book: ModelBook, name: str, resource: str) -> Fetched | None:
    """An ARM service's definition in canonical form; None when the resource group has no such service."""
    doc = arm.get(resource)
    if doc is None:
        return None
    canon, volatile = arm_document(doc, book.name_uri, source=f"{resource} (ARM)")
    data = dumps_service(canon)
    modified = volatile.get("properties.modifiedOn")
    entry = {"kind": "arm", "resource": resource, "resource_group": arm.resource_group, "fingerprint": modified,
             "content_hash": files.digest(data), "provisioning_state": volatile.get("properties.provisioningState")}
    return Fetched(name, data, entry)


def listed(client: Client, arm: api.Arm | None) -> list[Listed]:
    """Every classic service of the workspace and every ARM service of the configured resource group."""
    out = [Listed("classic", str(s.get("Id")), str(s.get("Name") or s.get("Id")), None, s)
           for s in api.list_services(client)]
    if arm is not None:
        for item in arm.list():
            props = item.get("properties") or {}
            ws = (props.get("machineLearningWorkspace") or {}).get("id")
            if ws and str(ws).lower() != client.workspace_id:
                continue
            # an ARM service is named by its resource name (its folder too), not its title
            out.append(Listed("arm", str(item.get("name")), str(item.get("name")), str(props.get("modifiedOn"))))
    return out


def key_of(entry: Mapping[str, Any]) -> str:
    return str(entry.get("id") if entry.get("kind") == "classic" else entry.get("resource"))


def new_name(title: str, taken: set[str], key: str) -> str:
    base = files.local_name(title)
    return base if base not in taken else f"{base}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


# -- amlvc webservice list ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceRow:
    name: str | None  # the folder under webservices/, None when the repository does not have it
    kind: str
    key: str | None
    title: str
    state: str  # tracked | untracked | local-only

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "id": self.key, "title": self.title, "state": self.state,
                "file": files.path(self.name) if self.name else None}


def list_services(start: Path, *, remote: str | None = None, token_env: str | None = None) -> list[ServiceRow]:
    """The workspace's services beside webservices/: tracked, untracked (only in the workspace), local-only."""
    root = repo.find_root(start)
    target = open_remote(root, remote, token_env=token_env)
    known = files.entries(lockfile.load(root), target.name)
    by_key = {key_of(e): name for name, e in known.items()}
    rows: list[ServiceRow] = []
    with target.client as client:
        for item in listed(client, arm_for(root, target)):
            name = by_key.pop(item.key, None)
            rows.append(ServiceRow(name, item.kind, item.key, item.title, "tracked" if name else "untracked"))
    local = set(files.names(root)) - {r.name for r in rows if r.name}
    for name in sorted(local):
        kind = str(known.get(name, {}).get("kind") or load(files.read(root, name), files.path(name))["$kind"])
        rows.append(ServiceRow(name, kind, None, name, "local-only"))
    return sorted(rows, key=lambda r: (r.name or r.title).lower())


# -- pull: webservice pull, and the mirror at the end of `amlvc pull` ------------------------------------------


@dataclass(frozen=True)
class ServicePullResult:
    remote: str
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()
    recorded: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    unchanged: int = 0
    models: tuple[str, ...] = ()  # model versions met for the first time, added to models/
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "added": list(self.added), "changed": list(self.changed),
                "merged": list(self.merged), "recorded": list(self.recorded),
                "deleted_in_workspace": list(self.gone), "unchanged": self.unchanged, "models": list(self.models),
                "commit": self.commit}

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.added, *self.changed, *self.merged)


@dataclass
class _Pull:
    root: Path
    target: Target
    lock: lockfile.Lock
    book: ModelBook
    writes: dict[str, bytes] = field(default_factory=dict)
    outcome: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in
                                                                   ("added", "changed", "merged", "recorded")})

    def take(self, fetched: Fetched) -> None:
        """Three ways: the workspace's version (theirs), the committed one (ours), the one last pulled (base)."""
        name, theirs = fetched.name, fetched.data
        ours = files.read(self.root, name)
        old = files.entries(self.lock, self.target.name).get(name)
        base = files.synced(self.root, name, old.get("content_hash")) if old else None
        if ours is None:
            self.writes[name] = theirs
            self.outcome["added"].append(name)
        elif ours == theirs or (base is not None and theirs == base):
            if old != fetched.entry:  # the workspace saved or moved something that changes no file here
                self.outcome["recorded"].append(name)
        elif base is None or ours == base:
            self.writes[name] = theirs
            self.outcome["changed"].append(name)
        else:
            merged, conflicts = merge3(load(base, files.path(name)), load(ours, files.path(name)),
                                       load(theirs, files.path(name)))
            if conflicts:
                raise ConflictError(
                    f"{files.path(name)} changed both here and in workspace '{self.target.name}' since the last "
                    f"pull: {some(conflicts)}; nothing was written. Keep yours with `amlvc webservice push {name}` "
                    f"after editing the file to the version you want, or take theirs: `git checkout` the last pulled "
                    f"version and pull again")
            self.writes[name] = dumps_service(merged)
            self.outcome["merged"].append(name)
        self.lock = files.with_entry(self.lock, self.target.name, name, fetched.entry)


def mirror(root: Path, target: Target, wanted: Sequence[str] = (), *, progress: Progress | None = None,
           only_if_tracked: bool = False) -> ServicePullResult | None:
    """Bring the workspace's web services into webservices/ (the operation lock is held by the caller).

    `wanted` names services (folder, title, classic id or ARM name); none means every service the remote has
    (with `only_if_tracked`, as `amlvc pull` calls it: nothing at all unless the repository tracks services).
    """
    if only_if_tracked and not files.tracked(root):
        return None
    client = target.client
    run = _Pull(root, target, lockfile.load(root), ModelBook.load(root))
    known = files.entries(run.lock, target.name)
    by_key = {key_of(e): name for name, e in known.items()}
    arm = arm_for(root, target)
    everything = listed(client, arm)
    items = _select(everything, wanted, by_key, known)
    unchanged = 0
    taken = set(files.names(root)) | set(known)
    fingerprints = _fingerprints(client, items)
    for done, item in enumerate(items, start=1):
        name = by_key.get(item.key) or new_name(item.title, taken, item.key)
        taken.add(name)
        old = known.get(name)
        fingerprint = fingerprints[item.key]
        if old is not None and old.get("fingerprint") == fingerprint and _stored(run.book, files.read(root, name)):
            unchanged += 1
        else:
            fetched = (fetch_classic(client, run.book, run.lock, target.name, name, item.key) if item.kind == "classic"
                       else fetch_arm(arm, run.book, name, item.key) if arm is not None else None)
            if fetched is not None:
                run.take(fetched)
        if progress is not None:
            progress("Pulling web services", done, len(items))
    present = {i.key for i in everything}
    gone = tuple(sorted(n for n, e in known.items() if key_of(e) not in present and (not wanted or n in wanted)))
    files.refuse_dirty(root, {files.path(n): d for n, d in run.writes.items()})
    models_added = run.book.added
    lines = [f"{verb} {name}" for verb, names in run.outcome.items() for name in names if verb != "recorded"]
    message = _message(f"Pull web services from {target.name}", lines, models_added, target)
    changed_lock = run.lock != lockfile.load(root)
    commit = files.write_and_commit(root, services=run.writes, manifests=list(run.book.changed.values()),
                                    lock=run.lock if changed_lock else None, message=message) \
        if run.writes or changed_lock or run.book.changed else None
    out = {k: tuple(v) for k, v in run.outcome.items()}
    return ServicePullResult(target.name, out["added"], out["changed"], out["merged"], out["recorded"], gone,
                             unchanged, tuple(models_added), commit)


def _fingerprints(client: Client, items: Sequence[Listed]) -> dict[str, str | None]:
    """Each service's fingerprint now: ARM's from the list, classic ones from their endpoints, GET in parallel."""
    classic = [i for i in items if i.kind == "classic"]
    found: dict[str, str | None] = {i.key: i.fingerprint for i in items}
    if classic:
        with ThreadPoolExecutor(max_workers=max(1, min(client.jobs, len(classic)))) as pool:
            found.update(zip([i.key for i in classic],
                             pool.map(lambda i: classic_fingerprint(client, i.key, i.item), classic), strict=True))
    return found


def _stored(book: ModelBook, data: bytes | None) -> bool:
    """Whether service.json exists and the object store has the bytes of every classic model version it names (a
    fresh clone has none: the next pull fetches them through the endpoints' SAS)."""
    if data is None:
        return False
    canon = load(data, "service.json")
    refs = [r for e in (canon.get("Endpoints") or {}).values() for r in (e.get("Resources") or {}).values()]
    for text in refs:
        try:
            _, version = book.resolve(text)
        except ValidationError:
            return False
        if not (book.root / objects.relative_path(version.sha256)).is_file():
            return False
    return True


def _select(items: Sequence[Listed], wanted: Sequence[str], by_key: Mapping[str, str],
            known: Mapping[str, Mapping[str, Any]]) -> list[Listed]:
    if not wanted:
        return list(items)
    chosen = []
    for text in wanted:
        match = [i for i in items if text in (i.key, i.title, by_key.get(i.key), files.local_name(i.title))]
        if not match:
            raise ValidationError(f"no web service {text!r} in the workspace (see `amlvc webservice list`); "
                                  "nothing was pulled")
        chosen += [m for m in match if m not in chosen]
    return chosen


def _message(subject: str, lines: Sequence[str], models_added: Sequence[str], target: Target) -> str:
    body = [*lines, *(f"+ model {m}" for m in models_added)]
    return "\n".join([subject, "", *body, "", f"Amlvc-Remote: {target.name}",
                      f"Amlvc-Workspace: {target.workspace_id}"]) + "\n"


def pull(start: Path, wanted: Sequence[str] = (), *, remote: str | None = None, token_env: str | None = None,
         progress: Progress | None = None) -> ServicePullResult:
    """`amlvc webservice pull [NAME…]`: the workspace's services into webservices/, one commit."""
    root = repo.find_root(start)
    target = open_remote(root, remote, token_env=token_env)
    with target.client, journal.operation_lock(root):
        result = mirror(root, target, wanted, progress=progress)
    assert result is not None
    return result


# -- show (offline) -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceShown:
    name: str
    canon: dict[str, Any]
    models: tuple[tuple[str, str, str], ...]  # (where, model version, stored state)
    remotes: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "file": files.path(self.name), "kind": self.canon["$kind"],
                "models": [{"where": w, "model": m, "stored": s} for w, m, s in self.models],
                "remotes": self.remotes, "service": self.canon}


def show(start: Path, name: str) -> ServiceShown:
    """service.json, each model version it uses and whether its bytes are stored intact, the lock's entries."""
    root = repo.find_root(start)
    canon = files.parsed(root, name)
    book = ModelBook.load(root)
    used: list[tuple[str, str]] = []
    if canon["$kind"] == "classic":
        for endpoint, entry in sorted(canon["Endpoints"].items()):
            used += [(f"{endpoint}/{resource}", text) for resource, text in sorted(entry.get("Resources", {}).items())]
    else:
        for asset_id, asset in sorted((canon["properties"].get("assets") or {}).items()):
            if rules.MODEL_REF_KEY in asset:
                used.append((asset_id, str(asset[rules.MODEL_REF_KEY])))
    states = []
    for where, text in used:
        try:
            _, version = book.resolve(text)
            state = objects.check(root, version.sha256).state
        except ValidationError:
            state = "no such version"
        states.append((where, text, state))
    lock = lockfile.load(root)
    remotes = {r: e for r in lock.remotes() if (e := files.entries(lock, r).get(name))}
    return ServiceShown(name, canon, tuple(states), remotes)
