"""HTTP error bodies of the local workspace: the Studio, management and ARM shapes, and the handlers that render them.

Every error leaves the server as a 4xx/5xx JSON body in the style of the API that was called;
no request, however hostile, gets an HTML page or a bare 500 traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

Style = Literal["studio", "mgmt", "arm"]

_LOG = logging.getLogger("amlvc.server")

# Short PascalCase codes per status; only "UserError" (409, duplicate asset name) was observed
# on the Studio API (reference §1.5), the rest follow the same convention.
STATUS_CODES: dict[int, str] = {
    400: "BadArgument",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "UserError",
    411: "LengthRequired",
    412: "PreconditionFailed",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class ApiFault(Exception):
    """An error answer: raise it anywhere in a handler; `style` picks the body shape.

    studio: {"Error": {"Code", "Message", "Target", "Details", "InnerError", "DebugInfo"}} (reference §1.5)
    mgmt:   {"error": {"code", "message"}}
    arm:    {"error": {"code", "message", "details": [...]}}
    """

    def __init__(self, status: int, code: str | None, message: str, style: Style = "studio",
                 headers: dict[str, str] | None = None, target: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "Error")
        self.message = message
        self.style: Style = style
        self.headers = dict(headers or {})
        self.target = target

    def body(self) -> dict[str, Any]:
        if self.style == "studio":
            return {"Error": {"Code": self.code, "Message": self.message, "Target": self.target,
                              "Details": [], "InnerError": None, "DebugInfo": None}}
        if self.style == "arm":
            return {"error": {"code": self.code, "message": self.message, "details": []}}
        return {"error": {"code": self.code, "message": self.message}}

    def response(self) -> Response:
        resp = Response(json.dumps(self.body(), ensure_ascii=False, separators=(",", ":")), status=self.status,
                        mimetype="application/json")
        for key, value in self.headers.items():
            resp.headers[key] = value
        return resp


def style_for_path(path: str) -> Style:
    """The error style of the API a path belongs to (for errors raised before a route is known)."""
    if path.startswith("/api/") or path == "/api" or path.startswith("/blobs/"):
        return "studio"
    if path.startswith("/subscriptions/") or path.startswith("/providers/"):
        return "arm"
    return "mgmt"


def register_error_handlers(app: Flask) -> None:
    """Render ApiFault, every werkzeug HTTPException and any unexpected exception as JSON."""

    @app.errorhandler(ApiFault)
    def _fault(exc: ApiFault) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 404:
            message = f"no route {request.method} {request.path}"
        elif status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
        headers = {}
        if status == 405:
            allow = exc.get_headers().__iter__()
            headers = {k: v for k, v in allow if k.lower() == "allow"}
        return ApiFault(status, None, message, style_for_path(request.path), headers).response()

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        _LOG.exception("unexpected error handling %s %s", request.method, request.path)
        return ApiFault(500, None, f"internal error ({type(exc).__name__})",
                        style_for_path(request.path)).response()
