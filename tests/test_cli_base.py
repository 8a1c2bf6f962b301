"""The command line's error boundary and help."""

from __future__ import annotations

from typing import Any


def test_help_lists_exit_codes(run_cli: Any) -> None:
    result = run_cli(["--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.stdout


def test_unknown_command_is_usage_error(run_cli: Any) -> None:
    result = run_cli(["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.stderr
