"""Stored assets of the local workspace (datasets, trained models, transforms, modules): families and batches.

Every version is a row keyed by its id `{owner}.{family}.v1-default-{batch}` (reference §1.6, §5.4);
lists show the latest batch per family (reference §5.2, observed), newest first. `Batch` comes from
one counter per workspace and kind (reference §7 Q24); `ServiceVersion` counts versions in a family
from 0. Item key orders are the observed ones (§5.1 datasets, §5.2 trained models, §5.3 modules).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from typing import Any

from amlvc.server import ilearner
from amlvc.server.blobstore import BlobInfo, BlobStore
from amlvc.server.store import bump_counter, next_counter
from amlvc.server.wire import RESOURCE_ID_RE, date, date_ms, now_ms, resource_id, ticks

KINDS = ("datasources", "trainedmodels", "transformmodules", "modules")

DATASOURCE_ORDER = (
    "VisualizeEndPoint", "SchemaEndPoint", "SchemaStatus", "Id", "DataTypeId", "Name", "Description", "FamilyId",
    "ResourceUploadId", "SourceOrigin", "Size", "CreatedDate", "Owner", "ExperimentId", "ClientVersion",
    "PromotedFrom", "UploadedFromFilename", "ServiceVersion", "IsLatest", "Category", "DownloadLocation",
    "IsDeprecated", "Culture", "Batch", "CreatedDateTicks",
)
MODEL_ORDER = ("Language", *DATASOURCE_ORDER[3:])
MODULE_ORDER = (
    "Id", "Name", "Description", "Category", "FamilyId", "IsDeterministic", "IsBlocking", "ModuleType",
    "ReleaseState", "ModuleLanguage", "ResourceUploadId", "Size", "CreatedDate", "Owner", "IsLatest",
    "IsDeprecated", "SourceOrigin", "ClientVersion", "ServiceVersion", "Batch", "EscalationEmail",
    "InformationUrl", "CloudSystem", "InterfaceString", "ModuleInterface", "ScriptsDefaultContents",
)
ORDERS = {"datasources": DATASOURCE_ORDER, "trainedmodels": MODEL_ORDER, "transformmodules": MODEL_ORDER,
          "modules": MODULE_ORDER}

# Reference §2.3: full DataTypeId vocabulary; input is compared case-insensitively (PS posts iLearnerDotNet).
DATA_TYPE_IDS = (
    "GenericCSV", "GenericCSVNoHeader", "GenericTSV", "GenericTSVNoHeader", "PlainText", "GenericBinary",
    "GenericHtml", "GenericDotNet", "DataTableDotNet", "Dataset", "ILearnerDotNet", "IFilterDotNet",
    "IClusterDotNet", "IRecommenderDotNet", "ITransformDotNet", "SvmLight", "ARFF", "ExcelWorkbook", "Zip", "RData",
    "HiveTable", "GenericFolder", "Any",
)
_DATA_TYPES = {name.lower(): name for name in DATA_TYPE_IDS}
UPLOAD_DATA_TYPES = ("GenericCSV", "GenericCSVNoHeader", "GenericTSV", "GenericTSVNoHeader", "ARFF", "Zip", "RData",
                     "PlainText")
EXTENSIONS = {"GenericCSV": ".csv", "GenericCSVNoHeader": ".nh.csv", "GenericTSV": ".tsv",
              "GenericTSVNoHeader": ".nh.tsv", "ARFF": ".arff", "Zip": ".zip", "RData": ".rdata",
              "PlainText": ".txt", "ILearnerDotNet": ".ilearner", "ITransformDotNet": ".itransform",
              "Dataset": ".dataset"}
TABULAR = frozenset({"GenericCSV", "GenericCSVNoHeader", "GenericTSV", "GenericTSVNoHeader", "ARFF", "Dataset"})
# Characters an asset name may not hold, per collection. The service refused a dataset named `unittestcsvwh:…`
# with 400 and "forbidden characters" (test_add_from_dataframe_invalid_name of the azureml 0.2.7 client's
# tests); the rest of the set is our guess: what a Windows file name or an Azure table key cannot hold, and
# control characters.
FORBIDDEN_NAME_CHARACTERS: dict[str, str] = {"datasources": '\\/:*?"<>|#'}


def forbidden_in_name(kind: str, name: str) -> list[str]:
    """The characters of `name` that names in `kind` may not hold, in order, each once."""
    forbidden = FORBIDDEN_NAME_CHARACTERS.get(kind)
    if forbidden is None:
        return []
    found = [c for c in name if c in forbidden or ord(c) < 0x20 or ord(c) == 0x7F]
    return list(dict.fromkeys(found))


def canonical_data_type(value: str) -> str | None:
    return _DATA_TYPES.get(value.strip().lower())


def ordered(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """Known keys in the observed order (missing ones null), unknown keys dropped (reference §7 Q21)."""
    return {key: item.get(key) for key in ORDERS[kind]}


def insert_item(conn: sqlite3.Connection, ws: str, kind: str, item: dict[str, Any], blob_key: str | None = None,
                replace: bool = False) -> bool:
    """Store one version as given (seeding); False when it exists and `replace` is off."""
    match = RESOURCE_ID_RE.match(str(item.get("Id") or ""))
    if match is None:
        raise ValueError(f"asset id {item.get('Id')!r} is not {{owner}}.{{family}}.v1-default-{{batch}}")
    family, batch = match.group(2), int(match.group(3))
    item = dict(item, FamilyId=item.get("FamilyId") or family, Batch=item.get("Batch", batch))
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    cur = conn.execute(f"{verb} INTO assets(workspace, kind, id, family, batch, name, doc, blob_key, created_ms) "
                       "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (ws, kind, item["Id"], family, batch, item.get("Name"), json.dumps(item, ensure_ascii=False),
                        blob_key, date_ms(item.get("CreatedDate")) or now_ms()))
    if kind != "modules" and match.group(1) == ws:
        bump_counter(conn, ws, kind, batch)
    return cur.rowcount > 0


def _load(row: sqlite3.Row, latest: bool) -> dict[str, Any]:
    item: dict[str, Any] = json.loads(row["doc"])
    item["IsLatest"] = latest
    item["$blob"] = row["blob_key"]
    return item


def latest(conn: sqlite3.Connection, ws: str, kind: str) -> list[dict[str, Any]]:
    """Latest version of every family, newest batch first (items carry `$blob`, removed when rendered)."""
    rows = conn.execute(
        "SELECT a.* FROM assets a JOIN (SELECT family, MAX(batch) AS b FROM assets WHERE workspace = ? AND kind = ? "
        "GROUP BY family) m ON a.family = m.family AND a.batch = m.b WHERE a.workspace = ? AND a.kind = ? "
        "ORDER BY a.batch DESC, a.id", (ws, kind, ws, kind)).fetchall()
    return [_load(r, True) for r in rows]


def get(conn: sqlite3.Connection, ws: str, kind: str, asset_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM assets WHERE workspace = ? AND kind = ? AND id = ?",
                       (ws, kind, asset_id)).fetchone()
    if row is None:
        return None
    top = conn.execute("SELECT MAX(batch) FROM assets WHERE workspace = ? AND kind = ? AND family = ?",
                       (ws, kind, row["family"])).fetchone()[0]
    return _load(row, int(row["batch"]) == int(top))


def latest_in_family(conn: sqlite3.Connection, ws: str, kind: str, family: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM assets WHERE workspace = ? AND kind = ? AND family = ? ORDER BY batch DESC "
                       "LIMIT 1", (ws, kind, family)).fetchone()
    return _load(row, True) if row is not None else None


def family_by_name(conn: sqlite3.Connection, ws: str, kind: str, name: str) -> str | None:
    """The family whose latest version is named `name` (duplicate-name check, reference §2.3, ISS #37)."""
    for item in latest(conn, ws, kind):
        if item.get("Name") == name:
            return str(item["FamilyId"])
    return None


def known_ids(conn: sqlite3.Connection, ws: str, kind: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT id FROM assets WHERE workspace = ? AND kind = ?", (ws, kind))}


def known_families(conn: sqlite3.Connection, ws: str, kind: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT family FROM assets WHERE workspace = ? AND kind = ?",
                                       (ws, kind))}


def delete_family(conn: sqlite3.Connection, ws: str, kind: str, family: str) -> int:
    cur = conn.execute("DELETE FROM assets WHERE workspace = ? AND kind = ? AND family = ?", (ws, kind, family))
    return int(cur.rowcount)


def create_version(conn: sqlite3.Connection, ws: str, kind: str, *, name: str, data_type_id: str,
                   family: str | None, new_family: str, description: str = "", owner: str = "amlvc",
                   source_origin: str = "FromResourceUpload", experiment_id: str | None = None,
                   promoted_from: str | None = None, upload_id: str | None = None, uploaded_from: str | None = None,
                   blob_key: str | None = None, size: int = 0, schema_status: str = "Complete") -> dict[str, Any]:
    """A new version: in `family` when given (ServiceVersion + 1), else a new family `new_family`; inside a tx."""
    fam = family or new_family
    previous = latest_in_family(conn, ws, kind, fam)
    service_version = int(previous.get("ServiceVersion") or 0) + 1 if previous is not None else 0
    batch = next_counter(conn, ws, kind)
    created = now_ms()
    item: dict[str, Any] = {
        "SchemaStatus": schema_status if kind == "datasources" else None,
        "Language": {"Language": "DotNet", "Version": "4.5.0"},
        "Id": resource_id(ws, fam, batch),
        "DataTypeId": data_type_id,
        "Name": name,
        "Description": description,
        "FamilyId": fam,
        "ResourceUploadId": upload_id,
        "SourceOrigin": source_origin,
        "Size": size,
        "CreatedDate": date(created),
        "Owner": owner,
        "ExperimentId": experiment_id,
        "ClientVersion": None,
        "PromotedFrom": promoted_from,
        "UploadedFromFilename": uploaded_from,
        "ServiceVersion": service_version,
        "Category": None,
        "IsDeprecated": False,
        "Culture": "default",
        "Batch": batch,
        "CreatedDateTicks": ticks(created),
    }
    stored = ordered(kind, item)
    stored.pop("IsLatest", None)
    conn.execute("INSERT INTO assets(workspace, kind, id, family, batch, name, doc, blob_key, created_ms) "
                 "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (ws, kind, item["Id"], fam, batch, name, json.dumps(stored, ensure_ascii=False), blob_key, created))
    return stored


# Assets that are models: a version without content gets a stand-in model blob (ilearner.py) at this key.
MODEL_KINDS = {"trainedmodels": ".ilearner", "transformmodules": ".itransform"}


def content_blob(conn: sqlite3.Connection, blobs: BlobStore, ws: str, kind: str, asset_id: str) -> BlobInfo | None:
    """The content of an asset version (inside a write transaction).

    A trained model or transform without content (seeded from a list without blobs, or referenced and
    never defined) gets a stand-in model in the one `.iLearner` format, derived from its id and kept as
    its content from then on, so every use of it (runs, deploys, definitions) reads the same bytes.
    """
    row = conn.execute("SELECT blob_key FROM assets WHERE workspace = ? AND kind = ? AND id = ?",
                       (ws, kind, asset_id)).fetchone()
    stored = blobs.info(conn, row["blob_key"]) if row is not None and row["blob_key"] else None
    if stored is not None or kind not in MODEL_KINDS:
        return stored
    parts = asset_id.split(".")
    family, instance = (parts[1], parts[2]) if len(parts) == 3 else (asset_id.replace("/", "_")[:64], "v1")
    key = f"{kind}/{family}/{instance}{MODEL_KINDS[kind]}"
    stored = blobs.info(conn, key) or blobs.put(conn, key, ilearner.stand_in(asset_id, kind))
    if row is not None:
        conn.execute("UPDATE assets SET blob_key = ? WHERE workspace = ? AND kind = ? AND id = ?",
                     (key, ws, kind, asset_id))
    return stored


# How the first line of a tabular dataset names its columns: (delimiter, has a header). A file without a
# header gets Studio's names Col1…ColN (the columns of the apihelp page's sample request).
TABLE_FORMATS = {"GenericCSV": (",", True), "GenericCSVNoHeader": (",", False), "GenericTSV": ("\t", True),
                 "GenericTSVNoHeader": ("\t", False)}
MAX_HEADER_LINE = 64 * 1024


def dataset_columns(conn: sqlite3.Connection, blobs: BlobStore, ws: str, dataset_id: str) -> list[str] | None:
    """The column names of a CSV/TSV dataset version (from its first line), None when they cannot be known."""
    item = get(conn, ws, "datasources", dataset_id)
    form = TABLE_FORMATS.get(str((item or {}).get("DataTypeId")))
    content = content_blob(conn, blobs, ws, "datasources", dataset_id) if form else None
    if form is None or content is None or not content.path.exists():
        return None
    with content.path.open("rb") as data:
        line = data.readline(MAX_HEADER_LINE).decode("utf-8-sig", errors="replace").rstrip("\r\n")
    if not line:
        return None
    delimiter, header = form
    cells = next(csv.reader([line], delimiter=delimiter))
    return [c.strip() for c in cells] if header else [f"Col{i}" for i in range(1, len(cells) + 1)]
