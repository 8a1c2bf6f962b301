"""`amlvc status`: the SPEC vocabulary, layout-only drift apart, and `--check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pullkit import (
    client,
    create,
    delete,
    drag_node,
    git,
    init_repo,
    set_parameter,
    studio_edit,
)

from amlvc.server.runner import ServerHandle


def states(run_cli: Any, root: Path) -> dict[str, dict[str, Any]]:
    result = run_cli(["status", "--json"], cwd=root)
    assert result.exit_code == 0, result.stderr
    return {e["experiment"]: e for e in json.loads(result.stdout)["experiments"]}


def edit_local(root: Path, slug: str, name: str, old: str, new: str, *, commit: bool = True) -> None:
    path = root / "experiments" / slug / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    if commit:
        git(root, "commit", "-qam", f"local edit of {slug}")


def test_every_state_of_the_vocabulary(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api = client(workspace)
    ids = {name: create(api, title=name) for name in
           ("synced", "ws-changed", "local-changed", "diverged", "layout-local", "layout-ws", "gone")}
    root = init_repo(run_cli, tmp_path, workspace)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    assert run_cli(["status", "--check"], cwd=root).exit_code == 0

    studio_edit(api, ids["ws-changed"], set_parameter)
    edit_local(root, "local-changed", "experiment.json", '"Value": "30"', '"Value": "31"')
    studio_edit(api, ids["diverged"], set_parameter)
    edit_local(root, "diverged", "experiment.json", '"Value": "30"', '"Value": "32"')
    edit_local(root, "layout-local", "layout.json", "420,-320", "400,-300")
    studio_edit(api, ids["layout-ws"], drag_node)
    delete(api, ids["gone"])
    create(api, title="brand new")

    found = states(run_cli, root)

    assert {slug: e["state"] for slug, e in found.items()} == {
        "synced": "synced", "ws-changed": "workspace-changed", "local-changed": "local-changed",
        "diverged": "diverged", "layout-local": "layout-only", "layout-ws": "layout-only", "gone": "git-only",
        "brand-new": "workspace-only",
    }
    assert (found["layout-local"]["local"], found["layout-local"]["workspace"]) == ("layout", "none")
    assert (found["layout-ws"]["local"], found["layout-ws"]["workspace"]) == ("none", "layout")
    check = run_cli(["status", "--check"], cwd=root)
    assert check.exit_code == 1
    assert "workspace-changed  ws-changed" in check.stdout
    assert "(canvas moved: local)" in check.stdout


def test_a_run_without_content_change_is_synced(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    api = client(workspace)
    exp = create(api)
    root = init_repo(run_cli, tmp_path, workspace)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    studio_edit(api, exp, lambda doc: None)  # saved as is: a new Etag, the same content

    found = states(run_cli, root)["kundigung-training"]

    assert found["state"] == "synced" and found["etag_moved"] is True
    # pull records the new Etag (a commit of the lock only) and nothing else
    result = run_cli(["pull", "--json"], cwd=root)
    assert json.loads(result.stdout)["recorded"] == ["kundigung-training"]
    assert git(root, "diff", "--name-only", "HEAD~1", "HEAD").split() == ["amlvc.lock"]


def test_status_writes_nothing(workspace: ServerHandle, tmp_path: Path, run_cli: Any) -> None:
    from pullkit import fingerprint

    create(client(workspace))
    root = init_repo(run_cli, tmp_path, workspace)
    before = fingerprint(root)
    result = run_cli(["status"], cwd=root)
    assert result.exit_code == 0 and "workspace-only" in result.stdout
    assert fingerprint(root) == before
