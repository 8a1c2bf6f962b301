"""Web-service calls: the classic management API, ARM webServices, BES jobs, RRS scoring and Put Blob.

Reference web-services.md: classic §3 (management base, workspace token as Bearer), ARM §2 (`management.azure.com`,
or the one server of an `endpoint` remote; long-running operations polled at `Azure-AsyncOperation`), BES and RRS
§4 (at an endpoint's `ApiLocation` or beside an ARM service's `swaggerLocation`, with that service's API key),
and Azure Storage's Put Blob with the account's shared key (how a model or a batch input gets into the storage
account a service reads). Keys and tokens are passed in, used in one header and never kept or shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

from amlvc.client.hosts import BLOB_HOST_SUFFIX, blob_download_url
from amlvc.client.http import Client, _as_dict, _as_list
from amlvc.errors import ApiError, AuthError, ValidationError
from amlvc.rules import ARM_API_VERSION, ARM_HOST, BES_API_VERSION, BES_STATUS_NAMES, STORAGE_API_VERSION


@dataclass(frozen=True)
class ServiceAccess:
    """Where a service's BES and RRS routes are (`…/services/{id}`) and the API key that opens them."""

    api_location: str
    key: str = field(repr=False)
    what: str = "the web service"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


# -- classic management API (reference §3.3) ------------------------------------------------------------------


def _classic(client: Client, *parts: str) -> str:
    return "/".join([f"workspaces/{client.workspace_id}/webservices", *(quote(p, safe="") for p in parts)])


def list_services(client: Client) -> list[dict[str, Any]]:
    return _as_list(client.management("GET", _classic(client)) or [], "web services")


def get_service(client: Client, service_id: str) -> dict[str, Any]:
    what = f"web service {service_id}"
    return _as_dict(client.management("GET", _classic(client, service_id), what=what), what)


def list_endpoints(client: Client, service_id: str) -> list[dict[str, Any]]:
    what = f"endpoints of web service {service_id}"
    return _as_list(client.management("GET", _classic(client, service_id, "endpoints"), what=what) or [], what)


def get_endpoint(client: Client, service_id: str, name: str) -> dict[str, Any]:
    what = f"endpoint {name!r} of web service {service_id}"
    return _as_dict(client.management("GET", _classic(client, service_id, "endpoints", name), what=what), what)


