"""The Studio API blueprint list and the workspace route (`GET /api/workspaces/{ws}`), reference §2.1."""

from __future__ import annotations

import sqlite3

from flask import Blueprint, Response

from amlvc.server.auth import require_workspace_token
from amlvc.server.errors import ApiFault
from amlvc.server.state import get_state
from amlvc.server.wire import MIN_DATE_MS, WORKSPACE_ID_RE, date, json_response, now_ms

bp = Blueprint("studio", __name__, url_prefix="/api")


def blueprints() -> list[Blueprint]:
    """Every Studio API blueprint, in registration order."""
    from amlvc.server import assets, experiments, uploads

    return [bp, experiments.bp, assets.bp, uploads.bp]


def check_workspace(ws: str) -> None:
    """404 for a malformed workspace id, then the token check (401/403)."""
    if not WORKSPACE_ID_RE.match(ws):
        raise ApiFault(404, None, f"workspace {ws!r} does not exist")
    require_workspace_token(ws)
    if ws not in get_state().workspaces:
        raise ApiFault(404, None, f"workspace {ws!r} does not exist")


def register_workspace(conn: sqlite3.Connection, ws: str) -> None:
    """Create the workspace row once (inside a tx); tokens are never stored."""
    conn.execute("INSERT OR IGNORE INTO workspaces(id, friendly_name, created_ms) VALUES(?, ?, ?)",
                 (ws, f"amlvc local workspace {ws[:8]}", now_ms()))


@bp.get("/workspaces/<ws>")
def get_workspace(ws: str) -> Response:
    check_workspace(ws)
    state = get_state()
    with state.store.read() as conn:
        row = conn.execute("SELECT friendly_name, created_ms FROM workspaces WHERE id = ?", (ws,)).fetchone()
    if row is None:
        raise ApiFault(404, None, f"workspace {ws!r} does not exist")
    tokens = state.workspaces[ws]
    body = {
        "WorkspaceId": ws,
        "FriendlyName": row["friendly_name"],
        "Description": "",
        "HDInsightClusterConnectionString": None,
        "HDInsightStorageConnectionString": None,
        "UseDefaultHDInsightSettings": True,
        "AuthorizationToken": {"PrimaryToken": tokens.primary, "SecondaryToken": tokens.secondary},
        "MigrationStatus": None,
        "OwnerEmail": "owner@localhost",
        "UserStorage": "localstorage",
        "UserStorageKey": None,
        "UserStorageArmId": None,
        "UserStorageBlobEndpoint": None,
        "SubscriptionId": "00000000-0000-0000-0000-000000000000",
        "SubscriptionName": "amlvc local",
        "SubscriptionState": "Enabled",
        "Region": "Local",
        "WorkspaceStatus": "Enabled",
        "Type": "Production",
        "CreatedTime": date(int(row["created_ms"]) if row["created_ms"] else MIN_DATE_MS),
        "OwnerPrincipalId": None,
        "Tags": None,
        "KeyVaultKeyIdentifier": None,
        "MsIdentityUrl": None,
        "MsIdentityPrincipalOid": None,
        "MsIdentityClientId": None,
        "MsIdentityCertificate": None,
        "TenantId": None,
    }
    return json_response(body)
