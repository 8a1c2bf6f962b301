"""`amlvc import`: raw exports (experiment, snapshot, WSD) into canonical files, slugs and lock entries, one commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import config, repo
from amlvc.canonical.checks import classify
from amlvc.canonical.denormalize import denormalize
from amlvc.canonical.jsonio import content_hash, load_json_file, loads
from amlvc.canonical.normalize import Normalized, normalize
from amlvc.canonical.secrets import redact
from amlvc.canonical.webservice import denormalize_wsd, normalize_wsd
from amlvc.errors import DirtyTree, InvalidDocument, UsageError
from amlvc.rules import EXPERIMENT_FILE, IMPORT_REMOTE, LOCK_FILE, SECRETS_FILE, WEBSERVICE_FILE
from amlvc.worktree import experiments, lockfile, secretfile
from amlvc.worktree.files import check_targets

WSD_VOLATILE_SECTION = "webservices"  # lock section (per remote) holding a WSD's read-only fields


@dataclass(frozen=True)
class Imported:
    """One file imported: what it was, where it went, and how many secrets were moved to the secrets file."""

    source: str
    kind: str  # experiment | snapshot | wsd
    slug: str
    name: str
    experiment_id: str | None
    secrets: int
    changed: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "slug": self.slug, "name": self.name,
                "experiment_id": self.experiment_id, "secrets": self.secrets, "changed": list(self.changed)}


@dataclass(frozen=True)
class ImportResult:
    imported: tuple[Imported, ...]
    commit: str | None

    def to_json(self) -> dict[str, Any]:
        return {"imported": [i.to_json() for i in self.imported], "commit": self.commit}


@dataclass
class _Planned:
    source: str
    kind: str
    normalized: Normalized
    name: str
    experiment_id: str | None
    title: str | None = None  # WSD: the title or name used to attach it
    slug: str = ""


def import_files(cwd: Path, files: Sequence[Path], progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Normalize raw exports (GET-experiment, snapshot or WSD JSON) into the repository, one commit for all.

    Every file is read, checked and normalized before anything is written: a bad file changes nothing.
    A WSD goes to the experiment whose name equals its title (in this import or already in the repository),
    else to its own `experiments/<slug of its title>/webservice.json`. `progress(done, total)` is called as
    the files are read and normalized.
    """
    if not files:
        raise UsageError("nothing to import; give one or more exported JSON files")
    root = config.find_repository(cwd)
    lock = lockfile.load(root)
    planned = []
    for index, file in enumerate(files):
        planned.append(_plan(Path(file)))
        if progress is not None:
            progress(index + 1, len(files))
    _assign_slugs(root, lock, planned)
    targets = sorted({p.slug for p in planned})
    dirty = repo.dirty_paths(root, [experiments.path(s) for s in targets] + [LOCK_FILE])
    if dirty:
        raise DirtyTree(f"uncommitted changes in {', '.join(dirty[:3])}{' …' if len(dirty) > 3 else ''} would be "
                        f"overwritten by the import; commit or discard them first")
    targets = [experiments.path(item.slug, name) for item in planned for name in item.normalized.files]
    check_targets(root, [*targets, LOCK_FILE, SECRETS_FILE])
    imported: list[Imported] = []
    touched: list[str] = []
    for item in planned:
        changed = _write(root, item)
        lock = _record(lock, item)
        if item.normalized.secrets:
            secretfile.store(root, IMPORT_REMOTE, {item.slug: item.normalized.secrets})
        touched += changed
        imported.append(Imported(item.source, item.kind, item.slug, item.name, item.experiment_id,
                                 len(item.normalized.secrets), tuple(changed)))
    lockfile.write(root, lock)
    names = ", ".join(sorted({i.slug for i in imported}))
    trailers = [("Amlvc-Remote", IMPORT_REMOTE)] + [("Amlvc-Source", Path(i.source).name) for i in imported]
    commit = repo.commit_paths(root, [*sorted(set(touched)), LOCK_FILE], redact(f"Import {names}"),
                               trailers=[(key, redact(value)) for key, value in trailers])
    return ImportResult(tuple(imported), commit)


def _plan(path: Path) -> _Planned:
    source = str(path)
    doc = load_json_file(path)
    kind = classify(doc, source)
    # Each document is also rebuilt from its files before anything is written: a file that normalizes
    # but cannot be read back (a wrong type the normalizer passed through) is refused here, not later.
    if kind == "wsd":
        normalized = normalize_wsd(doc, source=source)
        denormalize_wsd(normalized.files, source=source)
        title = _wsd_title(doc)
        return _Planned(source, kind, normalized, title or path.stem, None, title=title)
    normalized = normalize(doc, source=source)
    denormalize(normalized.files, source=source)
    name = doc.get("Description")
    experiment_id = doc.get("ExperimentId")
    return _Planned(source, kind, normalized, name if isinstance(name, str) else path.stem,
                    experiment_id if isinstance(experiment_id, str) else None)


