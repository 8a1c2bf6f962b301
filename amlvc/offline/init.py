"""`amlvc init`: make or adopt a git repository and write amlvc.toml, amlvc.lock, .gitattributes, .gitignore."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from amlvc import config as configmod
from amlvc import repo
from amlvc.config import Config, Remote
from amlvc.credentials import check_token_env
from amlvc.errors import ConfigError, UsageError
from amlvc.rules import CONFIG_FILE, LOCK_FILE
from amlvc.worktree import lockfile
from amlvc.worktree.files import atomic_write, check_targets

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
        if remote.token_env is not None:
            check_token_env(remote.token_env)
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
    check_targets(root, [CONFIG_FILE, GITATTRIBUTES, GITIGNORE, LOCK_FILE])
    written: list[str] = []
    if atomic_write(config_file, configmod.dumps(cfg)):
        written.append(CONFIG_FILE)
    for name, lines in ((GITATTRIBUTES, ATTRIBUTE_LINES), (GITIGNORE, IGNORE_LINES)):
        if _ensure_lines(root / name, lines):
            written.append(name)
    if not lockfile.lock_path(root).is_file():
        lockfile.write(root, lockfile.Lock())
        written.append(LOCK_FILE)
    message = "amlvc init" if created_config else "amlvc: update settings"
    if remote is not None:
        message += f": remote {remote.name!r}"
    paths = [CONFIG_FILE, GITATTRIBUTES, GITIGNORE, LOCK_FILE]
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
    return atomic_write(path, (text + "\n".join(missing) + "\n").encode("utf-8"))
