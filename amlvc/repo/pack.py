"""One commit as one pack: `git fast-import` takes the blobs while a pull still fetches, then writes the commit.

`git add` + `git commit` of a first pull of 200 experiments creates about 1,000 loose objects (and up to 256
fan-out folders): on a disk busy with recent deletions each new file costs ten times its usual time. This
path writes them into a single pack instead and leaves the repository as `commit_paths`' plain path would:
the same commit (message cleaned up as `git commit -m` does, author and committer as `git var` gives them),
HEAD and its reflog moved by `update-ref`, the index holding the new tree with fresh stat data, `git
maintenance run --auto` as `git commit` runs it. It steps aside (`Unusable`, before anything visible has
changed) whenever that could differ: nothing to compare against (no HEAD), something else staged, signed
commits, a `prepare-commit-msg` or `post-commit` hook, another message cleanup or encoding, a path it
cannot name, or a work tree that does not hold exactly the commit's files (a file git would have added).

The git config key `amlvc.pack` chooses: `auto` (the default: from `AUTO_FILES` files on, or when a pull
streamed its blobs), `always` (whenever usable; the tests force each path this way) or `never`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

SETTING = "amlvc.pack"
AUTO_FILES = 100  # fewer files are committed by `git add` (fast-import would write them loose anyway)
_SETTINGS = r"^(amlvc\.pack|commit\.gpgsign|commit\.cleanup|i18n\.commitencoding|core\.hookspath)$"
_HOOKS = ("prepare-commit-msg", "post-commit")  # what `git commit --no-verify` still runs
_PACK_REF = "refs/amlvc/pack"  # fast-import must name a branch; it is deleted in the same stream, never written
_TRUE = ("true", "yes", "on", "1", "")


class Unusable(Exception):
    """The plain path makes this commit: nothing the caller can see has changed."""


# -- git processes that die with this one ------------------------------------------------------------------------


_PRCTL: list[Callable[[int, int], int] | None] = []


def _prctl() -> Callable[[int, int], int] | None:
    """libc's prctl, looked up once before any fork (a forked child must not import or load)."""
    if not _PRCTL:
        found = None
        if sys.platform == "linux":
            with contextlib.suppress(OSError, AttributeError):
                import ctypes

                found = ctypes.CDLL(None, use_errno=True).prctl
        _PRCTL.append(found)
    return _PRCTL[0]


def die_with_us() -> Callable[[], None] | None:
    """A `preexec_fn` that has the child killed when this process dies (PR_SET_PDEATHSIG, Linux); None when
    there is none or another thread runs (preexec_fn is only safe without other threads)."""
    prctl = _prctl()
    if prctl is None or threading.active_count() > 1:
        return None

    def bind() -> None:
        prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL

    return bind


def config_env(key: str, value: str) -> dict[str, str]:
    """Environment adding one `-c key=value` to git, after any GIT_CONFIG_* pairs already set."""
    count = os.environ.get("GIT_CONFIG_COUNT", "0")
    n = int(count) if count.isdigit() else 0
    return {"GIT_CONFIG_COUNT": str(n + 1), f"GIT_CONFIG_KEY_{n}": key, f"GIT_CONFIG_VALUE_{n}": value}


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """A git command that writes: it dies with this process."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, preexec_fn=die_with_us())


def _read(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """A git command that only reads (started without a preexec_fn, which costs a full fork)."""
    return _git_all(root, list(args))[0]


def _out(root: Path, *args: str) -> str:
    done = _git(root, *args)
    if done.returncode != 0:
        raise Unusable(done.stderr.decode(errors="replace").strip())
    return done.stdout.decode().strip()


# -- may this repository take it? ---------------------------------------------------------------------------------


def mode(root: Path) -> str | None:
    """`auto` or `always` when commits here may be made as a pack, None when never (setting or repository)."""
    found = _read(root, "config", "-z", "--get-regexp", _SETTINGS).stdout.decode(errors="replace")
    settings = {key: value for key, _, value in (item.partition("\n") for item in found.split("\0") if item)}
    choice = settings.get(SETTING, "auto").strip().lower()
    if choice == "never" or _true(settings.get("commit.gpgsign", "false")):
        return None
    if settings.get("commit.cleanup", "default").strip().lower() not in ("default", "whitespace"):
        return None
    if settings.get("i18n.commitencoding", "utf-8").strip().lower() not in ("utf-8", "utf8"):
        return None
    hooks = settings.get("core.hookspath", "").strip()
    if hooks:
        hooks = os.path.join(root, os.path.expanduser(hooks))
    else:
        done = _read(root, "rev-parse", "--git-path", "hooks")
        if done.returncode != 0:
            return None
        hooks = os.path.join(root, done.stdout.decode().strip())
    if any(os.access(os.path.join(hooks, name), os.X_OK) for name in _HOOKS):
        return None
    return "always" if choice == "always" else "auto"


def _true(value: str) -> bool:
    """git's boolean: true, yes, on, a nonzero number, or the key alone."""
    value = value.strip().lower()
    return value in _TRUE or (value.lstrip("-").isdigit() and int(value) != 0)


