"""Blob routes of the local workspace: signed downloads (path-style and `/blobs/`), node outputs, endpoint objects.

Also the request-aware side of `storage.py`: blob URLs resolved against the host the client addressed,
and signed locations in the account form.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request, send_file
from werkzeug.routing import BaseConverter

from amlvc.server import ilearner, storage
from amlvc.server.bodies import spool_body
from amlvc.server.errors import ApiFault
from amlvc.server.state import get_state

bp = Blueprint("blobs", __name__)


class AccountConverter(BaseConverter):
    """A storage account name as the first path segment (path-style blob URLs); never one of the API roots."""

    regex = storage.ACCOUNT_SEGMENT


def resolve(url: Any) -> storage.BlobRef | None:
    """The local blob a URL sent by a client names (storage.resolve against this request's host)."""
    return storage.resolve(url, request.host)


def resolve_location(loc: Mapping[str, Any]) -> storage.BlobRef | None:
    """The local blob of a classic `{BaseLocation, RelativeLocation, SasBlobToken}`."""
    return storage.resolve_location(loc, request.host)


def model_fingerprint(conn: sqlite3.Connection, key: str) -> str | None:
    """The fingerprint of the trained model stored at `key` (what scoring depends on), None when there is none."""
    info = get_state().blobs.info(conn, key)
    if info is None or not info.path.exists():
        return None
    return ilearner.stored_fingerprint(info.path, info.size, info.sha256)


def signed_location(key: str) -> dict[str, str]:
    """`{BaseLocation, RelativeLocation, SasBlobToken}` of a local blob: the account form, a SAS made now."""
    return storage.location(key, get_state().blobs.sas_query(key))


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


def _signed_download(key: str) -> Response:
    if not storage.valid_key(key):
        raise ApiFault(404, None, "no such blob")
    args = request.args
    get_state().blobs.check(key, args.get("st"), args.get("se"), args.get("sp"), args.get("sig"))
    return send_blob(key)


@bp.get("/blobs/<path:key>")
def get_blob(key: str) -> Response:
    """The download links of dataset items: `{server}/blobs/{key}?{SAS}` (what the azureml client follows)."""
    return _signed_download(key)


@bp.get("/<account:account>/<path:key>")
def get_account_blob(account: str, key: str) -> Response:
    """A blob of any storage account, path-style as Azurite serves them: `{server}/{account}/{container}/{path}?{SAS}`
    (every account is the one local blob store)."""
    return _signed_download(key)


SHARED_KEY = re.compile(r"^SharedKey (?P<account>[a-z0-9]{3,24}):[A-Za-z0-9+/=]{1,200}$")


@bp.put("/<account:account>/<path:key>")
def put_account_blob(account: str, key: str) -> Response:
    """Put Blob of Azure Storage, path-style (`PUT {server}/{account}/{container}/{path}`, `x-ms-blob-type:
    BlockBlob`), authorised with the account's shared key (`Authorization: SharedKey {account}:{signature}`):
    how a client puts a BES input or a model into the storage account a service reads. Every account is the one
    local blob store and an account key is never checked (local-workspace.md): the header must name this URL's
    account. 201 with the blob's ETag and Content-MD5; an existing blob is replaced."""
    shared = SHARED_KEY.match(request.headers.get("Authorization", ""))
    if shared is None or shared.group("account") != account:
        raise ApiFault(403, "AuthenticationFailed", "Put Blob needs 'Authorization: SharedKey ACCOUNT:SIGNATURE' "
                                                    "naming this blob's storage account")
    if request.headers.get("x-ms-blob-type", "").lower() != "blockblob":
        raise ApiFault(400, "InvalidHeaderValue", "x-ms-blob-type must be BlockBlob")
    if not storage.valid_key(key) or "/" not in key:
        raise ApiFault(400, "InvalidResourceName", "the blob must be named CONTAINER/PATH")
    state = get_state()
    spooled = spool_body(state.blobs.incoming)
    with state.store.tx() as conn:
        info = state.blobs.put_spooled(conn, key, spooled)
    md5 = hashlib.md5()  # Azure answers the MD5 of the content
    with info.path.open("rb") as data:
        for piece in iter(lambda: data.read(1 << 20), b""):
            md5.update(piece)
    digest = base64.b64encode(md5.digest()).decode()
    return Response(status=201, headers={"ETag": f'"0x{info.sha256[:16].upper()}"', "Content-MD5": digest,
                                         "x-ms-request-server-encrypted": "false"})


@bp.get("/api/sharedaccess")
def shared_access() -> Response:
    """Download of a node output (reference §3.8: BaseUri + "api/sharedaccess" + AccessCredential)."""
    args = request.args
    ws, signature, uri = args.get("workspaceId", ""), args.get("signature", ""), args.get("sharedAccessUri", "")
    if not (ws and signature and uri):
        raise ApiFault(400, None, "workspaceId, signature and sharedAccessUri are required")
    state = get_state()
    state.blobs.check_shared_access(uri, signature)
    ref = resolve(uri)
    if ref is None:
        raise ApiFault(400, None, "sharedAccessUri does not name a blob of this workspace")
    problem = state.blobs.ref_problem(ref) if ref.sas is not None else "the blob URL carries no signature"
    if problem is not None:
        raise ApiFault(403, "AuthenticationFailed", problem)
    return send_blob(ref.key)
