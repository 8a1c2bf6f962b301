"""The offline commands' core: init, import, export, normalize and verify; returns results, never prints."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import config as configmod
from amlvc import lockfile, project, repo
from amlvc.config import IMPORT_REMOTE, Config, Remote
from amlvc.denormalize import denormalize
from amlvc.document import classify, load_json_file, loads
from amlvc.errors import ConfigError, DirtyTree, InvalidDocument, LocalError, UsageError
from amlvc.normalize import Normalized, content_hash, normalize
from amlvc.roundtrip import verify_roundtrip
from amlvc.secrets import placeholder, placeholder_names
from amlvc.wsd import denormalize_wsd, normalize_wsd

GITIGNORE = ".gitignore"
GITATTRIBUTES = ".gitattributes"
IGNORE_LINES = (".amlvc/",)
# Canonical JSON is LF text; scripts keep their exact bytes (a CRLF R script must not be converted), but are
# still shown as text in diffs. `amlvc config-git` appends the diff and merge drivers below these lines.
ATTRIBUTE_LINES = (
    "# amlvc: normalized experiments (see `amlvc config-git` for the semantic diff and merge drivers)",
    "experiments/**/*.json text eol=lf",
    "experiments/**/scripts/** -text diff",
    "amlvc.lock text eol=lf",
    "amlvc.toml text eol=lf",
)
WSD_VOLATILE_SECTION = "webservices"  # lock section (per remote) holding a WSD's read-only fields

# ------------------------------------------------------------------------------------------------- init


@dataclass(frozen=True)
class InitResult:
    root: Path
    created_git: bool
    created_config: bool
    remote: Remote | None
    written: tuple[str, ...]
    commit: str | None

    def to_json(self) -> dict[str, Any]:
        return {"root": str(self.root), "created_git": self.created_git, "created_config": self.created_config,
                "remote": None if self.remote is None else {"name": self.remote.name, **self.remote.to_toml()},
                "written": list(self.written), "commit": self.commit}


def init(cwd: Path, remote: Remote | None = None) -> InitResult:
    """Make or adopt a git repository at `cwd` (or the work tree containing it) and set amlvc up in it.

    Run again in an existing repository with another `remote` to add it (same name: replaces it).
    """
    if remote is not None:
        try:
            configmod.validate_remote(remote, "--remote")
        except ConfigError as exc:  # it came from the command line, not from a file
            raise UsageError(exc.message) from None
    root = repo.git_root(cwd) or cwd.resolve()
    _, created_git = repo.init_repo(root)
    config_file = configmod.config_path(root)
    created_config = not config_file.is_file()
    cfg = Config() if created_config else configmod.load(root)
    if remote is not None:
        cfg = cfg.with_remote(remote)
    written: list[str] = []
    if repo.atomic_write(config_file, configmod.dumps(cfg)):
        written.append(configmod.CONFIG_FILE)
    for name, lines in ((GITATTRIBUTES, ATTRIBUTE_LINES), (GITIGNORE, IGNORE_LINES)):
        if _ensure_lines(root / name, lines):
            written.append(name)
    if not lockfile.lock_path(root).is_file():
        lockfile.write(root, lockfile.Lock())
        written.append(lockfile.LOCK_FILE)
    message = "amlvc init" if created_config else "amlvc: update settings"
    if remote is not None:
        message += f": remote {remote.name!r}"
    paths = [configmod.CONFIG_FILE, GITATTRIBUTES, GITIGNORE, lockfile.LOCK_FILE]
    commit = repo.commit_paths(root, paths, message)
    return InitResult(root, created_git, created_config, remote, tuple(written), commit)


def _open(cwd: Path) -> Path:
    """The amlvc repository containing `cwd`, with its amlvc.toml checked (a broken file stops every command)."""
    root = repo.find_root(cwd)
    configmod.load(root)
    return root


def _ensure_lines(path: Path, lines: Sequence[str]) -> bool:
    """Append the lines a file lacks (keeping everything the user or other commands put there)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in lines if line.strip() not in present]
    if not missing:
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    return repo.atomic_write(path, (text + "\n".join(missing) + "\n").encode("utf-8"))


