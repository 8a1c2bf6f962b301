"""Helpers of the push, check and cross-workspace tests: a dev/prod local server and a pulled repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import config
from amlvc.canonical.normalize import to_push_body
from amlvc.client import Client, RetryPolicy, hosts_for
from amlvc.server.runner import ServerHandle, start_server
from amlvc.worktree.experiments import slugify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEV = "c4e6a8b0d2f44a6c8e0a2c4e6b8d0f13"  # the fixtures' workspace
PROD = "5d7f9b1c3e5a47c9b1d3f5a7c9e1b3d5"
TOKENS = {"dev": "dev-token-3f9a", "prod": "prod-token-7c1e"}
WORKSPACES = {"dev": DEV, "prod": PROD}
TOKEN_ENV = {"dev": "AMLVC_TOKEN_DEV", "prod": "AMLVC_TOKEN_PROD"}
TRAINING_ID = f"{DEV}.f-id.b3d5f7a9c1e34b5d8f0a2c4e6b8d0f2a"
TRAINING_NAME = "Kündigung – Training ✓"
TRAINING = slugify(TRAINING_NAME)
DATASET_FAMILY = "2a4c6e8b0d1f43a5b7c9e1f3a5b7c9d1"
DATASET_ID = f"{DEV}.{DATASET_FAMILY}.v1-default-23"


def seed_dir(tmp_path: Path, names: tuple[str, ...] = ("training--base.json",)) -> Path:
    """A seed folder holding only the chosen fixtures (the dev workspace's experiments and their assets)."""
    target = tmp_path / "seed"
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(FIXTURES / name, target / name)
    return target


def start(tmp_path: Path, *, prod: bool = False, **options: Any) -> ServerHandle:
    workspaces = [(DEV, TOKENS["dev"])] + ([(PROD, TOKENS["prod"])] if prod else [])
    return start_server(tmp_path / "server-data", workspaces=workspaces, seed=seed_dir(tmp_path), **options)


def client(server: ServerHandle, remote: str = "dev") -> Client:
    return Client(remote, WORKSPACES[remote], hosts_for(endpoint=server.url), TOKENS[remote],
                  retry=RetryPolicy(backoff=0.001, max_backoff=0.002, max_retry_after=0.05))


def token_env() -> dict[str, str]:
    return {TOKEN_ENV[name]: token for name, token in TOKENS.items()}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def make_repo(tmp_path: Path, server: ServerHandle, remotes: tuple[str, ...] = ("dev",),
              extra: Mapping[str, config.Remote] | None = None) -> Path:
    """A git repository with amlvc.toml naming the server's workspaces, committed."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    settings = config.Config(default_remote="dev")
    for name in remotes:
        settings = settings.with_remote(config.Remote(name, WORKSPACES[name], endpoint=server.url,
                                                      token_env=TOKEN_ENV[name]))
    for remote in (extra or {}).values():
        settings = settings.with_remote(remote)
    (root / "amlvc.toml").write_bytes(config.dumps(settings))
    (root / ".gitignore").write_text(".amlvc/\n")
    git(root, "add", "amlvc.toml", ".gitignore")
    git(root, "commit", "-q", "-m", "init")
    return root


def pulled_repo(run_cli: Any, tmp_path: Path, server: ServerHandle, remotes: tuple[str, ...] = ("dev",), *,
                remote: str | None = None, extra: Mapping[str, config.Remote] | None = None) -> Path:
    """`make_repo`, then a successful `amlvc pull` (of `remote` when given) with every token in the environment."""
    root = make_repo(tmp_path, server, remotes, extra)
    pulled = run_cli(["pull", *(["--remote", remote] if remote else [])], cwd=root, env=token_env())
    assert pulled.exit_code == 0, pulled.stderr
    return root


@dataclass(frozen=True)
class RepoState:
    head: str
    porcelain: str
    refs: str
    lock: bytes


def repo_state(root: Path) -> RepoState:
    lock = root / "amlvc.lock"
    return RepoState(git(root, "rev-parse", "HEAD").strip(), git(root, "status", "--porcelain"),
                     git(root, "for-each-ref"), lock.read_bytes() if lock.is_file() else b"")


def workspace_state(server: ServerHandle, remote: str = "dev") -> dict[str, str]:
    """Experiment id -> Etag: a write anywhere in the workspace changes it."""
    with client(server, remote) as c:
        return {str(e["ExperimentId"]): str(e["Etag"]) for e in c.list_experiments()}


def lock_entry(root: Path, remote: str, slug: str) -> dict[str, Any]:
    data = json.loads((root / "amlvc.lock").read_text())
    entry: dict[str, Any] = data["remotes"][remote]["experiments"][slug]
    return entry


def edit_in_workspace(server: ServerHandle, exp_id: str = TRAINING_ID, *, summary: str = "edited in Studio") -> None:
    """What Studio does on save: GET, change, POST the save body (IsDraft)."""
    with client(server) as c:
        doc = c.get_experiment(exp_id)
        doc["Summary"] = summary
        c.save_experiment(exp_id, to_push_body(doc))


def edit_locally(root: Path, slug: str = TRAINING, *, summary: str = "edited in git") -> None:
    path = root / "experiments" / slug / "experiment.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["Summary"] = summary
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A", "experiments")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()
