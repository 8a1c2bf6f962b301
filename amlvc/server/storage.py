"""Storage-account URLs of the local blob store: the account form documents carry, and resolving URLs clients send back.

The local workspace emulates every Azure storage account with its one blob store: a blob key
`container/path` is the blob `https://{account}.blob.core.windows.net/container/path` of any account.
Documents a client could commit (endpoint resources, BES results, definitions, the inner URL of a
node-output credential) name blobs in that account form, with the local account `LOCAL_ACCOUNT`, so
no host or port of this server reaches a git diff. This server answers for those URLs path-style, as
Azurite does (`{server}/{account}/container/path?SAS`; `amlvc.client.blob_download_url` maps one to the
other), and keeps `{server}/blobs/{key}?SAS` for the download links the `azureml` client follows.
No state and no HTTP here: the request's host is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

# The storage account of the local workspace: one fixed name per server, so documents are the same bytes on
# every server and port. A storage account name is 3-24 lower-case letters and digits.
LOCAL_ACCOUNT = "amlvclocal"
BLOB_HOST_SUFFIX = ".blob.core.windows.net"
ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$")
# First path segments of this server's own routes: never a storage account of the path-style blob endpoint.
RESERVED_ROOTS = ("api", "apihelp", "blobs", "providers", "subscriptions", "workspaces")
ACCOUNT_SEGMENT = rf"(?!(?:{'|'.join(RESERVED_ROOTS)})$)[a-z0-9]{{3,24}}"
DOWNLOAD_ROOT = "blobs"  # `{server}/blobs/{key}`: the download links of dataset items (the azureml client's)
# Query members that make a URL carry a shared access signature (then it must verify).
SAS_MEMBERS = frozenset({"sv", "sr", "sig", "st", "se", "sp", "spr", "sip", "ss", "srt"})
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}(/[A-Za-z0-9][A-Za-z0-9._ -]{0,199}){0,7}$")


@dataclass(frozen=True)
class BlobRef:
    """A URL of the local blob store: the blob key, and the SAS query members it carried (None: no SAS)."""

    key: str
    sas: Mapping[str, str] | None


def account_base(account: str = LOCAL_ACCOUNT) -> str:
    """`https://{account}.blob.core.windows.net/`: a BaseLocation of the account form."""
    return f"https://{account}{BLOB_HOST_SUFFIX}/"


def is_account_base(url: Any) -> bool:
    """True for a URL on a storage account's blob host (`https://{account}.blob.core.windows.net/…`)."""
    if not isinstance(url, str):
        return False
    try:
        host = (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return False
    return host.endswith(BLOB_HOST_SUFFIX) and bool(ACCOUNT_RE.match(host[: -len(BLOB_HOST_SUFFIX)]))


def account_url(key: str, sas_query: str | None = None) -> str:
    """The account-form URL of a local blob, with `?{sas_query}` when given."""
    return account_base() + quote(key) + (f"?{sas_query}" if sas_query else "")


def location(key: str, sas_query: str) -> dict[str, str]:
    """`{BaseLocation, RelativeLocation, SasBlobToken}` of a local blob in the account form."""
    return {"BaseLocation": account_base(), "RelativeLocation": key, "SasBlobToken": f"?{sas_query}"}


def _sas(query: str) -> Mapping[str, str] | None:
    args = {name: values[0] for name, values in parse_qs(query, keep_blank_values=True).items()}
    return args if SAS_MEMBERS & set(args) else None


def resolve(url: Any, here: str | None) -> BlobRef | None:
    """The local blob a URL names, or None (not a URL, not a blob, another host, an invalid key).

    `https://{account}.blob.core.windows.net/{key}` (any account), and on this server (`here` is the host
    the request was sent to) the path-style `/{account}/{key}` and the download path `/blobs/{key}`.
    """
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    segments = unquote(parts.path).lstrip("/").split("/", 1)
    if is_account_base(url):
        key = "/".join(segments)
    elif here is not None and parts.netloc.lower() == here.lower() and len(segments) == 2 and (
            segments[0] == DOWNLOAD_ROOT or re.fullmatch(ACCOUNT_SEGMENT, segments[0])):
        key = segments[1]
    else:
        return None
    return BlobRef(key, _sas(parts.query)) if valid_key(key) else None


def resolve_location(loc: Mapping[str, Any], here: str | None) -> BlobRef | None:
    """The local blob of a classic `{BaseLocation, RelativeLocation, SasBlobToken}` (members as given), or None."""
    base, relative, sas = loc.get("BaseLocation"), loc.get("RelativeLocation"), loc.get("SasBlobToken")
    if not isinstance(base, str) or not isinstance(relative, str) or not relative.strip():
        return None
    query = sas.lstrip("?") if isinstance(sas, str) else ""
    return resolve(base.rstrip("/") + "/" + relative.strip().lstrip("/") + (f"?{query}" if query else ""), here)


def valid_key(key: str) -> bool:
    """A blob key the store accepts: up to 8 segments of letters, digits, `._ -`, never `..`."""
    return bool(KEY_RE.match(key)) and ".." not in key.split("/")