# ----------------------------------------------------------------------------------------------- import


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
    root = _open(cwd)
    lock = lockfile.load(root)
    planned = []
    for index, file in enumerate(files):
        planned.append(_plan(Path(file)))
        if progress is not None:
            progress(index + 1, len(files))
    _assign_slugs(root, lock, planned)
    targets = sorted({p.slug for p in planned})
    dirty = repo.dirty_paths(root, [project.experiment_path(s) for s in targets] + [lockfile.LOCK_FILE])
    if dirty:
        raise DirtyTree(f"uncommitted changes in {', '.join(dirty[:3])}{' …' if len(dirty) > 3 else ''} would be "
                        f"overwritten by the import; commit or discard them first")
    imported: list[Imported] = []
    touched: list[str] = []
    for item in planned:
        changed = _write(root, item)
        lock = _record(lock, item)
        if item.normalized.secrets:
            project.store_secrets(root, IMPORT_REMOTE, item.slug, item.normalized.secrets)
        touched += changed
        imported.append(Imported(item.source, item.kind, item.slug, item.name, item.experiment_id,
                                 len(item.normalized.secrets), tuple(changed)))
    lockfile.write(root, lock)
    names = ", ".join(sorted({i.slug for i in imported}))
    trailers = [("Amlvc-Remote", IMPORT_REMOTE)] + [("Amlvc-Source", Path(i.source).name) for i in imported]
    commit = repo.commit_paths(root, [*sorted(set(touched)), lockfile.LOCK_FILE],
                               f"Import {names}", trailers=trailers)
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


def _existing_names(root: Path) -> dict[str, str]:
    """Experiment name (or, for a directory holding only a WSD, its title) -> slug, to attach WSDs to."""
    names: dict[str, str] = {}
    wsd_titles: dict[str, str] = {}
    for slug in project.list_experiments(root):
        directory = project.experiment_dir(root, slug)
        for file, target in ((project.EXPERIMENT_FILE, names), (project.WEBSERVICE_FILE, wsd_titles)):
            path = directory / file
            if not path.is_file():
                continue
            try:
                doc = loads(path.read_bytes(), str(path))
            except InvalidDocument:
                continue
            if not isinstance(doc, dict):
                continue
            title = doc.get("Description") if file == project.EXPERIMENT_FILE else _wsd_title(doc)
            if isinstance(title, str):
                target.setdefault(title, slug)
    return {**wsd_titles, **names}


def _assign_slugs(root: Path, lock: lockfile.Lock, planned: list[_Planned]) -> None:
    taken = set(project.list_experiments(root)) | lock.all_slugs()
    batch: dict[str, str] = {}  # experiment id -> slug given in this import
    for item in planned:
        if item.kind == "wsd":
            continue
        identity = leaf_id(item.experiment_id) if item.experiment_id else None
        known = (batch.get(identity) or lock.slug_of_any(identity)) if identity else None
        if known is None and identity and identity != item.experiment_id:
            known = lock.slug_of_any(item.experiment_id or "")
        item.slug = known or project.unique_slug(item.name, identity, taken)
        taken.add(item.slug)
        if identity:
            batch[identity] = item.slug
    batch_names = {p.name: p.slug for p in planned if p.kind != "wsd"}
    existing = _existing_names(root)
    for item in planned:
        if item.kind != "wsd":
            continue
        title = item.title or item.name
        item.slug = batch_names.get(title) or existing.get(title) or ""
        if not item.slug:
            item.slug = project.unique_slug(title, None, taken)
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
        return project.write_webservice(root, item.slug, item.normalized.files[project.WEBSERVICE_FILE])
    return project.write_files(root, item.slug, item.normalized.files)


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


# ----------------------------------------------------------------------------------------------- export


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
    root = _open(cwd)
    lock = lockfile.load(root)
    slug = _resolve_experiment(root, lock, experiment)
    if rev is not None:
        repo.resolve(root, rev)
    has_experiment = _has_experiment(root, slug, rev)
    if webservice or not has_experiment:
        data = project.read_webservice(root, slug, rev)
        if data is None:
            where = f" at {rev}" if rev else ""
            raise LocalError(f"no experiment or web service {slug!r}{where}; see `ls {project.EXPERIMENTS_DIR}/`")
        files = {project.WEBSERVICE_FILE: data}
        names = _placeholder_names(files)
        found, missing = project.secret_values(root, slug, names, remote)
        volatile = _wsd_volatile(lock, slug, remote)
        doc = denormalize_wsd(files, volatile=volatile, secrets=_with_placeholders(found, missing),
                              source=project.experiment_path(slug))
        body = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
        return ExportResult(slug, "wsd", body.encode("utf-8"), None, tuple(missing), len(found))
    files = project.read_files_at(root, rev, slug) if rev is not None else project.read_files(root, slug)
    entry = _lock_entry(lock, slug, remote)
    identity = dict(entry.identity) if entry is not None else {}
    if entry is not None and entry.id and not identity.get("ExperimentId"):
        identity["ExperimentId"] = entry.id
    restored = _export_volatile(files, entry)
    names = _placeholder_names(files)
    found, missing = project.secret_values(root, slug, names, remote)
    doc = denormalize(files, identity=identity or None, volatile=restored or None,
                      secrets=_with_placeholders(found, missing), source=project.experiment_path(slug))
    # The service's own wire format: compact JSON, UTF-8 without BOM, non-ASCII unescaped.
    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    experiment_id = doc.get("ExperimentId")
    return ExportResult(slug, "experiment", data, experiment_id if isinstance(experiment_id, str) else None,
                        tuple(missing), len(found))


