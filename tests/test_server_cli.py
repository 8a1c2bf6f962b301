"""`amlvc serve`: the foreground command, its --json line, Ctrl-C, and its refusals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from serverkit import TOKEN_HEADER, WS

from amlvc.server import DEMO_WORKSPACE_ID


@contextmanager
def serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    proc = subprocess.Popen([sys.executable, "-m", "amlvc", "serve", "--port", "0", "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_json_line_requests_and_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve("--data", str(data), "--workspace", f"{WS}:secret-token", "--workspace", "ab" * 16) as (proc, info):
        assert list(info) == ["url", "workspaces"]
        assert info["url"].startswith("http://127.0.0.1:")
        assert info["workspaces"][0] == {"id": WS, "token": "secret-token"}
        generated = info["workspaces"][1]
        assert generated["id"] == "ab" * 16 and len(generated["token"]) == 32
        resp = requests.get(f"{info['url']}/api/workspaces/{WS}", headers={TOKEN_HEADER: "secret-token"}, timeout=10)
        assert resp.status_code == 200 and resp.json()["WorkspaceId"] == WS
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0 and "Stopped." in err and "Traceback" not in err
    assert (data / "workspace.sqlite3").is_file()  # --data is kept


def test_serve_without_workspace_is_the_seeded_demo_and_sigterm_stops_it() -> None:
    with serve() as (proc, info):
        [demo] = info["workspaces"]
        assert demo["id"] == DEMO_WORKSPACE_ID and len(demo["token"]) == 32
        listed = requests.get(f"{info['url']}/api/workspaces/{DEMO_WORKSPACE_ID}/experiments",
                              headers={TOKEN_HEADER: demo["token"]}, timeout=10).json()
        assert len(listed) == 2
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
        assert proc.returncode == 0


def test_serve_human_output_names_url_and_generated_token(run_cli: Any, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "amlvc", "serve", "--port", "0", "--workspace", WS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("amlvc local workspace listening on http://127.0.0.1:")
        assert f"workspace {WS}  token " in lines[2] and "press Ctrl-C" in lines[3]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_refusals(run_cli: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad_id = run_cli(["serve", "--data", str(data), "--workspace", "not-hex"])
    assert bad_id.exit_code == 2 and "32 hexadecimal" in bad_id.stderr and not data.exists()
    empty_token = run_cli(["serve", "--data", str(data), "--workspace", f"{WS}:"])
    assert empty_token.exit_code == 2 and "token" in empty_token.stderr
    twice = run_cli(["serve", "--data", str(data), "--workspace", WS, "--workspace", WS.upper()])
    assert twice.exit_code == 2 and "twice" in twice.stderr
    rate = run_cli(["serve", "--fault-rate", "1.5"])
    assert rate.exit_code == 2
    missing = run_cli(["serve", "--data", str(data), "--seed", str(tmp_path / "nope"), "--workspace", WS])
    assert missing.exit_code == 3 and "nope" in missing.stderr
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "bad.json").write_text("{", encoding="utf-8")
    broken = run_cli(["serve", "--data", str(data), "--seed", str(seed), "--workspace", WS, "--port", "0"])
    assert broken.exit_code == 3 and "bad.json" in broken.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_cli(["serve", "--data", str(tmp_path / "d2"), "--workspace", WS, "--port", str(port)])
    assert taken.exit_code == 3 and "--port" in taken.stderr
    help_text = run_cli(["serve", "--help"])
    for option in ("--data", "--host", "--port", "--workspace", "--seed", "--latency-ms", "--fault-rate",
                   "--fault-seed", "--json"):
        assert option in help_text.stdout


def test_seed_takes_a_value_and_never_swallows_an_option(run_cli: Any, tmp_path: Path) -> None:
    swallowed = run_cli(["serve", "--data", str(tmp_path / "d"), "--seed", "--port", "0", "--workspace", WS])
    assert swallowed.exit_code == 2 and "--seed demo" in swallowed.stderr and "'--port'" in swallowed.stderr
    assert not (tmp_path / "d").exists()
    last = run_cli(["serve", "--workspace", WS, "--seed"])
    assert last.exit_code == 2 and "--seed" in last.stderr
    both = run_cli(["serve", "--data", str(tmp_path / "d"), "--demo", "--seed", str(tmp_path), "--workspace", WS])
    assert both.exit_code == 2 and "--demo" in both.stderr and not (tmp_path / "d").exists()
    help_text = run_cli(["serve", "--help"]).stdout
    assert "--seed DIR|demo" in help_text and "--demo" in help_text and "Examples:" in help_text


@pytest.mark.parametrize("seed_args", [["--demo"], ["--seed", "demo"]])
def test_demo_seed_flag_and_value_serve_the_fixtures(seed_args: list[str]) -> None:
    with serve("--workspace", f"{DEMO_WORKSPACE_ID}:tok", *seed_args) as (proc, info):
        listed = requests.get(f"{info['url']}/api/workspaces/{DEMO_WORKSPACE_ID}/experiments",
                              headers={TOKEN_HEADER: "tok"}, timeout=10).json()
        assert len(listed) == 2
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
        assert proc.returncode == 0
