"""Where a workspace is: the Studio and management hosts of each region, an endpoint's, and blob URLs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from amlvc.errors import RemoteError


@dataclass(frozen=True)
class Hosts:
    """Where a workspace's APIs live: Studio API base (ends in `api/`) and management base (ends in `/`)."""

    studio: str
    management: str

    @property
    def one_server(self) -> bool:
        """True for an `endpoint` remote (one server answers every API, as the local workspace); a region's
        Studio API and management hosts differ."""
        return self.studio == f"{self.management}api/"


def _region(prefix: str, tld: str = "net") -> Hosts:
    dot = f"{prefix}." if prefix else ""
    return Hosts(f"https://{dot}studioapi.azureml.{tld}/api/", f"https://{dot}management.azureml.{tld}/")


# Reference studio-api.md §1.1: location strings clients use, and the ARM region names (AF's map).
_REGION_HOSTS: dict[str, Hosts] = {
    "south central us": _region(""),
    "southcentralus": _region(""),
    "ussouthcentral": _region(""),
    "west europe": _region("europewest"),
    "westeurope": _region("europewest"),
    "europewest": _region("europewest"),
    "southeast asia": _region("asiasoutheast"),
    "southeastasia": _region("asiasoutheast"),
    "asiasoutheast": _region("asiasoutheast"),
    "japan east": _region("japaneast"),
    "japaneast": _region("japaneast"),
    "west central us": _region("uswestcentral"),
    "westcentralus": _region("uswestcentral"),
    "uswestcentral": _region("uswestcentral"),
    "germany central": _region("germanycentral", "de"),
    "germanycentral": _region("germanycentral", "de"),
    "integration test": Hosts("https://studioapi.azureml-int.net/api/", "https://management.azureml-int.net/"),
}

REGIONS: tuple[str, ...] = (
    "South Central US", "West Europe", "Southeast Asia", "Japan East", "West Central US", "Germany Central",
)


def hosts_for(*, location: str | None = None, endpoint: str | None = None) -> Hosts:
    """Hosts of a remote: `endpoint` (one server for every API, as the local workspace) wins over `location`."""
    if endpoint:
        base = endpoint.rstrip("/")
        if base.endswith("/api"):
            base = base[: -len("/api")]
        if not base.startswith(("http://", "https://")):
            raise RemoteError(f"endpoint {endpoint!r} is not an http(s) URL; fix `endpoint` in amlvc.toml")
        return Hosts(f"{base}/api/", f"{base}/")
    if location:
        hosts = _REGION_HOSTS.get(" ".join(location.lower().split()))
        if hosts is None:
            raise RemoteError(
                f"unknown location {location!r}; use one of: {', '.join(REGIONS)}, or `endpoint = URL`"
            )
        return hosts
    return _REGION_HOSTS["south central us"]


BLOB_HOST_SUFFIX = ".blob.core.windows.net"


def blob_download_url(url: str, hosts: Hosts) -> str:
    """Where to GET a blob URL a workspace wrote into a document: `https://ACCOUNT.blob.core.windows.net/PATH?SAS`.

    For a real region the URL is Azure Storage's own and is returned unchanged. A local workspace (an
    `endpoint` remote) writes the same account form, so that no host or port reaches a git diff, and serves
    every storage account itself, path-style as Azurite does: the URL becomes `{endpoint}/ACCOUNT/PATH?SAS`.
    Any other URL is returned unchanged.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not hosts.one_server or parts.scheme != "https" or not host.endswith(BLOB_HOST_SUFFIX):
        return url
    account = host[: -len(BLOB_HOST_SUFFIX)]
    return f"{hosts.management}{account}{parts.path}" + (f"?{parts.query}" if parts.query else "")
