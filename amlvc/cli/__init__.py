"""Command line entry point: `main` runs the root group, whose `invoke` is the error boundary."""

from __future__ import annotations

from amlvc.cli.base import cli

# Importing the command modules registers their commands on `cli`.
from amlvc.cli import (  # noqa: F401  isort: skip
    assets, drivers, models, offline, push, release, remote, review, runs, scoring, serve, webservices,
)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; exits with the SPEC exit code."""
    cli.main(args=argv, prog_name="amlvc")