# -- the stream ---------------------------------------------------------------------------------------------------


class Stream:
    """A running `git fast-import` holding the blobs given so far; until the commit they are only a temp file
    in `objects/pack/`, which `abort` removes."""

    def __init__(self, root: Path, mode: str) -> None:
        self.root = root
        self.mode = mode
        self.marks: dict[str, tuple[bytes, int]] = {}  # path -> (bytes, mark) of the last blob sent for it
        self.count = 0  # marks used
        self.failed = False
        # Fast zlib, as for `git add`'s loose objects; no delta search (its CPU bought nothing here). A session
        # of its own: Ctrl-C reaches the pull, which removes the unfinished pack (a killed fast-import cannot).
        env = {**os.environ, **config_env("pack.compression", "1")}
        self.proc = subprocess.Popen(["git", "fast-import", "--quiet", "--done", "--depth=0"], cwd=root, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     bufsize=0, preexec_fn=die_with_us(), start_new_session=True)

    def add(self, path: str, data: bytes) -> None:
        """Send one file's bytes as a blob (the commit names it by its mark when the bytes are the same)."""
        if self.failed:
            return
        self.count += 1
        self._send(b"blob\nmark :%d\ndata %d\n%b\n" % (self.count, len(data), data))
        self.marks[path] = (data, self.count)

    def _send(self, chunk: bytes) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(chunk)
        except (BrokenPipeError, OSError):  # fast-import died (disk full?): the plain path will commit
            self.failed = True

    def finish(self, commands: bytes) -> list[str]:
        """Send the last commands and `done`; the lines fast-import answered (`get-mark`, `ls`), once the pack
        is in place."""
        self._send(commands)
        if self.failed:
            self.abort()
            raise Unusable("git fast-import stopped")
        out, err = self.proc.communicate()
        if self.proc.returncode != 0:
            raise Unusable(err.decode(errors="replace").strip())
        return out.decode().splitlines()

    def abort(self) -> None:
        """Stop fast-import and remove its unfinished pack, so the repository is as it was."""
        if self.proc.poll() is not None:
            return
        temp = []
        with contextlib.suppress(OSError):
            fds = f"/proc/{self.proc.pid}/fd"
            for fd in os.listdir(fds):
                with contextlib.suppress(OSError):
                    target = os.readlink(os.path.join(fds, fd))
                    if os.path.basename(target).startswith("tmp_") and "/objects/pack/" in target:
                        temp.append(target)
        self.proc.kill()
        self.proc.communicate()
        for path in temp:
            with contextlib.suppress(OSError):
                os.unlink(path)


