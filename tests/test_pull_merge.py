"""`amlvc pull` of a diverged experiment: three-way merge, conflicts refused with nothing written, `--theirs`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pullkit import (
    TOKEN,
    TOKEN_ENV,
    client,
    create,
    drag_node,
    fingerprint,
    git,
    init_repo,
    only_experiment,
    set_parameter,
    start,
    studio_edit,
)

from amlvc.canonical.normalize import normalize
from amlvc.rules import JOURNAL_FILE as JOURNAL_NAME
from amlvc.server.runner import ServerHandle
from amlvc.sync import pullmerge

SLUG = "kundigung-training"
SPLIT = "5e7a9c1b-3d5f-4a7b-9c1d-3e5f7a9b1c2d-25"  # Split Data: "Random seed" 12345
READER = "5e7a9c1b-3d5f-4a7b-9c1d-3e5f7a9b1c2d-17"  # the custom reader: "window_days" 30 (pullkit.set_parameter)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def parameter(doc: dict[str, Any], node_id: str, name: str) -> str:
    nodes = doc["Graph"]["ModuleNodes"]
    node = nodes[node_id] if isinstance(nodes, dict) else next(n for n in nodes if n["Id"] == node_id)
    return str(next(p["Value"] for p in node["ModuleParameters"] if p["Name"] == name))


def edit_parameter(root: Path, node_id: str, name: str, value: str, slug: str = SLUG) -> None:
    """A local edit of one parameter in experiment.json, committed."""
    path = root / "experiments" / slug / "experiment.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    params = doc["Graph"]["ModuleNodes"][node_id]["ModuleParameters"]
    next(p for p in params if p["Name"] == name)["Value"] = value
    path.write_text(json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    git(root, "commit", "-qam", f"local: {name} = {value}")


def parameter_and_drag(doc: dict[str, Any]) -> None:
    set_parameter(doc)
    drag_node(doc)


def local_doc(root: Path, slug: str = SLUG) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "experiments" / slug / "experiment.json").read_text(encoding="utf-8"))
    return data


def state(run_cli: Any, root: Path, slug: str = SLUG) -> str:
    result = run_cli(["status", "--json"], cwd=root)
    assert result.exit_code == 0, result.stderr
    return str(next(e["state"] for e in json.loads(result.stdout)["experiments"] if e["experiment"] == slug))


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerHandle]:
    """A workspace holding the training fixture and the assets it references (so a push passes its check)."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with start(tmp_path / "seeded-data", seed=("training--base.json",)) as handle:
        yield handle


def pulled(run_cli: Any, tmp_path: Path, workspace: ServerHandle, *titles: str) -> tuple[Path, dict[str, str]]:
    api = client(workspace)
    ids = {title: create(api, title=title) for title in titles} if titles else {SLUG: create(api)}
    root = init_repo(run_cli, tmp_path, workspace)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    return root, ids


def test_disjoint_edits_are_merged_committed_and_pushed(seeded: ServerHandle, tmp_path: Path,
                                                        run_cli: Any) -> None:
    api = client(seeded)
    ids = {SLUG: only_experiment(api)}
    root = init_repo(run_cli, tmp_path, seeded)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    edit_parameter(root, SPLIT, "Random seed", "4242")
    studio_edit(api, ids[SLUG], parameter_and_drag)
    layout_before = (root / "experiments" / SLUG / "layout.json").read_text(encoding="utf-8")

    result = run_cli(["pull", "--json"], cwd=root)

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["merged"] == report["diverged"] == [SLUG] and report["changed"] == [SLUG]
    doc = local_doc(root)
    assert parameter(doc, SPLIT, "Random seed") == "4242"  # ours
    assert parameter(doc, READER, "window_days") == "45"  # theirs
    assert (root / "experiments" / SLUG / "layout.json").read_text(encoding="utf-8") != layout_before  # the drag
    message = git(root, "log", "-1", "--format=%B")
    assert f"merged {SLUG}: local edits kept" in message and message.rstrip().endswith("Amlvc-Workspace: "
                                                                                       + report["workspace_id"])
    assert git(root, "status", "--porcelain") == ""
    # the lock records the workspace's version, so the merge is a local change that push sends
    assert state(run_cli, root) == "local-changed"
    human = run_cli(["pull"], cwd=root)
    assert human.exit_code == 0 and "Already up to date" in human.stderr

    pushed = run_cli(["push"], cwd=root)

    assert pushed.exit_code == 0, pushed.stderr
    live = api.get_experiment(ids[SLUG])
    assert parameter(live, SPLIT, "Random seed") == "4242"
    assert parameter(live, READER, "window_days") == "45"
    assert "460,-320" in live["Graph"]["SerializedClientData"]  # the drag (420 + 40) is kept too
    assert state(run_cli, root) == "synced"


