"""HTTP to a workspace: one pooled session per remote, retries, and the translation of errors."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from amlvc import __version__
from amlvc.client.hosts import Hosts, blob_download_url
from amlvc.errors import ApiError, AuthError, ConflictError, InvalidDocument, RemoteError
from amlvc.rules import MAX_DOCUMENT_BYTES

STUDIO_TOKEN_HEADER = "x-ms-metaanalytics-authorizationtoken"
USER_AGENT = f"amlvc/{__version__}"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts in total, exponential backoff with full jitter, and timeouts in seconds."""

    attempts: int = 6
    backoff: float = 0.1
    max_backoff: float = 4.0
    max_retry_after: float = 30.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1`; the server's Retry-After is a floor."""
        cap = min(self.max_backoff, self.backoff * (2**attempt))
        wait = rng.uniform(cap / 2, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


# Worth another attempt: the service's or a gateway's trouble (5xx) and throttling (429, whose Retry-After
# is honoured). Every other 4xx is an answer about the request itself; sending it again changes nothing.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 509})
# A request the server refused before doing anything: safe to repeat even when not idempotent.
UNPROCESSED_STATUSES = frozenset({429, 503})
# Nothing listening: a few quick tries cover a restarting server without stalling a typo'd endpoint.
UNREACHABLE_ATTEMPTS = 3


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: requests.Response) -> str:
    """The service's own message: `{"Error": {"Message"}}` (Studio) or `{"error": {"message"}}` (ARM style)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return text[0][:200] if text else (response.reason or "")
    if isinstance(body, dict):
        err = body.get("Error") or body.get("error")
        if isinstance(err, dict):
            msg = err.get("Message") or err.get("message")
            if isinstance(msg, str):
                return msg[:300]
        if isinstance(body.get("Message"), str):
            return str(body["Message"])[:300]
    return response.reason or ""


class _Retry(Exception):
    """Internal: this attempt failed in a way worth repeating."""

    def __init__(self, reason: str, retry_after: float | None = None, processed: bool = True,
                 unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        # False when the server certainly did nothing (connection refused, 429/503).
        self.processed = processed
        self.unreachable = unreachable


@dataclass
class Client:
    """A workspace's APIs over one pooled `requests.Session`; every failure becomes an `amlvc.errors` error.

    `token_source` names where the token came from (e.g. "$AMLVC_TOKEN") for messages; the token
    itself never appears in a message.
    """

    remote: str
    workspace_id: str
    hosts: Hosts
    token: str = field(repr=False)
    token_source: str = "the token"
    jobs: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    seed: int | None = None
    requests_made: int = 0

    def __post_init__(self) -> None:
        self.session = requests.Session()
        pool = max(1, self.jobs)
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # requests re-reads the proxy variables (a scan of the whole environment) and ~/.netrc on every
        # request when trust_env is on: a third of a GET's client CPU. Read them once per host instead.
        self.session.trust_env = False
        self._env_settings: dict[str, dict[str, Any]] = {}
        self._rng = random.Random(self.seed)
        self._count_lock = threading.Lock()  # the client is shared by --jobs threads

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- typed Studio API calls (reference studio-api.md §2) -------------------------------------

    def _ws(self, *parts: str) -> str:
        tail = "/".join(quote(p, safe="") for p in parts)
        return f"workspaces/{self.workspace_id}" + (f"/{tail}" if tail else "")

    def get_workspace(self) -> dict[str, Any]:
        return _as_dict(self.studio("GET", self._ws()), "workspace")

    def list_experiments(self) -> list[dict[str, Any]]:
        return _as_list(self.studio("GET", self._ws("experiments")), "experiments")

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        what = f"experiment {experiment_id}"
        return _as_dict(self.studio("GET", self._ws("experiments", experiment_id), what=what), what)

    def get_experiment_body(self, experiment_id: str, *, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
        """`get_experiment` unparsed (pull parses and normalizes it in a worker process); an answer over
        `limit` bytes is refused (InvalidDocument, exit 6) while it streams in, with bounded memory."""
        what = f"experiment {experiment_id}"
        return bytes(self.studio("GET", self._ws("experiments", experiment_id), what=what, raw=True, limit=limit))

    def save_experiment(self, experiment_id: str, body: Mapping[str, Any], *, etag: str | None = None) -> Any:
        """POST experiments/{id} (save with IsDraft:true, or save and run with IsDraft:false).

        With `etag`, sends If-Match; a 412 becomes ConflictError (exit 4). Returns the parsed response.
        """
        headers = {"If-Match": etag} if etag else None
        what = f"experiment {experiment_id}"
        return self.studio("POST", self._ws("experiments", experiment_id), json_body=body, headers=headers,
                           what=what)

    def create_experiment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST experiments/ (a new experiment); returns `{"ExperimentId", "Etag"}`.

        Not idempotent: only retried when the server certainly did nothing (refused connection, 429, 503).
        """
        result = self.studio("POST", self._ws("experiments") + "/", json_body=body, idempotent=False,
                             what="new experiment")
        return _as_dict(result, "new experiment")

    def run_experiment(self, experiment_id: str, body: Mapping[str, Any], *, etag: str | None = None) -> Any:
        """Save and run: the same POST with IsDraft:false (reference §4.1)."""
        return self.save_experiment(experiment_id, {**body, "IsDraft": False}, etag=etag)

    def list_modules(self) -> list[dict[str, Any]]:
        return _as_list(self.studio("GET", self._ws("modules")), "modules")

    def list_datasources(self) -> list[dict[str, Any]]:
        return _as_list(self.studio("GET", self._ws("datasources")), "datasources")

    def list_trainedmodels(self) -> list[dict[str, Any]]:
        return _as_list(self.studio("GET", self._ws("trainedmodels")), "trainedmodels")

    def list_transformmodules(self) -> list[dict[str, Any]]:
        return _as_list(self.studio("GET", self._ws("transformmodules")), "transformmodules")

    def get_webservice_definition(self, experiment_id: str) -> dict[str, Any]:
        what = f"web-service definition of {experiment_id}"
        path = self._ws("experiments", experiment_id, "webservicedefinition")
        return _as_dict(self.studio("GET", path, what=what), what)

    # -- asset versions, uploads, promotion and downloads (reference §2.3, §2.4, §3.8) -----------

    def get_asset(self, collection: str, asset_id: str) -> dict[str, Any]:
        """One version of an asset: GET `datasources|trainedmodels|transformmodules|modules/{id}`."""
        what = f"{collection} {asset_id}"
        return _as_dict(self.studio("GET", self._ws(collection, asset_id), what=what), what)

    def start_upload(self, data_type: str) -> dict[str, Any]:
        """POST resourceuploads (empty body: a chunked upload follows); returns the upload info with its `Id`."""
        path = f"resourceuploads/{self._ws()}/"
        params = {"userStorage": "true", "dataTypeId": data_type}
        # Repeatable: a lost answer leaves at most an unused upload behind.
        return _as_dict(self.studio("POST", path, params=params, body=b"", what="upload"), "upload")

    def upload_block(self, upload_id: str, data_type: str, block: int, blocks: int, data: bytes) -> Any:
        """POST blobuploads: one 0-based block of a chunked upload (repeatable: the block is replaced)."""
        params = {"numberOfBlocks": str(blocks), "blockId": str(block), "uploadId": upload_id,
                  "dataTypeId": data_type}
        return self.studio("POST", f"blobuploads/{self._ws()}/", params=params, body=data,
                           what=f"block {block + 1} of {blocks}")

    def create_asset(self, collection: str, body: Mapping[str, Any]) -> str:
        """POST datasources (commit an upload) or trainedmodels|transformmodules (promote an output).

        Not idempotent (a repeat would make a second version): retried only when the service did nothing.
        Returns the new asset id (the service answers a bare JSON string).
        """
        result = self.studio("POST", self._ws(collection), json_body=body, idempotent=False,
                             what=f"new {collection} version")
        if not isinstance(result, str) or not result.strip('"'):
            raise ApiError(f"unexpected answer for new {collection} version: expected the new id")
        return result.strip('"')

    def download_blob(self, url: str, *, what: str = "blob") -> bytes:
        """The bytes behind a blob URL of a workspace document (`blob_download_url`); its SAS authenticates, so
        no token is sent."""
        try:
            return bytes(self.request("GET", blob_download_url(url, self.hosts), auth_header=None, what=what,
                                      raw=True))
        except AuthError:
            raise RemoteError(f"the storage URL of {what} was refused (HTTP 403): its SAS is missing, expired or "
                              "not valid; GET the document that named it again for a fresh URL") from None

    # -- transport -------------------------------------------------------------------------------

    def studio(self, method: str, path: str, **kwargs: Any) -> Any:
        """A Studio API call (`x-ms-metaanalytics-authorizationtoken`); path relative to `…/api/`."""
        return self.request(method, self.hosts.studio + path, auth_header=STUDIO_TOKEN_HEADER, **kwargs)

    def management(self, method: str, path: str, **kwargs: Any) -> Any:
        """A management / ARM / BES call (`Authorization: Bearer`); path relative to the management base."""
        return self.request(method, self.hosts.management + path, auth_header="Authorization", **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        auth_header: str | None,
        json_body: Any = None,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        what: str | None = None,
        raw: bool = False,
        limit: int | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request with retries; returns parsed JSON (None for an empty body), or bytes if `raw`.

        `idempotent=False` (creating something) repeats only attempts the server certainly ignored.
        `body` sends raw bytes (uploads); `auth_header=None` sends no token (signed blob URLs).
        `response_headers`, when given, receives the headers of the answer (e.g. ARM's Azure-AsyncOperation).
        """
        send_headers = dict(headers or {})
        if auth_header is not None:  # None: a signed (SAS) URL, which authenticates itself
            if not _header_safe(self.token):
                raise AuthError(f"{self.token_source} holds characters an HTTP header cannot carry; put the "
                                f"workspace's authorization token there (as shown in Studio's settings)")
            send_headers[auth_header] = self.token if auth_header != "Authorization" else f"Bearer {self.token}"
        data: bytes | None = body
        if body is not None:
            send_headers.setdefault("Content-Type", "application/octet-stream")
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            send_headers["Content-Type"] = "application/json; charset=utf-8"
        label = what or url.rsplit("/api/", 1)[-1]
        last: _Retry | None = None
        attempt = 0
        for attempt in range(self.retry.attempts):
            if last is not None:
                with self._count_lock:
                    wait = self.retry.delay(attempt - 1, last.retry_after, self._rng)
                self.sleep(wait)
            try:
                return self._attempt(method, url, data, send_headers, params, label, raw, limit, response_headers)
            except ConflictError as exc:
                if last is not None and last.processed and "If-Match" in send_headers:
                    # An earlier attempt may have been applied before its answer was lost: then the 412
                    # is about our own write. Say so rather than claim someone else changed it.
                    raise ConflictError(
                        f"{label}: the workspace '{self.remote}' no longer has the expected Etag after a lost "
                        f"answer ({last.reason}); the save may have been applied. Run `amlvc status --remote "
                        f"{self.remote}` (or pull) to see which version the workspace has"
                    ) from exc
                raise
            except _Retry as exc:
                last = exc
                if (exc.processed and not idempotent) or (exc.unreachable and attempt + 1 >= UNREACHABLE_ATTEMPTS):
                    break
        assert last is not None
        if last.unreachable:
            raise RemoteError(
                f"cannot reach workspace '{self.remote}' at {self.hosts.studio} ({last.reason}); "
                f"check that the service runs and the endpoint or location in amlvc.toml"
            )
        raise ApiError(
            f"workspace '{self.remote}' failed {method} {label}: {last.reason} "
            f"(after {attempt + 1} attempt{'s' if attempt else ''}); try again later, or check the service",
            status=_status_of(last.reason),
        )

    def _attempt(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str],
                 params: Mapping[str, str] | None, label: str, raw: bool, limit: int | None = None,
                 response_headers: dict[str, str] | None = None) -> Any:
        with self._count_lock:
            self.requests_made += 1
        try:
            response = self.session.request(
                method, url, data=data, headers=headers, params=params, stream=limit is not None,
                timeout=(self.retry.connect_timeout, self.retry.read_timeout), **self._environment(url),
            )
            # reads the whole body (a cut connection raises here); a success bounded by `limit` as it streams
            content = _read_at_most(response, limit, label) if limit is not None and response.ok else response.content
        except requests.ConnectionError as exc:
            if _refused(exc):
                raise _Retry("connection refused", processed=False, unreachable=True) from None
            # Sent and cut off (or a truncated body): the server may have acted on it.
            raise _Retry(f"connection failed ({type(exc).__name__})") from None
        except requests.Timeout:
            raise _Retry("timed out") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise _Retry("truncated response body") from None
        except requests.RequestException as exc:
            raise RemoteError(f"cannot talk to workspace '{self.remote}': {type(exc).__name__}") from None
        status = response.status_code
        if status in RETRY_STATUSES:
            raise _Retry(f"HTTP {status} {_error_text(response)}".rstrip(),
                         parse_retry_after(response.headers.get("Retry-After")),
                         processed=status not in UNPROCESSED_STATUSES)
        if status in (401, 403):
            raise AuthError(
                f"workspace '{self.remote}' ({self.workspace_id}) refused {self.token_source} "
                f"(HTTP {status}: {_error_text(response)}); put the workspace's authorization token there "
                f"and check the workspace id in amlvc.toml"
            )
        if status == 412:
            raise ConflictError(
                f"{label} changed in workspace '{self.remote}' since your last pull (HTTP 412); "
                f"run `amlvc pull --remote {self.remote}`, review, then push again"
            )
        if status == 404:
            raise ApiError(f"{label} not found in workspace '{self.remote}' ({self.workspace_id}) (HTTP 404); "
                           f"check the workspace id in amlvc.toml", status=404)
        if status >= 400:
            raise ApiError(f"workspace '{self.remote}' rejected {method} {label}: HTTP {status} "
                           f"{_error_text(response)}".rstrip(), status=status)
        if response_headers is not None:
            response_headers.update(response.headers)
        if raw:
            return content
        if not content.strip():
            return None
        expected = response.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) != len(content):
            raise _Retry("truncated response body")
        try:
            return json.loads(content.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            # A body cut short by a dropped connection parses as broken JSON: worth another try.
            raise _Retry("unreadable JSON in response (truncated?)") from None


    def _environment(self, url: str) -> dict[str, Any]:
        """Proxies and CA bundle from the environment for `url`'s host, as requests' trust_env finds them."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        found = self._env_settings.get(key)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            found = {"proxies": get_environ_proxies(key), "verify": bundle or True}
            self._env_settings[key] = found
        return found


def _read_at_most(response: requests.Response, limit: int, label: str) -> bytes:
    """The body, read in chunks and given up on (InvalidDocument) as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    with response:
        for chunk in response.iter_content(1 << 20):
            size += len(chunk)
            if size > limit:
                raise InvalidDocument(label, "", f"answer of more than {limit:,} bytes refused (the limit of any "
                                                 f"document amlvc reads); nothing was written")
            chunks.append(chunk)
    return b"".join(chunks)


def _header_safe(value: str) -> bool:
    """True when `value` can travel in an HTTP header (http.client encodes header values as latin-1)."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\r" not in value and "\n" not in value


def _refused(exc: requests.ConnectionError) -> bool:
    """True when no connection was made at all (nothing listens there, unknown host)."""
    text = repr(exc)
    return any(s in text for s in ("ConnectionRefused", "NewConnectionError", "NameResolution",
                                    "Failed to resolve", "No route to host"))


def _status_of(reason: str) -> int | None:
    if reason.startswith("HTTP "):
        head = reason[5:8]
        return int(head) if head.isdigit() else None
    return None


def _as_list(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ApiError(f"unexpected answer for {what}: expected a JSON list of objects")
    return value


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(f"unexpected answer for {what}: expected a JSON object")
    return value
