"""The workspace route (`GET /api/workspaces/{ws}`), reference §2.1."""

from __future__ import annotations

from flask import Blueprint, Response

from amlvc.server import storage
from amlvc.server.auth import check_workspace
from amlvc.server.errors import ApiFault
from amlvc.server.state import get_state
from amlvc.server.wire import MIN_DATE_MS, date, json_response

bp = Blueprint("studio", __name__, url_prefix="/api")


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
        "UserStorage": storage.LOCAL_ACCOUNT,  # the account its blob URLs name (storage.py)
        "UserStorageKey": None,
        "UserStorageArmId": None,
        "UserStorageBlobEndpoint": storage.account_base(),
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
