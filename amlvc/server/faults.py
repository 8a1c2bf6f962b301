"""Injected latency and seeded faults (`--latency-ms`, `--fault-rate`, `--fault-seed`), as a WSGI middleware.

What a flaky gateway in front of the real service did, and how it is emulated:
* 429 with `Retry-After`, 503 and 500 answered by the gateway *before* the request reaches the
  service: the request is not handled at all, so no state changes.
* A connection reset: the socket is shut down before anything is read or answered (no state
  change; the client sees "connection aborted / remote end closed").
* A truncated body: only for GET/HEAD (read-only), the full response is computed, its headers
  promise the full Content-Length, half the body is sent and the connection is closed. For any
  other method the drawn "truncate" becomes a reset before handling, so a write is never half-done.
Draws come from `random.Random(seed)` under a lock, one draw sequence per server: the same seed
gives the same sequence of faults for the same sequence of requests.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amlvc.server.errors import ApiFault, style_for_path

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FAULT_KINDS = ("500", "503", "429", "reset", "truncate")
RETRY_AFTER_S = "1"


@dataclass(frozen=True)
class Fault:
    kind: str
    index: int  # position of the request in the draw sequence


class FaultInjector:
    """Decides, per request, whether and how it fails; deterministic for a given seed and request order."""

    def __init__(self, rate: float, seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        self.rate = rate
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._count = 0
        self.log: deque[Fault] = deque(maxlen=1000)  # the latest injected faults, for debugging

    def draw(self) -> Fault | None:
        with self._lock:
            self._count += 1
            hit = self._rng.random() < self.rate
            kind = self._rng.choice(FAULT_KINDS)
            if not hit:
                return None
            fault = Fault(kind, self._count)
            self.log.append(fault)
            return fault

    def sequence(self, n: int) -> list[str | None]:
        """The first n decisions a fresh injector with this seed makes (for tests and docs)."""
        twin = FaultInjector(self.rate, self.seed)
        return [f.kind if (f := twin.draw()) else None for _ in range(n)]


def _drop(environ: WSGIEnvironment) -> None:
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class FaultMiddleware:
    """Wraps the Flask WSGI app: sleeps `latency_ms`, then maybe injects a fault; times the application."""

    def __init__(self, app: WSGIApplication, latency_ms: int, faults: FaultInjector | None) -> None:
        self.app = app
        self.latency_ms = latency_ms
        self.faults = faults

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000.0)
        fault = self.faults.draw() if self.faults is not None and self.faults.rate > 0 else None
        if fault is None:
            return self.app(environ, self._timed(start_response))
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "/"))
        if fault.kind == "truncate" and method in ("GET", "HEAD"):
            return self._truncated(environ, start_response)
        if fault.kind in ("reset", "truncate"):
            _drop(environ)
            start_response("500 Internal Server Error", [("Content-Length", "0"), ("Connection", "close")])
            return []
        status = int(fault.kind)
        headers = {"Retry-After": RETRY_AFTER_S} if status == 429 else {}
        message = {429: "too many requests; retry after the interval in Retry-After",
                   503: "the service is temporarily unavailable; retry later",
                   500: "the gateway failed to reach the service; retry later"}[status]
        err = ApiFault(status, None, f"(injected fault) {message}", style_for_path(path), headers)
        body = json.dumps(err.body(), separators=(",", ":")).encode()
        reason = {429: "Too Many Requests", 503: "Service Unavailable", 500: "Internal Server Error"}[status]
        start_response(f"{status} {reason}", [("Content-Type", "application/json; charset=utf-8"),
                                              ("Content-Length", str(len(body))), *headers.items()])
        return [body]

    @staticmethod
    def _timed(start_response: StartResponse) -> StartResponse:
        """Adds `Server-Timing: app;dur=<ms>, cpu;dur=<ms>`: wall and CPU time of the handling thread in the
        application (read by bench/server.py; CPU time is what other processes' load does not inflate)."""
        began, cpu = time.perf_counter(), time.thread_time()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            elapsed = (time.perf_counter() - began) * 1000
            used = (time.thread_time() - cpu) * 1000
            timing = f"app;dur={elapsed:.3f}, cpu;dur={used:.3f}"
            return start_response(status, [*headers, ("Server-Timing", timing)], exc_info)

        return start  # type: ignore[return-value]

    def _truncated(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        yield body[: len(body) // 2]
        _drop(environ)