def _resolve_experiment(root: Path, lock: lockfile.Lock, text: str) -> str:
    """A slug from what the user typed: a slug, an experiment's name, or its workspace id."""
    if project.SLUG.match(text) and project.experiment_dir(root, text).is_dir():
        return text
    by_name = _existing_names(root).get(text)
    if by_name is not None:
        return by_name
    by_id = lock.slug_of_any(leaf_id(text))
    if by_id is not None:
        return by_id
    return project.check_slug(text)  # not found: the caller reports it (or this says it is no slug)


def _export_volatile(files: Mapping[str, bytes], entry: lockfile.LockEntry | None) -> dict[str, Any]:
    """Server-state fields for an exported document: Etag and RunId as recorded, the rest at the values of a
    never-run draft, so the document has every key a GET has except the run's Status and NodeStatuses."""
    restored: dict[str, Any] = {"ParentExperimentId": None, "IsPartialRun": False}
    for key in ("WebServiceGroupId", "ModelPackageId", "RunId", "ArmWebServiceId"):
        restored[f"WebService.{key}"] = None
    try:
        nodes = json.loads(files[project.EXPERIMENT_FILE])["Graph"]["ModuleNodes"]
        restored["ModuleNodes.IsPartOfPartialRun"] = {node_id: False for node_id in nodes}
    except (KeyError, TypeError, ValueError):
        pass  # denormalize reports what is wrong with the file
    if entry is not None:
        # Import-AmlExperimentGraph reads Description, Summary and ParentExperimentId; RunId/Etag are informative.
        restored.update({k: v for k, v in (("RunId", entry.run_id), ("Etag", entry.etag)) if v is not None})
    return restored


def _has_experiment(root: Path, slug: str, rev: str | None) -> bool:
    if rev is None:
        return (project.experiment_dir(root, slug) / project.EXPERIMENT_FILE).is_file()
    return repo.read_at(root, rev, project.experiment_path(slug, project.EXPERIMENT_FILE)) is not None


def _lock_entry(lock: lockfile.Lock, slug: str, remote: str | None) -> lockfile.LockEntry | None:
    if remote is not None:
        entry = lock.entry(remote, slug)
        if entry is None:
            raise UsageError(f"amlvc.lock has no entry for {slug!r} in remote {remote!r}")
        return entry
    for name in [IMPORT_REMOTE, *sorted(r for r in lock.experiments if r != IMPORT_REMOTE)]:
        entry = lock.entry(name, slug)
        if entry is not None:
            return entry
    return None


def _wsd_volatile(lock: lockfile.Lock, slug: str, remote: str | None) -> dict[str, Any] | None:
    section = lock.sections.get(remote or IMPORT_REMOTE, {}).get(WSD_VOLATILE_SECTION, {})
    entry = section.get(slug) if isinstance(section, dict) else None
    volatile = entry.get("volatile") if isinstance(entry, dict) else None
    return dict(volatile) if isinstance(volatile, dict) else None


def _placeholder_names(files: Mapping[str, bytes]) -> list[str]:
    names: set[str] = set()
    for data in files.values():
        names.update(placeholder_names(data.decode("utf-8", "replace")))
    return sorted(names)


def _with_placeholders(found: Mapping[str, str], missing: Sequence[str]) -> dict[str, str]:
    """Fill what has a value; leave `${secret:NAME}` where none is known."""
    values = dict(found)
    values.update({name: placeholder(name) for name in missing})
    return values


# -------------------------------------------------------------------------------------------- normalize


@dataclass(frozen=True)
class NormalizeResult:
    checked: tuple[str, ...]  # slugs
    not_canonical: tuple[str, ...]  # repository-relative paths whose bytes differ from the canonical form
    rewritten: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"checked": list(self.checked), "not_canonical": list(self.not_canonical),
                "rewritten": list(self.rewritten)}


