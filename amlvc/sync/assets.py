"""`amlvc outdated` and `amlvc bump`: referenced assets with newer versions in the workspace, and the local edit
that moves the references to them (`Update-AmlExperimentUserAsset`, reviewed in git instead of saved at once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.canonical.denormalize import denormalize, recorded_module_names
from amlvc.canonical.normalize import normalize
from amlvc.client import Client
from amlvc.errors import UsageError, ValidationError, some
from amlvc.sync.check import KINDS, Reference, ResourceId, apply_remaps, collect_references
from amlvc.sync.remote import open_remote
from amlvc.sync.versions import VersionInfo, Versions
from amlvc.worktree import catalog, experiments, journal

Files = dict[str, bytes]


@dataclass(frozen=True)
class Outdated:
    """One referenced asset of one experiment with a newer version in its family."""

    experiment: str
    kind: str
    current: VersionInfo
    latest: VersionInfo

    @property
    def name(self) -> str:
        return self.latest.name or self.current.name or self.current.family

    def to_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "kind": self.kind, "name": self.name,
                "current": self.current.to_json(), "latest": self.latest.to_json()}


@dataclass(frozen=True)
class OutdatedReport:
    remote: str
    experiments: tuple[str, ...]
    items: tuple[Outdated, ...]

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "experiments": list(self.experiments),
                "outdated": [i.to_json() for i in self.items]}


@dataclass(frozen=True)
class BumpResult:
    remote: str
    changes: tuple[Outdated, ...]  # current -> the version written (the latest, or --to's)
    written: tuple[str, ...]  # repository paths rewritten

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "changes": [c.to_json() for c in self.changes], "written": list(self.written)}


@dataclass(frozen=True)
class Pin:
    """`--to NAME@VERSION`."""

    name: str
    version: int

    @classmethod
    def parse(cls, text: str) -> Pin:
        name, at, number = text.rpartition("@")
        if not at or not name.strip() or not number.isdigit() or int(number) < 1:
            raise UsageError(f"--to {text!r}: expected NAME@VERSION, e.g. 'Kundenstamm 2016.csv@3'")
        return cls(name.strip(), int(number))


def latest_items(client: Client, kinds: Sequence[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, family) -> the listed (latest) item of every family of `kinds`."""
    calls = {"dataset": client.list_datasources, "trainedmodel": client.list_trainedmodels,
             "transform": client.list_transformmodules, "module": client.list_modules}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for kind in kinds:
        for item in calls[kind]():
            parsed = ResourceId.parse(str(item.get("Id") or ""))
            family = str(item.get("FamilyId") or (parsed.family if parsed else "")).lower()
            if family:
                out[(kind, family)] = item
    return out


def _references(doc: Mapping[str, Any], kinds: Sequence[str], workspace_id: str) -> list[tuple[Reference, str]]:
    """(reference, family) of the asset references of `kinds` (modules: custom ones, owned by the workspace)."""
    found = []
    for ref in collect_references(doc):
        parsed = ResourceId.parse(ref.id)
        if ref.kind not in kinds or parsed is None:
            continue
        if ref.kind == "module" and parsed.owner != workspace_id.lower():
            continue
        found.append((ref, parsed.family))
    return found


def _documents(root: Path, names: Sequence[str]) -> dict[str, tuple[Files, dict[str, Any]]]:
    out = {}
    for slug in experiments.select(root, names):
        files = experiments.read(root, slug)
        out[slug] = (files, denormalize(experiments.without_webservice(files), source=experiments.path(slug)))
    return out


def outdated(start: Path, names: Sequence[str] = (), *, remote: str | None = None,
             token_env: str | None = None) -> OutdatedReport:
    """Each referenced dataset, trained model, transform and custom module with a newer version (notes the catalog)."""
    root = repo.find_root(start)
    docs = _documents(root, names)
    target = open_remote(root, remote, token_env=token_env)
    with target.client:
        listed = latest_items(target.client, KINDS)
        versions = Versions(target.client)
        items = []
        for slug, (_, doc) in docs.items():
            for ref, family in _references(doc, KINDS, target.workspace_id):
                latest = listed.get((ref.kind, family))
                if latest is None or latest.get("Id") == ref.id:
                    continue
                newest = VersionInfo.of(ref.kind, latest)
                current = versions.info(ref.kind, ref.id, newest.name)
                if (newest.batch or 0) > (current.batch or 0):
                    items.append(Outdated(slug, ref.kind, current, newest))
    catalog.note(root, [v.known() for i in items for v in (i.current, i.latest)])
    return OutdatedReport(target.name, tuple(docs), tuple(items))


