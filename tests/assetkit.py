"""Helpers of the run, dataset, model, outdated and bump tests: a dev workspace seeded with the training and the
predictive experiment and their asset lists, and a repository that pulled it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pushkit

from amlvc.server.runner import ServerHandle, start_server

FIXTURES = pushkit.FIXTURES
DEV = pushkit.DEV
TOKENS = pushkit.TOKENS
SEED = ("training--base.json", "predictive--base.json", "datasources.json", "trainedmodels.json",
        "transformmodules.json", "modules.json")
TRAINING = pushkit.TRAINING  # the training experiment's folder
TRAINING_ID = pushkit.TRAINING_ID
PREDICTIVE = "kundigung-training-predictive-exp"
PREDICTIVE_ID = f"{DEV}.f-id.e7a9c1b3d5f74e6a8c0b2d4f6a8c1e3b"
DATASET = "Kundenstamm 2016.csv"
DATASET_FAMILY = pushkit.DATASET_FAMILY
MODEL = "Kündigung – Logistische Regression"
MODEL_SLUG = "kundigung-logistische-regression"
MODEL_FAMILY = "8f1d3b5a7c9e4f2a6b8d0c2e4a6f8b1d"
TRAIN_NODE = "5e7a9c1b-3d5f-4a7b-9c1d-3e5f7a9b1c2d-29"  # Train Model (logistic regression)
SPLIT_NODE = "5e7a9c1b-3d5f-4a7b-9c1d-3e5f7a9b1c2d-25"  # Split Data: no model output
git = pushkit.git
repo_state = pushkit.repo_state
token_env = pushkit.token_env


@contextmanager
def world(tmp_path: Path, run_cli: Any) -> Iterator[tuple[ServerHandle, Path]]:
    """The seeded dev workspace and a repository that pulled both experiments."""
    seed = tmp_path / "seed"
    seed.mkdir()
    for name in SEED:
        shutil.copyfile(FIXTURES / name, seed / name)
    with start_server(tmp_path / "server-data", workspaces=[(DEV, TOKENS["dev"])], seed=seed) as server:
        root = pushkit.make_repo(tmp_path, server)
        pulled = run_cli(["pull"], cwd=root, env=token_env())
        assert pulled.exit_code == 0, pulled.stderr
        yield server, root


def cli(run_cli: Any, root: Path, *args: str) -> Any:
    """`amlvc ARGS` in the repository with the dev token in the environment."""
    return run_cli(list(args), cwd=root, env=token_env())


def ok(run_cli: Any, root: Path, *args: str) -> Any:
    result = cli(run_cli, root, *args)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return result


def as_json(run_cli: Any, root: Path, *args: str) -> Any:
    return json.loads(ok(run_cli, root, *args, "--json").stdout)


def workspace(server: ServerHandle) -> dict[str, Any]:
    """Everything the workspace holds that a command could change: experiments (Etags) and asset lists."""
    with pushkit.client(server) as c:
        return {"experiments": {e["ExperimentId"]: e["Etag"] for e in c.list_experiments()},
                "datasources": sorted(d["Id"] for d in c.list_datasources()),
                "trainedmodels": sorted(d["Id"] for d in c.list_trainedmodels()),
                "transformmodules": sorted(d["Id"] for d in c.list_transformmodules())}


def files(root: Path) -> dict[str, bytes]:
    """Every file of the work tree and .git but git's index, by path (a refusal must leave them all alone)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "index"}
