"""What the client does with the local workspace's answers: no retry of a refusal (4xx), blob URLs to download."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from amlvc.client import Client, RetryPolicy, hosts_for
from amlvc.errors import ApiError, AuthError
from amlvc.server.runner import start_server

WS = "0123456789abcdef0123456789abcdef"
TOKEN = "client-test-token"
FAST = RetryPolicy(attempts=6, backoff=0.001, max_backoff=0.002)


def make_client(url: str, token: str = TOKEN) -> Client:
    return Client("dev", WS, hosts_for(endpoint=url), token, token_source="$AMLVC_TOKEN", retry=FAST,
                  sleep=lambda _s: None, seed=1)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Any]:
    with start_server(tmp_path / "data", workspaces=[(WS, TOKEN)]) as handle:
        yield handle


def test_a_non_ascii_token_is_refused_once_not_retried(ws: Any) -> None:
    client = make_client(ws.url, token="client-t\u00e9st-token")
    with pytest.raises(AuthError) as info:
        client.get_workspace()
    assert client.requests_made == 1
    assert "$AMLVC_TOKEN" in info.value.message and "t\u00e9st" not in info.value.message


def test_a_token_no_header_can_carry_is_refused_before_sending(ws: Any) -> None:
    client = make_client(ws.url, token="client-\u20ac-token")
    with pytest.raises(AuthError) as info:
        client.get_workspace()
    assert client.requests_made == 0 and "$AMLVC_TOKEN" in info.value.message and "\u20ac" not in info.value.message


def test_a_refused_request_is_sent_once(ws: Any) -> None:
    client = make_client(ws.url)
    with pytest.raises(ApiError) as info:
        client.studio("POST", f"workspaces/{WS}/experiments/", json_body={"Description": ""}, what="new")
    assert info.value.status == 400 and client.requests_made == 1


class _Refusing(BaseHTTPRequestHandler):
    """Answers every GET with the status in the path (`/440`): a gateway's refusal the local server never sends."""

    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        status = int(self.path.strip("/").split("/")[-1])
        body = b'{"error": {"code": "Refused", "message": "refused"}}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status", [400, 405, 409, 413, 440, 451])
def test_no_4xx_is_retried(status: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _Refusing.seen = 0
        client = make_client(f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(ApiError) as info:
            client.management("GET", str(status))
        assert info.value.status == status and client.requests_made == 1 and _Refusing.seen == 1
    finally:
        server.shutdown()
        server.server_close()
