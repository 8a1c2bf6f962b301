"""Hostile and broken inputs to the offline commands: the right exit code, one line naming the file and the
JSON path, no traceback, and the repository byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from amlvc.offline import importer
from amlvc.offline import init as offline
from tests.conftest import FIXTURES

BOMB = (
    "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
    + "".join(f"<!ENTITY lol{i} \"{('&lol' + (str(i - 1) if i > 1 else '') + ';') * 10}\">" for i in range(1, 10))
    + "]><DataV1><Meta /><NodePositions><NodePosition Node='&lol9;' Position='0,0,200,200'/></NodePositions>"
    "<NodeGroups /></DataV1>"
)


def base_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "training--base.json").read_text(encoding="utf-8"))
    return doc


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def wrong_type(tmp: Path) -> Path:
    doc = base_doc()
    doc["Graph"]["ModuleNodes"][3]["ModuleParameters"][0]["Value"] = 5
    return write_json(tmp / "wrong-type.json", doc)


def nodes_not_a_list(tmp: Path) -> Path:
    doc = base_doc()
    doc["Graph"]["ModuleNodes"] = {"a": 1}
    return write_json(tmp / "nodes-object.json", doc)


def entity_bomb(tmp: Path) -> Path:
    doc = base_doc()
    doc["Graph"]["SerializedClientData"] = BOMB
    return write_json(tmp / "bomb.json", doc)


def huge_string(tmp: Path) -> Path:
    doc = base_doc()
    doc["Summary"] = "x" * (50 * 1024 * 1024)
    return write_json(tmp / "huge.json", doc)


def malformed(tmp: Path) -> Path:
    path = tmp / "malformed.json"
    path.write_text('{\n  "ExperimentId": "a",\n  "Graph": {,\n}\n', encoding="utf-8")
    return path


def unknown_schema(tmp: Path) -> Path:
    return write_json(tmp / "unknown.json", {"hello": "world", "items": [1, 2]})


def top_level_list(tmp: Path) -> Path:
    return write_json(tmp / "list.json", [base_doc()])


def not_utf8(tmp: Path) -> Path:
    path = tmp / "latin1.json"
    path.write_bytes('{"Description": "K\u00fcndigung"}'.encode("latin-1"))
    return path


def deep_nesting(tmp: Path) -> Path:
    path = tmp / "deep.json"
    path.write_text('{"Graph": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    return path


def wsd_wrong_type(tmp: Path) -> Path:
    doc = json.loads((FIXTURES / "webservice--base.json").read_text(encoding="utf-8"))
    doc["properties"]["package"]["edges"] = "node1 -> node3"
    return write_json(tmp / "wsd-wrong-type.json", doc)


def missing(tmp: Path) -> Path:
    return tmp / "does-not-exist.json"


def directory(tmp: Path) -> Path:
    (tmp / "a-directory.json").mkdir()
    return tmp / "a-directory.json"


# name -> (make the file, exit code, texts the message must contain besides the file name)
CASES: dict[str, tuple[Callable[[Path], Path], int, tuple[str, ...]]] = {
    "malformed JSON": (malformed, 6, ("line 3",)),
    "missing file": (missing, 3, ("no such file",)),
    "directory": (directory, 3, ("directory",)),
    "wrong JSON type": (wrong_type, 6, ("/Graph/ModuleNodes/3/ModuleParameters/0/Value", "string")),
    "nodes not a list": (nodes_not_a_list, 6, ("/Graph/ModuleNodes",)),
    "unknown schema": (unknown_schema, 6, ("unknown schema",)),
    "top-level list": (top_level_list, 6, ("unknown schema",)),
    "not UTF-8": (not_utf8, 6, ("UTF-8",)),
    "XML entity bomb": (entity_bomb, 6, ("/Graph/SerializedClientData",)),
    "50 MB string": (huge_string, 6, ("/Summary",)),
    "deep nesting": (deep_nesting, 6, ("nested too deeply",)),
    "WSD wrong type": (wsd_wrong_type, 6, ("/properties/package/edges", "expected a list")),
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def snapshot(root: Path) -> tuple[str, str, dict[str, str]]:
    """HEAD, `git status --porcelain` and the hash of every file of the work tree (ignored ones included)."""
    files = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts}
    return git(root, "rev-parse", "HEAD"), git(root, "status", "--porcelain", "--ignored"), files


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    offline.init(root)
    importer.import_files(root, [FIXTURES / "predictive--base.json"])
    return root


def check_message(stderr: str, file: Path, texts: tuple[str, ...]) -> None:
    message = stderr.strip()
    assert "\n" not in message, message
    assert message.startswith("Error: ") and "Traceback" not in message
    assert str(file) in message, message
    for text in texts:
        assert text in message, message
    assert len(message) < 500  # a 50 MB value is never echoed


@pytest.mark.parametrize("case", sorted(CASES))
def test_import_refuses_and_writes_nothing(run_cli: Any, repo: Path, tmp_path: Path, case: str) -> None:
    make, code, texts = CASES[case]
    bad = make(tmp_path)
    before = snapshot(repo)
    result = run_cli(["import", str(FIXTURES / "training--base.json"), str(bad)], cwd=repo)
    assert result.exit_code == code, result.stderr
    assert result.exception is None
    check_message(result.stderr, bad, texts)
    assert snapshot(repo) == before


@pytest.mark.parametrize("case", sorted(CASES))
def test_verify_refuses(run_cli: Any, tmp_path: Path, case: str) -> None:
    make, code, texts = CASES[case]
    bad = make(tmp_path)
    result = run_cli(["verify", str(bad)], cwd=tmp_path)
    assert result.exit_code == code, result.stderr
    check_message(result.stderr, bad, texts)


@pytest.mark.parametrize("args", [["import", "x.json"], ["export", "x", "-o", "out.json"], ["normalize", "--check"],
                                  ["verify"]])
def test_outside_an_amlvc_repository(run_cli: Any, tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "x.json").write_bytes((FIXTURES / "training--base.json").read_bytes())
    result = run_cli(args, cwd=tmp_path)
    assert result.exit_code == 3
    assert "not inside an amlvc repository" in result.stderr and "amlvc init" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_git_repository_without_amlvc_is_not_an_amlvc_repository(run_cli: Any, tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    result = run_cli(["import", str(FIXTURES / "training--base.json")], cwd=tmp_path)
    assert result.exit_code == 3 and "amlvc init" in result.stderr


def test_bad_files_in_the_repository(run_cli: Any, repo: Path) -> None:
    """A hand-broken experiment.json: normalize, verify and export name the file and the path; nothing changes."""
    path = repo / "experiments" / "kundigung-training-predictive-exp" / "experiment.json"
    canon = json.loads(path.read_text(encoding="utf-8"))
    canon["Graph"]["ModuleNodes"] = []
    path.write_text(json.dumps(canon), encoding="utf-8")
    before = snapshot(repo)
    for args in (["normalize", "--check"], ["normalize"], ["verify"],
                 ["export", "kundigung-training-predictive-exp", "-o", "out.json"]):
        result = run_cli(args, cwd=repo)
        assert result.exit_code == 6, (args, result.stderr)
        assert "experiments/kundigung-training-predictive-exp" in result.stderr
        assert "/Graph/ModuleNodes" in result.stderr
        assert result.stderr.strip().count("\n") == 0
        assert snapshot(repo) == before


def test_export_into_a_directory_is_refused(run_cli: Any, repo: Path) -> None:
    (repo / "out").mkdir()
    before = snapshot(repo)
    result = run_cli(["export", "kundigung-training-predictive-exp", "-o", "out"], cwd=repo)
    assert result.exit_code == 2 and "is a directory" in result.stderr
    assert snapshot(repo) == before


def test_export_of_an_unknown_experiment_or_revision(run_cli: Any, repo: Path) -> None:
    before = snapshot(repo)
    for args, text in ((["export", "nope", "-o", "o.json"], "nope"),
                       (["export", "../etc", "-o", "o.json"], "not an experiment slug"),
                       (["export", "kundigung-training-predictive-exp", "--rev", "v9", "-o", "o.json"], "v9")):
        result = run_cli(args, cwd=repo)
        assert result.exit_code == 3, result.stderr
        assert text in result.stderr
    assert snapshot(repo) == before


def test_import_over_uncommitted_changes_is_refused(run_cli: Any, repo: Path) -> None:
    path = repo / "experiments" / "kundigung-training-predictive-exp" / "experiment.json"
    path.write_text(path.read_text(encoding="utf-8").replace("Antwortspalten", "Meine Änderung"), encoding="utf-8")
    before = snapshot(repo)
    result = run_cli(["import", str(FIXTURES / "predictive--input-renamed.json")], cwd=repo)
    assert result.exit_code == 3
    assert "uncommitted changes" in result.stderr and "experiment.json" in result.stderr
    assert snapshot(repo) == before


def test_bad_config_and_lock_name_the_file(run_cli: Any, repo: Path) -> None:
    (repo / "amlvc.lock").write_text("{broken", encoding="utf-8")
    result = run_cli(["import", str(FIXTURES / "training--base.json")], cwd=repo)
    assert result.exit_code == 3 and "amlvc.lock" in result.stderr
    git(repo, "checkout", "--", "amlvc.lock")
    (repo / "amlvc.toml").write_text("[remotes.dev]\nworkspace_id = 'nope'\nendpoint = 'http://h'\n")
    result = run_cli(["import", str(FIXTURES / "training--base.json")], cwd=repo)
    assert result.exit_code == 3 and "amlvc.toml" in result.stderr and "workspace_id" in result.stderr
