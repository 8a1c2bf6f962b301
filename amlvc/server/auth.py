"""Token checks of the local workspace: the Studio header token, the Bearer token of the other APIs, workspace ids."""

from __future__ import annotations

from flask import request

from amlvc.server.errors import ApiFault, Style
from amlvc.server.state import get_state
from amlvc.server.wire import WORKSPACE_ID_RE, same_secret

STUDIO_TOKEN_HEADER = "x-ms-metaanalytics-authorizationtoken"


def _check(ws_id: str, token: str | None, style: Style, scheme: str) -> None:
    state = get_state()
    if not token:
        raise ApiFault(401, "Unauthorized", f"missing {scheme} for workspace {ws_id!r}", style)
    tokens = state.workspaces.get(ws_id)
    if tokens is not None and (same_secret(token, tokens.primary) or same_secret(token, tokens.secondary)):
        return
    for other_id, other in state.workspaces.items():
        if other_id != ws_id and (same_secret(token, other.primary) or same_secret(token, other.secondary)):
            raise ApiFault(403, "Forbidden", f"the token does not grant access to workspace {ws_id!r}", style)
    raise ApiFault(401, "Unauthorized", f"invalid {scheme} for workspace {ws_id!r}", style)


def require_workspace_token(ws_id: str, style: Style = "studio") -> None:
    """Studio API: header `x-ms-metaanalytics-authorizationtoken` must hold the workspace's primary or secondary token.

    Missing or unknown token -> 401; a token of another workspace on this server -> 403.
    """
    _check(ws_id, request.headers.get(STUDIO_TOKEN_HEADER), style, "authorization token")


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_bearer(ws_id: str, style: Style = "mgmt") -> None:
    """Management/ARM/BES APIs: `Authorization: Bearer <workspace token>`; same 401/403 rules as the Studio API."""
    _check(ws_id, bearer_token(), style, "bearer token")

def check_workspace(ws: str) -> None:
    """404 for a malformed workspace id, then the token check (401/403)."""
    if not WORKSPACE_ID_RE.match(ws):
        raise ApiFault(404, None, f"workspace {ws!r} does not exist")
    require_workspace_token(ws)
    if ws not in get_state().workspaces:
        raise ApiFault(404, None, f"workspace {ws!r} does not exist")
