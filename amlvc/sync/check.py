"""Reference check: every module, dataset, trained model and transform an experiment uses, against a workspace."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlvc import repo, rules
from amlvc.canonical.denormalize import denormalize, recorded_module_names
from amlvc.errors import AmlvcError, ConfigError, UsageError
from amlvc.sync.remote import Target, open_remote
from amlvc.worktree import experiments, lockfile

if TYPE_CHECKING:
    from amlvc.client import Client

KINDS = ("module", "dataset", "trainedmodel", "transform")
# Input-port fields that pin an asset version (reference §3.9), and the kind each one names.
PORT_ASSET_FIELDS: dict[str, str] = {
    "DataSourceId": "dataset",
    "TrainedModelId": "trainedmodel",
    "TransformModuleId": "transform",
}
REMAP_MODES = ("family", "name")

_RESOURCE_ID = re.compile(r"^([0-9a-fA-F]{32})\.([0-9a-fA-F]{32})\.([A-Za-z0-9_-]+)$")
_XML_NODE = re.compile(r"""Node=["']([^"']+)["']""")


@dataclass(frozen=True)
class ResourceId:
    """`{owner workspace}.{family}.v1-default-{batch}` (reference §1.6)."""

    owner: str
    family: str
    instance: str

    @property
    def batch(self) -> int | None:
        tail = self.instance.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else None

    @classmethod
    def parse(cls, value: str) -> ResourceId | None:
        m = _RESOURCE_ID.match(value)
        return cls(m.group(1).lower(), m.group(2).lower(), m.group(3)) if m else None


@dataclass(frozen=True)
class Asset:
    """One item of a workspace list (the latest version of its family)."""

    kind: str
    id: str
    family: str
    name: str | None
    batch: int | None


@dataclass(frozen=True)
class Inventory:
    """What a workspace offers: its module, dataset, trained-model and transform lists."""

    workspace_id: str
    assets: tuple[Asset, ...]

    @classmethod
    def from_lists(cls, workspace_id: str, lists: Mapping[str, Iterable[Mapping[str, Any]]]) -> Inventory:
        assets = []
        for kind, items in lists.items():
            for item in items:
                ident = item.get("Id")
                if not isinstance(ident, str):
                    continue
                parsed = ResourceId.parse(ident)
                family = item.get("FamilyId") or (parsed.family if parsed else "")
                batch = item.get("Batch")
                assets.append(Asset(kind, ident, str(family).lower(), _str_or_none(item.get("Name")),
                                    batch if isinstance(batch, int) else (parsed.batch if parsed else None)))
        return cls(workspace_id, tuple(assets))

    @classmethod
    def fetch(cls, client: Client) -> Inventory:
        """The four lists of `client`'s workspace, fetched in parallel."""
        calls = {
            "module": client.list_modules,
            "dataset": client.list_datasources,
            "trainedmodel": client.list_trainedmodels,
            "transform": client.list_transformmodules,
        }
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {kind: pool.submit(call) for kind, call in calls.items()}
            lists = {kind: future.result() for kind, future in futures.items()}
        return cls.from_lists(client.workspace_id, lists)

    def find(self, kinds: Iterable[str], *, ident: str | None = None, family: str | None = None,
             name: str | None = None) -> Asset | None:
        wanted = set(kinds)
        for asset in self.assets:
            if asset.kind not in wanted:
                continue
            if ident is not None and asset.id == ident:
                return asset
            if family is not None and asset.family == family:
                return asset
            if name is not None and asset.name == name:
                return asset
        return None


@dataclass(frozen=True)
class Reference:
    """One referenced id and every place (JSON Pointer into the document) that names it."""

    kind: str  # one of KINDS, or "asset" for an id seen only in the layout XML
    id: str
    places: tuple[str, ...]


@dataclass(frozen=True)
class Resolution:
    """How one reference resolves in the target: exact, family (other batch), name, mapped, or missing."""

    reference: Reference
    status: str
    target: Asset | None
    remap: bool  # True when a push rewrites the id to `target.id`
    note: str

    @property
    def ok(self) -> bool:
        return self.status != "missing"


@dataclass(frozen=True)
class CheckResult:
    """The check of one experiment against one workspace."""

    experiment: str
    remote: str
    resolutions: tuple[Resolution, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.resolutions)

    @property
    def missing(self) -> tuple[Resolution, ...]:
        return tuple(r for r in self.resolutions if not r.ok)

    @property
    def remaps(self) -> dict[str, str]:
        return {r.reference.id: r.target.id for r in self.resolutions if r.remap and r.target is not None}

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "remote": self.remote,
            "ok": self.ok,
            "references": [
                {"kind": r.reference.kind, "id": r.reference.id, "places": list(r.reference.places),
                 "status": r.status, "target": r.target.id if r.target else None,
                 "target_batch": r.target.batch if r.target else None,
                 "target_name": r.target.name if r.target else None, "remap": r.remap, "note": r.note}
                for r in self.resolutions
            ],
        }


