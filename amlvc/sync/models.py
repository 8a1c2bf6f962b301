"""`amlvc model list|pull|show`: trained models of the workspace beside their manifests, their bytes fetched into
the object store and the manifest committed; where a version is used and whether its stored bytes still match.

A trained model's bytes are the node output it was promoted from (`PromotedFrom` = experiment.node.port,
reference §5.2): the run of that experiment which produced them is found in its run history (the newest run
not younger than the model, with an output of the model's size), and downloaded through the output's signed
endpoint (`BaseUri + Location + AccessCredential`, reference §3.8), as `Download-AmlExperimentNodeOutput`
does. An item with a `DownloadLocation` is downloaded from there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.client import Client
from amlvc.errors import RemoteError, UsageError, ValidationError
from amlvc.sync.datasets import same_name
from amlvc.sync.remote import open_remote
from amlvc.sync.versions import VersionInfo, Versions, iso_time, version_of
from amlvc.worktree import catalog, experiments, journal, lockfile, models, objects
from amlvc.worktree.models import Manifest, ModelSource, ModelVersion

MAX_HISTORY = 50  # run-history snapshots searched for the run a model was promoted from
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ModelRow:
    """A model as `model list` shows it: the workspace's latest version beside the manifest's."""

    name: str
    slug: str | None
    workspace: VersionInfo | None
    tracked: int | None  # the manifest's highest version
    state: str  # tracked | newer | untracked | local-only

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "manifest": models.path(self.slug) if self.slug else None, "state": self.state,
                "tracked_version": self.tracked, "workspace": self.workspace.to_json() if self.workspace else None}


@dataclass(frozen=True)
class ModelList:
    remote: str
    models: tuple[ModelRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "models": [m.to_json() for m in self.models]}


@dataclass(frozen=True)
class Pulled:
    """One model version in the store and its manifest; `downloaded` False when the store already had it."""

    slug: str
    name: str
    version: ModelVersion
    downloaded: bool

    def to_json(self) -> dict[str, Any]:
        return {"manifest": models.path(self.slug), "name": self.name, "downloaded": self.downloaded,
                **self.version.to_json()}


@dataclass(frozen=True)
class PullResult:
    remote: str
    pulled: tuple[Pulled, ...]
    unavailable: tuple[tuple[str, str], ...]  # (model, why its bytes cannot be fetched)
    commit: str | None

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "pulled": [p.to_json() for p in self.pulled], "commit": self.commit,
                "unavailable": [{"model": m, "reason": r} for m, r in self.unavailable]}


def _user_models(client: Client) -> list[dict[str, Any]]:
    return [m for m in client.list_trainedmodels() if not str(m.get("Id") or "").startswith(rules.BUILTIN_OWNER + ".")]


def list_models(start: Path, *, remote: str | None = None, token_env: str | None = None) -> ModelList:
    """The workspace's trained models and the manifests side by side: tracked, newer available, untracked."""
    root = repo.find_root(start)
    manifests = models.load_all(root)
    target = open_remote(root, remote, token_env=token_env)
    with target.client as client:
        listed = [VersionInfo.of("trainedmodel", item) for item in _user_models(client)]
    by_family = {m.family: m for m in manifests.values()}
    rows = []
    for info in listed:
        manifest = by_family.pop(info.family, None)
        top = manifest.version() if manifest else None
        state = "untracked" if top is None else "newer" if (info.version or 0) > top.version else "tracked"
        rows.append(ModelRow(info.name or info.id, manifest.slug if manifest else None, info,
                             top.version if top else None, state))
    for manifest in by_family.values():
        top = manifest.version()
        rows.append(ModelRow(manifest.name, manifest.slug, None, top.version if top else None, "local-only"))
    catalog.note(root, [i.known() for i in listed])
    return ModelList(target.name, tuple(sorted(rows, key=lambda r: r.name.lower())))


# -- the bytes of a model version -------------------------------------------------------------------------------


