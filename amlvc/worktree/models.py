"""Trained-model manifests `models/<slug>.json`: one per model name, its known versions; read, written, committed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from amlvc import repo
from amlvc.canonical.jsonio import dumps, load_canonical
from amlvc.errors import DirtyTree, InvalidDocument
from amlvc.rules import MODEL_FORMAT, MODELS_DIR
from amlvc.worktree.experiments import slugify
from amlvc.worktree.files import atomic_write


@dataclass(frozen=True)
class ModelSource:
    """Where a model version came from: an experiment's node output of one run, or a batch job."""

    experiment: str | None = None  # experiment id (f-id)
    experiment_slug: str | None = None  # its folder under experiments/, when the repository has it
    node: str | None = None
    port: str | None = None
    run: str | None = None  # the run-history snapshot (s-id) whose output it is
    run_time: str | None = None  # ISO 8601 UTC creation time of that run
    job: str | None = None  # a batch (BES) job id, for retrained models

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> ModelSource:
        data = data if isinstance(data, Mapping) else {}
        return cls(**{k: (str(data[k]) if data.get(k) is not None else None) for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        """"from kundigung-training run 2017-07-03" / "from batch job 1a2b…"."""
        if self.job:
            return f"from batch job {self.job}"
        where = self.experiment_slug or self.experiment or "an unknown experiment"
        when = f" run {self.run_time[:10]}" if self.run_time else (" run " + self.run if self.run else "")
        return f"from {where}{when}"


@dataclass(frozen=True)
class ModelVersion:
    """One version of a trained model: workspace identity, the bytes' size and sha256, and its source."""

    version: int  # ServiceVersion + 1: the first version of a family is 1
    id: str
    data_type: str
    size: int
    sha256: str
    created: str | None = None
    description: str = ""
    source: ModelSource = field(default_factory=ModelSource)
    evaluation: Mapping[str, str] | None = None  # a retrained version: its training job's evaluation output

    def to_json(self) -> dict[str, Any]:
        data = {"version": self.version, "id": self.id, "data_type": self.data_type, "size": self.size,
                "sha256": self.sha256, "created": self.created, "description": self.description,
                "source": self.source.to_json()}
        if self.evaluation is not None:
            data["evaluation"] = dict(self.evaluation)
        return data


@dataclass(frozen=True)
class Manifest:
    """`models/<slug>.json`: the model's name and family in the workspace and every version amlvc pulled."""

    slug: str
    name: str
    family: str
    versions: tuple[ModelVersion, ...]

    def version(self, number: int | None = None) -> ModelVersion | None:
        """Version `number`, or the highest one when None."""
        if number is None:
            return self.versions[-1] if self.versions else None
        return next((v for v in self.versions if v.version == number), None)

    def by_id(self, asset_id: str) -> ModelVersion | None:
        return next((v for v in self.versions if v.id == asset_id), None)

    def with_version(self, new: ModelVersion) -> Manifest:
        kept = [v for v in self.versions if v.version != new.version and v.id != new.id]
        return replace(self, versions=tuple(sorted([*kept, new], key=lambda v: v.version)))

    def to_json(self) -> dict[str, Any]:
        return {"$format": MODEL_FORMAT, "name": self.name, "family": self.family,
                "versions": [v.to_json() for v in self.versions]}


def line(name: str, version: ModelVersion) -> str:
    """The one wording of a model version (commit messages, diff, log): "model churn@4 (sha256 1a2b…, from …)"."""
    return f"model {name}@{version.version} (sha256 {version.sha256[:8]}…, {version.source.describe()})"


def path(slug: str) -> str:
    return f"{MODELS_DIR}/{slug}.json"


def dumps_manifest(manifest: Manifest) -> bytes:
    return dumps(manifest.to_json())


def parse(data: bytes, slug: str) -> Manifest:
    """A manifest from its file's bytes; InvalidDocument (6) naming the file and the field otherwise."""
    source = path(slug)
    doc = load_canonical(data, source)
    if doc.get("$format") != MODEL_FORMAT:
        raise InvalidDocument(source, "/$format", f"expected {MODEL_FORMAT!r}")
    for key in ("name", "family"):
        if not isinstance(doc.get(key), str):
            raise InvalidDocument(source, f"/{key}", "expected a string")
    versions = doc.get("versions")
    if not isinstance(versions, list):
        raise InvalidDocument(source, "/versions", "expected a list")
    out = []
    for i, item in enumerate(versions):
        where = f"/versions/{i}"
        if not isinstance(item, dict):
            raise InvalidDocument(source, where, "expected an object")
        for key, kind in (("version", int), ("id", str), ("sha256", str), ("size", int)):
            if not isinstance(item.get(key), kind) or isinstance(item.get(key), bool):
                raise InvalidDocument(source, f"{where}/{key}", f"expected {'a number' if kind is int else 'a string'}")
        evaluation = item.get("evaluation")
        if evaluation is not None and (not isinstance(evaluation, dict)
                                       or not all(isinstance(v, str) for v in evaluation.values())):
            raise InvalidDocument(source, f"{where}/evaluation", "expected an object of strings")
        out.append(ModelVersion(item["version"], item["id"], str(item.get("data_type") or ""), item["size"],
                                item["sha256"], item.get("created"), str(item.get("description") or ""),
                                ModelSource.from_json(item.get("source")), evaluation))
    return Manifest(slug, doc["name"], doc["family"], tuple(sorted(out, key=lambda v: v.version)))


def load_all(root: Path, rev: str | None = None) -> dict[str, Manifest]:
    """slug -> manifest of every `models/*.json`, in the work tree (rev None) or at a revision."""
    if rev is None:
        top = root / MODELS_DIR
        files = {p.stem: p.read_bytes() for p in sorted(top.glob("*.json")) if p.is_file()} if top.is_dir() else {}
    else:
        found = repo.read_tree_at(root, rev, MODELS_DIR)
        files = {name.rsplit("/", 1)[-1][: -len(".json")]: data for name, data in found.items()
                 if name.count("/") == 1 and name.endswith(".json")}
    return {slug: parse(data, slug) for slug, data in files.items()}


def find(manifests: Mapping[str, Manifest], name: str) -> Manifest | None:
    """The manifest named `name`: by slug, by model name, then by model name ignoring case."""
    if name in manifests:
        return manifests[name]
    exact = [m for m in manifests.values() if m.name == name]
    folded = [m for m in manifests.values() if m.name.strip().lower() == name.strip().lower()]
    found = exact or folded
    return found[0] if found else None


def slug_for(manifests: Mapping[str, Manifest], name: str, family: str) -> str:
    """The manifest slug of a model: the one its family already has, else the slug of its name (+ family on a clash)."""
    for manifest in manifests.values():
        if manifest.family == family:
            return manifest.slug
    base = slugify(name)
    return base if base not in manifests else f"{base}-{family[:8]}"


def refuse_dirty(root: Path, slugs: Sequence[str]) -> None:
    """DirtyTree (3) when a manifest to be written has uncommitted changes."""
    dirty = repo.dirty_paths(root, [path(s) for s in slugs])
    if dirty:
        raise DirtyTree(f"{', '.join(dirty)} has uncommitted changes; commit or discard them first "
                        f"(`git diff {dirty[0]}`)")


def write_and_commit(root: Path, manifests: Sequence[Manifest], message: str) -> str | None:
    """Write the manifests (unchanged ones untouched) and commit exactly those files; None when nothing changed."""
    paths = [path(m.slug) for m in manifests]
    for manifest in manifests:
        atomic_write(root / path(manifest.slug), dumps_manifest(manifest))
    return repo.commit_paths(root, paths, message)