@dataclass(frozen=True)
class Remap:
    """`--remap`: None (automatic), "family", "name", or an explicit map of id/family/name -> target id."""

    mode: str | None = None
    mapping: Mapping[str, str] | None = None


def parse_remap(value: str | None) -> Remap:
    """`--remap family|name|FILE` (FILE: JSON object from an id, family id or name to a target id)."""
    if value is None:
        return Remap()
    if value in REMAP_MODES:
        return Remap(value)
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"--remap {value}: expected 'family', 'name' or a JSON file mapping ids to target ids")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{value}: cannot read the remap file as JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError(f"{value}: expected a JSON object mapping ids, family ids or names to target ids")
    return Remap("file", data)


def collect_references(doc: Mapping[str, Any]) -> tuple[Reference, ...]:
    """Every module and asset id in a GET-shaped document: node ModuleIds, port asset ids, layout XML nodes."""
    places: dict[tuple[str, str], list[str]] = {}
    graph = doc.get("Graph") or doc.get("ExperimentGraph") or {}
    gkey = "Graph" if "Graph" in doc else "ExperimentGraph"
    nodes = graph.get("ModuleNodes") if isinstance(graph, dict) else None
    for i, node in enumerate(nodes if isinstance(nodes, list) else []):
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("ModuleId"), str):
            places.setdefault(("module", node["ModuleId"]), []).append(f"/{gkey}/ModuleNodes/{i}/ModuleId")
        ports = node.get("InputPortsInternal")
        for j, port in enumerate(ports if isinstance(ports, list) else []):
            if not isinstance(port, dict):
                continue
            for key, kind in PORT_ASSET_FIELDS.items():
                value = port.get(key)
                if isinstance(value, str) and value:
                    places.setdefault((kind, value), []).append(
                        f"/{gkey}/ModuleNodes/{i}/InputPortsInternal/{j}/{key}")
    xml = graph.get("SerializedClientData") if isinstance(graph, dict) else None
    if isinstance(xml, str):
        known = {ident: kind for kind, ident in places}
        for ident in dict.fromkeys(_XML_NODE.findall(xml)):
            if ResourceId.parse(ident) is None:
                continue  # a module node's own id, not a resource
            kind = known.get(ident, "asset")
            places.setdefault((kind, ident), []).append(f"/{gkey}/SerializedClientData (layout)")
    return tuple(Reference(kind, ident, tuple(p)) for (kind, ident), p in places.items())


def resolve(ref: Reference, inventory: Inventory, remap: Remap,
            source_names: Mapping[str, str] | None = None) -> Resolution:
    """Classify one reference in the target workspace (the rules are in docs/architecture.md §8)."""
    kinds = KINDS[1:] if ref.kind == "asset" else (ref.kind,)
    parsed = ResourceId.parse(ref.id)
    name = (source_names or {}).get(ref.id)
    if remap.mapping is not None:
        for key in (ref.id, parsed.family if parsed else None, name):
            if key is not None and key in remap.mapping:
                wanted = remap.mapping[key]
                target = inventory.find(kinds, ident=wanted)
                if target is None:
                    return Resolution(ref, "missing", None, False,
                                      f"the remap file maps it to {wanted}, which the workspace does not list")
                return Resolution(ref, "mapped", target, target.id != ref.id, f"mapped by the remap file ({key})")
    exact = inventory.find(kinds, ident=ref.id)
    if exact is not None:
        return Resolution(ref, "exact", exact, False, "exact")
    if parsed is not None:
        same = inventory.find(kinds, family=parsed.family)
        if same is not None:
            # The lists show only the latest batch; an older pin owned here (or built in) still exists.
            pinned_here = parsed.owner in (inventory.workspace_id.lower(), rules.BUILTIN_OWNER)
            move = remap.mode == "family" or not pinned_here
            verb = "uses" if move else "would use"
            note = f"other batch of the same family: {verb} batch {same.batch}"
            if not move:
                note += " with --remap family; keeps its pinned batch otherwise"
            return Resolution(ref, "family", same, move, note)
    if name is not None and remap.mode in (None, "name"):
        by_name = inventory.find(kinds, name=name)
        if by_name is not None:
            return Resolution(ref, "name", by_name, True, f"found by its name {name!r}")
    label = rules.ASSET_KIND_WORDS.get(ref.kind, "asset")
    what = f"{label} {name!r}" if name else label
    return Resolution(ref, "missing", None, False, f"no {what} of this family in the workspace")


