"""`amlvc dataset list|upload`: the workspace's datasets, and a file uploaded as a new dataset or a new version.

The upload is the real clients' (reference §2.3; azureml 0.2.7 `upload_dataset`, PS `Upload-AmlUserDataSetFromFile`):
start a resource upload, send the file in 2 MiB blocks, commit it as a datasource (with the `FamilyId` of the
dataset of the same name, which makes a new version of it), then poll the datasource until its schema is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.client import Client
from amlvc.errors import LocalError, UsageError
from amlvc.sync.remote import open_remote
from amlvc.sync.versions import VersionInfo
from amlvc.worktree import catalog

Progress = Callable[[int, int], None]  # bytes sent, bytes in all
SCHEMA_DONE = frozenset({"Complete", "NotSupported", "Failed"})


@dataclass(frozen=True)
class Dataset:
    """One dataset of the workspace's list (the latest version of its family)."""

    info: VersionInfo
    data_type: str
    size: int | None
    sample: bool

    def to_json(self) -> dict[str, Any]:
        return {**self.info.to_json(), "data_type": self.data_type, "size": self.size, "sample": self.sample}


@dataclass(frozen=True)
class DatasetList:
    remote: str
    datasets: tuple[Dataset, ...]

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "datasets": [d.to_json() for d in self.datasets]}


@dataclass(frozen=True)
class UploadPlan:
    """What an upload will do: a new dataset, or version `version` of an existing family."""

    remote: str
    file: str
    name: str
    data_type: str
    size: int
    blocks: int
    family: str | None  # None: a new dataset
    version: int  # the version the upload becomes


@dataclass(frozen=True)
class UploadResult:
    plan: UploadPlan
    info: VersionInfo | None  # None on --dry-run
    schema_status: str | None

    def to_json(self) -> dict[str, Any]:
        p = self.plan
        return {"remote": p.remote, "file": p.file, "name": p.name, "data_type": p.data_type, "size": p.size,
                "blocks": p.blocks,
                "new_family": p.family is None, "dry_run": self.info is None, "schema_status": self.schema_status,
                "id": self.info.id if self.info else None,
                "family": self.info.family if self.info else p.family,
                "version": self.info.version if self.info else p.version}


def _dataset(item: dict[str, Any]) -> Dataset:
    size = item.get("Size")
    return Dataset(VersionInfo.of("dataset", item), str(item.get("DataTypeId") or ""),
                   size if isinstance(size, int) else None,
                   str(item.get("Id") or "").startswith(rules.BUILTIN_OWNER + "."))


def list_datasets(start: Path, *, remote: str | None = None, token_env: str | None = None,
                  samples: bool = False) -> DatasetList:
    """The workspace's datasets (latest version per family), Microsoft's samples only with `samples`."""
    root = repo.find_root(start)
    target = open_remote(root, remote, token_env=token_env)
    with target.client:
        found = [_dataset(item) for item in target.client.list_datasources()]
    shown = tuple(sorted((d for d in found if samples or not d.sample), key=lambda d: (d.info.name or "").lower()))
    catalog.note(root, [d.info.known() for d in shown])
    return DatasetList(target.name, shown)


def data_type_for(file: Path, given: str | None) -> str:
    """The DataTypeId of an upload: `--format` (any case), else the one the file's extension implies."""
    if given:
        spelled = {t.lower(): t for t in rules.UPLOAD_DATA_TYPES}.get(given.strip().lower())
        if spelled is None:
            raise UsageError(f"--format {given!r}: one of {', '.join(rules.UPLOAD_DATA_TYPES)}")
        return spelled
    implied = rules.UPLOAD_EXTENSIONS.get(file.suffix.lower())
    if implied is None:
        raise UsageError(f"{file.name}: cannot tell the format from the extension; give --format "
                         f"({', '.join(rules.UPLOAD_DATA_TYPES)})")
    return implied


def same_name(items: Sequence[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The workspace's own item called `name`: exactly, else ignoring case and outer spaces (as PS -Overwrite)."""
    own = [i for i in items if not str(i.get("Id") or "").startswith(rules.BUILTIN_OWNER + ".")]
    exact = [i for i in own if i.get("Name") == name]
    folded = [i for i in own if str(i.get("Name") or "").strip().lower() == name.strip().lower()]
    found = exact or folded
    return found[0] if found else None


def upload(start: Path, file: Path, *, name: str, data_type: str | None = None, description: str = "",
           remote: str | None = None, token_env: str | None = None, dry_run: bool = False,
           progress: Progress | None = None, schema_timeout: float = 300.0,
           sleep: Callable[[float], None] = time.sleep) -> UploadResult:
    """Upload `file` as dataset `name` (a new version when the name exists); polls the schema generation."""
    root = repo.find_root(start)
    if not name.strip():
        raise UsageError("--name must not be empty")
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise LocalError(f"{file}: cannot read ({exc.strerror}); give the path of the file to upload") from None
    if not file.is_file():
        raise LocalError(f"{file}: not a file; give the path of the file to upload")
    kind = data_type_for(file, data_type)
    target = open_remote(root, remote, token_env=token_env)
    with target.client as client:
        existing = same_name(client.list_datasources(), name)
        family = str(existing["FamilyId"]) if existing and existing.get("FamilyId") else None
        current = VersionInfo.of("dataset", existing) if existing else None
        blocks = -(-size // rules.UPLOAD_CHUNK_BYTES)
        plan = UploadPlan(target.name, str(file), name, kind, size, blocks, family,
                          (current.version or 0) + 1 if current else 1)
        if dry_run:
            return UploadResult(plan, None, None)
        upload_id = _send(client, file, plan, progress)
        new_id = client.create_asset("datasources", {
            "DataSource": {"Name": name, "DataTypeId": kind, "Description": description, "FamilyId": family or "",
                           "Owner": rules.UPLOAD_OWNER, "SourceOrigin": "FromResourceUpload"},
            "UploadId": upload_id, "UploadedFromFileName": file.name, "ClientPoll": True})
        item = _poll_schema(client, new_id, schema_timeout, sleep)
    info = VersionInfo.of("dataset", item)
    catalog.note(root, [info.known()])
    return UploadResult(plan, info, str(item.get("SchemaStatus") or "") or None)


def _send(client: Client, file: Path, plan: UploadPlan, progress: Progress | None) -> str:
    """Start the upload and send the file block by block; returns the upload id."""
    started = client.start_upload(plan.data_type)
    upload_id = str(started.get("Id") or "")
    if not upload_id:
        raise LocalError(f"workspace '{plan.remote}' started an upload without an id; try again")
    sent = 0
    with file.open("rb") as handle:
        for block in range(plan.blocks):
            data = handle.read(rules.UPLOAD_CHUNK_BYTES)
            client.upload_block(upload_id, plan.data_type, block, plan.blocks, data)
            sent += len(data)
            if progress is not None:
                progress(sent, plan.size)
    return upload_id


def _poll_schema(client: Client, dataset_id: str, timeout: float, sleep: Callable[[float], None]) -> dict[str, Any]:
    """GET the new datasource until its SchemaStatus is done (PS polls the same way), or the time is up."""
    deadline = time.monotonic() + timeout
    wait = 0.2
    while True:
        item = client.get_asset("datasources", dataset_id)
        if str(item.get("SchemaStatus")) in SCHEMA_DONE or time.monotonic() >= deadline:
            return item
        sleep(wait)
        wait = min(wait * 1.5, 5.0)
