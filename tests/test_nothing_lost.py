"""Nothing lost, nothing leaked: each defect of the adversarial pass, reproduced through the real command line
against the real local workspace, in real git repositories."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pushkit import (
    TRAINING,
    TRAINING_ID,
    client,
    commit_all,
    edit_in_workspace,
    git,
    repo_state,
    token_env,
)

from amlvc.canonical.normalize import to_push_body


def outside_files(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


# --- 1. a committed symlink never makes amlvc write outside the repository -----------------------------------------


@pytest.mark.parametrize("linked", ["experiment folder", "experiments folder"])
def test_a_committed_symlink_makes_pull_refuse_and_write_nothing(world: tuple[Any, Path], run_cli: Any,
                                                                   tmp_path: Path, linked: str) -> None:
    server, root = world
    outside = tmp_path / "outside"
    outside.mkdir()
    target = root / "experiments" / TRAINING if linked == "experiment folder" else root / "experiments"
    git(root, "rm", "-r", "-q", target.relative_to(root).as_posix())
    target.parent.mkdir(exist_ok=True)
    os.symlink(outside, target)
    git(root, "add", target.relative_to(root).as_posix())
    git(root, "commit", "-q", "-m", "a link")
    before = repo_state(root)
    edit_in_workspace(server)
    result = run_cli(["pull"], cwd=root, env=token_env())
    assert result.exit_code == 3, result.stderr
    assert "is a symbolic link" in result.stderr and target.relative_to(root).as_posix() in result.stderr
    assert outside_files(outside) == []
    assert repo_state(root) == before
    assert not (root / ".amlvc" / "pull-journal.json").exists()


def test_import_and_normalize_refuse_a_symlinked_folder(tmp_path: Path, run_cli: Any) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    assert run_cli(["init"], cwd=root).exit_code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "experiments")
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "training--base.json"
    result = run_cli(["import", str(fixture)], cwd=root)
    assert result.exit_code == 3 and "experiments: is a symbolic link" in result.stderr, result.stderr
    assert outside_files(outside) == []
    (outside / "exp").mkdir()
    (outside / "exp" / "experiment.json").write_text("{}")
    result = run_cli(["normalize"], cwd=root)
    assert outside_files(outside) == ["exp/experiment.json"]  # read nothing through the link, wrote nothing
    assert (outside / "exp" / "experiment.json").read_text() == "{}"


def test_restore_refuses_a_symlinked_experiment_folder(world: tuple[Any, Path], run_cli: Any, tmp_path: Path) -> None:
    _, root = world
    first = git(root, "rev-parse", "HEAD").strip()
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = root / "experiments" / TRAINING
    git(root, "rm", "-r", "-q", folder.relative_to(root).as_posix())
    folder.parent.mkdir(exist_ok=True)
    os.symlink(outside, folder)
    git(root, "add", folder.relative_to(root).as_posix())
    git(root, "commit", "-q", "-m", "a link")
    result = run_cli(["restore", TRAINING, "--rev", first], cwd=root, env=token_env())
    assert result.exit_code == 3, result.stderr
    assert outside_files(outside) == []


# --- 4. a token never reaches a file or a message -------------------------------------------------------------------

TOKEN_LIKE = "c0ffee0123456789abcdef0123456789"  # 32 hex characters: a valid variable name, and a token


def test_init_refuses_a_token_given_as_token_env_and_writes_nothing(tmp_path: Path, run_cli: Any) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    assert run_cli(["init"], cwd=root).exit_code == 0
    before = repo_state(root)
    config_before = (root / "amlvc.toml").read_bytes()
    for value, env in ((TOKEN_LIKE, {TOKEN_LIKE: "set"}), ("DEV_TOKEN_NOT_SET", {})):
        result = run_cli(["init", "--remote", "dev", "--endpoint", "http://127.0.0.1:9", "--workspace-id",
                          "0123456789abcdef0123456789abcdef", "--token-env", value], cwd=root, env=env)
        assert result.exit_code == 2, result.stderr
        assert TOKEN_LIKE not in result.stderr + result.stdout
        assert repo_state(root) == before and (root / "amlvc.toml").read_bytes() == config_before
    assert "never the token" in run_cli(["init", "--remote", "dev", "--endpoint", "http://127.0.0.1:9",
                                              "--workspace-id", "0123456789abcdef0123456789abcdef",
                                              "--token-env", TOKEN_LIKE], cwd=root).stderr


def test_pull_never_echoes_a_token_given_as_token_env(world: tuple[Any, Path], run_cli: Any) -> None:
    _, root = world
    before = repo_state(root)
    result = run_cli(["pull", "--token-env", TOKEN_LIKE], cwd=root, env={**token_env(), TOKEN_LIKE: "x"})
    assert result.exit_code == 2, result.stderr
    assert TOKEN_LIKE not in result.stderr + result.stdout
    assert repo_state(root) == before


# --- 3. secrets in free text never reach git ---------------------------------------------------------------------


def _storage_key(captured: Path | None) -> str:
    """The captured sample's storage key when ../shared is there, else a key of the same shape."""
    if captured is not None:
        doc = json.loads((captured / "experiment-training-2016.json").read_text(encoding="utf-8-sig"))
        return str(next(p["Value"] for n in doc["Graph"]["ModuleNodes"] for p in n["ModuleParameters"]
                        if p["Name"] == "Account Key"))
    return "Zm9vYmFy" * 10 + "QUJDRA=="  # 88 characters of base64


