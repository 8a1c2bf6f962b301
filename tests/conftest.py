"""Shared test fixtures: isolation from the real home and git config, the CLI runner, the local server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"
CAPTURED = SHARED / "samples" / "captured"

PINNED_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and git's global config at a temp dir, clear AMLVC_*, pin git identities and dates."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n[user]\n\tname = Test User\n\temail = user@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in list(os.environ):
        if key.startswith("AMLVC_"):
            monkeypatch.delenv(key)
    for key, value in PINNED_GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return home


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the real `amlvc` command line in-process: run_cli(["pull"], cwd=repo)."""
    from amlvc.cli import cli

    def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
            input: str | None = None) -> CliResult:
        runner = CliRunner()
        old = Path.cwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            result = runner.invoke(cli, args, env=env, input=input, catch_exceptions=True)
        finally:
            os.chdir(old)
        exc = result.exception if not isinstance(result.exception, SystemExit) else None
        return CliResult(result.exit_code, result.stdout, result.stderr, exc)

    return run


@pytest.fixture
def captured() -> Path:
    """The real captured payloads in ../shared (skips cleanly when ../shared is absent)."""
    if not (CAPTURED / "experiment-training-2016.json").is_file():
        pytest.skip("../shared/samples/captured is not present")
    return CAPTURED


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    """A local workspace on an ephemeral loopback port with one workspace, seeded with nothing."""
    from amlvc.server.runner import start_server

    handle = start_server(tmp_path / "server-data", workspaces=[("0123456789abcdef0123456789abcdef", "test-token")])
    try:
        yield handle
    finally:
        handle.stop()


# --- servers of the kit modules, shared by the test files that use the same kit ------------------------------------


@pytest.fixture(scope="module")
def seeded_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """wskit's two workspaces (DEV seeded with the fixtures, OTHER empty), one server per test module."""
    import wskit

    with wskit.start(tmp_path_factory.mktemp(request.module.__name__)) as handle:
        yield handle


@pytest.fixture
def api(seeded_server: Any) -> Any:
    """wskit's HTTP wrapper over `seeded_server`."""
    import wskit

    return wskit.Api(seeded_server.url)


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[Any]:
    """serverkit's two empty workspaces (WS, WS2), a fresh server per test."""
    import serverkit

    with serverkit.start(tmp_path) as server:
        yield server


@pytest.fixture
def studio(handle: Any) -> Any:
    """serverkit's Studio API caller over `handle` (workspace WS, its token)."""
    import serverkit

    return serverkit.Studio(handle.url)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    """pullkit's token in the environment variable its repositories name (for pulls run as their own process)."""
    import pullkit

    monkeypatch.setenv(pullkit.TOKEN_ENV, pullkit.TOKEN)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """pullkit's one empty workspace, its token in the environment variable the repository names."""
    import pullkit

    monkeypatch.setenv(pullkit.TOKEN_ENV, pullkit.TOKEN)
    with pullkit.start(tmp_path / "server-data") as handle:
        yield handle


@pytest.fixture
def team(run_cli: Any, tmp_path: Path) -> Iterator[Any]:
    """teamkit's demo workspace and a repository that pulled it (what a new user has after `init` and `pull`)."""
    import teamkit

    with teamkit.pulled(run_cli, tmp_path) as pulled:
        yield pulled


@pytest.fixture
def world(tmp_path: Path, run_cli: Any) -> Iterator[tuple[Any, Path]]:
    """pushkit's dev workspace seeded with the training fixture, and a repository that pulled it."""
    import pushkit

    with pushkit.start(tmp_path) as server:
        yield server, pushkit.pulled_repo(run_cli, tmp_path, server)
