"""Seeding of the local workspace: built-in modules and sample datasets, and `--seed DIR` documents.

Architecture §6: every top-level `*.json` of DIR that is a GET-experiment document is loaded; of
several documents with the same `ExperimentId` the `--base` one (else the first by file name) is
the leaf; documents whose id is an `s-id` become run-history snapshots. `datasources*.json`,
`trainedmodels*.json`, `transformmodules*.json` and `modules*.json` load as asset lists; a file
`blobs/<asset id>[.ext]` holds that asset's content. Every module or asset an experiment references
that no list defines is created (family and batch from the id). Other JSON files are ignored.
Documents of a workspace this server does not host are loaded into the first workspace with every
occurrence of their workspace id rewritten. A directory is seeded once per workspace (recorded in
`meta`), so restarting with the same `--seed` changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from amlvc import rules
from amlvc.server import assetdb, builtins, catalog
from amlvc.server.model import shape_document
from amlvc.server.runs import BASE_PLACEHOLDER, BLOB_PREFIX
from amlvc.server.state import ServerState
from amlvc.server.wire import GLOBAL_WORKSPACE_ID, LEAF_ID_RE, RESOURCE_ID_RE, SNAPSHOT_ID_RE, now_ms

LIST_PREFIXES = {"datasources": "datasources", "trainedmodels": "trainedmodels",
                 "transformmodules": "transformmodules", "modules": "modules"}
PORT_KINDS = {"DataSourceId": "datasources", "TrainedModelId": "trainedmodels", "TransformModuleId": "transformmodules"}
ETAG_RE = re.compile(r"^W/\"datetime'[0-9T%A.:-]+Z'\"$")
MAX_SEED_FILE = 64 * 1024 * 1024
_WS_IN_ID = re.compile(r"\b([0-9a-f]{32})\.(?:f-id|s-id|[0-9a-f]{32}\.v1-)")


class SeedError(ValueError):
    """A seed file could not be read; the message names it."""


def demo_seed_dir() -> Path | None:
    """The built-in demo seed: `amlvc/data/fixtures` (a link to the project's `fixtures/` in the repository,
    real files inside a built wheel), else `fixtures/` next to the package (a checkout where the link did
    not survive); None when neither exists, and the demo workspace then has built-ins only."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "data" / "fixtures", here.parents[1] / "fixtures"):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    return None


def install_builtins(state: ServerState, ws: str) -> None:
    """Built-in modules and sample datasets of a workspace, once (later deletions stay deleted)."""
    with state.store.tx() as conn:
        if conn.execute("SELECT 1 FROM meta WHERE key = ?", (f"builtins:{ws}",)).fetchone():
            return
        for item in builtins.builtin_modules():
            assetdb.insert_item(conn, ws, "modules", item)
        for family, name, data_type, content in builtins.SAMPLE_DATASETS:
            asset_id = f"{GLOBAL_WORKSPACE_ID}.{family}.v1-default-1"
            key = f"samples/{family}.csv"
            state.blobs.put(conn, key, content)
            item = builtins.dataset_item(asset_id, name, data_type, len(content), "Microsoft Corporation",
                                         builtins.BUILTIN_CREATED_MS)
            assetdb.insert_item(conn, ws, "datasources", item, blob_key=key)
        conn.execute("INSERT INTO meta(key, value) VALUES(?, '1')", (f"builtins:{ws}",))


def _read(path: Path) -> str:
    if path.stat().st_size > MAX_SEED_FILE:
        raise SeedError(f"seed file {path} is larger than {MAX_SEED_FILE} bytes")
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedError(f"cannot read seed file {path}: {exc}") from None


def _blob_key_of(credential: str) -> str | None:
    """The blob path inside an observed AccessCredential's sharedAccessUri."""
    query = parse_qs(credential.lstrip("?"))
    uri = query.get("sharedAccessUri", [""])[0]
    path = unquote(urlsplit(uri).path).lstrip("/") if uri else ""
    if path.startswith("blobs/"):
        path = path[len("blobs/"):]
    return path or None


