"""The user's git repository, through GitPython: finding it, files, reading revisions, staging and committing
(`pack`: a commit of many files as one pack). GitPython (30 ms to import) is imported where it is used: a
pull with nothing to fetch never needs it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from amlvc.errors import LocalError, NotARepository, RepoError
from amlvc.repo import pack
from amlvc.rules import CONFIG_FILE

if TYPE_CHECKING:
    import git

# ------------------------------------------------------------------------------------ finding the repository


def git_root(start: Path | str) -> Path | None:
    """The work tree root of the git repository containing `start`, or None."""
    if "GIT_DIR" not in os.environ and "GIT_WORK_TREE" not in os.environ:
        with contextlib.suppress(OSError):  # `start` is no folder: GitPython says what it is
            done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True)
            if done.returncode == 0 and done.stdout.strip():
                return Path(os.fsdecode(done.stdout.rstrip(b"\n"))).resolve()
    # Not a work tree as git sees it from there (inside .git/, bare, unsafe owner…): GitPython decides, as before.
    import git
    from git.exc import InvalidGitRepositoryError, NoSuchPathError
    try:
        repo = git.Repo(Path(start), search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None
    if repo.working_tree_dir is None:  # a bare repository has no files to version
        return None
    return Path(repo.working_tree_dir).resolve()


def find_root(start: Path | str | None = None) -> Path:
    """The amlvc repository containing `start` (default: the current directory): a git work tree with amlvc.toml.

    Raises NotARepository (exit 3) with the next step when there is none.
    """
    where = Path(start) if start is not None else Path.cwd()
    root = git_root(where)
    if root is None or not (root / CONFIG_FILE).is_file():
        raise NotARepository(f"{where}: not inside an amlvc repository (no git work tree with {CONFIG_FILE}); "
                             f"run `amlvc init` first")
    return root


def open_repo(root: Path) -> git.Repo:
    import git
    from git.exc import InvalidGitRepositoryError, NoSuchPathError
    try:
        return git.Repo(root)
    except (InvalidGitRepositoryError, NoSuchPathError):
        raise NotARepository(f"{root}: not a git repository; run `amlvc init` first") from None


def init_repo(root: Path) -> tuple[git.Repo, bool]:
    """Open the git repository at `root` or create one; returns it and whether it was created."""
    import git
    from git.exc import GitCommandError
    existing = git_root(root)
    if existing is not None and existing == root.resolve():
        return open_repo(root), False
    try:
        root.mkdir(parents=True, exist_ok=True)
        return git.Repo.init(root), True
    except (OSError, GitCommandError) as exc:
        raise RepoError(f"{root}: cannot create a git repository ({_reason(exc)})") from None


# ------------------------------------------------------------------------------------------------- paths


def relative(root: Path, path: Path) -> str:
    """A path inside the repository as git names it (POSIX separators); LocalError when it is outside."""
    try:
        return PurePosixPath(path.resolve().relative_to(root.resolve())).as_posix()
    except ValueError:
        raise LocalError(f"{path}: outside the repository {root}") from None


# ------------------------------------------------------------------------------------------- revisions


def head(root: Path) -> str | None:
    """The commit id of HEAD, or None in a repository without commits."""
    repo = open_repo(root)
    try:
        return str(repo.head.commit.hexsha)
    except ValueError:  # an unborn branch
        return None


def resolve(root: Path, rev: str) -> str:
    """The commit id of a revision; LocalError naming the revision when git does not know it."""
    from git.exc import BadName, GitCommandError
    repo = open_repo(root)
    try:
        return str(repo.commit(rev).hexsha)
    except (BadName, ValueError, GitCommandError):
        raise LocalError(f"unknown revision {rev!r}; see `git log` for the revisions there are") from None


def read_at(root: Path, rev: str, path: str) -> bytes | None:
    """The bytes of `path` (repository-relative, POSIX) at `rev`, or None when the file is not there."""
    commit = open_repo(root).commit(resolve(root, rev))
    try:
        blob = commit.tree / path
    except KeyError:
        return None
    if blob.type != "blob":
        return None
    data: bytes = blob.data_stream.read()
    return data


def list_at(root: Path, rev: str, prefix: str = "") -> list[str]:
    """Every file path under `prefix` (a directory, repository-relative) at `rev`, sorted."""
    repo = open_repo(root)
    commit = resolve(root, rev)
    args = ["ls-tree", "-r", "-z", "--name-only", "--full-tree", commit]
    if prefix.strip("/"):
        args += ["--", prefix.strip("/") + "/"]
    out = _git(repo, *args)
    return sorted(name for name in out.split("\0") if name)


def dirty_paths(root: Path, paths: Iterable[str]) -> list[str]:
    """Of `paths` (files or directories, repository-relative), those with uncommitted or untracked changes."""
    wanted = [p for p in paths if p]
    if not wanted:
        return []
    repo = open_repo(root)
    out = _git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *wanted)
    changed: list[str] = []
    entries = iter(out.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, name = entry[:2], entry[3:]
        if status[0] in "RC":  # a rename is followed by its source path
            next(entries, None)
        changed.append(name)
    return sorted(set(changed))


def changed_paths(root: Path, rev_a: str, rev_b: str | None, prefix: str) -> list[str]:
    """Paths under `prefix` that differ between `rev_a` and `rev_b`, or (None) the work tree, untracked included."""
    repo = open_repo(root)
    args = ["diff", "--name-only", "--no-renames", "-z", rev_a, *([rev_b] if rev_b is not None else []), "--", prefix]
    names = set(_git(repo, *args).split("\0"))
    if rev_b is None:
        names.update(_git(repo, "ls-files", "--others", "--exclude-standard", "-z", "--", prefix).split("\0"))
    return sorted(name for name in names if name)


# --------------------------------------------------------------------------------------------- commits


def _author_env(name: str | None, email: str | None, date: datetime | None) -> dict[str, str]:
    """GIT_AUTHOR_* overrides for a commit authored as someone else (run-history snapshots)."""
    env: dict[str, str] = {}
    if name is not None:
        env["GIT_AUTHOR_NAME"] = name
    if email is not None:
        env["GIT_AUTHOR_EMAIL"] = email
    if date is not None:
        env["GIT_AUTHOR_DATE"] = date.isoformat()
    return env


def _tracked(repo: git.Repo, path: str) -> bool:
    return bool(_git(repo, "ls-files", "--", path).strip())


@contextlib.contextmanager
def _environment(repo: git.Repo, env: dict[str, str]) -> Iterator[None]:
    if not env:
        yield
        return
    with repo.git.custom_environment(**env):
        yield


def _git(repo: git.Repo, *args: str) -> str:
    from git.exc import GitCommandError
    try:
        out: str = getattr(repo.git, args[0].replace("-", "_"))(*args[1:])
    except GitCommandError as exc:
        raise RepoError(f"git {args[0]} failed in {repo.working_tree_dir}: {_reason(exc)}") from None
    return out


def _reason(exc: Exception) -> str:
    from git.exc import GitCommandError
    if isinstance(exc, GitCommandError):
        lines = [line.strip() for line in str(exc.stderr or "").splitlines() if line.strip()]
        text = lines[-1] if lines else f"exit status {exc.status}"
        return text.removeprefix("stderr: ").strip("'")
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


# --- review: revisions and drivers ---


@dataclass(frozen=True)
class CommitInfo:
    """A commit as `amlvc log` lists it."""

    commit: str
    parent: str | None
    author: str
    date: str
    subject: str


def read_tree_at(root: Path, rev: str, prefix: str | Sequence[str] = "") -> dict[str, bytes]:
    """Every file under `prefix` (a directory, or several) at `rev` with its bytes, repository-relative paths.

    One repository, one resolve and one object reader for all the prefixes: each costs git processes.
    """
    import git
    commit = open_repo(root).commit(resolve(root, rev))
    trees: dict[str, Any] = {"": commit.tree}  # each tree object parses its entries once: keep the parents

    def subtree(path: str) -> Any:
        if path not in trees:
            parent, _, name = path.rpartition("/")
            above = subtree(parent)
            try:
                trees[path] = above / name if above is not None and above.type == "tree" else None
            except KeyError:
                trees[path] = None
        return trees[path]

    out: dict[str, bytes] = {}
    for one in [prefix] if isinstance(prefix, str) else prefix:
        tree = subtree(one.strip("/"))
        if tree is None or tree.type != "tree":
            continue
        for item in tree.traverse():
            if isinstance(item, git.Blob):
                out[str(item.path)] = item.data_stream.read()
    return out


def merge_base(root: Path, rev_a: str, rev_b: str) -> str | None:
    """The best common ancestor of two revisions (where `A...B` compares from), or None when they share none."""
    bases = open_repo(root).merge_base(resolve(root, rev_a), resolve(root, rev_b))
    return str(bases[0].hexsha) if bases else None


def commits_touching(root: Path, path: str, max_count: int | None = None) -> list[CommitInfo]:
    """Commits reachable from HEAD that changed anything under `path`, newest first (first parent as base)."""
    if head(root) is None:
        return []
    args = ["--format=%H%x00%P%x00%an%x00%aI%x00%s", "HEAD"]
    if max_count is not None:
        args.insert(0, f"--max-count={max_count}")
    out = _git(open_repo(root), "log", *args, "--", path)
    infos = []
    for line in out.splitlines():
        sha, parents, author, date, subject = (line.split("\0") + [""] * 5)[:5]
        infos.append(CommitInfo(sha, parents.split()[0] if parents.split() else None, author, date, subject))
    return infos


def set_git_config(root: Path | None, settings: Mapping[str, str]) -> None:
    """Write `settings` to the repository's git config, or (root None) to the user's global one."""
    import git
    from git.exc import GitCommandError
    runner = open_repo(root).git if root is not None else git.Git()
    scope = "--local" if root is not None else "--global"
    for key, value in settings.items():
        try:
            runner.config(scope, key, value)
        except GitCommandError as exc:
            raise RepoError(f"git config {scope} {key} failed: {_reason(exc)}") from None


def global_attributes_file() -> Path:
    """The attributes file git reads for every repository: core.attributesfile, else $XDG_CONFIG_HOME/git/attributes."""
    import git
    from git.exc import GitCommandError
    try:
        configured = str(git.Git().config("--global", "--get", "core.attributesfile")).strip()
    except GitCommandError:
        configured = ""
    if configured:
        return Path(os.path.expanduser(configured))
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "git" / "attributes"


def merge_text(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    """`git merge-file` of three versions of a text file: the merged bytes, or None when lines conflict.

    A file git cannot merge line-wise (binary) is a conflict too.
    """
    import git
    with tempfile.TemporaryDirectory(prefix="amlvc-merge-") as tmp:
        names = []
        for side, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = os.path.join(tmp, side)
            Path(path).write_bytes(data)
            names.append(path)
        status, out, _err = git.Git().execute(["git", "merge-file", "-p", "-q", *names], with_extended_output=True,
                                             with_exceptions=False, stdout_as_string=False,
                                             strip_newline_in_stdout=False)
    return bytes(out) if status == 0 else None


# ------------------------------------------------------------------------ pull support (added by the pull work)


def trailer_values(root: Path, key: str, rev: str = "HEAD") -> set[str]:
    """Every value of the commit-message trailer `key` in the history of `rev` (empty without commits)."""
    if head(root) is None:
        return set()
    out = _git(open_repo(root), "log", f"--format=%(trailers:key={key},valueonly,separator=%x00)", rev)
    return {v.strip() for v in out.replace("\0", "\n").splitlines() if v.strip()}


def revisions(root: Path, path: str, *, limit: int = 50) -> list[str]:
    """Commit ids that touched `path`, newest first (at most `limit`), HEAD always first when there is one."""
    top = head(root)
    if top is None:
        return []
    out = _git(open_repo(root), "log", f"-n{limit}", "--format=%H", "HEAD", "--", path)
    revs = [line.strip() for line in out.splitlines() if line.strip()]
    return [top] + [r for r in revs if r != top]


def discard_changes(root: Path, paths: Sequence[str]) -> list[str]:
    """Put `paths` (files) back as HEAD has them in the index and the work tree; returns those HEAD lacks
    (now unstaged; the caller deletes them)."""
    if not paths:
        return []
    repo = open_repo(root)
    top = head(root)
    tracked = [p for p in paths if top is not None and read_at(root, "HEAD", p) is not None]
    untracked = [p for p in paths if p not in tracked]
    if top is not None:
        _git(repo, "reset", "--quiet", "HEAD", "--", *paths)
    else:
        _git(repo, "rm", "--cached", "--quiet", "--ignore-unmatch", "-r", "--", *paths)
    if tracked:
        _git(repo, "checkout", "HEAD", "--", *tracked)
    return untracked


def clear_stale_locks(root: Path) -> list[str]:
    """Remove git's index and HEAD-branch lock files left by a process that was killed mid-commit.

    Only called while amlvc holds its own operation lock after finding a journal of a killed run.
    """
    repo = open_repo(root)
    git_dir = Path(repo.git_dir)
    candidates = [git_dir / "index.lock", git_dir / "HEAD.lock"]
    with contextlib.suppress(TypeError, ValueError):
        candidates.append(git_dir / f"{repo.head.reference.path}.lock")
    removed = []
    for lock in candidates:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
            removed.append(lock.name)
    return removed


# --- push: backup refs (appended by the push engineer) ---


def write_backup(root: Path, ref: str, prefix: str, files: Mapping[str, bytes], message: str) -> str:
    """A commit whose tree is HEAD's with directory `prefix` holding exactly `files`, stored under `ref`.

    Built with a temporary index, so the user's index, working tree and branch are untouched. Returns the
    commit id. `ref` must be a new name under refs/ (an existing one is refused, never overwritten).
    """
    repo = open_repo(root)
    if _git(repo, "for-each-ref", ref).strip():
        raise RepoError(f"{ref} already exists; not overwriting a backup")
    fd, index = tempfile.mkstemp(prefix="amlvc-backup-index.", dir=repo.git_dir)
    os.close(fd)
    os.unlink(index)  # git wants to create the index itself
    try:
        with repo.git.custom_environment(GIT_INDEX_FILE=index):
            parent = head(root)
            if parent is not None:
                _git(repo, "read-tree", parent)
                _git(repo, "rm", "-r", "--cached", "--quiet", "--ignore-unmatch", "--", prefix)
            for rel in sorted(files):
                sha = _store_blob(repo, files[rel])
                _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{sha},{prefix}/{rel}")
            tree = _git(repo, "write-tree")
        args = ["commit-tree", tree, "-m", message.rstrip("\n")]
        if parent is not None:
            args += ["-p", parent]
        commit = _git(repo, *args).strip()
        _git(repo, "update-ref", ref, commit, "")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(index)
    return commit


def _store_blob(repo: git.Repo, data: bytes) -> str:
    from io import BytesIO

    from gitdb import IStream  # type: ignore[import-untyped]  # GitPython's object database

    return str(repo.odb.store(IStream(b"blob", len(data), BytesIO(data))).hexsha.decode())


def commit_paths(root: Path, paths: Sequence[str], message: str, *, trailers: Sequence[tuple[str, str]] = (),
                 author_name: str | None = None, author_email: str | None = None,
                 author_date: datetime | None = None, contents: Mapping[str, bytes | None] | None = None,
                 stream: PackStream | None = None) -> str | None:
    """Stage exactly `paths` (additions, changes and deletions) and commit only them; git's hooks do not run.

    Whatever else the user has staged stays staged and out of this commit. Returns the new commit id, or
    None when those paths hold no change (nothing is committed then). `contents` (repository path ->
    the bytes just written there, None = deleted) lets many files go into one pack (`pack`, with the blobs
    a pull has `stream`ed already) instead of as loose objects; an authored commit (run history) goes the
    plain way. `git commit --only -- PATHS` stages the paths a second time in a temporary index (for a
    600-file pull that doubled the cost of the commit); after `git add` a plain `git commit` is the same
    commit when the index holds no other staged change, so that is what runs then, and `--only` otherwise.
    """
    text = message.rstrip("\n")
    if trailers:
        text += "\n\n" + "\n".join(f"{key}: {value}" for key, value in trailers)
    if contents is not None and author_name is None and author_email is None and author_date is None:
        chosen = stream.mode if stream is not None else pack.mode(root)
        if chosen == "always" or (chosen == "auto" and (stream is not None or len(contents) >= pack.AUTO_FILES)):
            try:
                return pack.commit(root, stream, contents, paths, text + "\n")
            except pack.Unusable:
                pass
    if stream is not None:
        stream.abort()
    repo = open_repo(root)
    present = [p for p in paths if (root / p).exists() or _tracked(repo, p)]
    if not present:
        return None
    # Fast zlib for the new loose objects: same objects, written in about half the CPU; `git gc`
    # recompresses them when it packs.
    with _environment(repo, pack.config_env("core.looseCompression", "1")):
        _git_bound(repo, "add", "--all", "--", *present)
    staged = [name for name in _git(repo, "diff", "--cached", "--no-renames", "--name-only", "-z").split("\0") if name]
    prefixes = tuple(p.rstrip("/") + "/" for p in present)
    ours = [name for name in staged if name in present or name.startswith(prefixes)]
    top = head(root)
    if not ours and top is not None:
        return None
    only = ["--only", "--", *present] if len(ours) != len(staged) else []
    env = _author_env(author_name, author_email, author_date)
    with _environment(repo, env):
        _git_bound(repo, "commit", "--quiet", "--no-verify", "-m", text + "\n", *only)
    return head(root)


PackStream = pack.Stream
pack_stream = pack.streaming


def _git_bound(repo: git.Repo, *args: str) -> str:
    """`_git`, but the git process is killed if this process dies (Linux; elsewhere plain `_git`).

    A git left running by a killed amlvc would go on writing objects and the index after it (and
    after anything that inspects the repository then); killed with it, it leaves at most a stale
    lock, which the next run's recovery removes.
    """
    import git
    from git.exc import GitCommandError
    bind = pack.die_with_us()
    if bind is None:
        return _git(repo, *args)
    try:
        out = repo.git.execute([git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args], preexec_fn=bind)
    except GitCommandError as exc:
        raise RepoError(f"git {args[0]} failed in {repo.working_tree_dir}: {_reason(exc)}") from None
    return str(out)
