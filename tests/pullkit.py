"""Helpers of the pull, status, restore and fault tests: a local workspace filled through the Studio API."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amlvc.canonical.normalize import to_push_body
from amlvc.client import Client, RetryPolicy, hosts_for
from amlvc.server.runner import ServerHandle, start_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WS = "0123456789abcdef0123456789abcdef"
TOKEN = "pull-test-token"
TOKEN_ENV = "AMLVC_DEV_TOKEN"


def start(data: Path, *, seed: tuple[str, ...] = (), **options: Any) -> ServerHandle:
    """A local workspace in `data`; `seed` names fixtures to load (with the assets they reference)."""
    seed_dir = None
    if seed:
        seed_dir = data.parent / f"{data.name}-seed"
        seed_dir.mkdir(parents=True, exist_ok=True)
        for name in seed:
            shutil.copyfile(FIXTURES / name, seed_dir / name)
    return start_server(data, workspaces=[(WS, TOKEN)], seed=seed_dir, **options)


def only_experiment(api: Client) -> str:
    """The id of the one experiment of the workspace."""
    ids = [str(e["ExperimentId"]) for e in api.list_experiments()]
    assert len(ids) == 1, ids
    return ids[0]


def client(server: ServerHandle) -> Client:
    return Client("dev", WS, hosts_for(endpoint=server.url), TOKEN, retry=RetryPolicy(backoff=0.001, max_backoff=0.01))


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def create(api: Client, name: str = "training--base.json", title: str | None = None) -> str:
    """A new experiment in the workspace made from a fixture (what Save As / import does)."""
    doc = fixture(name)
    if title is not None:
        doc["Description"] = title
    return str(api.create_experiment(to_push_body(doc))["ExperimentId"])


def seed_workspace(data: Path, count: int) -> Path:
    """A workspace of `count` experiments (training and predictive in turn) kept on disk in `data`."""
    handle = start(data)
    try:
        api = client(handle)
        for i in range(count):
            create(api, "training--base.json" if i % 2 == 0 else "predictive--base.json", title=f"Experiment {i:02d}")
    finally:
        handle.stop()
    return data


def studio_edit(api: Client, exp_id: str, change: Callable[[dict[str, Any]], None]) -> None:
    """What Studio does on an edit: GET the experiment, change it, POST it back with IsDraft:true."""
    doc = api.get_experiment(exp_id)
    edited = copy.deepcopy(doc)
    change(edited)
    api.save_experiment(exp_id, to_push_body(edited))


def set_parameter(doc: dict[str, Any], value: str = "45") -> None:
    """Change the first numeric parameter of the graph (what a user types into the properties pane)."""
    for node in doc["Graph"]["ModuleNodes"]:
        for param in node.get("ModuleParameters") or []:
            if isinstance(param.get("Value"), str) and param["Value"].replace(".", "", 1).isdigit():
                param["Value"] = value
                return
    for node in doc["Graph"]["ModuleNodes"]:
        for param in node.get("ModuleParameters") or []:
            if isinstance(param.get("Value"), str) and len(param["Value"]) < 30 and "\n" not in param["Value"]:
                param["Value"] = value
                return
    raise AssertionError("no parameter to change")


def drag_node(doc: dict[str, Any]) -> None:
    """Move the first node of the canvas by 40 px (the layout XML in SerializedClientData)."""
    xml = doc["Graph"]["SerializedClientData"]
    start = xml.index("Position=") + len("Position=") + 1
    end = xml.index(xml[start - 1], start)
    x, rest = xml[start:end].split(",", 1)
    doc["Graph"]["SerializedClientData"] = xml[:start] + f"{float(x) + 40:g},{rest}" + xml[end:]


def run_and_settle(api: Client, exp_id: str) -> None:
    """Run the experiment (a run-history snapshot) and wait until its status stops moving."""
    doc = api.get_experiment(exp_id)
    api.run_experiment(exp_id, to_push_body(doc))
    deadline = time.monotonic() + 10
    while api.get_experiment(exp_id)["Status"]["StatusCode"] in ("NotStarted", "Running"):
        assert time.monotonic() < deadline, "run did not finish"
        time.sleep(0.05)


def delete(api: Client, exp_id: str) -> None:
    api.studio("DELETE", f"workspaces/{WS}/experiments/{exp_id}", params={"deleteAncestors": "true"})


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def init_repo(run_cli: Any, tmp_path: Path, server: ServerHandle, name: str = "repo") -> Path:
    root = tmp_path / name
    root.mkdir()
    result = run_cli(["init", "--remote", "dev", "--endpoint", server.url, "--workspace-id", WS,
                      "--token-env", TOKEN_ENV], cwd=root)
    assert result.exit_code == 0, result.stderr
    return root


def fingerprint(root: Path) -> dict[str, str]:
    """Every file of the work tree and .git (but git's own index stat cache) by content hash, plus HEAD."""
    files: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "index":
            files[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    files["<HEAD>"] = git(root, "rev-parse", "HEAD").strip()
    return files


def tree_without_config(root: Path, rev: str = "HEAD") -> str:
    """`git ls-tree -r` of a commit without amlvc.toml (whose endpoint names the server's port)."""
    lines = git(root, "ls-tree", "-r", rev).splitlines()
    return "\n".join(line for line in lines if not line.endswith("\tamlvc.toml"))


AMLVC = [sys.executable, "-m", "amlvc"]


def spawn_pull(root: Path, jobs: int = 4, *, output: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`amlvc pull` as its own process, Ctrl-C (SIGINT) handled as on a terminal even if this run ignores it."""
    env = {**os.environ, TOKEN_ENV: TOKEN}
    return subprocess.Popen([*AMLVC, "pull", "--jobs", str(jobs)], cwd=root, env=env, stdout=output, stderr=output,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_until_started(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until the pull holds its repository's lock (its imports may take a while on a busy machine)."""
    deadline = time.monotonic() + timeout
    while f" {proc.pid} " not in Path("/proc/locks").read_text() and proc.poll() is None:
        assert time.monotonic() < deadline, "the pull never took the repository"
        time.sleep(0.01)
