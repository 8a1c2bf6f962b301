"""Helpers of the team-workflow review tests: the demo workspace served on loopback and a repository that pulled it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc.canonical.normalize import dumps
from amlvc.client import Client, RetryPolicy, hosts_for
from amlvc.server import DEMO_WORKSPACE_ID
from amlvc.server.runner import ServerHandle, start_server

TOKEN_ENV = "AMLVC_TEAM_TOKEN"
TRAINING = "kundigung-training"
PREDICTIVE = "kundigung-training-predictive-exp"


@dataclass(frozen=True)
class Team:
    """The demo workspace, a repository that pulled it (one commit after `init`), and the token's environment."""

    server: ServerHandle
    root: Path
    env: dict[str, str]


@contextmanager
def pulled(run_cli: Any, tmp_path: Path) -> Iterator[Team]:
    """What a new user does first: `amlvc serve --seed demo`, `amlvc init`, `amlvc pull`."""
    with start_server(tmp_path / "workspace-data", seed="demo") as server:
        _ws, token, _secondary = server.workspaces[0]
        env = {TOKEN_ENV: token}
        root = tmp_path / "repo"
        root.mkdir()
        init = run_cli(["init", "--remote", "dev", "--endpoint", server.url, "--workspace-id", DEMO_WORKSPACE_ID,
                        "--token-env", TOKEN_ENV], cwd=root, env=env)
        assert init.exit_code == 0, init.stderr
        pull = run_cli(["pull"], cwd=root, env=env)
        assert pull.exit_code == 0, pull.stderr
        yield Team(server, root, env)


def studio(team: Team) -> Client:
    """A Studio API client of the team's workspace (for edits made "in Studio")."""
    return Client("dev", DEMO_WORKSPACE_ID, hosts_for(endpoint=team.server.url), team.env[TOKEN_ENV],
                  retry=RetryPolicy(backoff=0.001))


def training_id(api: Client) -> str:
    """The workspace id of the training experiment."""
    return next(str(e["ExperimentId"]) for e in api.list_experiments() if "Predictive" not in e["Description"])


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def edit(root: Path, slug: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to experiments/<slug>/experiment.json and write it back in canonical form."""
    path = root / "experiments" / slug / "experiment.json"
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_bytes(dumps(doc))


def node_named(doc: dict[str, Any], module: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in doc["Graph"]["ModuleNodes"].values() if n["$module"]["name"] == module)
    return found


def set_param(module: str, name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        params = node_named(doc, module)["ModuleParameters"]
        next(p for p in params if p["Name"] == name)["Value"] = value
    return change


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
