"""Blob routes of the local workspace: signed blob downloads, node-output downloads, and endpoint objects."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flask import Blueprint, Response, request, send_file

from amlvc.server import ilearner
from amlvc.server.blobstore import valid_key
from amlvc.server.errors import ApiFault
from amlvc.server.state import get_state

bp = Blueprint("blobs", __name__)


def endpoint(base_url: str, name: str, size: int, access_credential: str, location: str) -> dict[str, Any]:
    """An endpoint object in the observed key order (reference §3.8, §5.1)."""
    return {"BaseUri": base_url, "Size": size, "Name": name, "EndpointType": "SasEndpoint",
            "CredentialContainer": "Inline", "AccessCredential": access_credential, "Location": location,
            "FileType": "File", "IsAuxiliary": False}


def virtual_content(key: str) -> bytes | None:
    """Deterministic stand-in content of run artefacts nobody stored (seeded run history, logs, metadata).

    Seeded documents point at outputs of runs that never happened here; serving a stable
    placeholder keeps their download links working.
    """
    if not key.startswith(("experimentoutput/", "logs/")):
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()
    if key.endswith(".ilearner") or key.endswith(".itransform"):
        return ilearner.stand_in(key, "run output")
    if key.endswith(".dataset"):
        return f"Column 0\r\n{digest}\r\n".encode()
    if key.startswith("logs/"):
        return f"[amlvc local workspace] module log {digest[:12]}\r\n".encode()
    return json.dumps({"amlvc": "metadata", "key": key, "hash": digest}).encode()


def send_blob(key: str) -> Response:
    """Stream a stored blob, or a run artefact's stand-in (404 as a Studio error when neither exists)."""
    state = get_state()
    with state.store.read() as conn:
        info = state.blobs.info(conn, key)
    if info is None or not info.path.exists():
        content = virtual_content(key)
        if content is None:
            raise ApiFault(404, None, f"blob {key!r} does not exist")
        return Response(content, mimetype="application/octet-stream", headers={"x-ms-blob-type": "BlockBlob"})
    resp = send_file(info.path, mimetype="application/octet-stream", conditional=False, etag=False,
                     max_age=None)
    resp.headers["x-ms-blob-type"] = "BlockBlob"
    return resp


@bp.get("/blobs/<path:key>")
def get_blob(key: str) -> Response:
    if not valid_key(key):
        raise ApiFault(404, None, "no such blob")
    state = get_state()
    args = request.args
    state.blobs.check(key, args.get("st"), args.get("se"), args.get("sp"), args.get("sig"))
    return send_blob(key)


@bp.get("/api/sharedaccess")
def shared_access() -> Response:
    """Download of a node output (reference §3.8: BaseUri + "api/sharedaccess" + AccessCredential)."""
    args = request.args
    ws, signature, uri = args.get("workspaceId", ""), args.get("signature", ""), args.get("sharedAccessUri", "")
    if not (ws and signature and uri):
        raise ApiFault(400, None, "workspaceId, signature and sharedAccessUri are required")
    state = get_state()
    state.blobs.check_shared_access(uri, signature)
    parts = urlsplit(uri)
    if not parts.path.startswith("/blobs/"):
        raise ApiFault(400, None, "sharedAccessUri does not name a blob of this workspace")
    key = unquote(parts.path[len("/blobs/"):])
    if not valid_key(key):
        raise ApiFault(404, None, "no such blob")
    query = parse_qs(parts.query)
    state.blobs.check(key, *(query.get(name, [None])[0] for name in ("st", "se", "sp", "sig")))
    return send_blob(key)
