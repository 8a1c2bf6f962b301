"""Seeding of the local workspace: built-in modules and sample datasets, and `--seed DIR` documents (being built)."""

from __future__ import annotations

from pathlib import Path

from amlvc.server.state import ServerState


def install_builtins(state: ServerState, ws: str) -> None:
    """Built-in modules and sample datasets of a workspace (idempotent)."""


def seed_directory(state: ServerState, directory: Path, workspaces: list[str]) -> None:
    """Load the GET-experiment documents, asset lists and blobs of a directory."""
