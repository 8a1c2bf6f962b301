"""Seeding the local workspace: the project's fixtures (demo seed), the captured sample, asset lists and blobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from serverkit import FIXTURES, TOKEN, WS, Studio, save_body_from

from amlvc.server import DEMO_WORKSPACE_ID
from amlvc.server.runner import start_server
from amlvc.server.seed import SeedError, demo_seed_dir

PORT_KINDS = {"DataSourceId": "datasources", "TrainedModelId": "trainedmodels", "TransformModuleId": "transformmodules"}


def without_credentials(node_statuses: list[Any]) -> Any:
    """NodeStatuses with the per-GET parts (BaseUri, AccessCredential, Location) blanked."""
    text = json.dumps(node_statuses)
    data = json.loads(text)

    def blank(ep: Any) -> None:
        if isinstance(ep, dict) and "AccessCredential" in ep:
            ep.update(BaseUri="", AccessCredential="", Location="")

    for ns in data:
        blank(ns["StandardErrorEndpoint"])
        blank(ns["StandardOutEndpoint"])
        for ep in ns["OutputEndpoints"]:
            blank(ep)
        for entries in (ns["MetadataOutputEndpoints"] or {}).values():
            for kv in entries:
                blank(kv["Value"])
    return data


def assert_served_as_seeded(served: dict[str, Any], seeded: dict[str, Any]) -> None:
    assert list(served) == list(seeded)
    for key in seeded:
        if key == "NodeStatuses":
            assert without_credentials(served[key]) == without_credentials(seeded[key])
        else:
            assert served[key] == seeded[key], key


def test_demo_seed_is_the_fixtures_folder() -> None:
    found = demo_seed_dir()
    assert found is not None and found.resolve() == FIXTURES.resolve()


def test_demo_seed_serves_the_fixture_documents(tmp_path: Path) -> None:
    with start_server(tmp_path / "d", workspaces=[(DEMO_WORKSPACE_ID, TOKEN)], seed="demo") as handle:
        studio = Studio(handle.url, ws=DEMO_WORKSPACE_ID)
        base = json.loads((FIXTURES / "training--base.json").read_text(encoding="utf-8"))
        listed = {e["ExperimentId"]: e for e in studio.get("experiments").json()}
        predictive = json.loads((FIXTURES / "predictive--base.json").read_text(encoding="utf-8"))
        assert set(listed) == {base["ExperimentId"], predictive["ExperimentId"]}  # variants are not leaves
        assert listed[base["ExperimentId"]]["Etag"] == base["Etag"]
        assert_served_as_seeded(studio.doc(base["ExperimentId"]), base)
        for name in ("training--snapshot-1.json", "training--snapshot-2.json"):
            snap = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
            served = studio.doc(snap["ExperimentId"])
            assert served["IsLeaf"] is False
            assert_served_as_seeded(served, snap)
        # every referenced module and asset exists, so a seeded experiment checks clean
        for node in base["Graph"]["ModuleNodes"]:
            assert studio.get(f"modules/{node['ModuleId']}").status_code == 200, node["ModuleId"]
            for port in node["InputPortsInternal"]:
                for key, route in PORT_KINDS.items():
                    if port[key]:
                        assert studio.get(f"{route}/{port[key]}").status_code == 200, port[key]
        # the workspace's module list (fixtures/modules.json) names its custom module, as a real one does
        custom = next(n["ModuleId"] for n in base["Graph"]["ModuleNodes"]
                      if n["ModuleId"].startswith(DEMO_WORKSPACE_ID))
        listed_modules = {m["Id"]: m for m in studio.get("modules").json()}
        assert listed_modules[custom]["Name"] == "Merkmale berechnen"
        assert listed_modules[custom]["ReleaseState"] == "Custom"
        assert [p["Name"] for p in listed_modules[custom]["ModuleInterface"]["InputPorts"]] == ["dataset"]
        # ... and its datasets, trained models and transforms (fixtures/datasources.json and the others)
        names = {route: {a["Id"]: a["Name"] for a in studio.get(route).json()} for route in PORT_KINDS.values()}
        predictive_ports = [port for node in predictive["Graph"]["ModuleNodes"] for port in node["InputPortsInternal"]]
        used = {(route, port[key]) for port in predictive_ports for key, route in PORT_KINDS.items() if port[key]}
        assert {names[route][asset] for route, asset in used} == {
            "Kundenstamm 2016.csv", "Kündigung – Logistische Regression", "Kündigung – Merkmalsauswahl"}
        dataset = next(a for a in studio.get("datasources").json() if a["Name"] == "Kundenstamm 2016.csv")
        assert dataset["Size"] > 0  # the stand-in content's size, filled in by the seed
        # seeded node outputs download (stand-in content for runs that never happened here)
        ep = studio.doc(base["ExperimentId"])["NodeStatuses"][0]["OutputEndpoints"][0]
        assert requests.get(ep["BaseUri"] + ep["Location"] + ep["AccessCredential"], timeout=10).status_code == 200


def test_seeding_twice_changes_nothing_and_keeps_local_edits(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with start_server(data, workspaces=[(WS, TOKEN)], seed=FIXTURES) as handle:
        studio = Studio(handle.url)
        ids = [e["ExperimentId"] for e in studio.get("experiments").json()]
        assert all(i.startswith(f"{WS}.f-id.") for i in ids)  # the fixtures' workspace id was rewritten
        edited = studio.post(f"experiments/{ids[0]}", save_body_from(studio.doc(ids[0]), Summary="local edit"))
        counts = {r: len(studio.get(r).json()) for r in ("datasources", "trainedmodels", "modules")}
    with start_server(data, workspaces=[(WS, TOKEN)], seed=FIXTURES) as handle:
        studio = Studio(handle.url)
        assert [e["ExperimentId"] for e in studio.get("experiments").json()] == ids
        doc = studio.doc(ids[0])
        assert doc["Summary"] == "local edit" and doc["Etag"] == edited.json()
        assert {r: len(studio.get(r).json()) for r in counts} == counts


def test_captured_sample_loads_with_its_trained_models(tmp_path: Path, captured: Path) -> None:
    with start_server(tmp_path / "d", workspaces=[(WS, TOKEN)], seed=captured) as handle:
        studio = Studio(handle.url)
        text = (captured / "experiment-training-2016.json").read_text(encoding="utf-8-sig")
        source_ws = json.loads(text)["ExperimentId"].split(".")[0]
        seeded = json.loads(text.replace(source_ws, WS))
        served = studio.doc(seeded["ExperimentId"])
        for key in ("Graph", "WebService", "Status", "Etag", "Description", "RunId", "ParentExperimentId",
                    "Creator", "IsLeaf", "DisableNodesUpdate", "Category", "Tags", "IsPartialRun"):
            assert served[key] == seeded[key], key
        assert without_credentials(served["NodeStatuses"]) == without_credentials(seeded["NodeStatuses"])
        models = json.loads((captured / "trainedmodels-list-2016.json").read_text(encoding="utf-8-sig")
                            .replace(source_ws, WS))
        listed = {m["Id"]: m for m in studio.get("trainedmodels").json()}
        for model in models:
            assert listed[model["Id"]] == model  # same fields, order and values as captured
        ids = [m["Id"] for m in studio.get("trainedmodels").json()]
        batches = [int(i.rsplit("-", 1)[1]) for i in ids]
        assert batches == sorted(batches, reverse=True)  # newest first


def test_asset_lists_and_blobs_from_a_seed_folder(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    (seed / "blobs").mkdir(parents=True)
    family = "11112222333344445555666677778888"
    old, new = f"{WS}.{family}.v1-default-3", f"{WS}.{family}.v1-default-9"
    items = [{"Id": old, "Name": "sales", "DataTypeId": "GenericCSV", "ServiceVersion": 0},
             {"Id": new, "Name": "sales", "DataTypeId": "GenericCSV", "ServiceVersion": 1}]
    (seed / "datasources-list.json").write_text(json.dumps(items), encoding="utf-8")
    (seed / "blobs" / f"{new}.csv").write_bytes(b"q,amount\r\n1,10\r\n")
    (seed / "notes.json").write_text('{"not": "an experiment"}', encoding="utf-8")
    with start_server(tmp_path / "d", workspaces=[(WS, TOKEN)], seed=seed) as handle:
        studio = Studio(handle.url)
        listed = [d for d in studio.get("datasources").json() if d["FamilyId"] == family]
        assert [d["Id"] for d in listed] == [new]
        loc = listed[0]["DownloadLocation"]
        assert requests.get(loc["BaseUri"] + loc["Location"] + loc["AccessCredential"],
                            timeout=10).content == b"q,amount\r\n1,10\r\n"
        assert studio.get(f"datasources/{old}").json()["IsLatest"] is False
        upload_batch = studio.post("datasources", {"DataSource": {"Name": "x"}, "UploadId": "0" * 32})
        assert upload_batch.status_code == 404  # (no such upload) - and the batch counter is past 9:
        promoted = _new_dataset_batch(studio)
        assert promoted > 9


def _new_dataset_batch(studio: Studio) -> int:
    info = requests.post(f"{studio.url}/api/resourceuploads/workspaces/{WS}/?userStorage=true&dataTypeId=GenericCSV",
                         data=b"a\r\n", headers=studio.headers(), timeout=10).json()
    new_id = studio.post("datasources", {"DataSource": {"Name": "fresh"}, "UploadId": info["Id"]}).json()
    return int(new_id.rsplit("-", 1)[1])


def test_a_broken_seed_file_is_named_and_nothing_is_served(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "broken.json").write_text('{"ExperimentId": ', encoding="utf-8")
    with pytest.raises(SeedError, match=r"broken\.json"):
        start_server(tmp_path / "d", workspaces=[(WS, TOKEN)], seed=seed)
    with pytest.raises(SeedError, match="does not exist"):
        start_server(tmp_path / "d2", workspaces=[(WS, TOKEN)], seed=tmp_path / "missing")
