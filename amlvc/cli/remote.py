"""remote commands (placeholder until its issue lands)."""

from __future__ import annotations

from amlvc.cli.base import cli  # noqa: F401
