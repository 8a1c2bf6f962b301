"""Benchmark: normalize + denormalize of synthetic experiments (200, 2,000, 20,000 modules) against naive formatting.

Run: python bench/normalize.py [--sizes 200,2000,20000] [--repeat 3]

The competitor is what an nbstripout-style filter does with the raw export: json.load + json.dumps(sort_keys=True,
indent=2) of the whole document. amlvc does more work (tables, layout XML, scripts, secrets, the exact inverse),
so the ratio shows what the canonical form costs on top of plain formatting.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

from amlvc import rules
from amlvc.canonical import columns, layout
from amlvc.canonical.denormalize import denormalize
from amlvc.canonical.normalize import normalize

BUILTIN = rules.BUILTIN_OWNER
WORKSPACE = "9d0c5e7a1b3f42c68e0a4b6d8f1c3e5a"
FAMILIES = sorted(rules.MODULE_FAMILIES)
SCRIPT = ("# Input: dataset\r\ndataset <- maml.mapInputPort(1)\r\nresult <- head(dataset, 10)\r\n"
          "maml.mapOutputPort(\"result\");\r\n")


def _port_in(node_id: str, name: str, dataset: str | None = None) -> dict[str, Any]:
    return {"Name": name, "DataSourceId": dataset, "TrainedModelId": None, "TransformModuleId": None,
            "Language": "DotNet", "Version": "4.5.0", "PortIndex": None, "NodeId": node_id}


def _param(name: str, value: str, linked: str | None = None) -> dict[str, Any]:
    return {"ValueType": "Literal", "LinkedGlobalParameter": linked, "Name": name, "Value": value}


def synthetic_experiment(modules: int, seed: int = 1) -> dict[str, Any]:
    """A GET-experiment document with `modules` nodes in a chain-with-branches graph, as the service returns it."""
    rng = random.Random(seed)
    session = "8c2e4a6b-1d3f-4e5a-9b7c-0d2e4f6a8b1c"
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    positions: list[dict[str, str]] = []
    statuses: list[dict[str, Any]] = []
    for index in range(modules):
        node_id = f"{session}-{100 + index}"
        family = FAMILIES[index % len(FAMILIES)]
        picker = columns.encode({"isFilter": True, "rules": [
            {"ruleType": "ColumnNames", "columns": ["label", f"feature_{rng.randint(0, 99)}"], "exclude": False}]})
        params = [_param("Splitting mode", "Split Rows"), _param("Random seed", str(rng.randint(0, 10**6))),
                  _param("Fraction of rows in the first output dataset", f"0.{rng.randint(1, 9)}"),
                  _param("Label column", picker)]
        if index % 50 == 7:
            params.append(_param("R Script", SCRIPT))
        inputs = [_port_in(node_id, "Dataset", f"{WORKSPACE}.{family}.v1-default-{index}" if index % 25 == 0 else None)]
        if index % 3 == 0:
            inputs.append(_port_in(node_id, "Dataset2"))
        nodes.append({
            "Id": node_id, "ModuleId": f"{BUILTIN}.{family}.v1-default-{1700 + index % 60}", "Comment": "",
            "CommentCollapsed": True, "Language": "DotNet", "Version": "4.5.0", "UsePreviousResults": False,
            "ModuleParameters": params, "IsPartOfPartialRun": False, "InputPortsInternal": inputs,
            "OutputPortsInternal": [{"Name": "Results dataset", "NodeId": node_id, "OutputType": None}],
        })
        positions.append({"node": node_id, "position": f"{rng.randint(-900, 900)},{rng.randint(-900, 900)},200,200"})
        if index:
            source = f"{session}-{100 + rng.randint(max(0, index - 5), index - 1)}"
            edges.append({"SourceOutputPortId": f"{source}:Results dataset",
                          "DestinationInputPortId": f"{node_id}:Dataset", "DestinationInputPortIndex": None})
        statuses.append({"NodeId": node_id, "Status": {"StatusCode": "Finished", "StatusDetail": "None",
                                                       "CreationTime": "/Date(1464199877746)/",
                                                       "StartTime": "/Date(1464199882204)/",
                                                       "EndTime": "/Date(1464199882204)/", "Metadata": None},
                         "StandardErrorEndpoint": None, "StandardOutEndpoint": None, "OutputEndpoints": [],
                         "MetadataOutputEndpoints": {}})
    order = {node["Id"]: i for i, node in enumerate(nodes)}
    edges.sort(key=lambda e: (order[e["SourceOutputPortId"].split(":")[0]],
                              order[e["DestinationInputPortId"].split(":")[0]]))
    return {
        "ExperimentId": f"{WORKSPACE}.f-id.05126fa5778a4ad0a26931487d3a0821", "RunId": None,
        "ParentExperimentId": None, "OriginalExperimentDocumentationLink": None, "Summary": "synthetic",
        "Description": f"synthetic {modules}",
        "Graph": {"ModuleNodes": nodes, "SerializedClientData": layout.render(positions), "PublishInfo": None,
                  "Parameters": None, "EdgesInternal": edges},
        "Status": {"StatusCode": "Finished", "StatusDetail": "None", "CreationTime": "/Date(1464199879696)/",
                   "StartTime": "/Date(1464199882204)/", "EndTime": "/Date(1464200095073)/", "Metadata": None},
        "Etag": "W/\"datetime'2016-05-25T20%3A22%3A48.9673538Z'\"", "NodeStatuses": statuses,
        "Creator": "studio-user", "IsLeaf": True, "DisableNodesUpdate": None,
        "WebService": {"IsWebServiceExperiment": False, "Inputs": [], "Outputs": [], "Parameters": [],
                       "WebServiceGroupId": None, "ModelPackageId": None, "RunId": None,
                       "SerializedClientData": layout.render([]), "ArmWebServiceId": None},
        "Category": "user", "Tags": [], "IsPartialRun": False,
    }


class Best:
    """Best wall-clock and best CPU time seen for one step (CPU time is what contention on a shared box spares)."""

    def __init__(self) -> None:
        self.wall = self.cpu = float("inf")

    def time(self, action: Callable[[], object]) -> None:
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        self.wall = min(self.wall, time.perf_counter() - start)
        self.cpu = min(self.cpu, time.process_time() - start_cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="200,2000,20000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    cases = {}
    for size in sizes:
        doc = synthetic_experiment(size)
        result = normalize(doc)
        back = denormalize(result.files, identity=result.identity, volatile=result.volatile, secrets=result.secrets)
        assert back == doc, "round trip is not exact"
        cases[size] = (doc, result, json.dumps(doc).encode())
    steps = {(size, step): Best() for size in sizes for step in ("normalize", "denormalize", "naive")}
    # Rounds go over every size in turn, so a burst of load from a neighbour hits all sizes alike.
    for _ in range(args.repeat):
        for size, (doc, result, raw) in cases.items():
            steps[size, "normalize"].time(lambda doc=doc: normalize(doc))  # type: ignore[misc]
            steps[size, "denormalize"].time(lambda r=result: denormalize(  # type: ignore[misc]
                r.files, identity=r.identity, volatile=r.volatile, secrets=r.secrets))
            steps[size, "naive"].time(lambda raw=raw: json.dumps(  # type: ignore[misc]
                json.loads(raw), sort_keys=True, indent=2).encode())
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'modules':>8} {'raw MB':>7} {'normalize':>10} {'denormalize':>12} {'amlvc wall':>11} {'amlvc cpu':>10} "
          f"{'naive wall':>11} {'naive cpu':>10} {'amlvc/naive':>12}")
    timings: dict[int, tuple[float, float]] = {}
    naive_timings: dict[int, tuple[float, float]] = {}
    for size in sizes:
        norm, denorm, naive = (steps[size, step] for step in ("normalize", "denormalize", "naive"))
        timings[size] = (norm.wall + denorm.wall, norm.cpu + denorm.cpu)
        naive_timings[size] = (naive.wall, naive.cpu)
        print(f"{size:>8} {len(cases[size][2]) / 1e6:>7.2f} {norm.wall:>9.3f}s {denorm.wall:>11.3f}s "
              f"{timings[size][0]:>10.3f}s {timings[size][1]:>9.3f}s {naive.wall:>10.3f}s {naive.cpu:>9.3f}s "
              f"{timings[size][1] / naive.cpu:>11.2f}x")
    if 2000 in timings:
        wall, cpu = timings[2000]
        verdict = "ok" if cpu < 0.5 else "OVER"
        print(f"2,000 modules: {wall:.3f} s wall, {cpu:.3f} s CPU (bar: < 0.5 s) {verdict}")
    for small, large in ((200, 2000), (2000, 20000)):
        if small in timings and large in timings:
            ratio = timings[large][1] / timings[small][1]
            verdict = "ok" if ratio <= 12 else "OVER"
            naive_ratio = naive_timings[large][1] / naive_timings[small][1]
            print(f"{large:,}/{small:,} modules: {ratio:.1f}x the CPU time for 10x the size "
                  f"(wall {timings[large][0] / timings[small][0]:.1f}x; bar: <= 12x) {verdict}; "
                  f"naive formatting: {naive_ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
