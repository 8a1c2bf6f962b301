"""Benchmark: the web-service routes of the local workspace (deploy, classic, ARM, BES), one client, no latency.

Run: python bench/webservices.py [--requests 200]

Starts a local workspace in-process on loopback, seeded with the project's fixtures, and times each
route sequentially from one client (requests.Session, one HTTP/1.1 connection). Prints the median and
95th percentile round trip per request and the server's own time (its Server-Timing header). A BES
job is timed end to end: submit, start and the two status polls after which it has written its
`.ilearner`. There is no competitor here: the figures show that web-service calls cost about as much
as any other local route, so tests and demos built on them stay fast.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from amlvc.server.runner import start_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WS = "c4e6a8b0d2f44a6c8e0a2c4e6b8d0f13"  # the fixtures' workspace
TOKEN = "bench-token"
PREDICTIVE = f"{WS}.f-id.e7a9c1b3d5f74e6a8c0b2d4f6a8c1e3b"
TRAINING = f"{WS}.f-id.b3d5f7a9c1e34b5d8f0a2c4e6b8d0f2a"
SUB = "5f7a9c1b-3d5e-4f7a-9b1c-3d5e7f9a1b3c"
STUDIO = {"x-ms-metaanalytics-authorizationtoken": TOKEN}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
_DUR = re.compile(r"dur=([0-9.]+)")


def measure(n: int, call: Callable[[], requests.Response | None]) -> tuple[float, float, float | None]:
    """(median ms, p95 ms, median server ms or None) of n sequential calls."""
    rtts: list[float] = []
    served: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        resp = call()
        rtts.append((time.perf_counter() - start) * 1000)
        timing = resp.headers.get("Server-Timing", "") if resp is not None else ""
        match = _DUR.search(timing)
        if match:
            served.append(float(match.group(1)))
    rtts.sort()
    return statistics.median(rtts), rtts[max(0, int(n * 0.95) - 1)], statistics.median(served) if served else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    n = parser.parse_args().requests
    with tempfile.TemporaryDirectory() as tmp, \
            start_server(Path(tmp), workspaces=[(WS, TOKEN)], seed=FIXTURES) as server:
        url, http = server.url, requests.Session()

        def deploy(exp: str = PREDICTIVE) -> requests.Response:
            resp = http.post(f"{url}/api/workspaces/{WS}/experiments/{exp}/webservice?generateNewPortNames=false",
                             headers=STUDIO)
            resp.raise_for_status()
            return resp

        service = deploy().json()["WebServiceGroupId"]
        endpoints = f"{url}/workspaces/{WS}/webservices/{service}/endpoints"
        http.put(f"{endpoints}/bench", headers=BEARER, json={}).raise_for_status()
        resource = http.get(f"{endpoints}/default", headers=BEARER).json()["Resources"][0]
        wsd_url = f"{url}/api/workspaces/{WS}/experiments/{PREDICTIVE}/webservicedefinition"
        wsd = http.get(wsd_url, headers=STUDIO).json()
        # an ARM create names its commitment plan and storage account (the Studio export has neither)
        wsd["Properties"]["CommitmentPlan"] = {"Id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
                                                     "Microsoft.MachineLearning/commitmentPlans/bench-plan"}
        wsd["Properties"]["StorageAccount"] = {"Name": "benchstore", "Key": "bench-storage-key"}
        arm = f"{url}/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/bench"
        version = "?api-version=2017-01-01"
        http.put(arm + version, headers=BEARER, json=wsd).raise_for_status()
        training = http.get(f"{url}/workspaces/{WS}/webservices/{deploy(TRAINING).json()['WebServiceGroupId']}"
                            "/endpoints/default", headers=BEARER).json()
        jobs, key = f"{training['ApiLocation']}/jobs", {"Authorization": f"Bearer {training['PrimaryKey']}"}

        def bes_job() -> None:
            body = {"GlobalParameters": {"Train fraction": "0.7"}}
            job_id = http.post(f"{jobs}?api-version=2.0", headers=key, json=body).json()
            http.post(f"{jobs}/{job_id}/start?api-version=2.0", headers=key)
            http.get(f"{jobs}/{job_id}?api-version=2.0", headers=key)
            done = http.get(f"{jobs}/{job_id}?api-version=2.0", headers=key).json()
            assert done["StatusCode"] == "Finished", done

        rows: list[tuple[str, Callable[[], requests.Response | None]]] = [
            ("deploy (POST experiments/{id}/webservice)", deploy),
            ("GET endpoint", lambda: http.get(f"{endpoints}/bench", headers=BEARER)),
            ("PATCH endpoint resources", lambda: http.patch(f"{endpoints}/bench", headers=BEARER,
                                                            json={"Resources": [resource]})),
            ("POST endpoint refresh (304)", lambda: http.post(f"{endpoints}/bench/refresh", headers=BEARER,
                                                              json={"OverwriteResources": "False"})),
            ("GET webservicedefinition", lambda: http.get(wsd_url, headers=STUDIO)),
            ("ARM PUT (update, LRO decided)", lambda: http.put(arm + version, headers=BEARER, json=wsd)),
            ("ARM GET", lambda: http.get(arm + version, headers=BEARER)),
            ("BES job: submit, start, 2 polls", lambda: bes_job()),
        ]
        print(f"{'route':<44} {'median ms':>10} {'p95 ms':>8} {'served ms':>10}   ({n} sequential requests)")
        for label, call in rows:
            median, p95, served = measure(n, call)
            shown = f"{served:.2f}" if served is not None else "-"
            print(f"{label:<44} {median:>10.2f} {p95:>8.2f} {shown:>10}")


if __name__ == "__main__":
    main()