def _wsd_title(doc: Mapping[str, Any]) -> str | None:
    """properties.title of a WSD (keys case-insensitive), else the ARM resource name."""
    lowered = {k.lower(): v for k, v in doc.items()}
    props = lowered.get("properties")
    if isinstance(props, dict):
        title = {k.lower(): v for k, v in props.items()}.get("title")
        if isinstance(title, str) and title.strip():
            return title
    name = lowered.get("name")
    return name if isinstance(name, str) and name.strip() else None


def leaf_id(experiment_id: str) -> str:
    """The editable experiment of a run-history snapshot id ({ws}.s-id.{guid}.{stamp} -> {ws}.f-id.{guid})."""
    parts = experiment_id.split(".", 3)  # the timestamp has dots of its own
    if len(parts) == 4 and parts[1] == "s-id":
        return f"{parts[0]}.f-id.{parts[2]}"
    return experiment_id


def existing_names(root: Path) -> dict[str, str]:
    """Experiment name (or, for a directory holding only a WSD, its title) -> slug, to attach WSDs to."""
    names: dict[str, str] = {}
    wsd_titles: dict[str, str] = {}
    for slug in experiments.slugs(root):
        current = experiments.read(root, slug)
        for file, target in ((EXPERIMENT_FILE, names), (WEBSERVICE_FILE, wsd_titles)):
            if file not in current:
                continue
            try:
                doc = loads(current[file], experiments.path(slug, file))
            except InvalidDocument:
                continue
            if not isinstance(doc, dict):
                continue
            title = doc.get("Description") if file == EXPERIMENT_FILE else _wsd_title(doc)
            if isinstance(title, str):
                target.setdefault(title, slug)
    return {**wsd_titles, **names}


def _assign_slugs(root: Path, lock: lockfile.Lock, planned: list[_Planned]) -> None:
    taken = set(experiments.slugs(root)) | lock.all_slugs()
    batch: dict[str, str] = {}  # experiment id -> slug given in this import
    for item in planned:
        if item.kind == "wsd":
            continue
        identity = leaf_id(item.experiment_id) if item.experiment_id else None
        known = (batch.get(identity) or lock.slug_of_any(identity)) if identity else None
        if known is None and identity and identity != item.experiment_id:
            known = lock.slug_of_any(item.experiment_id or "")
        item.slug = known or experiments.unique_slug(item.name, identity, taken)
        taken.add(item.slug)
        if identity:
            batch[identity] = item.slug
    batch_names = {p.name: p.slug for p in planned if p.kind != "wsd"}
    existing = existing_names(root)
    for item in planned:
        if item.kind != "wsd":
            continue
        title = item.title or item.name
        item.slug = batch_names.get(title) or existing.get(title) or ""
        if not item.slug:
            item.slug = experiments.unique_slug(title, None, taken)
            taken.add(item.slug)
    seen: dict[tuple[str, bool], str] = {}
    for item in planned:
        key = (item.slug, item.kind == "wsd")
        if key in seen:
            raise UsageError(f"{seen[key]} and {item.source} are the same {'web service' if key[1] else 'experiment'} "
                             f"({item.slug}); import them one at a time, in the order you want them committed")
        seen[key] = item.source


def _write(root: Path, item: _Planned) -> list[str]:
    if item.kind == "wsd":
        files = {**experiments.read(root, item.slug), **item.normalized.files}
        return experiments.write(root, item.slug, files)
    return experiments.write(root, item.slug, item.normalized.files, keep=(WEBSERVICE_FILE,))


def _record(lock: lockfile.Lock, item: _Planned) -> lockfile.Lock:
    """The lock entry of an import: identity and Etag/RunId as found in the file (never a secret)."""
    if item.kind == "wsd":
        sections = {r: dict(s) for r, s in lock.sections.items()}
        webservices = dict(sections.setdefault(IMPORT_REMOTE, {}).get(WSD_VOLATILE_SECTION, {}))
        webservices[item.slug] = {"volatile": item.normalized.volatile}
        sections[IMPORT_REMOTE][WSD_VOLATILE_SECTION] = webservices
        return lockfile.Lock(experiments=lock.experiments, sections=sections, extra=lock.extra)
    volatile = item.normalized.volatile
    entry = lockfile.LockEntry(
        id=leaf_id(item.experiment_id) if item.experiment_id else None,
        etag=_opt_str(volatile.get("Etag")),
        run_id=_opt_str(volatile.get("RunId")),
        content_hash=content_hash(item.normalized.files),
        identity=item.normalized.identity,
    )
    return lock.with_entry(IMPORT_REMOTE, item.slug, entry)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None

