"""`amlvc normalize` and `amlvc verify`: the repository's files checked against the canonical form, and the
lossless round trip proved on raw exports and on every experiment of the repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import config, repo
from amlvc.canonical.denormalize import denormalize, recorded_module_names
from amlvc.canonical.jsonio import load_json_file
from amlvc.canonical.normalize import normalize
from amlvc.canonical.roundtrip import verify_roundtrip
from amlvc.canonical.webservice import denormalize_wsd, normalize_wsd
from amlvc.errors import LocalError
from amlvc.rules import CONFIG_FILE, EXPERIMENT_FILE, EXPERIMENTS_DIR, WEBSERVICE_FILE
from amlvc.worktree import experiments, lockfile
from amlvc.worktree.files import check_targets


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
    root = config.find_repository(cwd)
    slugs = experiments.slugs(root)
    if paths:
        wanted = {_slug_of_path(root, cwd, p) for p in paths}
        slugs = [s for s in slugs if s in wanted]
    wrong: list[str] = []
    fixes: dict[str, dict[str, bytes]] = {}
    for slug in slugs:
        current, canonical = _canonical(root, slug)
        differing = sorted(name for name in set(current) | set(canonical) if current.get(name) != canonical.get(name))
        wrong += [experiments.path(slug, name) for name in differing]
        if differing:
            fixes[slug] = canonical
    rewritten: list[str] = []
    if fix:  # every target checked before the first write
        check_targets(root, [experiments.path(slug, name) for slug, files in fixes.items() for name in files])
        for slug, canonical in fixes.items():
            rewritten += experiments.write(root, slug, canonical)
    return NormalizeResult(tuple(slugs), tuple(wrong), tuple(rewritten))


def _experiment_holding(top: Path, cwd: Path, path: Path) -> str:
    """The slug of the experiment directory of the repository at `top` that `path` is in, else ""."""
    try:
        return _slug_of_path(top, cwd, str(path))
    except LocalError:  # outside the repository: a raw export
        return ""


def _slug_of_path(root: Path, cwd: Path, path: str) -> str:
    rel = repo.relative(root, (cwd / path))
    parts = rel.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == EXPERIMENTS_DIR else ""


def _canonical(root: Path, slug: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The experiment's files as they are and as normalize would write them (both keyed by name)."""
    current = experiments.read(root, slug)
    canonical: dict[str, bytes] = {}
    source = experiments.path(slug)
    if EXPERIMENT_FILE in current:
        files = experiments.without_webservice(current)
        doc = denormalize(files, source=source)
        # A pull may have taken the names from the workspace's module list, which an offline check does not have.
        canonical.update(normalize(doc, source=source, module_names=recorded_module_names(files)).files)
    wsd = current.get(WEBSERVICE_FILE)
    if wsd is not None:
        back = denormalize_wsd({WEBSERVICE_FILE: wsd}, source=source)
        canonical.update(normalize_wsd(back, source=source).files)
    return current, canonical


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
    the same for every experiment and web service of the repository (rebuilt from its files). Files inside
    the repository's experiments/ (as a pre-commit hook passes them) select the experiments holding them."""
    items: list[Verified] = []
    top = repo.git_root(cwd) if files else None
    if top is not None and not (top / CONFIG_FILE).is_file():
        top = None  # a git repository, but not amlvc's: every file is a raw export
    wanted: set[str] = set()
    for path in files:
        slug = _experiment_holding(top, cwd, path) if top is not None else ""
        if slug:
            wanted.add(slug)
            continue
        doc = load_json_file(path)
        items.append(Verified(str(path), tuple(verify_roundtrip(doc, str(path)))))
    if files and not wanted:
        return VerifyResult(tuple(items))
    root = config.find_repository(cwd)
    lock = lockfile.load(root)
    for slug in experiments.slugs(root):
        if files and slug not in wanted:
            continue
        source = experiments.path(slug)
        current = experiments.read(root, slug)
        if EXPERIMENT_FILE in current:
            entry = lockfile.find_entry(lock, slug, None)
            identity = dict(entry.identity) if entry is not None else None
            doc = denormalize(experiments.without_webservice(current), identity=identity or None, source=source)
            items.append(Verified(source, tuple(verify_roundtrip(doc, source))))
        wsd = current.get(WEBSERVICE_FILE)
        if wsd is not None:
            wsd_source = experiments.path(slug, WEBSERVICE_FILE)
            doc = denormalize_wsd({WEBSERVICE_FILE: wsd}, source=source)
            items.append(Verified(wsd_source, tuple(verify_roundtrip(doc, wsd_source))))
    return VerifyResult(tuple(items))
