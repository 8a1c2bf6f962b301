"""HTTP to a workspace: the only part of amlvc that speaks it (hosts per region, the pooled client, retries)."""

from __future__ import annotations

from amlvc.client.hosts import BLOB_HOST_SUFFIX, Hosts, blob_download_url, hosts_for
from amlvc.client.http import RETRY_STATUSES, STUDIO_TOKEN_HEADER, Client, RetryPolicy, parse_retry_after

__all__ = ["BLOB_HOST_SUFFIX", "RETRY_STATUSES", "STUDIO_TOKEN_HEADER", "Client", "Hosts", "RetryPolicy",
           "blob_download_url", "hosts_for", "parse_retry_after"]
