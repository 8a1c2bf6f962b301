"""The offline commands' core: init, normalize and verify; returns results, never prints.

`amlvc import` is importer.py, `amlvc export` exporter.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from amlvc import config as configmod
from amlvc import repo
from amlvc.canonical.denormalize import denormalize, recorded_module_names
from amlvc.canonical.jsonio import load_json_file
from amlvc.canonical.normalize import normalize
from amlvc.canonical.roundtrip import verify_roundtrip
from amlvc.canonical.webservice import denormalize_wsd, normalize_wsd
from amlvc.config import Config, Remote
from amlvc.errors import ConfigError, LocalError, UsageError
from amlvc.offline.exporter import lock_entry
from amlvc.worktree import lockfile, project

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

# ------------------------------------------------------------------------------------------------- init


@dataclass(frozen=True)
class InitResult:
    root: Path
    created_git: bool
    created_config: bool
    remote: Remote | None
    written: tuple[str, ...]
    commit: str | None
    same_workspace: tuple[str, ...] = ()  # other remotes naming the remote's workspace

    def to_json(self) -> dict[str, Any]:
        return {"root": str(self.root), "created_git": self.created_git, "created_config": self.created_config,
                "remote": None if self.remote is None else {"name": self.remote.name, **self.remote.to_toml()},
                "written": list(self.written), "commit": self.commit, "same_workspace": list(self.same_workspace)}


def init(cwd: Path, remote: Remote | None = None) -> InitResult:
    """Make or adopt a git repository at `cwd` (or the work tree containing it) and set amlvc up in it.

    Run again in an existing repository with another `remote` to add it; the same name updates it (what is
    not given, such as the token variable, is kept; its workspace id only while amlvc.lock records none of it).
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
        _refuse_repointing(root, cfg, remote)
        known = cfg.get(remote.name)
        if known is not None and remote.token_env is None:  # an update keeps what it does not say
            remote = replace(remote, token_env=known.token_env)
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
    twins = tuple(r.name for r in cfg.remotes if remote is not None and r.name != remote.name
                  and r.workspace_id == remote.workspace_id)
    return InitResult(root, created_git, created_config, remote, tuple(written), commit, twins)



def _refuse_repointing(root: Path, cfg: Config, remote: Remote) -> None:
    """A remote with experiments recorded in amlvc.lock keeps its workspace: the recorded ids belong to it.

    Its endpoint, region or token variable may change (the same workspace reached another way).
    """
    known = cfg.get(remote.name)
    if known is None or known.workspace_id.lower() == remote.workspace_id.lower():
        return
    recorded = len(lockfile.load(root).entries(remote.name)) if lockfile.lock_path(root).is_file() else 0
    if recorded:
        raise UsageError(
            f"remote {remote.name!r} is workspace {known.workspace_id}, and amlvc.lock records {recorded} "
            f"experiment(s) of it; pointing it at workspace {remote.workspace_id} would make them look deleted "
            f"there. Add that workspace under another name (`amlvc init --remote NAME …`); nothing was changed")


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
    root = project.open_repo(cwd)
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


def _experiment_holding(top: Path, cwd: Path, path: Path) -> str:
    """The slug of the experiment directory of the repository at `top` that `path` is in, else ""."""
    try:
        return _slug_of_path(top, cwd, str(path))
    except LocalError:  # outside the repository: a raw export
        return ""


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
        # A pull may have taken the names from the workspace's module list, which an offline check does not have.
        canonical.update(normalize(doc, source=source, module_names=recorded_module_names(files)).files)
    wsd = project.read_webservice(root, slug)
    if wsd is not None:
        current[project.WEBSERVICE_FILE] = wsd
        back = denormalize_wsd({project.WEBSERVICE_FILE: wsd}, source=source)
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
    if top is not None and not (top / configmod.CONFIG_FILE).is_file():
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
    root = project.open_repo(cwd)
    lock = lockfile.load(root)
    for slug in project.list_experiments(root):
        if files and slug not in wanted:
            continue
        source = project.experiment_path(slug)
        if (project.experiment_dir(root, slug) / project.EXPERIMENT_FILE).is_file():
            entry = lock_entry(lock, slug, None)
            identity = dict(entry.identity) if entry is not None else None
            doc = denormalize(project.read_files(root, slug), identity=identity or None, source=source)
            items.append(Verified(source, tuple(verify_roundtrip(doc, source))))
        wsd = project.read_webservice(root, slug)
        if wsd is not None:
            wsd_source = project.experiment_path(slug, project.WEBSERVICE_FILE)
            doc = denormalize_wsd({project.WEBSERVICE_FILE: wsd}, source=source)
            items.append(Verified(wsd_source, tuple(verify_roundtrip(doc, wsd_source))))
    return VerifyResult(tuple(items))
