"""The shared state of one running local workspace: store, blobs, workspaces and options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app

from amlvc.server.blobstore import BlobStore
from amlvc.server.store import Store

if TYPE_CHECKING:
    from amlvc.server.faults import FaultInjector

STATE_KEY = "amlvc.state"


@dataclass(frozen=True)
class Tokens:
    """The two authorization tokens of a workspace (kept in memory only, never in the data directory)."""

    primary: str
    secondary: str


@dataclass(frozen=True)
class ServerState:
    """Everything a request handler needs; one instance per server, stored on the Flask app.

    `workspaces` maps workspace id -> tokens. `latency_ms` is added to every request;
    `faults` injects the seeded failures of `--fault-rate`.
    """

    store: Store
    blobs: BlobStore
    workspaces: dict[str, Tokens] = field(default_factory=dict)
    latency_ms: int = 0
    faults: FaultInjector | None = None
    memo: dict[Any, Any] = field(default_factory=dict)  # rendered GET bodies, keyed by all that determines them


def get_state() -> ServerState:
    """The ServerState of the app handling the current request."""
    state = current_app.extensions[STATE_KEY]
    assert isinstance(state, ServerState)
    return state
