"""The local workspace service: a faithful Studio (classic) workspace on loopback.

Nothing in this package imports from the client side of amlvc.
"""

from __future__ import annotations

# The fixed id of the workspace `amlvc serve` and `amlvc demo` create when no --workspace is given.
DEMO_WORKSPACE_ID = "de30de30de30de30de30de30de30de30"