def _targets(docs: Mapping[str, tuple[Files, dict[str, Any]]], kinds: Sequence[str], pins: Sequence[Pin],
             listed: Mapping[tuple[str, str], dict[str, Any]], versions: Versions, workspace_id: str,
             remote: str) -> list[Outdated]:
    """What bump moves: each reference of `kinds` to its family's latest version, or each pinned asset to its pin."""
    moves: list[Outdated] = []
    matched: set[Pin] = set()
    for slug, (_, doc) in docs.items():
        refs = _references(doc, KINDS if pins else kinds, workspace_id)
        for ref, family in refs:
            latest = listed.get((ref.kind, family))
            if latest is None:
                continue
            name = str(latest.get("Name") or "")
            pin = next((p for p in pins if p.name.lower() == name.strip().lower()), None)
            if pins and pin is None:
                continue
            target: Mapping[str, Any] | None = latest
            if pin is not None:
                matched.add(pin)
                target = versions.find(ref.kind, latest, pin.version, hints=[r.id for r, _ in refs])
                if target is None:
                    newest = VersionInfo.of(ref.kind, latest)
                    raise ValidationError(
                        f"{rules.ASSET_KIND_WORDS[ref.kind]} {name!r} has no version {pin.version} in workspace "
                        f"'{remote}' (its latest is {newest.label}); nothing was changed. See `amlvc outdated`")
            assert target is not None
            chosen = VersionInfo.of(ref.kind, target)
            older = (chosen.batch or 0) <= (VersionInfo.bare(ref.kind, ref.id).batch or 0)
            if chosen.id == ref.id or (pin is None and older):
                continue
            moves.append(Outdated(slug, ref.kind, versions.info(ref.kind, ref.id, chosen.name), chosen))
    unmatched = [p for p in pins if p not in matched]
    if unmatched:
        raise ValidationError(
            f"no asset named {some(p.name for p in unmatched)} is referenced by {some(docs)} in workspace "
            f"'{remote}'; nothing was changed. Names are the workspace's (see `amlvc outdated` or `amlvc check -v`)")
    return moves


def bump(start: Path, names: Sequence[str] = (), *, kinds: Sequence[str] = (), to: Sequence[str] = (),
         remote: str | None = None, token_env: str | None = None) -> BumpResult:
    """Rewrite references (ports and layout XML, as the service writes them) to newer versions; no commit."""
    root = repo.find_root(start)
    pins = [Pin.parse(text) for text in to]
    chosen = tuple(k for k in KINDS if k in kinds) or KINDS
    docs = _documents(root, names)
    target = open_remote(root, remote, token_env=token_env)
    with target.client:
        listed = latest_items(target.client, KINDS if pins else chosen)
        versions = Versions(target.client)
        moves = _targets(docs, chosen, pins, listed, versions, target.workspace_id, target.name)
    written: list[str] = []
    with journal.operation_lock(root):  # not while a pull, push or restore writes these folders
        for slug, (files, doc) in docs.items():
            remaps = {m.current.id: m.latest.id for m in moves if m.experiment == slug}
            if not remaps:
                continue
            moved = apply_remaps(doc, remaps)
            norm = normalize(moved, source=experiments.path(slug), module_names=recorded_module_names(files))
            new_files = dict(norm.files)
            if rules.WEBSERVICE_FILE in files:
                new_files[rules.WEBSERVICE_FILE] = files[rules.WEBSERVICE_FILE]
            written += experiments.write(root, slug, new_files)
    catalog.note(root, [v.known() for m in moves for v in (m.current, m.latest)])
    return BumpResult(target.name, tuple(moves), tuple(written))
