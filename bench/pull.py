"""Pull benchmark (SPEC §6): `amlvc pull` against a sequential export loop, side by side in one run.

A local workspace (`amlvc serve`, in its own process, with injected latency) is filled through the
Studio API with synthetic experiments; then, each as a fresh process:

* the export loop a script over `Export-AmlExperimentGraph` is: list, GET one experiment at a time,
  write the raw JSON, one commit (`python bench/pull.py export-loop …`, defined below);
* the ceiling: a client that lists and GETs every experiment on `--jobs` threads and keeps nothing
  (`python bench/pull.py fetch-only …`): what any pull's ratio against the loop is bounded by here;
* `amlvc pull` with its default flags and with `--jobs J` (J as the GET-only client's threads);
* a no-change `amlvc pull` (requests counted by the client: one list, no GET, no commit);
* (with --noise) the diff noise of Studio-style edits (one parameter, one drag, a re-pull) for both.

The server runs as a separate process (a real workspace is remote), so it never competes with the
client for its GIL, only for the machine's cores; CPU seconds of both sides are printed for that reason.

Run: `python bench/pull.py --latency-ms 100` and `--latency-ms 20` (defaults: 200 experiments x 40
modules, 100 ms latency, --jobs 8, 3 rounds, 5 no-change pulls); `--noise` adds the diff noise. Each round
gives every contender a fresh directory and nothing is deleted before the end (on this disk, creating
files just after a mass delete is ~10x slower). The bars of issue 11 for the chosen latency are printed
with the medians of the rounds (ratios paired within a round) and the load average.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
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


class Studio:
    """What both plain clients below share: one requests session, the token header, the experiment list."""

    def __init__(self, url: str, workspace: str, token: str, pool: int = 1) -> None:
        import requests

        self.session = requests.Session()
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool))
        self.headers = {"x-ms-metaanalytics-authorizationtoken": token}
        self.base = f"{url}/api/workspaces/{workspace}/experiments"

    def get(self, path: str = "") -> Any:
        response = self.session.get(f"{self.base}{path}", headers=self.headers, timeout=60)
        response.raise_for_status()
        return response


def export_loop(url: str, workspace: str, token: str, out: Path) -> int:
    """List, then GET one experiment at a time and write its raw JSON; one commit. Returns requests made."""
    studio = Studio(url, workspace, token)
    requests_made = 1
    out.mkdir(parents=True, exist_ok=True)
    for item in studio.get().json():
        exp_id = item["ExperimentId"]
        response = studio.get(f"/{exp_id}")
        requests_made += 1
        (out / f"{exp_id}.json").write_bytes(response.content)  # what Export-AmlExperimentGraph writes
    subprocess.run(["git", "add", "-A", "."], cwd=out, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "export"], cwd=out, capture_output=True)  # nothing new: no commit
    return requests_made


# -- the ceiling: a client that only fetches ----------------------------------------------------


def fetch_only(url: str, workspace: str, token: str, jobs: int) -> int:
    """List, then GET every experiment on `jobs` threads and drop the bodies: nothing parsed or written.

    No pull can be faster than this at the same `--jobs` against the same server, so it is the bound
    on what any ratio against the loop can be on this machine. Returns requests made.
    """
    studio = Studio(url, workspace, token, pool=jobs)
    listed = studio.get().json()
    with ThreadPoolExecutor(jobs) as pool:
        return 1 + sum(1 for _ in pool.map(lambda item: studio.get(f"/{item['ExperimentId']}"), listed))


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

    from amlvc.canonical.normalize import to_push_body
    from amlvc.client import Client, hosts_for

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

    from amlvc.canonical.normalize import to_push_body
    from amlvc.client import Client, hosts_for

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


CPU: list[float] = []  # CPU seconds (user + sys) of the last `timed` command and its children


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall-clock seconds and stdout of a command; its CPU seconds go to CPU (the machine is shared)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[:] = [after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime]
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return elapsed, result.stdout


def process_cpu(pid: int) -> float:
    """CPU seconds (user + sys) a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def head(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()


def noise(root: Path, since: str) -> list[tuple[str, int, int]]:
    """(path, changed lines, bytes on those lines) of every file the commits since `since` changed."""
    numstat = subprocess.run(["git", "diff", "--numstat", since, "HEAD"], cwd=root, capture_output=True,
                             text=True).stdout
    patch = subprocess.run(["git", "diff", "--unified=0", since, "HEAD"], cwd=root, capture_output=True,
                           text=True).stdout
    sizes: dict[str, int] = {}
    current = ""
    for line in patch.splitlines():
        if line.startswith("+++ b/"):
            current = line[6:]
        elif line[:1] in "+-" and not line.startswith(("+++", "---")):
            sizes[current] = sizes.get(current, 0) + len(line) - 1
    rows = [line.split("\t") for line in numstat.splitlines() if line.strip()]
    return [(r[2], int(r[0]) + int(r[1]) if r[0].isdigit() else 0, sizes.get(r[2], 0)) for r in rows]


def describe(changes: list[tuple[str, int, int]]) -> str:
    if not changes:
        return "no commit"
    files = ", ".join(f"{path.rsplit('/', 1)[-1][-24:]}: {lines} lines, {size:,} bytes"
                      for path, lines, size in changes[:3])
    more = f"; … {len(changes) - 3} more" if len(changes) > 3 else ""
    return f"{len(changes)} file(s) [{files}{more}]"


BARS = {  # SPEC §6 / issue 11, by injected latency: (what, contender, reference, bound, direction)
    100: [("default flags vs the sequential export loop", "pull", "loop", 8.0, ">="),
          ("--jobs J vs the GET-only client on J threads", "pull-j", "only", 1.3, "<=")],
    20: [("--jobs J vs the GET-only client on J threads", "pull-j", "only", 1.8, "<=")],
}
NO_CHANGE_BAR = {20: 0.35}  # seconds, by latency


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def run_round(round_: int, tmp: Path, url: str, env: dict[str, str], jobs: int, server: subprocess.Popen[str],
              results: dict[str, list[tuple[float, float, float]]]) -> dict[str, Path]:
    """One round: each contender in a fresh directory, one after the other, as a fresh process."""
    here = str(Path(__file__).resolve())
    dirs: dict[str, Path] = {}
    for name in ("loop", "pull", "pull-j"):
        where = tmp / f"{name}-{round_}"
        where.mkdir()
        dirs[name] = where
    subprocess.run(["git", "init", "-q"], cwd=dirs["loop"], check=True, env=env)
    for name in ("pull", "pull-j"):
        timed([sys.executable, "-m", "amlvc", "init", "--remote", "bench", "--endpoint", url,
               "--workspace-id", WS, "--token-env", TOKEN_ENV], dirs[name], env)
    commands = {
        "loop": ([sys.executable, here, "export-loop", url, WS, TOKEN, str(dirs["loop"])], dirs["loop"]),
        "only": ([sys.executable, here, "fetch-only", url, WS, TOKEN, str(jobs)], tmp),
        "pull-j": ([sys.executable, "-m", "amlvc", "pull", "--json", "--jobs", str(jobs)], dirs["pull-j"]),
        "pull": ([sys.executable, "-m", "amlvc", "pull", "--json"], dirs["pull"]),
    }
    print(f"  round {round_} (load average {load()} before)")
    for name, (args, cwd) in commands.items():
        before = process_cpu(server.pid)
        wall, out = timed(args, cwd, env)
        server_cpu = process_cpu(server.pid) - before
        results[name].append((wall, CPU[0], server_cpu))
        extra = ""
        if name.startswith("pull"):
            first = json.loads(out)
            extra = f", {first['requests']} requests, {len(first['added'])} added"
        print(f"    {LABELS[name].format(jobs=jobs):<32} {wall:6.2f} s  (cpu {CPU[0]:5.2f} s, server cpu "
              f"{server_cpu:5.2f} s{extra})")
    print(f"    load average after: {load()}")
    return dirs


LABELS = {"loop": "sequential export loop", "only": "GET only, {jobs} threads",
          "pull-j": "amlvc pull --jobs {jobs}", "pull": "amlvc pull (default flags)"}


def report_bars(latency: int, jobs: int, results: dict[str, list[tuple[float, float, float]]]) -> None:
    rounds = len(results["loop"])
    med = {name: statistics.median(w for w, _c, _s in rows) for name, rows in results.items()}
    cpu = {name: statistics.median(c for _w, c, _s in rows) for name, rows in results.items()}
    srv = {name: statistics.median(s for _w, _c, s in rows) for name, rows in results.items()}
    print(f"\nmedians of {rounds} round(s), {latency} ms latency:")
    for name in ("loop", "only", "pull-j", "pull"):
        print(f"  {LABELS[name].format(jobs=jobs):<32} {med[name]:6.2f} s  (cpu {cpu[name]:5.2f} s, "
              f"server cpu {srv[name]:5.2f} s)")

    def ratio(contender: str, reference: str) -> float:
        # paired within each round (the load moves between rounds), then the median of the rounds
        pairs = zip(results[contender], results[reference], strict=True)
        if reference == "loop":
            return statistics.median(r[0] / c[0] for c, r in pairs)
        return statistics.median(c[0] / r[0] for c, r in pairs)

    print(f"  ratios: default pull {ratio('pull', 'loop'):.1f}x the loop, --jobs {jobs} "
          f"{ratio('pull-j', 'loop'):.1f}x, "
          f"GET-only (the ceiling) {ratio('only', 'loop'):.1f}x; pull --jobs {jobs} = "
          f"{ratio('pull-j', 'only'):.2f}x the ceiling's wall time, default pull {ratio('pull', 'only'):.2f}x")
    for what, contender, reference, bound, direction in BARS.get(latency, []):
        value = ratio(contender, reference)
        met = value >= bound if direction == ">=" else value <= bound
        unit = "x faster" if reference == "loop" else "x its wall time"
        print(f"  BAR {latency} ms, {what.replace('J', str(jobs))}: {value:.2f}{unit} "
              f"(bar {direction} {bound}): {'met' if met else 'NOT MET'}")


def no_change(latency: int, repo_dir: Path, env: dict[str, str], repeat: int) -> None:
    pull_cmd = [sys.executable, "-m", "amlvc", "pull", "--json"]
    walls = []
    for _ in range(repeat):
        wall, out = timed(pull_cmd, repo_dir, env)
        again = json.loads(out)
        assert again["commit"] is None and again["requests"] == 1, again
        walls.append(wall)
    walls.sort()
    line = (f"no-change pull: median {statistics.median(walls):.3f} s of {repeat} "
            f"({', '.join(f'{w:.3f}' for w in walls)}), 1 request each, no commit; load average {load()}")
    bar = NO_CHANGE_BAR.get(latency)
    if bar is not None:
        met = "met" if statistics.median(walls) <= bar else "NOT MET"
        line += f"\n  BAR {latency} ms, no-change pull <= {bar} s: {met}"
    print(line)


def diff_noise(url: str, ids: list[str], loop_dir: Path, repo_dir: Path, env: dict[str, str]) -> None:
    here = str(Path(__file__).resolve())
    loop_cmd = [sys.executable, here, "export-loop", url, WS, TOKEN, str(loop_dir)]
    pull_cmd = [sys.executable, "-m", "amlvc", "pull", "--json"]
    print("\ndiff noise of Studio-style edits (what the next commit shows):")
    for label, edit in (("one parameter changed", "parameter"), ("one node dragged", "drag"),
                        ("re-pull, nothing changed", None)):
        if edit is not None:
            studio_edit(url, ids[1], edit)
        loop_before, pull_before = head(loop_dir), head(repo_dir)
        timed(loop_cmd, loop_dir, env)
        timed(pull_cmd, repo_dir, env)
        print(f"  {label}:")
        print(f"    export loop  {describe(noise(loop_dir, loop_before))}")
        print(f"    amlvc pull   {describe(noise(repo_dir, pull_before))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    loop = sub.add_parser("export-loop", help="(internal) the sequential export loop")
    for name in ("url", "workspace", "token", "out"):
        loop.add_argument(name)
    only = sub.add_parser("fetch-only", help="(internal) GET everything in parallel, keep nothing")
    for name in ("url", "workspace", "token", "jobs"):
        only.add_argument(name)
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--modules", type=int, default=40)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=8, help="threads of the GET-only client and of `pull --jobs`")
    parser.add_argument("--runs", type=int, default=10, help="experiments that have run (SAS URLs in GETs)")
    parser.add_argument("--rounds", type=int, default=3, help="first pulls measured side by side (medians)")
    parser.add_argument("--no-change", type=int, default=5, help="no-change pulls measured (median)")
    parser.add_argument("--noise", action="store_true", help="also show the diff noise of Studio-style edits")
    args = parser.parse_args(argv)
    if args.command == "export-loop":
        print(export_loop(args.url, args.workspace, args.token, Path(args.out)))
        return 0
    if args.command == "fetch-only":
        print(fetch_only(args.url, args.workspace, args.token, int(args.jobs)))
        return 0

    # An installed amlvc starts from byte code (`pip install` compiles it), as `requests` does for both
    # contenders; an editable checkout run with PYTHONDONTWRITEBYTECODE would compile its modules anew on
    # every start (~0.1 s of a pull), so compile them once first (into the git-ignored __pycache__/).
    import amlvc

    compileall.compile_dir(str(Path(amlvc.__file__).parent), quiet=1)
    tmp = Path(tempfile.mkdtemp(prefix="amlvc-bench-pull-"))
    env = {**os.environ, TOKEN_ENV: TOKEN, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    server, url = start_server(tmp / "data", args.latency_ms)
    try:
        t0 = time.perf_counter()
        ids = build(url, args.experiments, args.modules, args.runs)
        print(f"workspace: {len(ids)} experiments x {args.modules} modules, {args.runs} run, "
              f"{args.latency_ms} ms latency per request (built in {time.perf_counter() - t0:.1f} s)")
        print(f"\nfirst pull of {len(ids)} experiments; each round gives each contender a fresh directory "
              f"(nothing is deleted until the end):")
        results: dict[str, list[tuple[float, float, float]]] = {"loop": [], "only": [], "pull-j": [], "pull": []}
        dirs: dict[str, Path] = {}
        for round_ in range(1, args.rounds + 1):
            dirs = run_round(round_, tmp, url, env, args.jobs, server, results)
        report_bars(args.latency_ms, args.jobs, results)
        no_change(args.latency_ms, dirs["pull"], env, args.no_change)
        if args.noise:
            diff_noise(url, ids, dirs["loop"], dirs["pull"], env)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
