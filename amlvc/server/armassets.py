"""What an ARM web-service operation reads from blob storage: `Resource` assets and payloads kept in blobs.

An operation fails, and the stored definition stays as it was, when a `Resource` asset's blob
cannot be read (reference web-services.md §2.7, ISS-37715) or the payload blob is missing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from amlvc.server import armschema, blobs
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
    ref = blobs.resolve((props.get("payloadsLocation") or {}).get("uri", ""))
    info = get_state().blobs.info(conn, ref.key) if ref else None
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


def resource_uris(props: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(asset id, asset name, locationInfo.uri) of every `Resource` asset (members in any casing)."""
    assets = armschema.ci_get(props, "assets")
    found = []
    for asset_id, asset in (assets.items() if isinstance(assets, dict) else ()):
        if isinstance(asset, dict) and str(armschema.ci_get(asset, "type") or "").lower() == "resource":
            uri = armschema.ci_get(armschema.ci_get(asset, "locationInfo") or {}, "uri")
            found.append((str(asset_id), str(armschema.ci_get(asset, "name") or ""), uri))
    return found


def sas_refusal(props: Mapping[str, Any]) -> str | None:
    """Why a Resource asset or payload URL of the local storage carries a SAS that does not verify, else None."""
    payload = (armschema.ci_get(props, "payloadsLocation") or {})
    uris = [(f"asset '{asset_id}'", uri) for asset_id, _, uri in resource_uris(props)]
    uris.append(("payloadsLocation", armschema.ci_get(payload, "uri") if isinstance(payload, dict) else None))
    for what, uri in uris:
        ref = blobs.resolve(uri)
        problem = get_state().blobs.ref_problem(ref) if ref is not None else None
        if problem is not None:
            return f"The SAS of the {what} URL does not grant reading it: {problem}."
    return None


def asset_failure(conn: sqlite3.Connection, props: Mapping[str, Any]) -> dict[str, Any] | None:
    """The error of the asynchronous operation when a Resource asset cannot be read, else None."""
    for asset_id, name, uri in resource_uris(props):
        ref = blobs.resolve(uri)
        if ref is None or get_state().blobs.info(conn, ref.key) is None:
            shown = str(uri).split("?")[0] if isinstance(uri, str) else uri
            return failure("AssetNotFound", f"Resource asset '{asset_id}' ({name}) cannot be read from '{shown}': "
                                             "the blob does not exist.")
    return None


def model_fingerprints(conn: sqlite3.Connection, props: Mapping[str, Any]) -> dict[str, str]:
    """Resource asset id -> the fingerprint of the model its uri names (assets whose blob is missing left out)."""
    found: dict[str, str] = {}
    for asset_id, _, uri in resource_uris(props):
        ref = blobs.resolve(uri)
        fingerprint = blobs.model_fingerprint(conn, ref.key) if ref is not None else None
        if fingerprint is not None:
            found[asset_id] = fingerprint
    return found
