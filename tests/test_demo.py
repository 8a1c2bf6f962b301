"""`amlvc demo`: the whole job on an embedded workspace, through the installed command, exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_and_keeps_the_repository(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "amlvc", "demo", "--keep", str(keep)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env={**os.environ})
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # the story goes to stderr
    for words in ("amlvc pull", "changes a parameter", "amlvc diff", "amlvc push", "amlvc restore",
                  "synced: kundigung-training", "~ dataset Kundenstamm 2016.csv: version 1 → 2",
                  "~ parameter Merkmale berechnen"):  # the custom module by its name in the module list
        assert words in result.stderr
    log = subprocess.run(["git", "log", "--format=%s"], cwd=keep, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert log[0].startswith("Restore kundigung-training") and len(log) >= 5
    assert subprocess.run(["git", "status", "--porcelain"], cwd=keep, capture_output=True, text=True,
                          check=True).stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # nothing else left behind


def test_demo_refuses_a_non_empty_keep_directory(tmp_path: Path, run_cli: object) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    result = run_cli(["demo", "--keep", str(tmp_path / "full")], cwd=tmp_path)  # type: ignore[operator]
    assert result.exit_code == 3 and "not empty" in result.stderr
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["file"]
