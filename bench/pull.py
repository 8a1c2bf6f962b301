"""Pull benchmark (SPEC §6): `amlvc pull` against a sequential export loop, side by side in one run.

A local workspace (`amlvc serve`, in its own process, with injected latency) is filled through the
Studio API with synthetic experiments; then, each as a fresh process:

* the export loop a script over `Export-AmlExperimentGraph` is: list, GET one experiment at a time,
  write the raw JSON, one commit (`python bench/pull.py export-loop …`, defined below);
* `amlvc pull` (parallel, Etag-driven, normalized);
* a no-change `amlvc pull` (requests counted by the client: one list, no GET, no commit);
* the diff noise of Studio-style edits (one parameter, one drag, a re-pull) for both.

Run: `python bench/pull.py` (defaults: 200 experiments x 40 modules, 20 ms latency, --jobs 8).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

WS = "b3e7c0de5a1f4c2e9d8b7a6f5e4d3c2b"
TOKEN = "bench-token"
TOKEN_ENV = "AMLVC_BENCH_TOKEN"


# -- the competitor: a sequential export loop ------------------------------------------------


def export_loop(url: str, workspace: str, token: str, out: Path) -> int:
    """List, then GET one experiment at a time and write its raw JSON; one commit. Returns requests made."""
    import requests

    session = requests.Session()
    headers = {"x-ms-metaanalytics-authorizationtoken": token}
    base = f"{url}/api/workspaces/{workspace}/experiments"
    listed = session.get(base, headers=headers, timeout=60)
    listed.raise_for_status()
    requests_made = 1
    out.mkdir(parents=True, exist_ok=True)
    for item in listed.json():
        exp_id = item["ExperimentId"]
        response = session.get(f"{base}/{exp_id}", headers=headers, timeout=60)
        response.raise_for_status()
        requests_made += 1
        (out / f"{exp_id}.json").write_bytes(response.content)  # what Export-AmlExperimentGraph writes
    subprocess.run(["git", "add", "-A", "."], cwd=out, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "export"], cwd=out, check=True)
    return requests_made


# -- building the workspace -------------------------------------------------------------------


def start_server(data: Path, latency_ms: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "amlvc", "serve", "--data", str(data), "--port", "0", "--workspace",
         f"{WS}:{TOKEN}", "--latency-ms", str(latency_ms), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, str(json.loads(line)["url"])


def build(url: str, experiments: int, modules: int, runs: int) -> list[str]:
    from normalize import synthetic_experiment

    from amlvc.client import Client, hosts_for
    from amlvc.normalize import to_push_body

    client = Client("bench", WS, hosts_for(endpoint=url), TOKEN, jobs=16)

    def one(index: int) -> str:
        doc = synthetic_experiment(modules, seed=index)
        doc["Description"] = f"bench experiment {index:03d}"
        return str(client.create_experiment(to_push_body(doc))["ExperimentId"])

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(one, range(experiments)))
    # A few experiments have run, as in a real workspace: their NodeStatuses carry SAS URLs.
    for exp_id in ids[:runs]:
        client.run_experiment(exp_id, to_push_body(client.get_experiment(exp_id)))
    deadline = time.monotonic() + 60
    while runs and time.monotonic() < deadline:
        states = {client.get_experiment(i)["Status"]["StatusCode"] for i in ids[:runs]}
        if not states & {"NotStarted", "Running"}:
            break
        time.sleep(0.2)
    return ids


def studio_edit(url: str, exp_id: str, kind: str) -> None:
    """GET, change as Studio would (one parameter, or one node dragged), POST with IsDraft:true."""
    import re

    from amlvc.client import Client, hosts_for
    from amlvc.normalize import to_push_body

    client = Client("bench", WS, hosts_for(endpoint=url), TOKEN)
    doc = client.get_experiment(exp_id)
    if kind == "parameter":
        param = doc["Graph"]["ModuleNodes"][3]["ModuleParameters"][1]
        param["Value"] = str(int(param["Value"]) + 1)
    else:
        xml = doc["Graph"]["SerializedClientData"]
        match = re.search(r"Position=(['\"])(-?\d+),", xml)
        assert match is not None
        doc["Graph"]["SerializedClientData"] = (xml[:match.start(2)] + str(int(match.group(2)) + 40)
                                               + xml[match.end(2):])
    client.save_experiment(exp_id, to_push_body(doc))


# -- measuring --------------------------------------------------------------------------------


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return elapsed, result.stdout


def noise(root: Path) -> tuple[int, int]:
    """(files, lines) changed by the last commit, or (0, 0) when it made none."""
    subjects = subprocess.run(["git", "log", "-1", "--format=%H"], cwd=root, capture_output=True, text=True)
    numstat = subprocess.run(["git", "diff", "--numstat", "HEAD~1", "HEAD"], cwd=root, capture_output=True,
                             text=True).stdout.split("\n")
    rows = [line.split("\t") for line in numstat if line.strip()]
    del subjects
    return len(rows), sum(int(r[0]) + int(r[1]) for r in rows if r[0].isdigit())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    loop = sub.add_parser("export-loop", help="(internal) the sequential export loop")
    for name in ("url", "workspace", "token", "out"):
        loop.add_argument(name)
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--modules", type=int, default=40)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--runs", type=int, default=10, help="experiments that have run (SAS URLs in GETs)")
    args = parser.parse_args(argv)
    if args.command == "export-loop":
        print(export_loop(args.url, args.workspace, args.token, Path(args.out)))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="amlvc-bench-pull-"))
    env = {**os.environ, TOKEN_ENV: TOKEN, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    server, url = start_server(tmp / "data", args.latency_ms)
    try:
        t0 = time.perf_counter()
        ids = build(url, args.experiments, args.modules, args.runs)
        print(f"workspace: {len(ids)} experiments x {args.modules} modules, {args.runs} run, "
              f"{args.latency_ms} ms latency per request (built in {time.perf_counter() - t0:.1f} s)")
        loop_dir = tmp / "export-loop"
        loop_dir.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=loop_dir, check=True, env=env)
        repo_dir = tmp / "amlvc-repo"
        repo_dir.mkdir()
        timed([sys.executable, "-m", "amlvc", "init", "--remote", "bench", "--endpoint", url, "--workspace-id", WS,
               "--token-env", TOKEN_ENV], repo_dir, env)
        loop_cmd = [sys.executable, str(Path(__file__).resolve()), "export-loop", url, WS, TOKEN, str(loop_dir)]
        pull_cmd = [sys.executable, "-m", "amlvc", "pull", "--json", "--jobs", str(args.jobs)]

        loop_s, _ = timed(loop_cmd, loop_dir, env)
        pull_s, out = timed(pull_cmd, repo_dir, env)
        first = json.loads(out)
        again_s, out = timed(pull_cmd, repo_dir, env)
        again = json.loads(out)
        print(f"\nfirst pull of everything           export loop {loop_s:6.2f} s   amlvc pull {pull_s:6.2f} s   "
              f"ratio {loop_s / pull_s:5.1f}x   ({len(first['added'])} added, {first['requests']} requests)")
        print(f"no-change pull                     amlvc pull {again_s:.2f} s, {again['requests']} request(s), "
              f"commit {again['commit']}")

        print("\ndiff noise (files, changed lines in the commit)   export loop        amlvc pull")
        for label, edit in (("one parameter changed in Studio", "parameter"), ("one node dragged in Studio", "drag"),
                            ("re-pull, nothing changed", None)):
            if edit is not None:
                studio_edit(url, ids[1], edit)
            loop_head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=loop_dir, capture_output=True,
                                       text=True).stdout
            timed(loop_cmd, loop_dir, env)
            loop_noise = noise(loop_dir) if subprocess.run(["git", "rev-parse", "HEAD"], cwd=loop_dir,
                                                           capture_output=True, text=True).stdout != loop_head \
                else (0, 0)
            pull_head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True,
                                       text=True).stdout
            _s, out = timed(pull_cmd, repo_dir, env)
            pulled = json.loads(out)
            amlvc_noise = noise(repo_dir) if pulled["commit"] else (0, 0)
            extra = ""
            if pulled["commit"]:
                touched = subprocess.run(["git", "diff", "--numstat", pull_head.strip(), "HEAD", "--",
                                          "experiments"], cwd=repo_dir, capture_output=True, text=True).stdout
                extra = "  [" + ", ".join(f"{r.split(chr(9))[2].split('/')[-1]}: {int(r.split(chr(9))[0]) + int(r.split(chr(9))[1])}"
                                          for r in touched.splitlines() if r.strip()) + "]"
            print(f"{label:<40} {loop_noise[0]:4d} files {loop_noise[1]:6d} lines   "
                  f"{amlvc_noise[0]:3d} files {amlvc_noise[1]:4d} lines{extra}")
        print("\n(amlvc's commits also touch amlvc.lock: the new Etag, 2 lines per experiment)")
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