@contextlib.contextmanager
def streaming(root: Path, files: int) -> Iterator[Stream | None]:
    """A stream for the next commit of `root`, expected to hold about `files` new files, or None when it
    goes the plain way; whatever was not committed is removed again at the end. Linux only: `abort` finds
    fast-import's temp pack through /proc (elsewhere the commit sends every blob at the end)."""
    chosen = mode(root) if files and sys.platform == "linux" else None
    if chosen is None or (chosen == "auto" and files < AUTO_FILES):
        yield None
        return
    if _read(root, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        yield None
        return
    stream = Stream(root, chosen)
    try:
        yield stream
    finally:
        stream.abort()


# -- the commit ---------------------------------------------------------------------------------------------------


def stripspace(message: bytes) -> bytes:
    """`git commit -m`'s cleanup (`git stripspace`): no trailing white space on a line, no leading or trailing
    empty lines, runs of empty lines as one, a newline after every line."""
    out: list[bytes] = []
    gap = False
    for line in message.split(b"\n"):
        line = line.rstrip(b" \t\n\r")
        if not line:
            gap = bool(out)
            continue
        if gap:
            out.append(b"")
            gap = False
        out.append(line)
    return b"".join(line + b"\n" for line in out)


def commit(root: Path, stream: Stream | None, contents: Mapping[str, bytes | None], paths: Sequence[str],
           message: str) -> str | None:
    """Commit `contents` (repository path -> bytes, None = deleted) on HEAD as one pack; None when that is
    HEAD's tree already. Raises Unusable, with the repository unchanged, when the plain path must do it."""
    text = stripspace(message.encode("utf-8"))
    if not text or b"\0" in text or any(not _nameable(path) for path in contents):
        raise Unusable("message or path")
    staged, head, idents = _git_all(root, ["diff-index", "--cached", "--quiet", "HEAD", "--"],
                                    ["rev-parse", "HEAD", "--git-path", "COMMIT_EDITMSG"], ["var", "-l"])
    if staged.returncode != 0 or head.returncode != 0 or idents.returncode != 0:
        raise Unusable("something else is staged, or no HEAD")
    parent, _, editmsg = os.fsdecode(head.stdout).strip("\n").partition("\n")
    found = dict(line.partition("=")[::2] for line in idents.stdout.decode(errors="replace").splitlines())
    if "GIT_AUTHOR_IDENT" not in found or "GIT_COMMITTER_IDENT" not in found:
        raise Unusable("no identity")
    stream = stream or Stream(root, "always")  # nothing streamed: every blob goes inline
    mark = stream.count + 1
    commands = [b"commit %s\nmark :%d\nauthor %s\ncommitter %s\ndata %d\n%b\nfrom %s\n" % (
        _PACK_REF.encode(), mark, found["GIT_AUTHOR_IDENT"].encode(), found["GIT_COMMITTER_IDENT"].encode(),
        len(text), text, parent.encode())]
    for path, data in sorted(contents.items()):
        sent = stream.marks.get(path)
        if data is None:
            commands.append(b"D %s\n" % path.encode())
        elif sent is not None and (sent[0] is data or sent[0] == data):
            commands.append(b"M 100644 :%d %s\n" % (sent[1], path.encode()))
        else:
            commands.append(b"M 100644 inline %s\ndata %d\n%b\n" % (path.encode(), len(data), data))
    commands.append(b'\nget-mark :%d\nls :%d ""\nls %s ""\nreset %s\nfrom %s\n\ndone\n' % (
        mark, mark, parent.encode(), _PACK_REF.encode(), b"0" * len(parent)))
    answer = [line.split()[2] if " " in line else line for line in stream.finish(b"".join(commands))]
    if len(answer) != 3:
        raise Unusable(f"git fast-import answered {answer!r}")
    new, tree, old_tree = answer
    if tree == old_tree:
        return None
    # One-way merge: entries that stay keep their stat data; --reset, as ours differ from the index by design.
    _out(root, "read-tree", "--reset", new)
    if not _worktree_matches(root, paths):
        _out(root, "read-tree", "--reset", parent)  # the index as it was (nothing else was staged)
        raise Unusable("the work tree holds other files there")
    subject = text.split(b"\n", 1)[0].decode()
    _out(root, "update-ref", "-m", f"{os.environ.get('GIT_REFLOG_ACTION') or 'commit'}: {subject}", "HEAD", new,
         parent)
    with contextlib.suppress(OSError):
        (root / editmsg).write_bytes(text)  # as `git commit` leaves it
    _git(root, "maintenance", "run", "--auto", "--quiet")
    return new


def _git_all(root: Path, *commands: list[str]) -> list[subprocess.CompletedProcess[bytes]]:
    """Read-only git commands run side by side (each costs a process start)."""
    procs = [subprocess.Popen(["git", *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in commands]
    done = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate()
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def _nameable(path: str) -> bool:
    """A path fast-import takes unquoted (every canonical path is)."""
    return bool(path) and not path.startswith('"') and "\n" not in path and "\\" not in path


def _worktree_matches(root: Path, paths: Sequence[str]) -> bool:
    """The work tree under `paths` holds exactly the index's files (which `git status` refreshes, so the
    index ends up with the stat data `git add` would have given it): nothing untracked, nothing modified."""
    done = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--", *paths)
    if done.returncode != 0:
        return False
    entries = [entry for entry in done.stdout.split(b"\0") if entry]
    return all(entry[1:2] == b" " and entry[:2] != b"??" for entry in entries)
