"""What an ARM web-service operation reads from blob storage: `Resource` assets and payloads kept in blobs.

An operation fails, and the stored definition stays as it was, when a `Resource` asset's blob
cannot be read (reference web-services.md §2.7, ISS-37715) or the payload blob is missing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from amlvc.server import armschema, wsmodel
from amlvc.server.state import get_state

MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


def failure(code: str, message: str) -> dict[str, Any]:
    return {"code": "BadRequest", "message": "The request is invalid.", "details": [{"code": code, "message": message}]}


def inline_payload(conn: sqlite3.Connection, props: dict[str, Any]) -> dict[str, Any] | None:
    """Move a payload kept in blob storage into the definition, its casing as given (REC-LARGE); error or None.

    The real service answered GET with the blob's members inline, their casing passed through, and
    `payloadsInBlobStorage: false` (reference §2.6).
    """
    if not props.get("payloadsInBlobStorage"):
        return None
    key = wsmodel.blob_key_of_url((props.get("payloadsLocation") or {}).get("uri", ""))
    info = get_state().blobs.info(conn, key) if key else None
    if info is None or not info.path.exists() or info.size > MAX_PAYLOAD_BYTES:
        return failure("PayloadNotFound", "payloadsLocation.uri names no readable blob.")
    try:
        payload = json.loads(info.path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return failure("InvalidPayload", "the blob at payloadsLocation.uri is not a JSON object.")
    if not isinstance(payload, dict):
        return failure("InvalidPayload", "the blob at payloadsLocation.uri is not a JSON object.")
    names = {name.lower(): name for name in armschema.PAYLOAD_PROPERTIES}
    for member, value in payload.items():
        if str(member).lower() in names:
            props[names[str(member).lower()]] = value
    props["payloadsInBlobStorage"] = False
    props.pop("payloadsLocation", None)
    return None


def asset_failure(conn: sqlite3.Connection, props: Mapping[str, Any]) -> dict[str, Any] | None:
    """The error of the asynchronous operation when a Resource asset cannot be read, else None."""
    assets = armschema.ci_get(props, "assets")
    for asset_id, asset in (assets.items() if isinstance(assets, dict) else ()):
        if not isinstance(asset, dict) or str(armschema.ci_get(asset, "type") or "").lower() != "resource":
            continue
        uri = armschema.ci_get(armschema.ci_get(asset, "locationInfo") or {}, "uri")
        key = wsmodel.blob_key_of_url(uri) if isinstance(uri, str) else None
        if key is None or not wsmodel.blob_exists(conn, key):
            name = armschema.ci_get(asset, "name") or ""
            return failure("AssetNotFound", f"Resource asset '{asset_id}' ({name}) cannot be read from '{uri}': "
                                             "the blob does not exist.")
    return None
