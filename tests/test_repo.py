"""repo.py and worktree/ (lockfile, experiments, secretfile) in real git repositories under tmp_path."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from amlvc import repo
from amlvc.errors import InvalidDocument, LocalError, NotARepository
from amlvc.rules import WEBSERVICE_FILE
from amlvc.worktree import experiments, files, lockfile, secretfile


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _, created = repo.init_repo(tmp_path / "r")
    assert created
    (tmp_path / "r" / "amlvc.toml").write_text("[amlvc]\nformat = 1\n")
    return tmp_path / "r"


def test_find_root_from_a_subdirectory(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    assert repo.find_root(root / "a" / "b") == root.resolve()


def test_find_root_outside_any_repository(tmp_path: Path) -> None:
    with pytest.raises(NotARepository, match="amlvc init"):
        repo.find_root(tmp_path)


def test_find_root_in_git_without_amlvc_toml(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(NotARepository):
        repo.find_root(tmp_path)


def test_init_adopts_an_existing_repository(root: Path) -> None:
    again, created = repo.init_repo(root)
    assert not created and again.working_tree_dir is not None


def test_atomic_write_skips_unchanged_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "d" / "f.json"
    assert files.atomic_write(target, b"one", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    mtime = target.stat().st_mtime_ns
    assert not files.atomic_write(target, b"one")
    assert target.stat().st_mtime_ns == mtime
    assert files.atomic_write(target, b"two") and target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]  # no temp file left


def test_commit_only_the_given_paths_with_trailers(root: Path) -> None:
    (root / "mine.txt").write_text("a\n")
    (root / "theirs.txt").write_text("b\n")
    git(root, "add", "theirs.txt")  # the user's staged work must stay staged and out of our commit
    sha = repo.commit_paths(root, ["mine.txt", "amlvc.toml"], "Import things", trailers=[("Amlvc-Remote", "import")])
    assert sha == repo.head(root)
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["amlvc.toml", "mine.txt"]
    assert "Amlvc-Remote: import" in git(root, "log", "-1", "--format=%B")
    assert git(root, "diff", "--cached", "--name-only").split() == ["theirs.txt"]
    assert repo.commit_paths(root, ["mine.txt"], "nothing") is None  # unchanged: no commit
    assert repo.head(root) == sha


def test_commit_deletion_and_author(root: Path) -> None:
    from datetime import UTC, datetime

    (root / "d").mkdir()
    (root / "d" / "x.txt").write_text("x\n")
    repo.commit_paths(root, ["d/x.txt", "amlvc.toml"], "add")
    assert files.remove_file(root / "d" / "x.txt")
    assert not (root / "d").exists()
    when = datetime(2017, 6, 12, 8, 41, 27, tzinfo=UTC)
    sha = repo.commit_paths(root, ["d/x.txt"], "remove", author_name="J Schmidt", author_email="js@contoso.com",
                            author_date=when)
    assert sha is not None
    expected = f"J Schmidt <js@contoso.com> {int(when.timestamp())}"
    assert git(root, "log", "-1", "--format=%an <%ae> %at").strip() == expected
    assert repo.list_at(root, "HEAD") == ["amlvc.toml"]


def test_read_and_list_at_revisions(root: Path) -> None:
    (root / "experiments" / "e" / "scripts").mkdir(parents=True)
    (root / "experiments" / "e" / "experiment.json").write_text("{}\n")
    (root / "experiments" / "e" / "scripts" / "a.R").write_text("x <- 1\r\n")
    first = repo.commit_paths(root, ["experiments", "amlvc.toml"], "one")
    (root / "experiments" / "e" / "scripts" / "a.R").write_text("x <- 2\n")
    assert repo.dirty_paths(root, ["experiments"]) == ["experiments/e/scripts/a.R"]
    assert repo.dirty_paths(root, ["experiments/e"]) and not repo.dirty_paths(root, ["amlvc.toml"])
    repo.commit_paths(root, ["experiments"], "two")
    assert first is not None
    assert repo.read_at(root, first, "experiments/e/scripts/a.R") == b"x <- 1\r\n"
    assert repo.read_at(root, "HEAD", "experiments/e/scripts/a.R") == b"x <- 2\n"
    assert repo.read_at(root, "HEAD", "experiments/e/missing") is None
    assert repo.list_at(root, "HEAD", "experiments/e") == ["experiments/e/experiment.json", "experiments/e/scripts/a.R"]
    assert repo.list_at(root, "HEAD", "nothing") == []
    with pytest.raises(LocalError, match="unknown revision"):
        repo.read_at(root, "no-such-rev", "x")


def test_head_of_an_empty_repository(root: Path) -> None:
    assert repo.head(root) is None


def test_lock_round_trip_keeps_unknown_sections(root: Path) -> None:
    entry = lockfile.LockEntry(id="ws.f-id.g", etag="W/\"x\"", run_id=None, content_hash="abc",
                               identity={"Creator": "me", "IsLeaf": True}, extra={"future": 1})
    lock = lockfile.Lock(sections={"dev": {"webservices": {"a": 1}}}).with_entry("import", "exp", entry)
    assert lockfile.write(root, lock)
    again = lockfile.load(root)
    assert again.entry("import", "exp") == entry
    assert again.slug_of("import", "ws.f-id.g") == "exp" and again.slug_of_any("ws.f-id.g") == "exp"
    assert again.sections == {"dev": {"webservices": {"a": 1}}}
    assert lockfile.dumps(again) == (root / "amlvc.lock").read_bytes()
    assert not lockfile.write(root, again)
    assert again.without_entry("import", "exp").entry("import", "exp") is None


def test_lock_errors_name_the_file(root: Path) -> None:
    (root / "amlvc.lock").write_text('{"format": 1, "remotes": {"dev": {"experiments": {"x": {"id": 3}}}}}')
    with pytest.raises(LocalError, match=r"amlvc.lock: /remotes/dev/experiments/x/id"):
        lockfile.load(root)


@pytest.mark.parametrize(("name", "slug"), [
    ("Kündigung – Training ✓", "kundigung-training"),
    ("../../etc/passwd", "etc-passwd"),
    ("✓✓✓", "experiment"),
    ("A" * 100, "a" * 64),
    ("Churn -- v2 (final)", "churn-v2-final"),
])
def test_slugify(name: str, slug: str) -> None:
    assert experiments.slugify(name) == slug
    assert experiments.SLUG.match(slug)


def test_unique_slug_appends_a_short_id() -> None:
    ws = "c4e6a8b0d2f44a6c8e0a2c4e6b8d0f13"
    taken = {"churn"}
    slug = experiments.unique_slug("Churn", f"{ws}.f-id.b3d5f7a9c1e34b5d8f0a2c4e6b8d0f2a", taken)
    assert slug == "churn-b3d5f7a9"
    long = experiments.unique_slug("x" * 80, f"{ws}.f-id.b3d5f7a9c1e34b5d8f0a2c4e6b8d0f2a", {"x" * 64})
    assert len(long) <= 64 and long.endswith("-b3d5f7a9")
    third = experiments.unique_slug("Churn", f"{ws}.f-id.b3d5f7a9c1e34b5d8f0a2c4e6b8d0f2a", taken | {slug})
    assert third not in taken | {slug} and len(third) <= 64


def test_write_files_replaces_stale_scripts_and_refuses_escapes(root: Path) -> None:
    keep = (WEBSERVICE_FILE,)
    touched = experiments.write(root, "exp", {"experiment.json": b"{}\n", "scripts/a.R": b"1\n"}, keep=keep)
    assert touched == ["experiments/exp/experiment.json", "experiments/exp/scripts/a.R"]
    experiments.write(root, "exp", {**experiments.read(root, "exp"), WEBSERVICE_FILE: b"{}\n"})
    touched = experiments.write(root, "exp", {"experiment.json": b"{}\n", "scripts/b.R": b"2\n"}, keep=keep)
    assert touched == ["experiments/exp/scripts/b.R", "experiments/exp/scripts/a.R"]
    assert experiments.read(root, "exp") == {"experiment.json": b"{}\n", "scripts/b.R": b"2\n",
                                             WEBSERVICE_FILE: b"{}\n"}
    assert experiments.slugs(root) == ["exp"]
    for bad in ("../x", "scripts/../../x", "/etc/x", "a\\b", "scripts/a\x00b"):
        with pytest.raises(InvalidDocument):
            experiments.write(root, "exp", {bad: b""})
    with pytest.raises(LocalError):
        experiments.folder(root, "../up")


def test_secrets_file_mode_and_lookup(root: Path) -> None:
    assert secretfile.store(root, "import", {"exp": {"ACCOUNT_KEY_11": "k1"}})
    assert secretfile.store(root, "dev", {"exp": {"ACCOUNT_KEY_11": "k2", "OTHER": "o"}})
    assert not secretfile.store(root, "dev", {"exp": {"OTHER": "o"}})
    path = root / ".amlvc" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secretfile.stored(root, "exp") == {"ACCOUNT_KEY_11": "k1", "OTHER": "o"}
    assert secretfile.stored(root, "exp", ["dev"])["ACCOUNT_KEY_11"] == "k2"
    fills, found = secretfile.lookup(["ACCOUNT_KEY_11", "NOPE"], secretfile.stored(root, "exp"),
                                     environ={"AMLVC_SECRET_ACCOUNT_KEY_11": "env"})
    assert found == {"ACCOUNT_KEY_11": "env"} and [f.name for f in fills if f.source is None] == ["NOPE"]
