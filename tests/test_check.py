"""The reference check: references in ports and layout XML, their resolution, remaps, and `amlvc check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pushkit import (
    DATASET_FAMILY,
    DATASET_ID,
    DEV,
    FIXTURES,
    TRAINING,
    TRAINING_ID,
    client,
    commit_all,
    lock_entry,
    repo_state,
    token_env,
    workspace_state,
)

from amlvc.errors import ConfigError, UsageError
from amlvc.rules import BUILTIN_OWNER as GLOBAL_WORKSPACE_ID
from amlvc.server import assetdb
from amlvc.sync.check import (
    Inventory,
    Remap,
    ResourceId,
    apply_remaps,
    check_document,
    collect_references,
    parse_remap,
)

PREDICTIVE = json.loads((FIXTURES / "predictive--base.json").read_text(encoding="utf-8"))
TRAINING_DOC = json.loads((FIXTURES / "training--base.json").read_text(encoding="utf-8"))
MODEL_ID = f"{DEV}.8f1d3b5a7c9e4f2a6b8d0c2e4a6f8b1d.v1-default-12"
TRANSFORM_ID = f"{DEV}.6c8e0a2b4d6f48a1c3e5a7b9d1f3c5e7.v1-default-5"
OTHER_WS = "f" * 32


def inventory(workspace: str, **lists: list[dict[str, Any]]) -> Inventory:
    return Inventory.from_lists(workspace, lists)


def everything_of(doc: dict[str, Any], workspace: str) -> Inventory:
    """An inventory listing exactly the ids `doc` references."""
    lists: dict[str, list[dict[str, Any]]] = {}
    for ref in collect_references(doc):
        kind = "dataset" if ref.kind == "asset" else ref.kind
        lists.setdefault(kind, []).append({"Id": ref.id, "Name": f"name of {ref.id[-6:]}"})
    return Inventory.from_lists(workspace, lists)


def test_resource_ids_parse_owner_family_and_batch() -> None:
    parsed = ResourceId.parse(DATASET_ID)
    assert parsed is not None and (parsed.owner, parsed.family, parsed.batch) == (DEV, DATASET_FAMILY, 23)
    assert ResourceId.parse("8c2e4a6b-1d3f-4e5a-9b7c-0d2e4f6a8b1c-45") is None


def test_references_cover_modules_every_port_kind_and_the_layout_xml() -> None:
    refs = {r.id: r for r in collect_references(PREDICTIVE)}
    assert refs[DATASET_ID].kind == "dataset"
    assert refs[MODEL_ID].kind == "trainedmodel" and refs[TRANSFORM_ID].kind == "transform"
    for ident in (DATASET_ID, MODEL_ID, TRANSFORM_ID):
        places = refs[ident].places
        assert any("/InputPortsInternal/" in p for p in places)
        assert any("SerializedClientData" in p for p in places)  # the asset's canvas node
    modules = [r for r in refs.values() if r.kind == "module"]
    assert modules and all(any(p.endswith("/ModuleId") for p in r.places) for r in modules)


def test_an_id_only_in_the_layout_is_still_checked() -> None:
    doc = json.loads(json.dumps(TRAINING_DOC))
    orphan = f"{DEV}.{'3' * 32}.v1-default-9"
    xml = doc["Graph"]["SerializedClientData"]
    doc["Graph"]["SerializedClientData"] = xml.replace(
        "<NodePositions>", f"<NodePositions><NodePosition Node='{orphan}' Position='0,0,200,200'/>")
    result = check_document(doc, everything_of(TRAINING_DOC, DEV), experiment="t", remote="dev")
    (missing,) = result.missing
    assert (missing.reference.id, missing.reference.kind) == (orphan, "asset")


def test_everything_present_is_exact() -> None:
    result = check_document(PREDICTIVE, everything_of(PREDICTIVE, DEV), experiment="p", remote="dev")
    assert result.ok and {r.status for r in result.resolutions} == {"exact"} and result.remaps == {}


def test_an_older_batch_owned_by_the_target_is_kept_unless_remap_family() -> None:
    newer = f"{DEV}.{DATASET_FAMILY}.v1-default-30"
    inv = everything_of(PREDICTIVE, DEV)
    inv = Inventory(DEV, tuple(a for a in inv.assets if a.id != DATASET_ID) + inventory(
        DEV, dataset=[{"Id": newer, "Name": "Kunden"}]).assets)
    kept = check_document(PREDICTIVE, inv, experiment="p", remote="dev")
    res = next(r for r in kept.resolutions if r.reference.id == DATASET_ID)
    assert (res.status, res.remap, res.target.batch if res.target else None) == ("family", False, 30)
    assert "would use batch 30" in res.note and kept.ok and kept.remaps == {}
    moved = check_document(PREDICTIVE, inv, experiment="p", remote="dev", remap=Remap("family"))
    assert moved.remaps == {DATASET_ID: newer}


def test_a_foreign_reference_moves_to_the_same_family_in_the_target() -> None:
    mine = f"{OTHER_WS}.{DATASET_FAMILY}.v1-default-2"
    inv = inventory(OTHER_WS, dataset=[{"Id": mine, "Name": "Kunden"}])
    (res,) = [r for r in check_document(PREDICTIVE, inv, experiment="p", remote="prod").resolutions
              if r.reference.id == DATASET_ID]
    assert (res.status, res.remap) == ("family", True) and "uses batch 2" in res.note


def test_built_in_modules_resolve_by_family_everywhere() -> None:
    module = next(r for r in collect_references(PREDICTIVE) if r.kind == "module")
    family = module.id.split(".")[1]
    newer = f"{GLOBAL_WORKSPACE_ID}.{family}.v1-default-9999"
    inv = inventory(OTHER_WS, module=[{"Id": newer, "Name": "Some module"}])
    res = next(r for r in check_document(PREDICTIVE, inv, experiment="p", remote="prod").resolutions
               if r.reference.id == module.id)
    assert (res.status, res.remap) == ("family", False)  # an older built-in batch still exists


def test_name_and_file_remaps_and_missing() -> None:
    named = f"{OTHER_WS}.{'9' * 32}.v1-default-4"
    model = f"{OTHER_WS}.{'7' * 32}.v1-default-8"
    inv = inventory(OTHER_WS, dataset=[{"Id": named, "Name": "Kunden"}], trainedmodel=[{"Id": model, "Name": "m"}])
    by_name = check_document(PREDICTIVE, inv, experiment="p", remote="prod", remap=Remap("name"),
                             source_names={DATASET_ID: "Kunden"})
    assert by_name.remaps[DATASET_ID] == named
    assert {r.reference.id for r in by_name.missing} >= {MODEL_ID, TRANSFORM_ID}
    by_file = check_document(PREDICTIVE, inv, experiment="p", remote="prod",
                             remap=Remap("file", {MODEL_ID: model}))
    assert by_file.remaps == {MODEL_ID: model}
    wrong_kind = check_document(PREDICTIVE, inv, experiment="p", remote="prod", remap=Remap("file", {MODEL_ID: named}))
    assert MODEL_ID in {r.reference.id for r in wrong_kind.missing}  # a dataset cannot stand in for a model
    bad = check_document(PREDICTIVE, inv, experiment="p", remote="prod",
                         remap=Remap("file", {MODEL_ID: f"{OTHER_WS}.{'1' * 32}.v1-default-1"}))
    res = next(r for r in bad.resolutions if r.reference.id == MODEL_ID)
    assert res.status == "missing" and "does not list" in res.note


def test_apply_remaps_rewrites_ports_modules_and_layout_only() -> None:
    new = f"{OTHER_WS}.{DATASET_FAMILY}.v1-default-2"
    out = apply_remaps(PREDICTIVE, {DATASET_ID: new})
    text = json.dumps(out)
    assert DATASET_ID not in text and text.count(new) == json.dumps(PREDICTIVE).count(DATASET_ID)
    assert json.dumps(PREDICTIVE).count(DATASET_ID) >= 2  # the input is not modified
    assert apply_remaps(PREDICTIVE, {}) == PREDICTIVE


def test_parse_remap_accepts_modes_and_files(tmp_path: Path) -> None:
    assert parse_remap(None) == Remap() and parse_remap("family").mode == "family"
    good = tmp_path / "map.json"
    good.write_text(json.dumps({"a": "b"}))
    assert parse_remap(str(good)).mapping == {"a": "b"}
    with pytest.raises(UsageError):
        parse_remap(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError) as info:
        parse_remap(str(bad))
    assert str(bad) in info.value.message


# -- the command --------------------------------------------------------------------------------


def test_check_command_reports_ok_and_writes_nothing(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    ws_before, repo_before = workspace_state(server), repo_state(root)
    result = run_cli(["check", "-v"], cwd=root, env=token_env())
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{TRAINING} -> dev: ok")
    assert "= dataset" in result.stdout and "exact" in result.stdout
    assert workspace_state(server) == ws_before and repo_state(root) == repo_before


def test_check_shows_the_batch_a_family_remap_would_use_and_push_uses_it(world: tuple[Any, Path],
                                                                        run_cli: Any) -> None:
    server, root = world
    newer = f"{DEV}.{DATASET_FAMILY}.v1-default-31"
    with server.state.store.tx() as conn:
        assetdb.insert_item(conn, DEV, "datasources", {"Id": newer, "Name": "Kunden v2"})
    result = run_cli(["check", "--json"], cwd=root, env=token_env())
    assert result.exit_code == 0, result.stderr
    refs = json.loads(result.stdout)["experiments"][0]["references"]
    dataset = next(r for r in refs if r["id"] == DATASET_ID)
    assert (dataset["status"], dataset["target_batch"], dataset["remap"]) == ("family", 31, False)
    # --remap family moves the pin; the push writes it and records it
    path = root / "experiments" / TRAINING / "experiment.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"Summary": "', '"Summary": "v2 '), encoding="utf-8")
    commit_all(root, "v2")
    pushed = run_cli(["push", "--remap", "family"], cwd=root, env=token_env())
    assert pushed.exit_code == 0, pushed.stderr
    with client(server) as c:
        doc = c.get_experiment(TRAINING_ID)
    assert newer in json.dumps(doc) and DATASET_ID not in json.dumps(doc)
    assert lock_entry(root, "dev", TRAINING)["etag"] == doc["Etag"]


def test_check_at_a_revision(world: tuple[Any, Path], run_cli: Any) -> None:
    _server, root = world
    good = repo_state(root).head
    path = root / "experiments" / TRAINING / "experiment.json"
    ghost = f"{DEV}.{'4' * 32}.v1-default-1"
    path.write_text(path.read_text(encoding="utf-8").replace(DATASET_ID, ghost), encoding="utf-8")
    commit_all(root, "point at a dataset that does not exist")
    assert run_cli(["check"], cwd=root, env=token_env()).exit_code == 6
    at_good = run_cli(["check", "--rev", good], cwd=root, env=token_env())
    assert at_good.exit_code == 0, at_good.stderr
    bad = run_cli(["check", "--rev", "no-such-rev"], cwd=root, env=token_env())
    assert bad.exit_code == 3 and "no-such-rev" in bad.stderr


def test_a_refusal_for_many_experiments_names_a_few_and_counts_the_rest(world: tuple[Any, Path],
                                                                         run_cli: Any) -> None:
    _server, root = world
    ghost = f"{DEV}.{'4' * 32}.v1-default-1"
    source = root / "experiments" / TRAINING
    for i in range(8):
        copy = root / "experiments" / f"copy-{i}"
        for path in source.rglob("*"):
            if path.is_file():
                target = copy / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes().replace(DATASET_ID.encode(), ghost.encode()))
    before = repo_state(root)
    result = run_cli(["check"], cwd=root, env=token_env())
    assert result.exit_code == 6
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith("Error: 8 reference(s) of 'copy-0', 'copy-1', 'copy-2', 'copy-3', 'copy-4' and 3 more "
                              "missing in workspace 'dev'")
    assert repo_state(root) == before
