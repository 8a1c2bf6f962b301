"""Both ways of committing a pull (`amlvc.pack`: one pack by `git fast-import`, or `git add` + `git commit`): the
same commits, the same repository afterwards, the same safety when a pull is cut off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pullkit import (
    client,
    delete,
    fingerprint,
    git,
    init_repo,
    seed_workspace,
    set_parameter,
    spawn_pull,
    start,
    studio_edit,
    tree_without_config,
    wait_until_started,
)

from amlvc import repo
from amlvc.repo import pack
from amlvc.rules import JOURNAL_FILE
from amlvc.server.runner import ServerHandle


@pytest.fixture(autouse=True)
def per_repository_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests choose the path per repository; a suite run with `amlvc.pack` forced from the environment
    (GIT_CONFIG_COUNT…, which outranks the repository's config) must not choose for them."""
    for key in [k for k in os.environ if k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
                or k in ("GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS")]:
        monkeypatch.delenv(key)


def repo_with(run_cli: Any, tmp_path: Path, handle: ServerHandle, setting: str, name: str = "") -> Path:
    root = init_repo(run_cli, tmp_path, handle, name or setting)
    git(root, "config", pack.SETTING, setting)
    git(root, "config", "fastimport.unpackLimit", "1")  # a pack even for these few objects, to see it is one
    return root


def pull(run_cli: Any, root: Path, *args: str) -> dict[str, Any]:
    result = run_cli(["pull", "--json", *args], cwd=root)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def packs(root: Path) -> int:
    return len(list((root / ".git" / "objects" / "pack").glob("pack-*.pack")))


def state(root: Path) -> tuple[str, str, str, str]:
    """HEAD, the reflog's last line, the index as git lists it, COMMIT_EDITMSG: what either way must leave."""
    return (git(root, "rev-parse", "HEAD"), git(root, "reflog", "-1", "--format=%gs"),
            git(root, "ls-files", "-s"), (root / ".git" / "COMMIT_EDITMSG").read_text())


def assert_sound(root: Path, *, killed: bool = False) -> None:
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    # Fresh stat data in the index, as `git add` leaves it: the plumbing sees a clean tree without a refresh.
    assert subprocess.run(["git", "diff-files", "--quiet"], cwd=root).returncode == 0
    fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=root, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    # A fast-import killed with its pull leaves its unfinished temp pack, as any killed git does (`git gc`
    # removes it after two weeks); only then.
    assert killed or not list((root / ".git" / "objects" / "pack").glob("tmp_*"))


@pytest.mark.usefixtures("token")
def test_pack_and_plain_commits_are_the_same_commits(tmp_path: Path, run_cli: Any) -> None:
    data = seed_workspace(tmp_path / "data", 6)
    handle = start(data)
    try:
        packed = repo_with(run_cli, tmp_path, handle, "always")
        plain = repo_with(run_cli, tmp_path, handle, "never")
        for root in (packed, plain):
            assert len(pull(run_cli, root)["added"]) == 6
        assert state(packed) == state(plain)
        assert (packs(packed), packs(plain)) == (1, 0)

        api = client(handle)
        ids = sorted(str(e["ExperimentId"]) for e in api.list_experiments())
        studio_edit(api, ids[0], lambda doc: set_parameter(doc, "77"))
        delete(api, ids[1])
        for root in (packed, plain):
            result = pull(run_cli, root, "--prune")
            assert len(result["changed"]) == 1 and len(result["removed"]) == 1
        assert state(packed) == state(plain)
        for root in (packed, plain):
            assert_sound(root)
            assert pull(run_cli, root)["commit"] is None
    finally:
        handle.stop()


@pytest.mark.usefixtures("token")
def test_restore_of_a_revision_commits_through_the_pack(tmp_path: Path, run_cli: Any) -> None:
    handle = start(tmp_path / "data", seed=("training--base.json",))
    try:
        root = repo_with(run_cli, tmp_path, handle, "always")
        pull(run_cli, root)
        api = client(handle)
        exp = str(api.list_experiments()[0]["ExperimentId"])
        studio_edit(api, exp, lambda doc: set_parameter(doc, "45"))
        pull(run_cli, root)
        old = git(root, "show", "HEAD~1:experiments/kundigung-training/experiment.json")
        result = run_cli(["restore", "kundigung-training", "--rev", "HEAD~1", "--json"], cwd=root)
        assert result.exit_code == 0, result.stderr
        assert (root / "experiments" / "kundigung-training" / "experiment.json").read_text() == old
        assert_sound(root)
        assert packs(root) >= 1
    finally:
        handle.stop()


