"""Pull with worker processes (a pull of many experiments run as its own process): same result, no leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pullkit import TOKEN, TOKEN_ENV, git, init_repo, seed_workspace, start, tree_without_config

from amlvc.sync.workers import POOL_MIN

COUNT = POOL_MIN + 4  # enough experiments for `amlvc pull` to normalize in worker processes


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return seed_workspace(tmp_path / "data", COUNT)


def _pull_process(root: Path) -> subprocess.Popen[bytes]:
    # A process of its own: in-process (with the test's server thread running) pull never forks workers.
    env = {**os.environ, TOKEN_ENV: TOKEN}
    return subprocess.Popen([sys.executable, "-m", "amlvc", "pull", "--jobs", "4"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _processes_in(root: Path) -> list[int]:
    """amlvc processes whose working directory is `root` (a pull and its workers; not git, which this
    test process's own GitPython may keep running there until its repository objects are collected)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == root.resolve() and b"amlvc" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _described(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            out.append("")
    return out


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux only")
@pytest.mark.usefixtures("token")
def test_workers_give_the_in_process_result_even_under_faults(tmp_path: Path, workspace: Path,
                                                               run_cli: Any) -> None:
    handle = start(workspace)
    try:
        reference = init_repo(run_cli, tmp_path, handle, "reference")
        assert run_cli(["pull"], cwd=reference).exit_code == 0  # in-process: no workers
    finally:
        handle.stop()
    handle = start(workspace, fault_rate=0.2, fault_seed=11)
    try:
        root = init_repo(run_cli, tmp_path, handle, "workers")
        proc = _pull_process(root)
        _out, err = proc.communicate(timeout=120)
    finally:
        handle.stop()
    assert proc.returncode == 0, err.decode()
    assert tree_without_config(root) == tree_without_config(reference)
    assert git(root, "status", "--porcelain") == ""
    assert not _processes_in(root)


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux only")
@pytest.mark.usefixtures("token")
def test_a_killed_pull_takes_its_workers_and_its_lock_along(tmp_path: Path, workspace: Path, run_cli: Any) -> None:
    handle = start(workspace, latency_ms=40)
    try:
        root = init_repo(run_cli, tmp_path, handle)
        head = git(root, "rev-parse", "HEAD")
        proc = _pull_process(root)
        deadline = time.monotonic() + 60
        while len(_processes_in(root)) < 2:  # the pull and at least one worker
            assert proc.poll() is None and time.monotonic() < deadline, "no worker processes started"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while _processes_in(root):
            assert time.monotonic() < deadline, f"outlived the pull: {_described(_processes_in(root))}"
            time.sleep(0.01)
        assert git(root, "rev-parse", "HEAD") == head
        result = run_cli(["pull", "--json"], cwd=root)  # the operation lock is free again
        assert result.exit_code == 0, result.stderr
        assert git(root, "status", "--porcelain") == ""
    finally:
        handle.stop()