def promoted_from(item: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(experiment id, node id, port) of `PromotedFrom` = `{ws}.f-id.{guid}.{node}.{port}`."""
    parts = str(item.get("PromotedFrom") or "").split(".")
    if len(parts) < 5:
        return None
    return ".".join(parts[:3]), parts[3], ".".join(parts[4:])


def output_endpoint(doc: Mapping[str, Any], node: str, port: str) -> dict[str, Any] | None:
    """The signed endpoint of one node output in a GET document's NodeStatuses (reference §3.8)."""
    for status in doc.get("NodeStatuses") or []:
        if isinstance(status, Mapping) and status.get("NodeId") == node:
            for ep in status.get("OutputEndpoints") or []:
                if isinstance(ep, dict) and ep.get("Name") == port:
                    return ep
    return None


def endpoint_url(ep: Mapping[str, Any]) -> str:
    return "".join(str(ep.get(k) or "") for k in ("BaseUri", "Location", "AccessCredential"))


def run_of(doc: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(run id, run creation time) of a leaf (its latest run) or of a run-history snapshot."""
    run = doc.get("RunId") if doc.get("IsLeaf", True) else doc.get("ExperimentId")
    return (run if isinstance(run, str) else None), iso_time((doc.get("Status") or {}).get("CreationTime"))


def _history(client: Client, experiment_id: str) -> Iterator[dict[str, Any]]:
    """The leaf (its latest run), then each earlier run-history snapshot, newest first."""
    doc: dict[str, Any] | None = client.get_experiment(experiment_id)
    for _ in range(MAX_HISTORY):
        if doc is None:
            return
        yield doc
        parent = doc.get("ParentExperimentId")
        doc = client.get_experiment(parent) if isinstance(parent, str) and ".s-id." in parent else None


def fetch_bytes(client: Client, item: Mapping[str, Any], slugs: Mapping[str, str],
                leaf: Mapping[str, Any] | None = None) -> tuple[bytes, ModelSource]:
    """Download a model version's bytes and say where they came from; RemoteError (5) when no source has them."""
    name = f"{item.get('Name')}@{version_of(item)}"
    size = item.get("Size") if isinstance(item.get("Size"), int) and int(item.get("Size") or 0) > 0 else None
    source = promoted_from(item)
    if source is not None:
        exp_id, node, port = source
        created = iso_time(item.get("CreatedDate"))
        for doc in [leaf] if leaf is not None else _history(client, exp_id):
            ep = output_endpoint(doc, node, port)
            run, run_time = run_of(doc)
            if ep is None or (created and run_time and run_time > created) or (size and ep.get("Size") != size):
                continue
            data = client.download_blob(endpoint_url(ep), what=f"output {port!r} of {exp_id}")
            if size is not None and len(data) != size:
                raise RemoteError(f"the output {port!r} of {exp_id} has {len(data)} bytes, trained model {name!r} "
                                  f"{size}: it changed since the promotion; promote it again")
            return data, ModelSource(exp_id, slugs.get(exp_id), node, port, run, run_time)
    location = item.get("DownloadLocation")
    if isinstance(location, Mapping) and location.get("BaseUri"):
        return client.download_blob(endpoint_url(location), what=f"trained model {name}"), ModelSource()
    why = "no run in its source experiment's history has its output" if source else "it has no promotion source"
    raise RemoteError(f"workspace '{client.remote}' offers no download of trained model {name!r}: {why} "
                      f"and no DownloadLocation")


def make_version(item: Mapping[str, Any], data: bytes, source: ModelSource) -> ModelVersion:
    stored_sha, size = objects.digest([data])
    return ModelVersion(version_of(item) or 1, str(item.get("Id")), str(item.get("DataTypeId") or ""), size,
                        stored_sha, iso_time(item.get("CreatedDate")), str(item.get("Description") or ""), source)


def experiment_slugs(root: Path, remote: str) -> dict[str, str]:
    """experiment id -> folder, from amlvc.lock."""
    return {str(e.get("id")): slug for slug, e in lockfile.entries(lockfile.load(root), remote).items()}


def commit_versions(root: Path, remote: str, workspace_id: str, subject: str, pulled: Sequence[Pulled],
                    manifests: Mapping[str, Manifest]) -> str | None:
    """Write the manifests that gained a version and commit them with one line per version."""
    changed: dict[str, Manifest] = {}
    for p in pulled:
        base = changed.get(p.slug) or manifests.get(p.slug) or Manifest(p.slug, p.name, _family(p.version), ())
        if base.by_id(p.version.id) != p.version:
            changed[p.slug] = base.with_version(p.version)
    if not changed:
        return None
    lines = [f"+ {models.line(changed[p.slug].name, p.version)}" for p in pulled if p.slug in changed]
    message = "\n".join([subject, "", *lines, "", f"Amlvc-Remote: {remote}", f"Amlvc-Workspace: {workspace_id}"])
    with journal.operation_lock(root):  # not while a pull, push or restore commits
        return models.write_and_commit(root, list(changed.values()), message + "\n")


def _family(version: ModelVersion) -> str:
    parts = version.id.split(".")
    return parts[1] if len(parts) == 3 else ""


# -- model pull ----------------------------------------------------------------------------------------------


def _wanted(client: Client, versions: Versions, manifests: Mapping[str, Manifest], names: Sequence[str],
            all_: bool) -> list[tuple[str, dict[str, Any]]]:
    """(what the user named, item) of every version to pull."""
    listed = _user_models(client)
    if all_:
        return [(str(m.get("Name")), m) for m in listed]
    if not names:
        if not manifests:
            raise UsageError("no model manifests under models/ yet; name models to pull, or use --all")
        names = [m.name for m in manifests.values()]
    out = []
    for text in names:
        name, at, number = text.rpartition("@")
        name, number = (name, number) if at and number.isdigit() else (text, "")
        manifest = models.find(manifests, name)
        latest = same_name(listed, name) or (next((m for m in listed if str(m.get("FamilyId")) == manifest.family),
                                                  None) if manifest else None)
        if latest is None:
            raise ValidationError(f"no trained model {name!r} in workspace '{client.remote}'; see `amlvc model list`")
        item = latest if not number else versions.find(
            "trainedmodel", latest, int(number), hints=[v.id for v in manifest.versions] if manifest else ())
        if item is None:
            raise ValidationError(f"trained model {name!r} has no version {number} in workspace '{client.remote}' "
                                  f"(latest: {version_of(latest)}); nothing was pulled")
        out.append((text, item))
    return out


def pull(start: Path, names: Sequence[str] = (), *, all_: bool = False, remote: str | None = None,
         token_env: str | None = None, progress: Progress | None = None) -> PullResult:
    """Fetch model versions into the object store (verifying what is there) and commit their manifests."""
    root = repo.find_root(start)
    manifests = models.load_all(root)
    target = open_remote(root, remote, token_env=token_env)
    slugs = experiment_slugs(root, target.name)
    pulled: list[Pulled] = []
    unavailable: list[tuple[str, str]] = []
    with target.client as client:
        wanted = _wanted(client, Versions(client), manifests, names, all_)
        models.refuse_dirty(root, [models.slug_for(manifests, str(i.get("Name")), str(i.get("FamilyId")))
                                   for _, i in wanted])
        for done, (text, item) in enumerate(wanted, start=1):
            try:
                pulled.append(_pull_one(root, client, manifests, item, slugs))
            except RemoteError as exc:
                if not all_:
                    raise
                unavailable.append((text, exc.message))
            if progress is not None:
                progress("Pulling models", done, len(wanted))
    subject = f"Pull trained models from {target.name}: " + ", ".join(
        f"{p.name}@{p.version.version}" for p in pulled)
    commit = commit_versions(root, target.name, target.workspace_id, subject, pulled, manifests)
    return PullResult(target.name, tuple(pulled), tuple(unavailable), commit)


def _pull_one(root: Path, client: Client, manifests: Mapping[str, Manifest], item: Mapping[str, Any],
              slugs: Mapping[str, str]) -> Pulled:
    name, family = str(item.get("Name")), str(item.get("FamilyId") or "").lower()
    slug = models.slug_for(manifests, name, family)
    known = manifests[slug].by_id(str(item.get("Id"))) if slug in manifests else None
    if known is not None and objects.check(root, known.sha256).ok:
        return Pulled(slug, manifests[slug].name, known, False)
    data, source = fetch_bytes(client, item, slugs)
    fresh = make_version(item, data, source)
    if known is not None and fresh.sha256 != known.sha256:
        raise ValidationError(
            f"workspace '{client.remote}' serves trained model {name}@{known.version} with sha256 {fresh.sha256}, "
            f"but {models.path(slug)} records sha256 {known.sha256}; nothing was stored. Find out which is right "
            f"before trusting either")
    objects.store(root, data)
    return Pulled(slug, name, known or fresh, True)


# -- model show (offline) ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionShown:
    version: ModelVersion
    stored: objects.ObjectState
    used_by: tuple[str, ...]  # experiments (folders) whose experiment.json references this version

    def to_json(self) -> dict[str, Any]:
        return {**self.version.to_json(), "stored": self.stored.state, "stored_sha256": self.stored.actual,
                "object": self.stored.relative, "used_by": list(self.used_by)}


@dataclass(frozen=True)
class ModelShown:
    manifest: Manifest
    versions: tuple[VersionShown, ...]

    def to_json(self) -> dict[str, Any]:
        return {"manifest": models.path(self.manifest.slug), "name": self.manifest.name,
                "family": self.manifest.family, "versions": [v.to_json() for v in self.versions]}


def _model_ids(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "TrainedModelId" and isinstance(item, str):
                yield item
            else:
                yield from _model_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _model_ids(item)


def show(start: Path, text: str) -> ModelShown:
    """A manifest (one version with NAME@VERSION), which experiments use each version, whether the bytes match."""
    root = repo.find_root(start)
    manifests = models.load_all(root)
    name, at, number = text.rpartition("@")
    name, number = (name, number) if at and number.isdigit() else (text, "")
    manifest = models.find(manifests, name)
    if manifest is None:
        known = ", ".join(sorted(manifests)) or "none yet; `amlvc model pull` writes them"
        raise ValidationError(f"no model manifest {name!r} under {rules.MODELS_DIR}/ (manifests: {known})")
    chosen = manifest.versions if not number else tuple(v for v in manifest.versions if v.version == int(number))
    if not chosen:
        raise ValidationError(f"{models.path(manifest.slug)} has no version {number} "
                              f"(versions: {', '.join(str(v.version) for v in manifest.versions)})")
    usage: dict[str, list[str]] = {}
    for slug, files in experiments.read_many(root).items():
        data = files.get(rules.EXPERIMENT_FILE)
        for ident in set(_model_ids(json.loads(data))) if data else ():
            usage.setdefault(ident, []).append(slug)
    shown = tuple(VersionShown(v, objects.check(root, v.sha256), tuple(sorted(usage.get(v.id, ()))))
                  for v in chosen)
    return ModelShown(manifest, shown)


def refuse_mismatch(shown: ModelShown) -> None:
    """ValidationError (6) naming both hashes when a stored object's bytes no longer match the manifest."""
    for v in shown.versions:
        if v.stored.state == "mismatch":
            ref = f"{shown.manifest.name}@{v.version.version}"
            raise objects.mismatch_error(v.stored, f"{models.path(shown.manifest.slug)} ({ref})",
                                         f"Fetch it again with `amlvc model pull '{ref}'`.")