def put_endpoint(client: Client, service_id: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Add-AmlWebServiceEndpoint (or update an endpoint's settings): PUT …/endpoints/{name}."""
    what = f"endpoint {name!r} of web service {service_id}"
    body = {"WebServiceId": service_id, "EndpointName": name, **body}
    return _as_dict(client.management("PUT", _classic(client, service_id, "endpoints", name), json_body=body,
                                      what=what), what)


def patch_endpoint(client: Client, service_id: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Patch-AmlWebServiceEndpoint: PATCH …/endpoints/{name} `{Resources: [{Name, Location}]}`."""
    what = f"endpoint {name!r} of web service {service_id}"
    return _as_dict(client.management("PATCH", _classic(client, service_id, "endpoints", name), json_body=body,
                                      what=what), what)


def refresh_endpoint(client: Client, service_id: str, name: str, *, overwrite: bool = True) -> bool:
    """Refresh-AmlWebServiceEndpoint: POST …/refresh; False when the service answers 304 (nothing to refresh)."""
    what = f"endpoint {name!r} of web service {service_id}"
    answer = client.management("POST", _classic(client, service_id, "endpoints", name, "refresh"),
                               json_body={"OverwriteResources": "True" if overwrite else "False"}, what=what)
    return answer is not None


def delete_endpoint(client: Client, service_id: str, name: str) -> None:
    client.management("DELETE", _classic(client, service_id, "endpoints", name),
                      what=f"endpoint {name!r} of web service {service_id}")


def deploy(client: Client, experiment_id: str, *, update: bool) -> dict[str, Any]:
    """New-AmlWebService: POST experiments/{id}/webservice (reference §3.3); the activity to poll."""
    params = {"generateNewPortNames": "false"}
    if update:
        params["updateExistingWebService"] = "true"
    what = f"deployment of {experiment_id}"
    path = f"workspaces/{client.workspace_id}/experiments/{quote(experiment_id, safe='')}/webservice"
    return _as_dict(client.studio("POST", path, params=params, json_body={}, idempotent=False, what=what), what)


def deploy_status(client: Client, activity_id: str) -> dict[str, Any]:
    what = f"deployment activity {activity_id}"
    path = f"workspaces/{client.workspace_id}/experiments/{quote(activity_id, safe='')}/webservice"
    return _as_dict(client.studio("GET", path, what=what), what)


# -- ARM webServices (reference §2.8) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """ARM calls for one resource group; `token` None uses the workspace token (what the local workspace takes)."""

    client: Client
    subscription: str
    resource_group: str
    token: str | None = field(default=None, repr=False)

    def _url(self, name: str | None = None, tail: str = "") -> str:
        base = self.client.hosts.management if self.client.hosts.one_server else ARM_HOST
        path = (f"subscriptions/{quote(self.subscription, safe='')}/resourceGroups/"
                f"{quote(self.resource_group, safe='')}/providers/Microsoft.MachineLearning/webServices")
        if name is not None:
            path += "/" + quote(name, safe="")
        return base + path + tail

    def _call(self, method: str, url: str, *, what: str, **kwargs: Any) -> Any:
        if self.token is None:
            auth: dict[str, Any] = {"auth_header": "Authorization"}
        else:
            auth = {"auth_header": None, "headers": {"Authorization": f"Bearer {self.token}"}}
        params = kwargs.pop("params", {"api-version": ARM_API_VERSION})
        return self.client.request(method, url, params=params, what=what, **auth, **kwargs)

    def list(self) -> list[dict[str, Any]]:
        found = _as_dict(self._call("GET", self._url(), what="web services of the resource group"), "web services")
        value = found.get("value")
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    def get(self, name: str) -> dict[str, Any] | None:
        """GET the definition; None when there is no such service (404)."""
        try:
            return _as_dict(self._call("GET", self._url(name), what=f"web service {name!r}"), name)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def write(self, method: str, name: str, body: dict[str, Any]) -> str | None:
        """PUT (create or replace) or PATCH (the given properties) a service; the URL of its operation to poll."""
        headers: dict[str, str] = {}
        self._call(method, self._url(name), json_body=body, what=f"{method} web service {name!r}",
                   response_headers=headers)
        folded = {k.lower(): v for k, v in headers.items()}
        return folded.get("azure-asyncoperation") or folded.get("location")

    def operation(self, url: str) -> dict[str, Any]:
        """One poll of a long-running operation (`{status, error?}`, reference §2.8)."""
        return _as_dict(self._call("GET", url, params=None, what="the operation's status"), "operation")

    def keys(self, name: str) -> dict[str, Any]:
        """listKeys (a GET, as observed): the service's API keys, for BES and RRS."""
        return _as_dict(self._call("GET", self._url(name, "/listKeys"), what=f"keys of {name!r}"), "keys")


# -- BES and RRS (reference §4) -------------------------------------------------------------------------------


def _service_call(client: Client, access: ServiceAccess, method: str, tail: str, **kwargs: Any) -> Any:
    params = {"api-version": BES_API_VERSION, **kwargs.pop("params", {})}
    try:
        return client.request(method, access.api_location.rstrip("/") + tail, auth_header=None,
                              headers=access.headers(), params=params, **kwargs)
    except AuthError:
        raise AuthError(f"{access.what} refused its own API key (HTTP 401/403); pull the service again "
                        "(`amlvc webservice pull`): its keys may have been regenerated") from None


def submit_job(client: Client, access: ServiceAccess, body: dict[str, Any]) -> str:
    """BES submit (registered, not started): the job id, answered as a JSON string."""
    job = _service_call(client, access, "POST", "/jobs", json_body=body, idempotent=False,
                        what=f"batch job of {access.what}")
    if not isinstance(job, str) or not job.strip('"'):
        raise ApiError(f"unexpected answer for the batch job of {access.what}: expected its id")
    return job.strip('"')


def start_job(client: Client, access: ServiceAccess, job: str) -> None:
    _service_call(client, access, "POST", f"/jobs/{quote(job, safe='')}/start", what=f"start of batch job {job}")


def job_status(client: Client, access: ServiceAccess, job: str) -> dict[str, Any]:
    """The job's status with `StatusCode` always a name (a numeric code is read as the enum, §8.8)."""
    status = _as_dict(_service_call(client, access, "GET", f"/jobs/{quote(job, safe='')}",
                                    what=f"batch job {job}"), f"batch job {job}")
    code = status.get("StatusCode")
    if isinstance(code, int) and not isinstance(code, bool):
        status["StatusCode"] = BES_STATUS_NAMES.get(code, str(code))
    elif code == "Canceled":
        status["StatusCode"] = "Cancelled"
    return status


def execute(client: Client, access: ServiceAccess, body: dict[str, Any]) -> dict[str, Any]:
    """RRS: POST …/execute?api-version=2.0&details=true; the `{Results}` answer."""
    what = f"scoring request to {access.what}"
    return _as_dict(_service_call(client, access, "POST", "/execute", params={"details": "true"}, json_body=body,
                                  what=what), what)


def swagger(client: Client, access: ServiceAccess) -> dict[str, Any]:
    """The service's own swagger.json (its inputs, outputs and, where known, input columns)."""
    return _as_dict(_service_call(client, access, "GET", "/swagger.json", what=f"swagger of {access.what}"),
                    "swagger")


# -- Azure Storage: Put Blob with the account's shared key ----------------------------------------------------


def account_url(account: str, blob: str) -> str:
    """`https://{account}.blob.core.windows.net/{container}/{path}`: the form documents carry (no SAS, no host)."""
    return f"https://{account}{BLOB_HOST_SUFFIX}/{quote(blob)}"


def upload_blob(client: Client, account: str, blob: str, data: bytes, key: str, *, what: str = "blob") -> str:
    """Put Blob (BlockBlob) `container/path` into `account`, signed with its shared key; the blob's account URL.

    The request goes to the storage account's own host, or path-style to the one server of an `endpoint` remote
    (`client.blob_download_url`); no workspace token is sent.
    """
    url = account_url(account, blob)
    date = formatdate(usegmt=True)
    headers = {"x-ms-date": date, "x-ms-version": STORAGE_API_VERSION, "x-ms-blob-type": "BlockBlob",
               "Content-Type": "application/octet-stream"}
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-ms-"))
    to_sign = "\n".join(["PUT", "", "", str(len(data)) if data else "", "", headers["Content-Type"], "", "", "", "",
                         "", "", canonical_headers + f"/{account}{urlsplit(url).path}"])
    try:
        secret = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"the key of storage account {account!r} is not base64 (as the portal shows it); "
                              "set the account's access key") from None
    signature = base64.b64encode(hmac.new(secret, to_sign.encode("utf-8"), hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {account}:{signature}"
    client.request("PUT", blob_download_url(url, client.hosts), auth_header=None, body=data, headers=headers,
                   what=what)
    return url