def check_document(doc: Mapping[str, Any], inventory: Inventory, *, experiment: str, remote: str,
                   remap: Remap | None = None, source_names: Mapping[str, str] | None = None) -> CheckResult:
    """Resolve every reference of `doc` (GET or push-body shape) against `inventory`."""
    chosen = remap or Remap()
    resolutions = tuple(resolve(ref, inventory, chosen, source_names) for ref in collect_references(doc))
    return CheckResult(experiment, remote, resolutions)


def apply_remaps(doc: Mapping[str, Any], remaps: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `doc` with every remapped id replaced: node ModuleIds, port asset ids and the layout XML."""
    out: dict[str, Any] = copy.deepcopy(dict(doc))
    if not remaps:
        return out
    graph = out.get("Graph") if "Graph" in out else out.get("ExperimentGraph")
    if not isinstance(graph, dict):
        return out
    for node in graph.get("ModuleNodes") or []:
        if not isinstance(node, dict):
            continue
        if node.get("ModuleId") in remaps:
            node["ModuleId"] = remaps[node["ModuleId"]]
        for port in node.get("InputPortsInternal") or []:
            if not isinstance(port, dict):
                continue
            for key in PORT_ASSET_FIELDS:
                if port.get(key) in remaps:
                    port[key] = remaps[port[key]]
    xml = graph.get("SerializedClientData")
    if isinstance(xml, str):
        for old, new in remaps.items():
            xml = xml.replace(f'"{old}"', f'"{new}"').replace(f"'{old}'", f"'{new}'")
        graph["SerializedClientData"] = xml
    return out


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# -- one experiment against a workspace -------------------------------------------------------------------------


@dataclass
class Sources:
    """What `source_names` reads once per command, however many experiments it checks: the lock and the
    asset lists of the other workspaces (None for one without a token or out of reach)."""

    lock: lockfile.Lock | None = None
    inventories: dict[str, Inventory | None] = field(default_factory=dict)


def check_experiment(root: Path, target: Target, slug: str, doc: Mapping[str, Any], files: Mapping[str, bytes],
                     inventory: Inventory, remap: Remap, sources: Sources) -> CheckResult:
    """The reference check; references still missing are looked up by the name they have where they came from."""
    names = recorded_module_names(files)
    result = check_document(doc, inventory, experiment=slug, remote=target.name, remap=remap, source_names=names)
    if result.ok or remap.mode not in (None, "name"):
        return result
    names = {**source_names(root, slug, target.name, sources), **names}
    return check_document(doc, inventory, experiment=slug, remote=target.name, remap=remap, source_names=names)


def source_names(root: Path, slug: str, target: str, sources: Sources) -> dict[str, str]:
    """Asset id -> name in the other workspaces this experiment is recorded for (the ones it came from).

    Best effort: a workspace without a token or out of reach just contributes no names.
    """
    if sources.lock is None:
        sources.lock = lockfile.load(root)
    lock = sources.lock
    cache = sources.inventories
    names: dict[str, str] = {}
    for remote in lock.remotes():
        if remote == target or slug not in lock.entries(remote):
            continue
        if remote not in cache:
            cache[remote] = None
            try:
                other = open_remote(root, remote, jobs=4)
                with other.client:
                    cache[remote] = Inventory.fetch(other.client)
            except AmlvcError:
                pass
        inventory = cache[remote]
        if inventory is not None:
            names.update({a.id: a.name for a in inventory.assets if a.name})
    return names


def check(start: Path, experiment_names: Sequence[str] = (), *, remote: str | None = None, rev: str | None = None,
          remap: str | None = None, token_env: str | None = None, jobs: int = 8) -> tuple[CheckResult, ...]:
    """`amlvc check`: the reference check of every selected experiment against the remote; writes nothing."""
    root = repo.find_root(start)
    target = open_remote(root, remote, token_env=token_env, jobs=jobs)
    how = parse_remap(remap)
    with target.client:
        slugs = experiments.select(root, experiment_names, rev)
        inventory = Inventory.fetch(target.client)
        results = []
        sources = Sources()
        for slug in slugs:
            files = experiments.read(root, slug, rev)
            doc = denormalize(experiments.without_webservice(files), source=experiments.path(slug))
            results.append(check_experiment(root, target, slug, doc, files, inventory, how, sources))
    return tuple(results)