@pytest.mark.parametrize("with_sample", [True, False])
def test_secrets_in_description_summary_and_comments_never_reach_git(
        world: tuple[Any, Path], run_cli: Any, request: pytest.FixtureRequest, with_sample: bool) -> None:
    from test_git_secrets import assert_not_in_git

    captured = request.getfixturevalue("captured") if with_sample else None
    key = _storage_key(captured)
    server, root = world
    with client(server) as c:
        doc = c.get_experiment(TRAINING_ID)
        doc["Description"] = f"Churn DefaultEndpointsProtocol=https;AccountName=x;AccountKey={key}"
        doc["Summary"] = f"copy of https://x.blob.core.windows.net/c/b?sv=1&sig={key[:40]}&se=2 Password=hunter2x"
        doc["Graph"]["ModuleNodes"][0]["Comment"] = f"key: {key}"
        c.save_experiment(TRAINING_ID, to_push_body(doc))
    pulled = run_cli(["pull"], cwd=root, env=token_env())
    assert pulled.exit_code == 0, pulled.stderr
    assert_not_in_git(root, {key, key[:40], "hunter2x"})
    assert all(key[:12].lower() not in p.name for p in (root / "experiments").iterdir())
    assert key in (root / ".amlvc" / "secrets.json").read_text(encoding="utf-8")
    # an unrelated local edit, committed and pushed, sends the free text back as it was
    experiment = root / "experiments" / TRAINING / "experiment.json"
    data = json.loads(experiment.read_text(encoding="utf-8"))
    data["Graph"]["ModuleNodes"][next(iter(data["Graph"]["ModuleNodes"]))]["Comment"] = "reviewed"
    experiment.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    commit_all(root, "review note")
    pushed = run_cli(["push"], cwd=root, env=token_env())
    assert pushed.exit_code == 0, pushed.stderr
    with client(server) as c:
        after = c.get_experiment(TRAINING_ID)
    assert after["Description"] == f"Churn DefaultEndpointsProtocol=https;AccountName=x;AccountKey={key}"
    assert "hunter2x" in after["Summary"] and key[:40] in after["Summary"]
    assert_not_in_git(root, {key, key[:40], "hunter2x"})


# --- 2. a secret changed in Studio is taken, never silently put back -----------------------------------------------


def _account_key(doc: dict[str, Any]) -> dict[str, Any]:
    return next(p for n in doc["Graph"]["ModuleNodes"] for p in n.get("ModuleParameters") or []
                if p["Name"] == "Account Key")


def test_a_secret_changed_in_studio_is_pulled_and_pushed_back_unchanged(world: tuple[Any, Path],
                                                                         run_cli: Any) -> None:
    server, root = world
    with client(server) as c:
        doc = c.get_experiment(TRAINING_ID)
        _account_key(doc)["Value"] = "rotated-in-studio-" + "k" * 40
        c.save_experiment(TRAINING_ID, to_push_body(doc))
    assert run_cli(["pull"], cwd=root, env=token_env()).exit_code == 0
    assert "rotated-in-studio-" in (root / ".amlvc" / "secrets.json").read_text(encoding="utf-8")
    experiment = root / "experiments" / TRAINING / "experiment.json"
    experiment.write_text(experiment.read_text(encoding="utf-8").replace('"Summary": "', '"Summary": "edited: '),
                          encoding="utf-8")
    commit_all(root, "an unrelated edit")
    plan = run_cli(["push", "--dry-run"], cwd=root, env=token_env())
    assert "replaces it" not in plan.stderr
    assert run_cli(["push"], cwd=root, env=token_env()).exit_code == 0
    with client(server) as c:
        after = c.get_experiment(TRAINING_ID)
    assert _account_key(after)["Value"] == "rotated-in-studio-" + "k" * 40
    assert after["Summary"].startswith("edited: ")


