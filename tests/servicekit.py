"""Helpers of the web-service end-to-end tests: a repository on wskit's seeded server, the CLI with its
environment, the state of the repository and of the workspace's services (for "nothing changed" checks)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from test_git_secrets import secret_values
from wskit import DEV, TOKENS

from amlvc import config
from amlvc.server.runner import ServerHandle

STORAGE_KEY = "c3RvcmFnZS1rZXktb2YtdGhlLWxvY2FsLWFjY291bnQtZm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1rZXktMTIzNA=="
ENV = {"AMLVC_TOKEN": TOKENS[DEV], "AMLVC_SECRET_STORAGE_ACCOUNT_KEY": STORAGE_KEY}
PREDICTIVE = "kundigung-training-predictive-exp"
TRAINING = "kundigung-training"
MODEL = "kundigung-logistische-regression"
SAMPLE = "id,value\n1,a\n2,b\n"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, server: ServerHandle, webservices: config.WebServiceSettings | None = None,
              workspace: str = DEV) -> Path:
    """A git repository whose amlvc.toml names the server's workspace as remote `dev`, committed."""
    root.mkdir(parents=True)
    git(root, "init", "-q")
    remote = config.Remote("dev", workspace, endpoint=server.url, webservices=webservices)
    (root / "amlvc.toml").write_bytes(config.dumps(config.Config(default_remote="dev", remotes=(remote,))))
    (root / ".gitignore").write_text(".amlvc/\n")
    # amlvc.toml names the local server's host:port (the user's own setting): kept out of git here, so the
    # secret scans can hold every git object to "no host:port", whatever amlvc itself wrote
    with (root / ".git" / "info" / "exclude").open("a", encoding="utf-8") as exclude:
        exclude.write("amlvc.toml\n")
    git(root, "add", ".gitignore")
    git(root, "commit", "-q", "-m", "init")
    return root


@dataclass
class Cli:
    """`amlvc` in one repository with the token and the storage key in the environment."""

    run_cli: Any
    root: Path

    def __call__(self, *args: str, code: int = 0, env: dict[str, str] | None = None) -> Any:
        result = self.run_cli(list(args), cwd=self.root, env={**ENV, **(env or {})})
        assert result.exit_code == code, (args, result.exit_code, result.stderr, result.stdout)
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    @property
    def sample(self) -> str:
        """A CSV of rows to score, beside the repository (so it is no untracked file in it)."""
        path = self.root.parent / "sample.csv"
        if not path.is_file():
            path.write_text(SAMPLE, encoding="utf-8")
        return str(path)


def repo_bytes(root: Path) -> dict[str, bytes]:
    """Every file of the work tree outside .git and .amlvc, and HEAD: what "nothing changed" compares."""
    found = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
             if p.is_file() and ".git" not in p.relative_to(root).parts[:1] and ".amlvc" not in p.parts}
    found["HEAD"] = git(root, "rev-parse", "HEAD").encode()
    return found


def services_state(server: ServerHandle, ws: str = DEV) -> str:
    """The workspace's classic services and endpoints (keys and SAS left out): a write changes it."""
    headers = {"Authorization": f"Bearer {TOKENS[DEV]}"}
    out = []
    for service in requests.get(f"{server.url}/workspaces/{ws}/webservices", headers=headers, timeout=10).json():
        endpoints = requests.get(f"{server.url}/workspaces/{ws}/webservices/{service['Id']}/endpoints",
                                 headers=headers, timeout=10).json()
        for e in endpoints:
            e.pop("PrimaryKey"), e.pop("SecondaryKey")
            for r in e["Resources"]:
                r["Location"].pop("SasBlobToken", None)
        out.append([service, endpoints])
    return json.dumps(out, sort_keys=True)


def lock(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "amlvc.lock").read_text(encoding="utf-8"))
    return data


def service_json(root: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "webservices" / name / "service.json").read_text(encoding="utf-8"))
    return data


def workspace_secrets(server: ServerHandle) -> set[str]:
    """Every key, SAS signature, token and host:port a workspace answer carried: none may reach a git object."""
    headers = {"Authorization": f"Bearer {TOKENS[DEV]}"}
    found = {STORAGE_KEY, TOKENS[DEV], server.url.split("//", 1)[1]}
    for service in requests.get(f"{server.url}/workspaces/{DEV}/webservices", headers=headers, timeout=10).json():
        for e in requests.get(f"{server.url}/workspaces/{DEV}/webservices/{service['Id']}/endpoints",
                              headers=headers, timeout=10).json():
            found |= {e["PrimaryKey"], e["SecondaryKey"]} | secret_values(e)
            found |= {r["Location"]["SasBlobToken"].split("sig=")[-1].split("&")[0] for r in e["Resources"]
                      if r["Location"]["SasBlobToken"]}
    return found