def test_the_cli_names_the_merge(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    root, ids = pulled(run_cli, tmp_path, workspace)
    edit_parameter(root, SPLIT, "Random seed", "4242")
    studio_edit(client(workspace), ids[SLUG], set_parameter)

    result = run_cli(["pull"], cwd=root)

    assert result.exit_code == 0, result.stderr
    assert f"merged   {SLUG}  (changed on both sides; local edits kept, `amlvc push` sends them)" in result.stderr


def test_same_parameter_changed_differently_is_refused_and_nothing_is_written(
        workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    root, ids = pulled(run_cli, tmp_path, workspace, "Kündigung – Training ✓", "Other")
    api = client(workspace)
    edit_parameter(root, READER, "window_days", "31")
    studio_edit(api, ids["Kündigung – Training ✓"], set_parameter)
    studio_edit(api, ids["Other"], set_parameter)  # a plain workspace change: not written either
    before = fingerprint(root)
    porcelain = git(root, "status", "--porcelain")
    live = {exp: api.get_experiment(exp) for exp in ids.values()}

    result = run_cli(["pull"], cwd=root)

    assert result.exit_code == 4, result.stderr
    lines = result.stderr.splitlines()
    conflict = [line for line in lines if "window_days" in line]
    assert len(conflict) == 1
    assert f"experiments/{SLUG}/experiment.json" in conflict[0] and "ours 31, theirs 45 (base 30)" in conflict[0]
    assert "nothing was written" in lines[0]
    assert f"`amlvc push --force {SLUG}`" in result.stderr and f"`amlvc pull --theirs {SLUG}`" in result.stderr
    assert fingerprint(root) == before  # HEAD, files, lock, .git: byte for byte
    assert git(root, "status", "--porcelain") == porcelain
    assert {exp: api.get_experiment(exp) for exp in ids.values()} == live  # the workspace untouched


def test_theirs_takes_the_workspace_version(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    root, ids = pulled(run_cli, tmp_path, workspace)
    edit_parameter(root, READER, "window_days", "31")
    studio_edit(client(workspace), ids[SLUG], set_parameter)

    result = run_cli(["pull", "--theirs", SLUG], cwd=root)

    assert result.exit_code == 0, result.stderr
    assert "--theirs: local commits overwritten" in result.stderr
    assert parameter(local_doc(root), READER, "window_days") == "45"
    assert '"31"' in git(root, "show", f"HEAD~1:experiments/{SLUG}/experiment.json")
    assert f"merged {SLUG}" not in git(root, "log", "-1", "--format=%B")
    assert state(run_cli, root) == "synced"


def test_without_the_synced_version_in_history_the_merge_is_refused(workspace: ServerHandle, tmp_path: Path,
                                                                     run_cli: Any) -> None:
    root, ids = pulled(run_cli, tmp_path, workspace)
    lock = json.loads((root / "amlvc.lock").read_text(encoding="utf-8"))
    lock["remotes"]["dev"]["experiments"][SLUG]["content_hash"] = "0" * 64
    (root / "amlvc.lock").write_text(json.dumps(lock, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    edit_parameter(root, SPLIT, "Random seed", "4242")
    studio_edit(client(workspace), ids[SLUG], set_parameter)
    before = fingerprint(root)

    result = run_cli(["pull"], cwd=root)

    assert result.exit_code == 4
    assert f"experiments/{SLUG}: cannot merge: the last pulled or pushed version" in result.stderr
    assert fingerprint(root) == before


def test_a_failing_workspace_leaves_a_diverged_repository_untouched(workspace: ServerHandle, tmp_path: Path,
                                                                    run_cli: Any) -> None:
    """The merge runs only after every fetch: a failing workspace leaves a diverged repository untouched."""
    root, ids = pulled(run_cli, tmp_path, workspace)
    edit_parameter(root, SPLIT, "Random seed", "4242")
    studio_edit(client(workspace), ids[SLUG], set_parameter)
    before = fingerprint(root)
    result = run_cli(["pull"], cwd=root, env={TOKEN_ENV: TOKEN + "-wrong"})
    assert result.exit_code == 5
    assert fingerprint(root) == before


# -- the merge of files, without a workspace -------------------------------------------------


def canonical_files() -> dict[str, bytes]:
    doc = json.loads((FIXTURES / "training--base.json").read_text(encoding="utf-8"))
    return normalize(doc, source="training--base.json").files


def test_scripts_merge_line_by_line() -> None:
    base = canonical_files()
    script = next(name for name in base if name.startswith("scripts/") and base[name].count(b"\n") > 4)
    lines = base[script].split(b"\n")
    ours, theirs = dict(base), dict(base)
    ours[script] = b"\n".join([b"# ours", *lines[1:]])
    theirs[script] = b"\n".join([*lines[:-2], b"# theirs", lines[-1]])

    clean = pullmerge.merge_files(SLUG, base, ours, theirs)

    assert clean.conflicts == ()
    assert clean.files[script].startswith(b"# ours") and b"# theirs" in clean.files[script]
    assert {k: v for k, v in clean.files.items() if k != script} == {k: v for k, v in base.items() if k != script}

    theirs[script] = b"\n".join([b"# theirs", *lines[1:]])
    same_line = pullmerge.merge_files(SLUG, base, ours, theirs)
    assert same_line.files == {}
    assert [c.line() for c in same_line.conflicts] == [
        f"  experiments/{SLUG}/{script}: both sides changed the same lines of this script"]


def test_webservice_definition_follows_the_side_that_changed() -> None:
    base = {**canonical_files(), "webservice.json": b'{"a": 1}\n'}
    ours = {**base, "webservice.json": b'{"a": 2}\n'}
    assert pullmerge.merge_files(SLUG, base, ours, base).files["webservice.json"] == b'{"a": 2}\n'
    assert pullmerge.merge_files(SLUG, base, base, ours).files["webservice.json"] == b'{"a": 2}\n'
    assert pullmerge.merge_files(SLUG, base, ours, ours).files["webservice.json"] == b'{"a": 2}\n'
    other = {**base, "webservice.json": b'{"a": 3}\n'}
    conflicts = pullmerge.merge_files(SLUG, base, ours, other).conflicts
    assert [c.line() for c in conflicts] == [f"  experiments/{SLUG}/webservice.json: changed differently on both sides"]


def test_an_invalid_merged_graph_is_a_conflict() -> None:
    base = canonical_files()
    doc = json.loads(base["experiment.json"])
    edges = doc["Graph"]["EdgesInternal"]
    # theirs adds an edge from an output port no node has: the merge takes it, the validation refuses it
    first = edges[0]
    reverse = {**first, "SourceOutputPortId": first["DestinationInputPortId"].rsplit(":", 1)[0] + ":x",
               "DestinationInputPortId": first["SourceOutputPortId"]}
    theirs_doc = {**doc, "Graph": {**doc["Graph"], "EdgesInternal": [*edges, reverse]}}
    theirs = {**base, "experiment.json": json.dumps(theirs_doc).encode()}
    result = pullmerge.merge_files(SLUG, base, base, theirs)
    assert result.files == {} and result.conflicts
    assert "invalid" in result.conflicts[0].reason


def test_commit_message_notes() -> None:
    message = "Pull from dev: 1 changed\n\nchanged: a\n\nAmlvc-Remote: dev\nAmlvc-Workspace: w\n"
    assert pullmerge.note_merges(message, ["a"]) == (
        "Pull from dev: 1 changed\n\nchanged: a\nmerged a: local edits kept\n\nAmlvc-Remote: dev\nAmlvc-Workspace: w\n")
    assert pullmerge.note_merges(message, []) == message


def test_a_merge_cut_off_before_its_commit_is_redone_by_the_next_pull(workspace: ServerHandle, tmp_path: Path,
                                                                      run_cli: Any) -> None:
    """A pull killed while writing merged files (journal present, HEAD unmoved): the next pull merges again."""
    root, ids = pulled(run_cli, tmp_path, workspace)
    edit_parameter(root, SPLIT, "Random seed", "4242")
    studio_edit(client(workspace), ids[SLUG], set_parameter)
    path = f"experiments/{SLUG}/experiment.json"
    half = b'{"half": "written"}\n'
    (root / path).write_bytes(half)
    journal = {"head": git(root, "rev-parse", "HEAD").strip(), "paths": [f"experiments/{SLUG}", "amlvc.lock"],
               "files": {path: hashlib.sha256(half).hexdigest()}}
    (root / JOURNAL_NAME).write_text(json.dumps(journal), encoding="utf-8")

    result = run_cli(["pull", "--json"], cwd=root)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["merged"] == [SLUG] and json.loads(result.stdout)["recovered"] is True
    doc = local_doc(root)
    assert parameter(doc, SPLIT, "Random seed") == "4242" and parameter(doc, READER, "window_days") == "45"
    assert git(root, "status", "--porcelain") == "" and not (root / JOURNAL_NAME).exists()


def test_canvas_moves_of_different_nodes_are_both_kept() -> None:
    base = canonical_files()
    layout = json.loads(base["layout.json"])
    ours_layout, theirs_layout = json.loads(base["layout.json"]), json.loads(base["layout.json"])
    ours_layout["Graph"]["positions"][0]["position"] = "500,-320,200,200"
    theirs_layout["Graph"]["positions"][1]["position"] = "-500,-320,200,200"
    ours = {**base, "layout.json": json.dumps(ours_layout).encode()}
    theirs = {**base, "layout.json": json.dumps(theirs_layout).encode()}

    merged = pullmerge.merge_files(SLUG, base, ours, theirs)

    assert merged.conflicts == ()
    positions = json.loads(merged.files["layout.json"])["Graph"]["positions"]
    assert [p["position"] for p in positions[:2]] == ["500,-320,200,200", "-500,-320,200,200"]
    assert positions[2:] == layout["Graph"]["positions"][2:]
    assert merged.files["experiment.json"] == base["experiment.json"]


def test_the_report_of_several_experiments_names_each_conflict() -> None:
    conflicts = [pullmerge.Conflict("a", "experiment.json", "/Graph", "x"), pullmerge.Conflict("b", "", "", "y")]
    lines = pullmerge.conflict_report(conflicts).splitlines()
    assert lines[0].startswith("pull stopped: 2 experiment(s)") and lines[1:3] == [
        "  experiments/a/experiment.json /Graph: x", "  experiments/b: y"]
    assert "`amlvc push --force EXP`" in lines[3] and "`amlvc pull --theirs EXP`" in lines[3]


def test_after_a_conflict_push_force_keeps_ours(seeded: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api = client(seeded)
    exp = only_experiment(api)
    root = init_repo(run_cli, tmp_path, seeded)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    edit_parameter(root, READER, "window_days", "31")
    studio_edit(api, exp, set_parameter)
    assert run_cli(["pull"], cwd=root).exit_code == 4

    forced = run_cli(["push", "--force", SLUG], cwd=root)

    assert forced.exit_code == 0, forced.stderr
    assert parameter(api.get_experiment(exp), READER, "window_days") == "31"
    backup = git(root, "for-each-ref", "--format=%(refname)", "refs/amlvc/backup/").split()
    assert len(backup) == 1 and '"45"' in git(root, "show", f"{backup[0]}:experiments/{SLUG}/experiment.json")
    assert state(run_cli, root) == "synced"