def _files_repo(tmp_path: Path, name: str, setting: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", pack.SETTING, setting)
    git(root, "config", "fastimport.unpackLimit", "1")
    (root / "keep.txt").write_text("keep\n")
    git(root, "add", "keep.txt")
    git(root, "commit", "-q", "-m", "first")
    return root


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.mark.parametrize("case", ["stray file", "other staged change", "post-commit hook", "signed commits"])
def test_the_pack_steps_aside_where_the_plain_commit_would_differ(tmp_path: Path, case: str) -> None:
    contents: dict[str, bytes | None] = {f"d/f{i}.json": b'{"n": %d}\n' % i for i in range(5)}
    message = "  Pull from dev: 5 added  \n\n\nbody  \n"
    heads = []
    for setting in ("always", "never"):
        root = _files_repo(tmp_path, setting, setting)
        _write(root, {k: v for k, v in contents.items() if v is not None})
        if case == "stray file":
            (root / "d" / ".stray").write_text("git add --all takes me\n")
        elif case == "other staged change":
            (root / "keep.txt").write_text("staged, stays out of the commit\n")
            git(root, "add", "keep.txt")
        elif case == "post-commit hook":
            hook = root / ".git" / "hooks" / "post-commit"
            hook.write_text("#!/bin/sh\necho ran >> .git/hook-ran\n")
            hook.chmod(0o755)
        else:
            git(root, "config", "commit.gpgsign", "true")
            assert pack.mode(root) is None
            git(root, "config", "commit.gpgsign", "false")  # no gpg here: only the decision is tested
        sha = repo.commit_paths(root, ["d"], message, contents=contents)
        heads.append((sha, git(root, "ls-files", "-s"), git(root, "status", "--porcelain"), packs(root)))
        if case == "post-commit hook":
            assert (root / ".git" / "hook-ran").read_text() == "ran\n"
    assert heads[0][:3] == heads[1][:3]
    # Packs written: none where the pack stepped aside at once; one left unused (its objects in the commit
    # `git add` made) when the work tree held a file it did not name; one where it made the commit.
    assert [h[3] for h in heads] == [1 if case in ("stray file", "signed commits") else 0, 0]


def test_a_commit_of_nothing_new_is_none_either_way(tmp_path: Path) -> None:
    for setting in ("always", "never"):
        root = _files_repo(tmp_path, setting, setting)
        before = git(root, "rev-parse", "HEAD")
        assert repo.commit_paths(root, ["keep.txt"], "again", contents={"keep.txt": b"keep\n"}) is None
        assert git(root, "rev-parse", "HEAD") == before
        assert git(root, "status", "--porcelain") == ""


@settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")), deadline=None)
@given(st.lists(st.sampled_from(["", " ", "\t", "x", "  y ", "# z", "\r", "é ", "a\r", "b\x0b", "\x0c", "\x0c "]),
                max_size=8))
def test_message_cleanup_is_git_stripspace(lines: list[str]) -> None:
    message = "\n".join(lines).encode()
    expected = subprocess.run(["git", "stripspace"], input=message, capture_output=True, check=True).stdout
    assert pack.stripspace(message) == expected



@pytest.mark.usefixtures("token")
def test_a_pull_killed_while_streaming_or_committing_is_sound_and_completed(tmp_path: Path, run_cli: Any) -> None:
    data = seed_workspace(tmp_path / "data", 8)
    handle = start(data)
    try:
        reference = repo_with(run_cli, tmp_path, handle, "never")
        pull(run_cli, reference)
    finally:
        handle.stop()
    handle = start(data, latency_ms=40)
    try:
        for index, delay in enumerate((0.15, 0.3, None, None)):
            root = repo_with(run_cli, tmp_path, handle, "always", f"killed-{index}")
            proc = spawn_pull(root)
            deadline = time.monotonic() + 60
            started = time.monotonic()
            while proc.poll() is None:
                journal = (root / JOURNAL_FILE).exists()
                if (delay is not None and time.monotonic() - started > delay) or (delay is None and journal):
                    if delay is None and index == 3:
                        time.sleep(0.02)  # into the commit
                    proc.kill()
                    break
                assert time.monotonic() < deadline
                time.sleep(0.0005)
            proc.wait()
            fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=root, capture_output=True, text=True)
            assert fsck.returncode == 0, fsck.stdout + fsck.stderr
            pull(run_cli, root)
            assert_sound(root, killed=True)
            assert tree_without_config(root) == tree_without_config(reference)
    finally:
        handle.stop()


@pytest.mark.usefixtures("token")
def test_ctrl_c_while_streaming_leaves_the_repository_exactly_as_it_was(tmp_path: Path, run_cli: Any) -> None:
    data = seed_workspace(tmp_path / "data", 6)
    handle = start(data, latency_ms=150)
    try:
        root = repo_with(run_cli, tmp_path, handle, "always")
        before = fingerprint(root)
        proc = spawn_pull(root, output=subprocess.PIPE)
        wait_until_started(proc)
        time.sleep(0.4)  # listed, fetching, the first blobs sent to fast-import
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()
        assert fingerprint(root) == before  # no pack, no temp file of fast-import
    finally:
        handle.stop()


@pytest.mark.usefixtures("token")
def test_a_write_refused_part_way_leaves_no_pack_behind(tmp_path: Path, run_cli: Any) -> None:
    data = seed_workspace(tmp_path / "data", 4)
    handle = start(data)
    try:
        root = repo_with(run_cli, tmp_path, handle, "always")
        # A folder where the pull writes a file (git does not see an empty folder): the OS refuses the rename.
        (root / "experiments" / "experiment-02" / "experiment.json").mkdir(parents=True)
        before = fingerprint(root)
        result = run_cli(["pull"], cwd=root)
        assert result.exit_code == 3, result.stderr
        assert fingerprint(root) == before  # the empty folder went too, with the folders the pull made
        assert len(pull(run_cli, root)["added"]) == 4
        assert_sound(root)
    finally:
        handle.stop()
