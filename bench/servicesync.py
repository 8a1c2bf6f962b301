"""Benchmark: what tracking web services adds to `amlvc pull`, and the web-service commands end to end.

Run: python bench/servicesync.py [--services 20] [--latency-ms 20]

Starts a local workspace (the project's fixtures, the given latency on every request), pulls the two fixture
experiments into a repository, deploys the predictive experiment N times (N classic services) and measures,
through the real command line: a pull with nothing changed before any service is tracked and with N tracked
(seconds and requests), `webservice pull` with nothing changed, and one of each: deploy, `endpoint add --push`,
`retrain` (a BES job, its model stored and committed), `webservice push` of it, `score`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from amlvc import config
from amlvc.cli import cli
from amlvc.server.runner import start_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WS = "c4e6a8b0d2f44a6c8e0a2c4e6b8d0f13"
TOKEN = "bench-token"
ENV = {"AMLVC_TOKEN": TOKEN, "AMLVC_SECRET_STORAGE_ACCOUNT_KEY": "YmVuY2gta2V5LWJlbmNoLWtleQ=="}


def run(root: Path, *args: str) -> tuple[float, dict[str, Any]]:
    """Seconds and the --json answer of one amlvc command in `root`."""
    old = Path.cwd()
    os.chdir(root)
    try:
        began = time.perf_counter()
        result = CliRunner().invoke(cli, [*args, "--json"], env=ENV, catch_exceptions=False)
        took = time.perf_counter() - began
    finally:
        os.chdir(old)
    if result.exit_code != 0:
        raise SystemExit(f"amlvc {' '.join(args)} failed ({result.exit_code}): {result.stderr}")
    return took, json.loads(result.stdout) if result.stdout.strip() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            start_server(Path(tmp) / "data", workspaces=[(WS, TOKEN)], seed=FIXTURES,
                         latency_ms=args.latency_ms) as server:
        root = Path(tmp) / "repo"
        root.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        remote = config.Remote("dev", WS, endpoint=server.url)
        (root / "amlvc.toml").write_bytes(config.dumps(config.Config(default_remote="dev", remotes=(remote,))))
        run(root, "pull")
        idle, before = run(root, "pull")
        print(f"pull, nothing changed, no service tracked : {idle:6.3f} s  {before['requests']:3d} requests")
        deploys = []
        for n in range(args.services):
            deploys.append(run(root, "webservice", "deploy", "kundigung-training-predictive-exp", "--name",
                               f"scoring-{n}")[0])
        run(root, "webservice", "deploy", "kundigung-training", "--name", "training")
        idle, after = run(root, "pull")
        print(f"pull, nothing changed, {args.services:3d} services tracked: {idle:6.3f} s  {after['requests']:3d} "
              f"requests (no commit: {after['webservices']['commit'] is None})")
        idle, _ = run(root, "webservice", "pull")
        print(f"webservice pull, nothing changed         : {idle:6.3f} s")
        print(f"webservice deploy (median of {len(deploys)})           : {sorted(deploys)[len(deploys) // 2]:6.3f} s")
        for label, command in (("endpoint add --push", ("endpoint", "add", "scoring-0", "ep2", "--push")),
                               ("retrain (BES job, store, commit)", ("retrain", "training", "--into", "scoring-0/ep2")),
                               ("webservice push (upload, PATCH)", ("webservice", "push", "scoring-0"))):
            print(f"{label:<41}: {run(root, *command)[0]:6.3f} s")
        sample = Path(tmp) / "sample.csv"
        sample.write_text("id,value\n1,a\n", encoding="utf-8")
        print(f"{'score (one row)':<41}: {run(root, 'score', 'scoring-0/ep2', '--input', str(sample))[0]:6.3f} s")


if __name__ == "__main__":
    main()
