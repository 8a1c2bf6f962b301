"""Helpers for the local-workspace tests: a two-workspace server and a thin Studio API caller."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from amlvc.server.runner import ServerHandle, start_server

WS = "0123456789abcdef0123456789abcdef"
WS2 = "fedcba9876543210fedcba9876543210"
TOKEN = "test-token"
TOKEN2 = "other-token"
TOKEN_HEADER = "x-ms-metaanalytics-authorizationtoken"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def start(tmp_path: Path, seed: Path | str | None = None, **options: Any) -> ServerHandle:
    return start_server(tmp_path / "server-data", workspaces=[(WS, TOKEN), (WS2, TOKEN2)], seed=seed, **options)


@dataclass
class Studio:
    """Calls `{url}/api/workspaces/{ws}/…` with the workspace token."""

    url: str
    ws: str = WS
    token: str | None = TOKEN

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {TOKEN_HEADER: self.token} if self.token is not None else {}
        headers.update(extra or {})
        return headers

    def api(self, path: str) -> str:
        return f"{self.url}/api/workspaces/{self.ws}/{path}" if path else f"{self.url}/api/workspaces/{self.ws}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.api(path), headers=self.headers(kw.pop("headers", None)), timeout=30, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return requests.post(self.api(path), json=body, headers=self.headers(kw.pop("headers", None)), timeout=30,
                             **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return requests.delete(self.api(path), headers=self.headers(kw.pop("headers", None)), timeout=30, **kw)

    def doc(self, exp_id: str) -> dict[str, Any]:
        resp = self.get(f"experiments/{exp_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def create(self, name: str = "exp", graph: dict[str, Any] | None = None, **fields: Any) -> str:
        resp = self.post("experiments/", save_body(name=name, graph=graph or small_graph(), **fields))
        assert resp.status_code == 200, resp.text
        return str(resp.json()["ExperimentId"])

    def run(self, exp_id: str) -> dict[str, Any]:
        """Run and poll until the run settles (two GETs, see runs.py)."""
        doc = self.doc(exp_id)
        resp = self.post(f"experiments/{exp_id}", save_body_from(doc, is_draft=False))
        assert resp.status_code == 200, resp.text
        for _ in range(5):
            doc = self.doc(exp_id)
            if doc["Status"]["StatusCode"] in ("Finished", "Failed"):
                return doc
        raise AssertionError(f"run of {exp_id} did not settle: {doc['Status']}")


def save_body(name: str = "exp", graph: dict[str, Any] | None = None, is_draft: bool = True,
              **extra: Any) -> dict[str, Any]:
    body = {"Description": name, "Summary": "", "IsDraft": is_draft, "ParentExperimentId": None,
            "DisableNodesUpdate": False, "Category": "user", "ExperimentGraph": graph or small_graph(),
            "WebService": None}
    body.update(extra)
    return body


def save_body_from(doc: dict[str, Any], is_draft: bool = True, **extra: Any) -> dict[str, Any]:
    """What PS sends back: GET fields, the graph under ExperimentGraph (reference §4.1)."""
    body = {"Description": doc["Description"], "Summary": doc["Summary"], "IsDraft": is_draft,
            "ParentExperimentId": doc["ParentExperimentId"], "DisableNodeUpdate": False, "Category": "user",
            "ExperimentGraph": doc["Graph"], "WebService": doc["WebService"]}
    body.update(extra)
    return body


SPLIT = "506153734175476c4f62416c57734963.70530644c97a4ab685f788bf30a8be5f.v1-default-1718"
TRAIN = "506153734175476c4f62416c57734963.5cc7053eaa30450d96c0dae4be720977.v1-default-1562"
SAMPLE_DATASET = "506153734175476c4f62416c57734963.a1c3e5b7d9f14a3c5e7b9d1f3a5c7e90.v1-default-1"


def node(node_id: str, module: str, inputs: list[str], outputs: list[str], dataset: str | None = None,
         params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    return {
        "Id": node_id, "ModuleId": module, "Comment": "", "CommentCollapsed": True, "Language": "DotNet",
        "Version": "4.5.0", "UsePreviousResults": False,
        "ModuleParameters": [{"ValueType": "Literal", "LinkedGlobalParameter": None, "Name": n, "Value": v}
                             for n, v in (params or [])],
        "IsPartOfPartialRun": False,
        "InputPortsInternal": [{"Name": p, "DataSourceId": dataset if i == 0 else None, "TrainedModelId": None,
                                "TransformModuleId": None, "Language": "DotNet", "Version": "4.5.0",
                                "PortIndex": None, "NodeId": node_id} for i, p in enumerate(inputs)],
        "OutputPortsInternal": [{"Name": p, "NodeId": node_id, "OutputType": None} for p in outputs],
    }


def small_graph(dataset: str | None = SAMPLE_DATASET, split_module: str = SPLIT) -> dict[str, Any]:
    """Split Data fed by a dataset, feeding a second Split Data: two nodes, one edge."""
    a, b = "aaaaaaaa-0000-4000-8000-000000000000-1", "aaaaaaaa-0000-4000-8000-000000000000-2"
    return {
        "ModuleNodes": [node(a, split_module, ["Dataset"], ["Results dataset1", "Results dataset2"], dataset,
                             [("Splitting mode", "Split Rows"),
                              ("Fraction of rows in the first output dataset", "0.7")]),
                        node(b, SPLIT, ["Dataset"], ["Results dataset1", "Results dataset2"])],
        "SerializedClientData": "<?xml version='1.0' encoding='utf-16'?><DataV1><NodePositions /></DataV1>",
        "PublishInfo": None, "Parameters": None,
        "EdgesInternal": [{"SourceOutputPortId": f"{a}:Results dataset1", "DestinationInputPortId": f"{b}:Dataset",
                           "DestinationInputPortIndex": None}],
    }


def big_graph(n: int) -> dict[str, Any]:
    """A chain of n Split Data nodes."""
    ids = [f"bbbbbbbb-0000-4000-8000-000000000000-{i}" for i in range(n)]
    nodes = [node(nid, SPLIT, ["Dataset"], ["Results dataset1", "Results dataset2"],
                  SAMPLE_DATASET if i == 0 else None, [("Fraction of rows in the first output dataset", "0.5")])
             for i, nid in enumerate(ids)]
    edges = [{"SourceOutputPortId": f"{ids[i]}:Results dataset1", "DestinationInputPortId": f"{ids[i + 1]}:Dataset",
              "DestinationInputPortIndex": None} for i in range(n - 1)]
    return {"ModuleNodes": nodes, "SerializedClientData": "<DataV1 />", "PublishInfo": None, "Parameters": None,
            "EdgesInternal": edges}
