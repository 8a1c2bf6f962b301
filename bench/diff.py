"""Benchmark: render the semantic diff of two 2,000-module experiments, beside deepdiff and `git diff` of raw JSON.

Run: python bench/diff.py [--modules 2000] [--repeat 3]

Both experiments are synthetic GET documents (bench/normalize.py's generator); the second carries a review's
worth of edits: 40 parameters changed, 20 nodes added and 10 removed, 20 modules upgraded, 20 edges rewired, a
script line changed, the summary edited, and 100 nodes dragged. amlvc's time is parse the canonical files
+ compute the records + render, per format (json includes the RFC 6902 patch). The competitors get the raw
documents: deepdiff.DeepDiff (what the product owner chose for structural comparison) and `git diff --no-index`
of the indented raw JSON (what a reviewer sees without amlvc). Target: every format under 1 s.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deepdiff import DeepDiff
from normalize import Best, synthetic_experiment

from amlvc.canonical.normalize import normalize
from amlvc.render import FORMATS, render
from amlvc.review.diff import diff_trees
from amlvc.review.parsed import Parsed as Tree


def edited(doc: dict[str, Any], seed: int = 7) -> dict[str, Any]:
    """The same experiment after a substantial review's edits (about 200 records)."""
    rng = random.Random(seed)
    out = copy.deepcopy(doc)
    graph = out["Graph"]
    nodes = graph["ModuleNodes"]
    for node in rng.sample(nodes, 40):  # parameter changes
        node["ModuleParameters"][2]["Value"] = f"0.{rng.randint(10, 99)}"
    for node in rng.sample(nodes, 20):  # module upgrades (same family, next batch)
        owner, family, version = node["ModuleId"].split(".")
        node["ModuleId"] = f"{owner}.{family}.v1-default-{int(version.rsplit('-', 1)[1]) + 1}"
    for node in nodes:
        for param in node["ModuleParameters"]:
            if param["Name"] == "R Script":
                param["Value"] = param["Value"].replace("head(dataset, 10)", "head(dataset, 20)")
                break
        else:
            continue
        break
    removed = {n["Id"] for n in rng.sample(nodes[1:], 10)}
    graph["ModuleNodes"] = [n for n in nodes if n["Id"] not in removed]
    graph["EdgesInternal"] = [e for e in graph["EdgesInternal"]
                              if e["SourceOutputPortId"].split(":")[0] not in removed
                              and e["DestinationInputPortId"].split(":")[0] not in removed]
    template = graph["ModuleNodes"][0]
    for index in range(20):  # nodes added, each fed by an existing node
        node = copy.deepcopy(template)
        node_id = f"0b2d4f6a-8c1e-4a3b-9d5f-7a9c1e3b5d7f-{index + 1}"
        node["Id"] = node_id
        for port in node["InputPortsInternal"] + node["OutputPortsInternal"]:
            port["NodeId"] = node_id
        graph["ModuleNodes"].append(node)
        source = rng.choice(graph["ModuleNodes"][:-1])["Id"]
        graph["EdgesInternal"].append({"SourceOutputPortId": f"{source}:Results dataset",
                                       "DestinationInputPortId": f"{node_id}:Dataset",
                                       "DestinationInputPortIndex": None})
    for edge in rng.sample(graph["EdgesInternal"], 20):  # rewired inputs
        edge["SourceOutputPortId"] = f"{rng.choice(graph['ModuleNodes'])['Id']}:Results dataset"
    out["Summary"] = "synthetic, reviewed"
    return out


def canonical(doc: dict[str, Any]) -> dict[str, bytes]:
    return dict(normalize(doc, source="bench").files)


def dragged(files: dict[str, bytes], seed: int = 3) -> dict[str, bytes]:
    """100 nodes moved on the canvas: only layout.json changes."""
    rng = random.Random(seed)
    layout = json.loads(files["layout.json"])
    for item in rng.sample(layout["Graph"]["positions"], 100):
        x, y, w, h = item["position"].split(",")
        item["position"] = f"{int(x) + 40},{int(y) + 20},{w},{h}"
    layout.pop("raw", None)
    return {**files, "layout.json": json.dumps(layout, sort_keys=True, indent=2).encode()}


def timed(repeat: int, action: Callable[[], object]) -> float:
    """Best wall-clock time of `repeat` runs."""
    best = Best()
    for _ in range(repeat):
        best.time(action)
    return best.wall


def git_diff_raw(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb = Path(tmp) / "a.json", Path(tmp) / "b.json"
        pa.write_text(json.dumps(a, indent=2, ensure_ascii=False), encoding="utf-8")
        pb.write_text(json.dumps(b, indent=2, ensure_ascii=False), encoding="utf-8")
        start = time.perf_counter()
        result = subprocess.run(["git", "diff", "--no-index", "--no-color", str(pa), str(pb)], capture_output=True,
                                text=True)
        elapsed = time.perf_counter() - start
        changed = sum(1 for line in result.stdout.splitlines()
                      if line.startswith(("+", "-")) and not line.startswith(("+++", "---")))
        return elapsed, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    raw_a = synthetic_experiment(args.modules)
    raw_b = edited(raw_a)
    files_a = canonical(raw_a)
    files_b = dragged(canonical(raw_b))
    result = diff_trees(Tree.from_files(files_a), Tree.from_files(files_b), "synthetic")
    kinds: dict[str, int] = {}
    for change in result.changes:
        kinds[change.kind] = kinds.get(change.kind, 0) + 1
    print(f"{args.modules} modules; {len(result.changes)} records: "
          + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))

    def records() -> object:
        return diff_trees(Tree.from_files(files_a), Tree.from_files(files_b), "synthetic")

    t_records = timed(args.repeat, records)
    print(f"amlvc parse + records:               {t_records:7.3f} s")
    worst = 0.0
    for fmt in FORMATS:
        def full(fmt: str = fmt) -> object:
            return render([records()], fmt)  # type: ignore[list-item]

        elapsed = timed(args.repeat, full)
        worst = max(worst, elapsed)
        size = len(render([result], fmt))
        print(f"amlvc parse + records + {fmt:<8}     {elapsed:7.3f} s   ({size / 1024:,.0f} KiB)")

    t_deep = timed(1, lambda: DeepDiff(raw_a, raw_b))
    deep = DeepDiff(raw_a, raw_b)
    deep_items = sum(len(v) for v in deep.values())
    t_git, git_lines = git_diff_raw(raw_a, raw_b)
    print(f"deepdiff on the raw documents:       {t_deep:7.3f} s   ({deep_items} items, no rendering)")
    print(f"git diff --no-index of raw JSON:     {t_git:7.3f} s   ({git_lines} changed lines)")
    print(f"ratio deepdiff / amlvc (slowest fmt): {t_deep / worst:6.1f}x")
    print(f"ratio git diff / amlvc (slowest fmt): {t_git / worst:6.2f}x")
    print(f"noise: {git_lines} raw changed lines vs {len(result.changes)} records "
          f"({git_lines / max(len(result.changes), 1):.1f} lines per record)")
    print(f"target < 1 s for every format: {'met' if worst < 1.0 else 'MISSED'} (slowest {worst:.3f} s)")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
