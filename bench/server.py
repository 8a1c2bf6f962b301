"""Benchmark: GET of a 40-module experiment from the local workspace, 16 concurrent clients, no injected latency.

Run: python bench/server.py [--modules 40] [--clients 16] [--requests 200]

The server runs as its own process (`python -m amlvc serve`), as users and the CI start it, so client
threads do not share its interpreter lock. The experiment has run once, so every GET also regenerates
the SAS credentials of its NodeStatuses (reference §3.8). Each client keeps one HTTP/1.1 connection
(requests.Session). Prints latency percentiles per request as the client sees it, throughput, the
document size and the single-client latency for comparison. Two runs: back to back (every client
fires its next GET as soon as the last returns: saturation, where round trips are mostly queueing behind
the other 15) and paced (each client one GET per --paced-ms, like pull workers that normalise between
GETs). "served in" is the server's own time per request (its Server-Timing header); round trip is what
the client sees. A GET's bytes depend only on Etag, host and second, so concurrent polls of one
experiment share one rendering per second; the "first GET" line shows the cost without that sharing
(what a pull of many experiments pays). Target (issue 3): served in under 5 ms median with 16
concurrent clients.

With --bodies it measures memory instead: a fresh server process receives --clients parallel uploads
(`resourceuploads`, Transfer-Encoding: chunked) of --body-mib MiB each, and the script prints the
answers and the process's peak resident memory (VmHWM from /proc, so Linux only) before and after.
Bodies over 64 MiB are refused (413) after being read through; smaller ones are stored.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import requests

WS = "0123456789abcdef0123456789abcdef"
TOKEN = "bench-token"
HEADERS = {"x-ms-metaanalytics-authorizationtoken": TOKEN}
SPLIT = "506153734175476c4f62416c57734963.70530644c97a4ab685f788bf30a8be5f.v1-default-1718"
SCRIPT = "# Input: dataset\r\ndataset <- maml.mapInputPort(1)\r\nmaml.mapOutputPort(\"dataset\");\r\n"
SAMPLE = "506153734175476c4f62416c57734963.a1c3e5b7d9f14a3c5e7b9d1f3a5c7e90.v1-default-1"


def graph(modules: int) -> dict[str, Any]:
    session = "8c2e4a6b-1d3f-4e5a-9b7c-0d2e4f6a8b1c"
    ids = [f"{session}-{100 + i}" for i in range(modules)]
    nodes = []
    for i, node_id in enumerate(ids):
        nodes.append({
            "Id": node_id, "ModuleId": SPLIT, "Comment": f"step {i}", "CommentCollapsed": True, "Language": "DotNet",
            "Version": "4.5.0", "UsePreviousResults": False,
            "ModuleParameters": [
                {"ValueType": "Literal", "LinkedGlobalParameter": None, "Name": "Splitting mode",
                 "Value": "Split Rows"},
                {"ValueType": "Literal", "LinkedGlobalParameter": None,
                 "Name": "Fraction of rows in the first output dataset", "Value": "0.7"},
                {"ValueType": "Literal", "LinkedGlobalParameter": None, "Name": "Random seed", "Value": str(i)},
                {"ValueType": "Literal", "LinkedGlobalParameter": None, "Name": "Note", "Value": SCRIPT},
            ],
            "IsPartOfPartialRun": False,
            "InputPortsInternal": [{"Name": "Dataset", "DataSourceId": SAMPLE if i == 0 else None,
                                    "TrainedModelId": None, "TransformModuleId": None, "Language": "DotNet",
                                    "Version": "4.5.0", "PortIndex": None, "NodeId": node_id}],
            "OutputPortsInternal": [{"Name": "Results dataset1", "NodeId": node_id, "OutputType": None},
                                    {"Name": "Results dataset2", "NodeId": node_id, "OutputType": None}],
        })
    edges = [{"SourceOutputPortId": f"{ids[i]}:Results dataset1", "DestinationInputPortId": f"{ids[i + 1]}:Dataset",
              "DestinationInputPortIndex": None} for i in range(modules - 1)]
    xml = "".join(f"<NodePosition Node='{n}' Position='{i * 10},{i * 20},200,200'/>" for i, n in enumerate(ids))
    return {"ModuleNodes": nodes, "PublishInfo": None, "Parameters": None, "EdgesInternal": edges,
            "SerializedClientData": f"<?xml version='1.0' encoding='utf-16'?><DataV1><NodePositions>{xml}"
                                    "</NodePositions><NodeGroups /></DataV1>"}


def timing(resp: requests.Response, name: str) -> float:
    """One metric of the server's `Server-Timing: app;dur=…, cpu;dur=…` header, in ms."""
    for part in resp.headers["Server-Timing"].split(","):
        metric, _, duration = part.strip().partition(";dur=")
        if metric == name:
            return float(duration)
    raise KeyError(name)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def serve(data: str) -> tuple[subprocess.Popen[str], str]:
    """`python -m amlvc serve` on a free port with the bench workspace: the process and its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "amlvc", "serve", "--port", "0", "--json", "--data", data,
                             "--workspace", f"{WS}:{TOKEN}"], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["url"]


def peak_rss_mib(pid: int) -> float:
    """The peak resident memory of a process so far (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def upload_memory(clients: int, mib: int) -> str:
    """One line: `clients` parallel chunked uploads of `mib` MiB to a fresh server, their answers, its peak RSS."""
    proc, url = serve(tempfile.mkdtemp(prefix="amlvc-bench-bodies-"))
    try:
        before = peak_rss_mib(proc.pid)
        answers: list[str] = []

        def body() -> Any:
            piece = b"x" * (1024 * 1024)
            for _ in range(mib):
                yield piece

        def upload() -> None:
            try:
                resp = requests.post(f"{url}/api/resourceuploads/workspaces/{WS}/?userStorage=true"
                                     "&dataTypeId=GenericCSV", data=body(), headers=HEADERS, timeout=600)
                answers.append(str(resp.status_code))
            except requests.RequestException as exc:
                answers.append(type(exc).__name__)

        threads = [threading.Thread(target=upload) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    counts = ", ".join(f"{answers.count(a)} x {a}" for a in sorted(set(answers)))
    return (f"{clients} parallel chunked uploads of {mib} MiB: answers {counts}; server peak RSS {before:.0f} MiB "
            f"at start, {after:.0f} MiB after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=40)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="GETs per client")
    parser.add_argument("--cold", type=int, default=20, help="distinct experiments for the first-GET figure")
    parser.add_argument("--paced-ms", type=float, default=100.0, help="interval of each client in the paced run")
    parser.add_argument("--bodies", action="store_true", help="measure peak memory under parallel uploads instead")
    parser.add_argument("--body-mib", type=int, action="append", help="upload size for --bodies (repeatable; "
                                                                       "default 200 and 60)")
    args = parser.parse_args()
    if args.bodies:
        for mib in args.body_mib or [200, 60]:
            print(upload_memory(args.clients, mib))
        return
    proc, url = serve(tempfile.mkdtemp(prefix="amlvc-bench-server-"))
    try:
        api = f"{url}/api/workspaces/{WS}/experiments"
        body = {"Description": "bench", "Summary": "", "IsDraft": False, "ParentExperimentId": None,
                "DisableNodesUpdate": None, "Category": "user", "ExperimentGraph": graph(args.modules),
                "WebService": None}
        exp_id = requests.post(api + "/", json=body, headers=HEADERS, timeout=30).json()["ExperimentId"]
        doc_url = f"{api}/{exp_id}"
        while requests.get(doc_url, headers=HEADERS, timeout=30).json()["Status"]["StatusCode"] != "Finished":
            pass
        size = len(requests.get(doc_url, headers=HEADERS, timeout=30).content)

        session = requests.Session()
        cold, cold_cpu, others = [], [], []
        for i in range(args.cold):
            other = requests.post(api + "/", json=dict(body, Description=f"cold {i}"), headers=HEADERS,
                                  timeout=30).json()["ExperimentId"]
            for _ in range(2):  # NotStarted -> Running -> Finished
                session.get(f"{api}/{other}", headers=HEADERS, timeout=30)
            others.append(other)
        time.sleep(1.1)  # a new second: nothing rendered yet
        for other in others:
            resp = session.get(f"{api}/{other}", headers=HEADERS, timeout=30)
            cold.append(timing(resp, "app"))
            cold_cpu.append(timing(resp, "cpu"))
        single = []
        for _ in range(100):
            began = time.perf_counter()
            session.get(doc_url, headers=HEADERS, timeout=30).raise_for_status()
            single.append((time.perf_counter() - began) * 1000)

        def load(paced_ms: float) -> tuple[list[float], list[float], float]:
            latencies: list[float] = []
            served: list[float] = []
            lock = threading.Lock()
            barrier = threading.Barrier(args.clients)

            def client(index: int) -> None:
                own = requests.Session()
                own.get(doc_url, headers=HEADERS, timeout=30).raise_for_status()  # connect before timing
                mine, app = [], []
                barrier.wait()
                if paced_ms:
                    time.sleep(paced_ms / 1000 * index / args.clients)  # spread the clients over one interval
                for _ in range(args.requests):
                    began = time.perf_counter()
                    resp = own.get(doc_url, headers=HEADERS, timeout=30)
                    resp.raise_for_status()
                    took = time.perf_counter() - began
                    mine.append(took * 1000)
                    app.append(timing(resp, "app"))
                    if paced_ms:
                        time.sleep(max(0.0, paced_ms / 1000 - took))
                with lock:
                    latencies.extend(mine)
                    served.extend(app)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            began = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return latencies, served, time.perf_counter() - began

        def line(label: str, values: list[float]) -> str:
            return (f"{label}: median {statistics.median(values):.2f} ms, p90 {percentile(values, 0.9):.2f} ms, "
                    f"p99 {percentile(values, 0.99):.2f} ms")

        print(f"GET of a {args.modules}-module experiment ({size} bytes, after one run), server in its own process,"
              f" {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the run")
        print(f"  first GET of each of {args.cold} run experiments, {line('served in (server)', cold)}")
        print(f"      {line('server CPU time', cold_cpu)}")
        print(f"  1 client, back to back     {line('round trip', single)}")
        for paced in (0.0, args.paced_ms):
            latencies, served, wall = load(paced)
            mode = "back to back" if not paced else f"one GET per {paced:.0f} ms each"
            print(f"  {args.clients} clients, {mode}: {len(latencies) / wall:.0f} requests/s")
            print(f"      {line('round trip (client)', latencies)}")
            print(f"      {line('served in (server)', served)}")
        print(f"  target: served in < 5 ms median with {args.clients} concurrent clients")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
