"""The local workspace service: a faithful Studio (classic) workspace on loopback.

Nothing in this package imports from the client side of amlvc.
"""

from __future__ import annotations

# The fixed id of the workspace `amlvc serve` and `amlvc demo` create when no --workspace is given.
DEMO_WORKSPACE_ID = "c4e6a8b0d2f44a6c8e0a2c4e6b8d0f13"  # = the fixtures' workspace, so demo ids match them
