"""Push benchmark: amlvc push (plan, check, only changed experiments) beside a naive overwrite loop.

The naive loop is what a script over `Import-AmlExperimentGraph -Overwrite` does: POST every exported
experiment back, one after the other, without comparing, checking references or guarding against a
concurrent edit. Both run against the same local workspace with injected latency, in one run.

Usage: python bench/push.py [--experiments 50] [--changed 5] [--latency-ms 20] [--jobs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amlvc import config  # noqa: E402
from amlvc.canonical.normalize import to_push_body  # noqa: E402
from amlvc.client import Client, hosts_for  # noqa: E402
from amlvc.server.runner import start_server  # noqa: E402
from amlvc.sync.pull import pull  # noqa: E402
from amlvc.sync.push import push  # noqa: E402
from amlvc.sync.pushplan import PushOptions  # noqa: E402

WS = "c4e6a8b0d2f44a6c8e0a2c4e6b8d0f13"  # the fixtures' workspace: their assets exist there
TOKEN = "bench-token"


def seed(directory: Path, count: int) -> None:
    base = json.loads((ROOT / "fixtures" / "training--base.json").read_text(encoding="utf-8"))
    directory.mkdir()
    for i in range(count):
        doc = dict(base, ExperimentId=f"{WS}.f-id.{uuid.UUID(int=i + 1).hex}", Description=f"Churn model {i:03d}",
                   RunId=None, ParentExperimentId=None)
        (directory / f"churn-{i:03d}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=8)
    args = parser.parse_args()
    os.environ["AMLVC_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        seed(tmp_path / "seed", args.experiments)
        with start_server(tmp_path / "data", workspaces=[(WS, TOKEN)], seed=tmp_path / "seed",
                          latency_ms=args.latency_ms) as server:
            root = tmp_path / "repo"
            root.mkdir()
            git(root, "init", "-q")
            settings = config.Config().with_remote(config.Remote("dev", WS, endpoint=server.url))
            (root / "amlvc.toml").write_bytes(config.dumps(settings))
            (root / ".gitignore").write_text(".amlvc/\n")
            git(root, "add", ".")
            git(root, "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "init")
            os.environ.update(GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com", GIT_COMMITTER_NAME="b",
                              GIT_COMMITTER_EMAIL="b@example.com")
            pull(root, jobs=args.jobs)
            client = Client("dev", WS, hosts_for(endpoint=server.url), TOKEN)
            raw = {e["ExperimentId"]: client.get_experiment(e["ExperimentId"]) for e in client.list_experiments()
                   if e["ExperimentId"].startswith(WS)}

            start = time.perf_counter()
            idle = push(root, PushOptions(jobs=args.jobs))
            idle_s = time.perf_counter() - start

            slugs = sorted(p.name for p in (root / "experiments").iterdir())[: args.changed]
            for slug in slugs:
                path = root / "experiments" / slug / "experiment.json"
                data = json.loads(path.read_text(encoding="utf-8"))
                data["Summary"] = "edited for the push benchmark"
                path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                encoding="utf-8")
            start = time.perf_counter()
            changed = push(root, PushOptions(jobs=args.jobs))
            changed_s = time.perf_counter() - start

            before = client.requests_made
            start = time.perf_counter()
            for exp_id, doc in raw.items():  # the naive loop: overwrite everything, no checks
                client.save_experiment(exp_id, to_push_body(doc))
            naive_s = time.perf_counter() - start
            naive_requests = client.requests_made - before

    print(f"{args.experiments} experiments, {args.changed} changed locally, {args.latency_ms} ms latency")
    print(f"amlvc push, nothing changed : {idle_s:6.2f} s  {idle.requests:4d} requests, 0 writes, no commit")
    print(f"amlvc push, {args.changed:3d} changed      : {changed_s:6.2f} s  {changed.requests:4d} requests, "
          f"{len(changed.pushed)} writes, 1 commit (checked, Etag-guarded)")
    print(f"naive overwrite loop        : {naive_s:6.2f} s  {naive_requests:4d} requests, {len(raw)} writes "
          f"(no check, no conflict guard, every experiment rewritten)")
    print(f"ratio naive / amlvc (changed): {naive_s / changed_s:.1f}x time, "
          f"{len(raw) / max(1, len(changed.pushed)):.0f}x writes")


if __name__ == "__main__":
    main()