def test_a_secret_changed_locally_on_purpose_is_named_in_the_plan(world: tuple[Any, Path], run_cli: Any) -> None:
    _, root = world
    secrets = json.loads((root / ".amlvc" / "secrets.json").read_text(encoding="utf-8"))
    name = next(n for n in secrets["remotes"]["dev"][TRAINING] if n.startswith("ACCOUNT_KEY"))
    experiment = root / "experiments" / TRAINING / "experiment.json"
    experiment.write_text(experiment.read_text(encoding="utf-8").replace('"Summary": "', '"Summary": "v2 '),
                          encoding="utf-8")
    commit_all(root, "v2")
    plan = run_cli(["push", "--dry-run"], cwd=root, env={**token_env(), f"AMLVC_SECRET_{name}": "a-new-key"})
    assert plan.exit_code == 0, plan.stderr
    assert f"secret {name}: from $AMLVC_SECRET_{name} (differs from the workspace's value: the push replaces it)" \
        in plan.stderr


# --- 6. a local edit of webservice.json counts: never silently overwritten ----------------------------------------


def test_a_local_webservice_edit_survives_a_studio_change(tmp_path: Path, run_cli: Any) -> None:
    from pushkit import DEV, TOKENS, pulled_repo, seed_dir

    from amlvc.server.runner import start_server

    seed = seed_dir(tmp_path, ("training--base.json", "predictive--base.json"))
    with start_server(tmp_path / "server-data", workspaces=[(DEV, TOKENS["dev"])], seed=seed) as server:
        root = pulled_repo(run_cli, tmp_path, server)
        wsd = next((root / "experiments").glob("*/webservice.json"))
        slug = wsd.parent.name
        wsd.write_text(wsd.read_text(encoding="utf-8").replace('"description": "', '"description": "edited here: '),
                       encoding="utf-8")
        assert "edited here: " in wsd.read_text(encoding="utf-8")
        commit_all(root, "a local edit of the web-service definition")
        status = run_cli(["status", "--json"], cwd=root, env=token_env())
        assert {e["experiment"]: e["state"] for e in json.loads(status.stdout)["experiments"]}[slug] \
            == "local-changed"
        lock = json.loads((root / "amlvc.lock").read_text(encoding="utf-8"))
        exp_id = lock["remotes"]["dev"]["experiments"][slug]["id"]
        with client(server) as c:
            doc = c.get_experiment(exp_id)
            doc["Summary"] = "changed in Studio"
            c.save_experiment(exp_id, to_push_body(doc))
        pulled = run_cli(["pull"], cwd=root, env=token_env())
        assert pulled.exit_code in (0, 4), pulled.stderr
        assert "edited here: " in wsd.read_text(encoding="utf-8")  # merged or refused, never overwritten


# --- 10. push sends a revision, and a push cut off half-way is reconciled ---------------------------------------


