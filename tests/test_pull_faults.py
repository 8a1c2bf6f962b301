"""Pull under injected faults and a SIGKILL at any moment: same result, or nothing changed, and never a broken repo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pullkit import (
    fingerprint,
    git,
    init_repo,
    seed_workspace,
    spawn_pull,
    start,
    tree_without_config,
    wait_until_started,
)

from amlvc.rules import JOURNAL_FILE as JOURNAL_NAME


def pull_tree(run_cli: Any, tmp_path: Path, data: Path, name: str, **options: Any) -> tuple[Path, int]:
    handle = start(data, **options)
    try:
        root = init_repo(run_cli, tmp_path, handle, name)
        result = run_cli(["pull"], cwd=root)
        return root, result.exit_code
    finally:
        handle.stop()



@pytest.mark.usefixtures("token")
def test_twenty_percent_faults_give_the_fault_free_commit(tmp_path: Path, run_cli: Any) -> None:
    data = tmp_path / "data"
    seed_workspace(data, 4)
    clean, code = pull_tree(run_cli, tmp_path, data, "clean")
    assert code == 0
    faulty, code = pull_tree(run_cli, tmp_path, data, "faulty", fault_rate=0.2, fault_seed=7)
    assert code == 0
    assert tree_without_config(faulty) == tree_without_config(clean)
    assert git(faulty, "status", "--porcelain") == ""


@pytest.mark.usefixtures("token")
def test_every_request_failing_exits_5_and_leaves_the_repository_as_it_was(tmp_path: Path, run_cli: Any) -> None:
    data = tmp_path / "data"
    seed_workspace(data, 2)
    handle = start(data, fault_rate=1.0, fault_seed=3)
    try:
        root = init_repo(run_cli, tmp_path, handle)
        before = fingerprint(root)
        result = run_cli(["pull"], cwd=root)
    finally:
        handle.stop()
    assert result.exit_code == 5
    assert "workspace 'dev'" in result.stderr
    assert fingerprint(root) == before



def _kill_when(proc: subprocess.Popen[bytes], ready: Any, timeout: float = 60.0) -> bool:
    """SIGKILL the pull as soon as `ready()` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        assert time.monotonic() < deadline, "pull did not finish"
        time.sleep(0.0005)
    return False


def _fsck(root: Path) -> None:
    result = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.usefixtures("token")
def test_sigkill_at_any_moment_leaves_a_sound_repository_that_the_next_pull_completes(
        tmp_path: Path, run_cli: Any) -> None:
    data = tmp_path / "data"
    seed_workspace(data, 12)
    reference, code = pull_tree(run_cli, tmp_path, data, "reference")
    assert code == 0
    handle = start(data, latency_ms=40)
    try:
        moments: list[tuple[str, Any]] = []
        interrupted: list[str] = []
        # while fetching (nothing written yet) ...
        moments.append(("fetching", None))
        # ... and while writing: the journal exists from the first write to the commit
        for delay in (0.0, 0.01, 0.03, 0.08):
            moments.append((f"writing+{delay}", delay))
        for index, (label, when) in enumerate(moments):
            root = init_repo(run_cli, tmp_path, handle, f"killed-{index}")
            head = git(root, "rev-parse", "HEAD").strip()
            proc = spawn_pull(root)
            if label == "fetching":
                started = time.monotonic()
                killed = _kill_when(proc, lambda started=started: time.monotonic() - started > 0.3)
            else:
                journal = root / JOURNAL_NAME
                seen: list[float] = []

                def ready(journal: Path = journal, seen: list[float] = seen, when: float = when) -> bool:
                    if not seen and journal.exists():
                        seen.append(time.monotonic())
                    return bool(seen) and time.monotonic() - seen[0] >= when

                killed = _kill_when(proc, ready)
            _fsck(root)
            status = git(root, "status", "--porcelain", "--untracked-files=all")
            if killed and git(root, "rev-parse", "HEAD").strip() == head and status:
                interrupted.append(label)  # the kill landed between the first write and the commit
            result = run_cli(["pull", "--json"], cwd=root)
            assert result.exit_code == 0, (label, result.stderr)
            _fsck(root)
            assert git(root, "status", "--porcelain") == "", label
            differs = set(tree_without_config(root).splitlines()) ^ set(tree_without_config(reference).splitlines())
            assert not differs, (label, sorted(differs))
            lock = json.loads((root / "amlvc.lock").read_text())
            assert len(lock["remotes"]["dev"]["experiments"]) == 12
            assert not (root / JOURNAL_NAME).exists()
        # at least one kill must have cut a pull in the middle of its writes, or the test proved nothing
        assert interrupted, "no kill landed between the first write and the commit"
    finally:
        handle.stop()


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize("failure, code, words", [
    ("os", 3, "cannot write (File exists)"),
    ("ctrl-c", 130, "Interrupted."),
])
def test_a_pull_failing_part_way_through_its_writes_puts_everything_back(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch, failure: str, code: int,
        words: str) -> None:
    """A write the OS refuses (or Ctrl-C) after some files are written: the error, and the repository as it
    was, at once (not only at the next pull)."""
    from amlvc.worktree import files

    data = tmp_path / "data"
    seed_workspace(data, 4)
    handle = start(data)
    try:
        root = init_repo(run_cli, tmp_path, handle)
        before = fingerprint(root)
        real = files.replace_bytes
        calls: list[Path] = []

        def replace_until_full(path: Path, data: bytes, made: set[str]) -> bool:
            calls.append(path)
            if len(calls) == 5:  # the first experiments are on disk by now
                if failure == "ctrl-c":
                    raise KeyboardInterrupt
                path = root / "amlvc.toml" / "under-a-file.json"  # a real OSError, through the real write
            return real(path, data, made)

        monkeypatch.setattr(files, "replace_bytes", replace_until_full)
        result = run_cli(["pull"], cwd=root)
        assert result.exit_code == code, result.stderr
        assert words in result.stderr
        assert len(calls) == 5 and calls[0].is_relative_to(root / "experiments")
        assert fingerprint(root) == before  # no file, no directory, no journal left; HEAD and .git as before
        monkeypatch.setattr(files, "replace_bytes", real)
        again = run_cli(["pull", "--json"], cwd=root)
        assert again.exit_code == 0, again.stderr
        assert len(json.loads(again.stdout)["added"]) == 4
    finally:
        handle.stop()


@pytest.mark.usefixtures("token")
def test_ctrl_c_while_fetching_stops_at_once_with_130_and_nothing_written(tmp_path: Path, run_cli: Any) -> None:
    data = tmp_path / "data"
    seed_workspace(data, 6)
    handle = start(data, latency_ms=300)  # 6 GETs on 2 threads: about a second of fetching
    try:
        root = init_repo(run_cli, tmp_path, handle)
        before = fingerprint(root)
        proc = spawn_pull(root, jobs=2, output=subprocess.PIPE)
        wait_until_started(proc)
        time.sleep(0.4)  # listed, fetching
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _out, raw = proc.communicate(timeout=30)
        err = raw.decode()
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == "Interrupted." and "Traceback" not in err
        assert time.monotonic() - sent < 5  # it does not finish the fetch first
        assert fingerprint(root) == before
    finally:
        handle.stop()