def normalize_tree(cwd: Path, *, fix: bool, paths: Sequence[str] = ()) -> NormalizeResult:
    """Check (and with `fix`, rewrite) the experiments of the work tree in canonical form.

    `paths` (as a pre-commit hook passes them) limits the check to the experiments holding those files.
    """
    root = _open(cwd)
    slugs = project.list_experiments(root)
    if paths:
        wanted = {_slug_of_path(root, cwd, p) for p in paths}
        slugs = [s for s in slugs if s in wanted]
    wrong: list[str] = []
    rewritten: list[str] = []
    for slug in slugs:
        current, canonical = _canonical(root, slug)
        differing = sorted(name for name in set(current) | set(canonical) if current.get(name) != canonical.get(name))
        wrong += [project.experiment_path(slug, name) for name in differing]
        if fix and differing:
            experiment = {k: v for k, v in canonical.items() if k != project.WEBSERVICE_FILE}
            if experiment:
                rewritten += project.write_files(root, slug, experiment)
            if project.WEBSERVICE_FILE in canonical:
                rewritten += project.write_webservice(root, slug, canonical[project.WEBSERVICE_FILE])
    return NormalizeResult(tuple(slugs), tuple(wrong), tuple(rewritten))


def _slug_of_path(root: Path, cwd: Path, path: str) -> str:
    rel = repo.relative(root, (cwd / path))
    parts = rel.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == project.EXPERIMENTS_DIR else ""


def _canonical(root: Path, slug: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The experiment's files as they are and as normalize would write them (both keyed by name)."""
    directory = project.experiment_dir(root, slug)
    current: dict[str, bytes] = {}
    canonical: dict[str, bytes] = {}
    source = project.experiment_path(slug)
    if (directory / project.EXPERIMENT_FILE).is_file():
        files = project.read_files(root, slug)
        current.update(files)
        doc = denormalize(files, source=source)
        canonical.update(normalize(doc, source=source, module_names=_module_names(files)).files)
    wsd = project.read_webservice(root, slug)
    if wsd is not None:
        current[project.WEBSERVICE_FILE] = wsd
        back = denormalize_wsd({project.WEBSERVICE_FILE: wsd}, source=source)
        canonical.update(normalize_wsd(back, source=source).files)
    return current, canonical


def _module_names(files: Mapping[str, bytes]) -> dict[str, str]:
    """ModuleId -> name from the `$module` annotations already in experiment.json (a pull may have taken
    them from the workspace's module list, which an offline check does not have)."""
    try:
        canon = json.loads(files[project.EXPERIMENT_FILE])
        nodes = canon["Graph"]["ModuleNodes"]
        names = {}
        for node in nodes.values():
            annotation = node.get("$module") or {}
            if isinstance(annotation.get("name"), str) and isinstance(node.get("ModuleId"), str):
                names[node["ModuleId"]] = annotation["name"]
        return names
    except (KeyError, TypeError, AttributeError, ValueError):
        return {}


# ----------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Verified:
    source: str
    problems: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "ok": not self.problems, "problems": list(self.problems)}


@dataclass(frozen=True)
class VerifyResult:
    items: tuple[Verified, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(not i.problems for i in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "items": [i.to_json() for i in self.items]}


def verify(cwd: Path, files: Sequence[Path] = ()) -> VerifyResult:
    """Prove the round trip: for raw files, every field normalize + denormalize would lose; with no files,
    the same for every experiment and web service of the repository (rebuilt from its files)."""
    items: list[Verified] = []
    if files:
        for path in files:
            doc = load_json_file(path)
            items.append(Verified(str(path), tuple(verify_roundtrip(doc, str(path)))))
        return VerifyResult(tuple(items))
    root = _open(cwd)
    lock = lockfile.load(root)
    for slug in project.list_experiments(root):
        source = project.experiment_path(slug)
        if (project.experiment_dir(root, slug) / project.EXPERIMENT_FILE).is_file():
            entry = _lock_entry(lock, slug, None)
            identity = dict(entry.identity) if entry is not None else None
            doc = denormalize(project.read_files(root, slug), identity=identity or None, source=source)
            items.append(Verified(source, tuple(verify_roundtrip(doc, source))))
        wsd = project.read_webservice(root, slug)
        if wsd is not None:
            wsd_source = project.experiment_path(slug, project.WEBSERVICE_FILE)
            doc = denormalize_wsd({project.WEBSERVICE_FILE: wsd}, source=source)
            items.append(Verified(wsd_source, tuple(verify_roundtrip(doc, wsd_source))))
    return VerifyResult(tuple(items))