def test_push_refuses_uncommitted_edits_and_commits_nothing_itself(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    experiment = root / "experiments" / TRAINING / "experiment.json"
    experiment.write_text(experiment.read_text(encoding="utf-8").replace('"Summary": "', '"Summary": "wip '),
                          encoding="utf-8")
    before = repo_state(root)
    with client(server) as c:
        etag = c.get_experiment(TRAINING_ID)["Etag"]
    result = run_cli(["push"], cwd=root, env=token_env())
    assert result.exit_code == 3
    assert "uncommitted changes" in result.stderr and "commit them" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert repo_state(root) == before
    with client(server) as c:
        assert c.get_experiment(TRAINING_ID)["Etag"] == etag


def test_a_push_cut_off_after_its_write_is_recorded_not_refused(world: tuple[Any, Path], run_cli: Any) -> None:
    server, root = world
    experiment = root / "experiments" / TRAINING / "experiment.json"
    experiment.write_text(experiment.read_text(encoding="utf-8").replace('"Summary": "', '"Summary": "v2 '),
                          encoding="utf-8")
    commit_all(root, "v2")
    # what a push killed after its save and before its commit leaves: the workspace has HEAD, the lock does not
    exported = run_cli(["export", TRAINING, "-o", "-"], cwd=root)
    with client(server) as c:
        c.save_experiment(TRAINING_ID, to_push_body(json.loads(exported.stdout)))
        etag = c.get_experiment(TRAINING_ID)["Etag"]
    status = run_cli(["status", "--json"], cwd=root, env=token_env())
    assert json.loads(status.stdout)["experiments"][0]["state"] == "synced"
    result = run_cli(["push"], cwd=root, env=token_env())
    assert result.exit_code == 0, result.stderr
    assert "already has these files" in result.stderr
    with client(server) as c:
        assert c.get_experiment(TRAINING_ID)["Etag"] == etag  # nothing written again
    lock = json.loads((root / "amlvc.lock").read_text(encoding="utf-8"))
    assert lock["remotes"]["dev"]["experiments"][TRAINING]["etag"] == etag
    again = run_cli(["push"], cwd=root, env=token_env())
    assert again.exit_code == 0 and "1 unchanged" in again.stderr


# --- 5. a pull --history cut off before its last commit is completed by the next pull ------------------------------


def test_an_interrupted_history_pull_is_completed_into_the_same_tree(tmp_path: Path, run_cli: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import signal
    import subprocess
    import sys
    import time

    from pullkit import TOKEN, TOKEN_ENV, create, init_repo, run_and_settle, start, tree_without_config
    from pullkit import client as pull_client
    from pullkit import git as pull_git

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with start(tmp_path / "data") as server:
        api = pull_client(server)
        exp_id = create(api, "training--base.json", title="Kündigung Training")
        for _ in range(3):
            run_and_settle(api, exp_id)
        reference = init_repo(run_cli, tmp_path, server, "reference")
        assert run_cli(["pull", "--history"], cwd=reference).exit_code == 0
        interrupted = 0
        for attempt in range(8):
            root = init_repo(run_cli, tmp_path, server, f"repo-{attempt}")
            start_commits = int(pull_git(root, "rev-list", "--count", "HEAD"))
            proc = subprocess.Popen([sys.executable, "-m", "amlvc", "pull", "--history"], cwd=root,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while proc.poll() is None and int(pull_git(root, "rev-list", "--count", "HEAD") or 0) <= start_commits:
                time.sleep(0.0005)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            if pull_git(root, "log", "-1", "--format=%s").startswith("Pull from"):
                continue  # the pull finished before the kill: try again
            interrupted += 1
            again = run_cli(["pull", "--history"], cwd=root)
            assert again.exit_code == 0, again.stderr
            assert [p.name for p in (root / "experiments").iterdir()] == ["kundigung-training"]
            assert tree_without_config(root) == tree_without_config(reference)
            assert pull_git(root, "log", "--format=%s").count("Run of kundigung-training") == \
                pull_git(reference, "log", "--format=%s").count("Run of kundigung-training")
        assert interrupted, "no attempt was cut off between the snapshot commits and the leaf commit"


# --- 9. a repository every checkout can hold; line endings said as such -------------------------------------------


def test_names_windows_reserves_get_a_suffix(workspace: Any, run_cli: Any, tmp_path: Path) -> None:
    from pullkit import client as pull_client
    from pullkit import create, init_repo

    api = pull_client(workspace)
    for name in ("CON", "nul", "Com1", "lpt9"):
        create(api, "training--base.json", title=name)
    root = init_repo(run_cli, tmp_path, workspace)
    assert run_cli(["pull"], cwd=root).exit_code == 0
    folders = sorted(p.name for p in (root / "experiments").iterdir())
    assert len(folders) == 4
    assert all(name.split("-")[0] in ("con", "nul", "com1", "lpt9") and "-" in name for name in folders), folders


def test_a_script_saved_with_other_line_endings_reads_line_endings_only(world: tuple[Any, Path],
                                                                        run_cli: Any) -> None:
    server, root = world
    with client(server) as c:
        doc = c.get_experiment(TRAINING_ID)
        script = next(p for n in doc["Graph"]["ModuleNodes"] for p in n.get("ModuleParameters") or []
                      if p["Name"] in ("R Script", "Python Script"))
        lf = script["Value"].replace("\r\n", "\n")
        script["Value"] = lf if lf != script["Value"] else lf.replace("\n", "\r\n")
        c.save_experiment(TRAINING_ID, to_push_body(doc))
    assert run_cli(["pull"], cwd=root, env=token_env()).exit_code == 0
    diff = run_cli(["diff", "HEAD~1", "HEAD"], cwd=root)
    assert diff.exit_code == 0, diff.stderr
    assert "line endings only" in diff.stdout and "+0 -0" not in diff.stdout
