"""The offline commands through the real command line: init, import, export, normalize, verify."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

WS = "0123456789abcdef0123456789abcdef"
TRAINING = "kundigung-training"
PREDICTIVE = "kundigung-training-predictive-exp"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(run_cli: Any, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    assert run_cli(["init"], cwd=root).exit_code == 0
    return root


# ----------------------------------------------------------------------------------------------- init


def test_init_offline_writes_and_commits_the_settings(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli(["init", "--json"], cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["created_git"] and out["created_config"] and out["remote"] is None
    assert sorted(git(tmp_path, "ls-files").split()) == [".gitattributes", ".gitignore", "amlvc.lock", "amlvc.toml"]
    assert ".amlvc/" in (tmp_path / ".gitignore").read_text().splitlines()
    assert "experiments/**/scripts/** -text diff" in (tmp_path / ".gitattributes").read_text()
    assert json.loads((tmp_path / "amlvc.lock").read_text()) == {"format": 2, "remotes": {}}
    assert "[remotes" not in (tmp_path / "amlvc.toml").read_text()
    assert git(tmp_path, "status", "--porcelain") == ""


def test_init_adds_remotes_later_and_is_idempotent(run_cli: Any, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert run_cli(["init"], cwd=repo).exit_code == 0
    assert git(repo, "rev-parse", "HEAD") == head  # nothing changed, no commit
    result = run_cli(["init", "--remote", "dev", "--endpoint", "http://127.0.0.1:8765", "--workspace-id", WS,
                      "--token-env", "DEV_TOKEN"], cwd=repo, env={"DEV_TOKEN": "a-token"})
    assert result.exit_code == 0, result.stderr
    assert "Remote 'dev'" in result.stderr
    result = run_cli(["init", "--remote", "prod", "--location", "West Europe", "--workspace-id", WS], cwd=repo)
    assert result.exit_code == 0, result.stderr
    toml = (repo / "amlvc.toml").read_text()
    assert '[remotes.dev]' in toml and 'token_env = "DEV_TOKEN"' in toml and 'location = "West Europe"' in toml
    assert git(repo, "status", "--porcelain") == ""
    assert len(git(repo, "log", "--format=%s").splitlines()) == 3


def test_init_notes_a_second_name_for_the_same_workspace(run_cli: Any, repo: Path) -> None:
    dev = run_cli(["init", "--remote", "dev", "--endpoint", "http://127.0.0.1:8765", "--workspace-id", WS], cwd=repo)
    assert dev.exit_code == 0 and "Note:" not in dev.stderr
    twin = run_cli(["init", "--remote", "mirror", "--endpoint", "http://localhost:8765", "--workspace-id", WS,
                    "--json"], cwd=repo)
    assert twin.exit_code == 0, twin.stderr
    assert json.loads(twin.stdout)["same_workspace"] == ["dev"]
    again = run_cli(["init", "--remote", "mirror", "--endpoint", "http://localhost:8765", "--workspace-id", WS],
                    cwd=repo)
    assert "Note: remote 'dev' is the same workspace" in again.stderr and "amlvc init --remote dev" in again.stderr


def test_init_adopts_an_existing_repository_without_touching_other_files(run_cli: Any, tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    (tmp_path / "notes.txt").write_text("mine\n")
    (tmp_path / "sub").mkdir()
    result = run_cli(["init"], cwd=tmp_path / "sub")  # from a subdirectory: the work tree root is used
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "amlvc.toml").is_file()
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\n.amlvc/\n"
    assert "notes.txt" not in git(tmp_path, "ls-files")


@pytest.mark.parametrize("args", [
    ["--location", "West Europe"],
    ["--remote", "dev", "--workspace-id", WS],
    ["--remote", "dev", "--workspace-id", WS, "--endpoint", "http://h", "--location", "West Europe"],
    ["--remote", "dev", "--workspace-id", "XYZ", "--endpoint", "http://h"],
    ["--remote", "import", "--workspace-id", WS, "--endpoint", "http://h"],
    ["--remote", "dev", "--workspace-id", WS, "--endpoint", "http://h", "--token-env", "my token"],
])
def test_init_usage_errors_write_nothing(run_cli: Any, tmp_path: Path, args: list[str]) -> None:
    result = run_cli(["init", *args], cwd=tmp_path)
    assert result.exit_code == 2, result.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------- import


def test_import_one_commit_for_all_files_and_wsd_attached_by_title(run_cli: Any, repo: Path) -> None:
    files = [str(FIXTURES / n) for n in ("training--base.json", "predictive--base.json", "webservice--base.json")]
    result = run_cli(["import", *files, "--json"], cwd=repo)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert [i["slug"] for i in out["imported"]] == [TRAINING, PREDICTIVE, PREDICTIVE]
    assert [i["kind"] for i in out["imported"]] == ["experiment", "experiment", "wsd"]
    assert out["imported"][0]["secrets"] == 2
    assert len(git(repo, "log", "--format=%H").split()) == 2  # init + one import commit
    message = git(repo, "log", "-1", "--format=%B")
    assert "Amlvc-Remote: import" in message and "Amlvc-Source: webservice--base.json" in message
    tree = git(repo, "ls-files", "experiments").split()
    assert f"experiments/{PREDICTIVE}/webservice.json" in tree
    assert f"experiments/{TRAINING}/scripts/5e7a9c1b-3d5f-4a7b-9c1d-3e5f7a9b1c2d-41--r-script.R" in tree
    lock = json.loads((repo / "amlvc.lock").read_text())
    entry = lock["remotes"]["import"]["experiments"][TRAINING]
    assert entry["id"].endswith(".f-id.b3d5f7a9c1e34b5d8f0a2c4e6b8d0f2a")
    assert entry["identity"]["Creator"] == "jschmidt@contoso.com"
    assert git(repo, "status", "--porcelain") == ""


def test_wsd_alone_gets_its_own_directory(run_cli: Any, repo: Path) -> None:
    result = run_cli(["import", str(FIXTURES / "webservice--studio-export.json")], cwd=repo)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (repo / "experiments" / PREDICTIVE).iterdir()) == ["webservice.json"]
    assert run_cli(["verify"], cwd=repo).exit_code == 0


def test_same_name_different_experiment_gets_a_suffix(run_cli: Any, repo: Path, tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "training--base.json").read_text(encoding="utf-8"))
    doc["ExperimentId"] = doc["ExperimentId"].replace("b3d5f7a9c1e3", "77aa88bb99cc")
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps(doc), encoding="utf-8")
    assert run_cli(["import", str(FIXTURES / "training--base.json")], cwd=repo).exit_code == 0
    result = run_cli(["import", str(copy), "--json"], cwd=repo)
    assert json.loads(result.stdout)["imported"][0]["slug"] == f"{TRAINING}-77aa88bb"


def test_two_versions_of_one_experiment_in_one_import_are_refused(run_cli: Any, repo: Path) -> None:
    result = run_cli(["import", str(FIXTURES / "training--base.json"), str(FIXTURES / "training--node-added.json")],
                     cwd=repo)
    assert result.exit_code == 2 and "one at a time" in result.stderr
    assert not (repo / "experiments").exists()


# --------------------------------------------------------------------------------------------- export


def test_export_gives_back_the_document(run_cli: Any, repo: Path, tmp_path: Path) -> None:
    source = FIXTURES / "training--base.json"
    run_cli(["import", str(source)], cwd=repo)
    out = tmp_path / "out.json"
    result = run_cli(["export", TRAINING, "-o", str(out)], cwd=repo)
    assert result.exit_code == 0, result.stderr
    original = json.loads(source.read_text(encoding="utf-8"))
    exported = json.loads(out.read_text(encoding="utf-8"))
    dropped = {"Status", "NodeStatuses", "ParentExperimentId"}  # run state: not kept in git or in the lock
    assert list(exported) == [k for k in original if k not in dropped - {"ParentExperimentId"}]
    assert {k: v for k, v in exported.items() if k not in dropped} == \
        {k: v for k, v in original.items() if k not in dropped}
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert run_cli(["verify", str(out)], cwd=repo).exit_code == 0


def test_export_of_an_older_revision_and_to_stdout(run_cli: Any, repo: Path) -> None:
    run_cli(["import", str(FIXTURES / "training--base.json")], cwd=repo)
    run_cli(["import", str(FIXTURES / "training--param-changed.json")], cwd=repo)
    now = run_cli(["export", TRAINING, "-o", "-"], cwd=repo)
    old = run_cli(["export", TRAINING, "--rev", "HEAD~1", "-o", "-"], cwd=repo)
    assert now.exit_code == old.exit_code == 0
    assert "1E-06" in now.stdout and "1E-06" not in old.stdout and "1E-07" in old.stdout


def test_export_by_name_or_id(run_cli: Any, repo: Path) -> None:
    run_cli(["import", str(FIXTURES / "training--base.json")], cwd=repo)
    by_slug = run_cli(["export", TRAINING, "-o", "-"], cwd=repo).stdout
    assert by_slug
    assert run_cli(["export", "Kündigung – Training ✓", "-o", "-"], cwd=repo).stdout == by_slug
    experiment_id = "c4e6a8b0d2f44a6c8e0a2c4e6b8d0f13.f-id.b3d5f7a9c1e34b5d8f0a2c4e6b8d0f2a"
    assert run_cli(["export", experiment_id, "-o", "-"], cwd=repo).stdout == by_slug


def test_export_without_secret_values_leaves_placeholders_and_warns(run_cli: Any, repo: Path) -> None:
    run_cli(["import", str(FIXTURES / "training--base.json")], cwd=repo)
    (repo / ".amlvc" / "secrets.json").unlink()
    result = run_cli(["export", TRAINING, "-o", "-"], cwd=repo)
    assert result.exit_code == 0
    assert "${secret:ACCOUNT_KEY_11}" in result.stdout
    assert "Warning: no value for ACCOUNT_KEY_11, STORAGE_CONNECTION_17" in result.stderr
    filled = run_cli(["export", TRAINING, "-o", "-"], cwd=repo,
                     env={"AMLVC_SECRET_ACCOUNT_KEY_11": "from-env", "AMLVC_SECRET_STORAGE_CONNECTION_17": "k"})
    assert '"from-env"' in filled.stdout and "Warning" not in filled.stderr


def test_export_webservice(run_cli: Any, repo: Path) -> None:
    run_cli(["import", str(FIXTURES / "predictive--base.json"), str(FIXTURES / "webservice--base.json")], cwd=repo)
    result = run_cli(["export", PREDICTIVE, "--webservice", "-o", "-"], cwd=repo)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    original = json.loads((FIXTURES / "webservice--base.json").read_text(encoding="utf-8"))
    assert doc == original


# ------------------------------------------------------------------------------------- normalize, verify


def test_normalize_check_is_a_silent_pre_commit_hook(run_cli: Any, repo: Path) -> None:
    run_cli(["import", str(FIXTURES / "training--base.json"), str(FIXTURES / "webservice--base.json")], cwd=repo)
    clean = run_cli(["normalize", "--check"], cwd=repo)
    assert (clean.exit_code, clean.stdout, clean.stderr) == (0, "", "")
    path = repo / "experiments" / TRAINING / "experiment.json"
    original = path.read_bytes()
    path.write_text(json.dumps(json.loads(original)), encoding="utf-8")  # valid, but not canonical
    dirty = run_cli(["normalize", "--check"], cwd=repo)
    assert dirty.exit_code == 1
    assert dirty.stdout.splitlines() == [f"experiments/{TRAINING}/experiment.json"]
    assert path.read_bytes() != original  # --check changes nothing
    limited = run_cli(["normalize", "--check", "amlvc.toml"], cwd=repo)
    assert limited.exit_code == 0
    fixed = run_cli(["normalize"], cwd=repo)
    assert fixed.exit_code == 0 and f"rewrote experiments/{TRAINING}/experiment.json" in fixed.stderr
    assert path.read_bytes() == original
    assert git(repo, "status", "--porcelain") == ""


def test_normalize_check_json(run_cli: Any, repo: Path) -> None:
    run_cli(["import", str(FIXTURES / "predictive--base.json")], cwd=repo)
    result = run_cli(["normalize", "--check", "--json"], cwd=repo)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"checked": [PREDICTIVE], "not_canonical": [], "rewritten": []}


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*--*.json")))
def test_verify_fixture_files(run_cli: Any, tmp_path: Path, name: str) -> None:
    result = run_cli(["verify", str(FIXTURES / name)], cwd=tmp_path)  # raw files need no repository
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "round-trip exactly" in result.stderr


def test_verify_reports_what_would_be_lost(run_cli: Any, tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "predictive--base.json").read_text(encoding="utf-8"))
    doc["Graph"]["ModuleNodes"][0]["$extra"] = 1  # amlvc's reserved key space: cannot round-trip
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = run_cli(["verify", "--json", str(path)], cwd=tmp_path)
    assert result.exit_code == 6
    assert "/Graph/ModuleNodes/0/$extra" in result.stderr


def test_verify_whole_repository(run_cli: Any, repo: Path) -> None:
    files = [str(FIXTURES / n) for n in ("training--base.json", "predictive--base.json", "webservice--base.json")]
    run_cli(["import", *files], cwd=repo)
    result = run_cli(["verify", "--json"], cwd=repo)
    assert result.exit_code == 0, result.stdout
    out = json.loads(result.stdout)
    assert out["ok"] and [i["source"] for i in out["items"]] == [
        f"experiments/{TRAINING}", f"experiments/{PREDICTIVE}", f"experiments/{PREDICTIVE}/webservice.json"]


def test_verify_of_repository_files_checks_the_experiments_holding_them(run_cli: Any, repo: Path) -> None:
    """What a pre-commit hook passes (files under experiments/) selects experiments; other paths are raw exports."""
    files = [str(FIXTURES / n) for n in ("training--base.json", "predictive--base.json", "webservice--base.json")]
    run_cli(["import", *files], cwd=repo)
    result = run_cli(["verify", "--json", f"experiments/{PREDICTIVE}/layout.json",
                      f"experiments/{PREDICTIVE}/webservice.json", str(FIXTURES / "training--base.json")], cwd=repo)
    assert result.exit_code == 0, result.stderr
    assert [i["source"] for i in json.loads(result.stdout)["items"]] == [
        str(FIXTURES / "training--base.json"), f"experiments/{PREDICTIVE}", f"experiments/{PREDICTIVE}/webservice.json"]
    inside = run_cli(["verify", "--json", "layout.json"], cwd=repo / "experiments" / TRAINING)  # relative to cwd
    assert [i["source"] for i in json.loads(inside.stdout)["items"]] == [f"experiments/{TRAINING}"]
    (repo / "experiments" / TRAINING / "experiment.json").write_text("{broken", encoding="utf-8")
    broken = run_cli(["verify", f"experiments/{TRAINING}/experiment.json"], cwd=repo)
    assert broken.exit_code == 6 and f"experiments/{TRAINING}/experiment.json: invalid JSON" in broken.stderr
    assert run_cli(["verify", f"experiments/{PREDICTIVE}/layout.json"], cwd=repo).exit_code == 0  # not selected


@pytest.mark.parametrize("command", ["init", "import", "export", "normalize", "verify"])
def test_help_has_examples(run_cli: Any, command: str) -> None:
    result = run_cli([command, "--help"])
    assert result.exit_code == 0 and "Examples:" in result.stdout
