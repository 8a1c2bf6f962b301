"""`amlvc export`: one experiment (or its WSD) of the repository as the raw document the service imports."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import config, repo
from amlvc.canonical.denormalize import denormalize
from amlvc.canonical.secrets import placeholder, placeholders_of
from amlvc.canonical.webservice import denormalize_wsd
from amlvc.errors import LocalError
from amlvc.offline.importer import WSD_VOLATILE_SECTION, existing_names, leaf_id
from amlvc.rules import EXPERIMENT_FILE, EXPERIMENTS_DIR, IMPORT_REMOTE, WEBSERVICE_FILE
from amlvc.worktree import experiments, lockfile, secretfile


@dataclass(frozen=True)
class ExportResult:
    slug: str
    kind: str  # experiment | wsd
    data: bytes
    experiment_id: str | None
    missing_secrets: tuple[str, ...]
    filled_secrets: int

    def to_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "kind": self.kind, "experiment_id": self.experiment_id,
                "missing_secrets": list(self.missing_secrets), "filled_secrets": self.filled_secrets}


def export(cwd: Path, experiment: str, *, rev: str | None = None, remote: str | None = None,
           webservice: bool = False) -> ExportResult:
    """The raw document of one experiment (slug, name or id) or its WSD: what `Import-AmlExperimentGraph` accepts.

    Files come from the work tree, or from `rev`. Identity (ExperimentId …), Etag and RunId come from the
    lock entry of `remote` (default: the `import` entry, else any remote's). Secrets are filled from
    `AMLVC_SECRET_<NAME>` or `.amlvc/secrets.json`; the ones without a value stay placeholders.
    """
    root = config.find_repository(cwd)
    lock = lockfile.load(root)
    slug = _resolve_experiment(root, lock, experiment)
    if rev is not None:
        repo.resolve(root, rev)
    current = experiments.read(root, slug, rev)
    if webservice or EXPERIMENT_FILE not in current:
        data = current.get(WEBSERVICE_FILE)
        if data is None:
            where = f" at {rev}" if rev else ""
            raise LocalError(f"no experiment or web service {slug!r}{where}; see `ls {EXPERIMENTS_DIR}/`")
        files = {WEBSERVICE_FILE: data}
        found, missing = _secret_values(root, slug, files, remote)
        volatile = _wsd_volatile(lock, slug, remote)
        doc = denormalize_wsd(files, volatile=volatile, secrets=_with_placeholders(found, missing),
                              source=experiments.path(slug))
        body = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
        return ExportResult(slug, "wsd", body.encode("utf-8"), None, tuple(missing), len(found))
    files = experiments.without_webservice(current)
    entry = lockfile.find_entry(lock, slug, remote)
    identity = dict(entry.identity) if entry is not None else {}
    if entry is not None and entry.id and not identity.get("ExperimentId"):
        identity["ExperimentId"] = entry.id
    restored = _export_volatile(files, entry)
    found, missing = _secret_values(root, slug, files, remote)
    doc = denormalize(files, identity=identity or None, volatile=restored or None,
                      secrets=_with_placeholders(found, missing), source=experiments.path(slug))
    # The service's own wire format: compact JSON, UTF-8 without BOM, non-ASCII unescaped.
    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    experiment_id = doc.get("ExperimentId")
    return ExportResult(slug, "experiment", data, experiment_id if isinstance(experiment_id, str) else None,
                        tuple(missing), len(found))


def _resolve_experiment(root: Path, lock: lockfile.Lock, text: str) -> str:
    """A slug from what the user typed: a slug, an experiment's name, or its workspace id."""
    if experiments.SLUG.match(text) and experiments.folder(root, text).is_dir():
        return text
    by_name = existing_names(root).get(text)
    if by_name is not None:
        return by_name
    by_id = lock.slug_of_any(leaf_id(text))
    if by_id is not None:
        return by_id
    return experiments.check_slug(text)  # not found: the caller reports it (or this says it is no slug)


def _export_volatile(files: Mapping[str, bytes], entry: lockfile.LockEntry | None) -> dict[str, Any]:
    """Server-state fields for an exported document: Etag and RunId as recorded, the rest at the values of a
    never-run draft, so the document has every key a GET has except the run's Status and NodeStatuses."""
    restored: dict[str, Any] = {"ParentExperimentId": None, "IsPartialRun": False}
    for key in ("WebServiceGroupId", "ModelPackageId", "RunId", "ArmWebServiceId"):
        restored[f"WebService.{key}"] = None
    try:
        nodes = json.loads(files[EXPERIMENT_FILE])["Graph"]["ModuleNodes"]
        restored["ModuleNodes.IsPartOfPartialRun"] = {node_id: False for node_id in nodes}
    except (KeyError, TypeError, ValueError):
        pass  # denormalize reports what is wrong with the file
    if entry is not None:
        # Import-AmlExperimentGraph reads Description, Summary and ParentExperimentId; RunId/Etag are informative.
        restored.update({k: v for k, v in (("RunId", entry.run_id), ("Etag", entry.etag)) if v is not None})
    return restored


def _wsd_volatile(lock: lockfile.Lock, slug: str, remote: str | None) -> dict[str, Any] | None:
    section = lock.sections.get(remote or IMPORT_REMOTE, {}).get(WSD_VOLATILE_SECTION, {})
    entry = section.get(slug) if isinstance(section, dict) else None
    volatile = entry.get("volatile") if isinstance(entry, dict) else None
    return dict(volatile) if isinstance(volatile, dict) else None


def _secret_values(root: Path, slug: str, files: Mapping[str, bytes], remote: str | None,
                   ) -> tuple[dict[str, str], list[str]]:
    """(values found, names without a value) of the placeholders in `files`, from `remote`'s section or any."""
    stored = secretfile.stored(root, slug, [remote] if remote else None)
    fills, values = secretfile.lookup(placeholders_of(files), stored)
    return values, [fill.name for fill in fills if fill.source is None]


def _with_placeholders(found: Mapping[str, str], missing: Sequence[str]) -> dict[str, str]:
    """Fill what has a value; leave `${secret:NAME}` where none is known."""
    values = dict(found)
    values.update({name: placeholder(name) for name in missing})
    return values