def _localise_endpoints(node_statuses: list[Any]) -> None:
    """Point seeded node outputs at this server's blobs (served as stand-ins when not stored)."""
    def fix(ep: Any) -> None:
        if isinstance(ep, dict) and isinstance(ep.get("AccessCredential"), str):
            key = _blob_key_of(ep["AccessCredential"])
            if key and ".." not in key.split("/"):
                ep["AccessCredential"] = BLOB_PREFIX + key
                ep["BaseUri"] = BASE_PLACEHOLDER
                ep["Location"] = "api/sharedaccess"

    for ns in node_statuses:
        if not isinstance(ns, dict):
            continue
        fix(ns.get("StandardErrorEndpoint"))
        fix(ns.get("StandardOutEndpoint"))
        for ep in ns.get("OutputEndpoints") or []:
            fix(ep)
        for entries in (ns.get("MetadataOutputEndpoints") or {}).values():
            for kv in entries or []:
                if isinstance(kv, dict):
                    fix(kv.get("Value"))


def _references(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, id) of every module and asset a document references."""
    refs: list[tuple[str, str]] = []
    for node in (doc.get("Graph") or {}).get("ModuleNodes") or []:
        if node.get("ModuleId"):
            refs.append(("modules", str(node["ModuleId"])))
        for port in node.get("InputPortsInternal") or []:
            for key, kind in PORT_KINDS.items():
                if port.get(key):
                    refs.append((kind, str(port[key])))
    return refs


def _content(directory: Path, asset_id: str) -> bytes | None:
    blob_dir = directory / "blobs"
    if blob_dir.is_dir():
        for path in sorted(blob_dir.glob(f"{asset_id}*")):
            if path.is_file() and path.name.split(".v1-default-")[0] == asset_id.split(".v1-default-")[0]:
                return path.read_bytes()
    return None


def seed_directory(state: ServerState, directory: Path, workspaces: list[str]) -> list[str]:
    """Load a seed directory; returns the experiment ids it created."""
    if not directory.is_dir():
        raise SeedError(f"seed directory {directory} does not exist")
    files = sorted(p for p in directory.glob("*.json") if p.is_file())
    texts = {p: _read(p) for p in files}
    sources = {m.group(1) for text in texts.values() for m in _WS_IN_ID.finditer(text)} - {GLOBAL_WORKSPACE_ID}
    rewrite = {src: workspaces[0] for src in sources if src not in workspaces and src != workspaces[0]}
    docs: list[tuple[Path, dict[str, Any]]] = []
    lists: list[tuple[str, list[Any], Path]] = []
    for path, text in texts.items():
        for src, dst in rewrite.items():
            text = text.replace(src, dst)
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise SeedError(f"seed file {path} is not valid JSON: {exc}") from None
        kind = next((k for prefix, k in LIST_PREFIXES.items() if path.name.lower().startswith(prefix)), None)
        if isinstance(value, list) and kind is not None:
            lists.append((kind, value, path))
        elif isinstance(value, dict) and isinstance(value.get("ExperimentId"), str) and "Graph" in value:
            docs.append((path, value))
    marker = "seeded:" + hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    created: list[str] = []
    for ws in workspaces:
        mine = [(p, d) for p, d in docs if _owner(d["ExperimentId"], ws, workspaces) == ws]
        my_lists = [(k, v, p) for k, v, p in lists if ws == workspaces[0]]
        if not mine and not my_lists:
            continue
        created += _seed_workspace(state, ws, directory, mine, my_lists, f"{marker}:{ws}")
    return created


def _owner(exp_id: str, ws: str, workspaces: list[str]) -> str:
    prefix = exp_id.split(".", 1)[0]
    return prefix if prefix in workspaces else workspaces[0]


def _seed_workspace(state: ServerState, ws: str, directory: Path, docs: list[tuple[Path, dict[str, Any]]],
                    lists: list[tuple[str, list[Any], Path]], marker: str) -> list[str]:
    created: list[str] = []
    with state.store.tx() as conn:
        if conn.execute("SELECT 1 FROM meta WHERE key = ?", (marker,)).fetchone():
            return created
        for kind, items, path in lists:
            for i, item in enumerate(items):
                if not isinstance(item, dict) or not RESOURCE_ID_RE.match(str(item.get("Id") or "")):
                    raise SeedError(f"{path}: item {i} has no asset id of the form owner.family.v1-default-batch")
                stored = {k: v for k, v in item.items() if k not in ("IsLatest", "VisualizeEndPoint",
                                                                     "SchemaEndPoint", "DownloadLocation")}
                key = None
                if kind == "datasources":
                    data = _content(directory, item["Id"]) or _stand_in(item["Id"])
                    key = f"seed/{item['Id']}"
                    state.blobs.put(conn, key, data)
                    stored.setdefault("Size", len(data))
                elif kind == "trainedmodels":
                    stored["DownloadLocation"] = item.get("DownloadLocation")
                assetdb.insert_item(conn, ws, kind, stored, blob_key=key)
        # leaves: the --base document of an id, else the first by file name
        leaves: dict[str, tuple[Path, dict[str, Any]]] = {}
        snapshots: dict[str, dict[str, Any]] = {}
        for path, doc in docs:
            exp_id = doc["ExperimentId"]
            if SNAPSHOT_ID_RE.match(exp_id):
                snapshots.setdefault(exp_id, doc)
            elif LEAF_ID_RE.match(exp_id) and (exp_id not in leaves or (
                    path.stem.endswith("--base") and not leaves[exp_id][0].stem.endswith("--base"))):
                leaves[exp_id] = (path, doc)
        refs: list[tuple[str, str]] = []
        for exp_id, raw, is_leaf in ([(i, d, True) for i, (_, d) in leaves.items()]
                                     + [(i, d, False) for i, d in snapshots.items()]):
            if catalog.exists(conn, ws, exp_id):
                continue
            doc = shape_document(raw)
            doc["IsLeaf"] = is_leaf
            _localise_endpoints(doc["NodeStatuses"])
            etag = raw.get("Etag") if isinstance(raw.get("Etag"), str) and ETAG_RE.match(raw["Etag"]) else None
            guid = (LEAF_ID_RE.match(exp_id) or SNAPSHOT_ID_RE.match(exp_id)).group(2)  # type: ignore[union-attr]
            catalog.insert(conn, ws, exp_id, guid, is_leaf, doc, etag=etag)
            refs += _references(doc)
            created.append(exp_id)
        _create_referenced(state, conn, ws, directory, refs)
        conn.execute("INSERT INTO meta(key, value) VALUES(?, ?)", (marker, str(directory)))
    return created


def _stand_in(asset_id: str) -> bytes:
    digest = hashlib.sha256(asset_id.encode()).hexdigest()
    return f"id,value\r\n1,{digest[:16]}\r\n2,{digest[16:32]}\r\n".encode()


def _create_referenced(state: ServerState, conn: Any, ws: str, directory: Path, refs: list[tuple[str, str]]) -> None:
    """Create every referenced module/asset version no list defined (architecture §6)."""
    known = {kind: assetdb.known_ids(conn, ws, kind) for kind in assetdb.KINDS}
    created_ms = now_ms()
    for kind, asset_id in refs:
        match = RESOURCE_ID_RE.match(asset_id)
        if match is None or asset_id in known[kind]:
            continue
        known[kind].add(asset_id)
        owner, family, batch = match.group(1), match.group(2), int(match.group(3))
        if kind == "modules":
            item = builtins.module_item(family, batch, rules.MODULE_FAMILIES.get(family), owner)
            assetdb.insert_item(conn, ws, kind, item)
        elif kind == "datasources":
            data = _content(directory, asset_id) or _stand_in(asset_id)
            key = f"seed/{asset_id}"
            state.blobs.put(conn, key, data)
            item = builtins.dataset_item(asset_id, f"Dataset {family[:8]}", "GenericCSV", len(data),
                                         "local-user@amlvc", created_ms)
            assetdb.insert_item(conn, ws, kind, item, blob_key=key)
        else:
            noun = "Trained model" if kind == "trainedmodels" else "Transform"
            model_data = _content(directory, asset_id)
            key = None
            if model_data is not None:
                key = f"seed/{asset_id}"
                state.blobs.put(conn, key, model_data)
            item = builtins.model_item(kind, asset_id, f"{noun} {family[:8]}", "local-user@amlvc", created_ms)
            assetdb.insert_item(conn, ws, kind, item, blob_key=key)
