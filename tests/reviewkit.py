"""Helpers of the review tests: repositories holding normalized fixtures, git with amlvc on PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import FIXTURES

from amlvc.canonical.normalize import dumps, normalize

SLUG = "training"
EXP_DIR = f"experiments/{SLUG}"


def fixture_files(name: str) -> dict[str, bytes]:
    doc = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return dict(normalize(doc, source=name).files)


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run real git with the venv's `amlvc` first on PATH (git starts the drivers by name)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["GIT_PAGER"] = "cat"
    result = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def write_experiment(repo: Path, files: dict[str, bytes], slug: str = SLUG) -> None:
    target = repo / "experiments" / slug
    if target.exists():
        for path in sorted(target.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    for rel, data in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def make_repo(tmp_path: Path, name: str = "training--base") -> Path:
    """An amlvc repository with one experiment, committed."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "amlvc.toml").write_text("[amlvc]\nformat = 1\n", encoding="utf-8")
    write_experiment(repo, fixture_files(name))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def edit_experiment(repo: Path, edit: Any, slug: str = SLUG) -> None:
    """Apply `edit(doc)` to experiment.json and write it back canonically."""
    path = repo / "experiments" / slug / "experiment.json"
    doc = json.loads(path.read_bytes())
    edit(doc)
    path.write_bytes(dumps(doc))


def node_with(doc: dict[str, Any], module_name: str) -> dict[str, Any]:
    nodes = doc["Graph"]["ModuleNodes"]
    node: dict[str, Any] = next(n for n in nodes.values() if n.get("$module", {}).get("name") == module_name)
    return node


def param(node: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in node["ModuleParameters"] if p["Name"] == name)
    return found
