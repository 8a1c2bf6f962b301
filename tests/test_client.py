"""The HTTP client against the real local workspace: hosts, error mapping (one test each), retries, faults."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amlvc.client import Client, Hosts, RetryPolicy, hosts_for, parse_retry_after
from amlvc.errors import ApiError, AuthError, ExitCode, RemoteError
from amlvc.server.faults import FaultInjector
from amlvc.server.runner import start_server

WS = "0123456789abcdef0123456789abcdef"
TOKEN = "client-test-token"
FAST = RetryPolicy(attempts=6, backoff=0.001, max_backoff=0.002)


def make_client(url: str, *, token: str = TOKEN, workspace: str = WS, sleeps: list[float] | None = None,
                retry: RetryPolicy = FAST, jobs: int = 8) -> Client:
    record = sleeps.append if sleeps is not None else (lambda _s: None)
    return Client("dev", workspace, hosts_for(endpoint=url), token, token_source="$AMLVC_TOKEN", jobs=jobs,
                  retry=retry, sleep=record, seed=1)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Any]:
    with start_server(tmp_path / "data", workspaces=[(WS, TOKEN)]) as handle:
        yield handle


def seed_where(first: str, rate: float = 0.5) -> int:
    """A fault seed whose first request gets `first` and whose second gets through."""
    for seed in range(10_000):
        if FaultInjector(rate, seed).sequence(2) == [first, None]:
            return seed
    raise AssertionError(f"no seed starts with {first}")


def test_region_names_map_to_the_reference_hosts() -> None:
    assert hosts_for(location="West Europe") == Hosts("https://europewest.studioapi.azureml.net/api/",
                                                      "https://europewest.management.azureml.net/")
    assert hosts_for(location="South Central US").studio == "https://studioapi.azureml.net/api/"
    assert hosts_for(location="westcentralus").studio == "https://uswestcentral.studioapi.azureml.net/api/"
    assert hosts_for(location="Germany Central").management == "https://germanycentral.management.azureml.de/"
    assert hosts_for(location="japaneast").studio == "https://japaneast.studioapi.azureml.net/api/"


def test_endpoint_overrides_location() -> None:
    hosts = hosts_for(location="West Europe", endpoint="http://127.0.0.1:8765/")
    assert hosts == Hosts("http://127.0.0.1:8765/api/", "http://127.0.0.1:8765/")


def test_unknown_location_is_an_error_listing_the_regions() -> None:
    with pytest.raises(RemoteError) as info:
        hosts_for(location="Mars North")
    assert "Mars North" in info.value.message and "West Europe" in info.value.message


def test_retry_after_parses_seconds_and_dates() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_pool_is_sized_to_jobs(ws: Any) -> None:
    client = make_client(ws.url, jobs=13)
    adapter = client.session.get_adapter(ws.url)
    assert adapter._pool_maxsize == 13  # type: ignore[attr-defined]


def test_a_good_token_reads_the_workspace(ws: Any) -> None:
    client = make_client(ws.url)
    assert client.get_workspace()["WorkspaceId"] == WS
    assert client.requests_made == 1


def test_wrong_token_is_an_auth_error_that_names_the_remote_not_the_token(ws: Any) -> None:
    client = make_client(ws.url, token="wrong-token-value")
    with pytest.raises(AuthError) as info:
        client.get_workspace()
    message = info.value.message
    assert info.value.exit_code == ExitCode.REMOTE
    assert "'dev'" in message and "$AMLVC_TOKEN" in message and "401" in message
    assert "wrong-token-value" not in message
    assert client.requests_made == 1  # a refused token is not retried


def test_a_workspace_the_token_does_not_open_is_an_auth_error(ws: Any) -> None:
    client = make_client(ws.url, workspace="f" * 32)
    with pytest.raises(AuthError) as info:
        client.get_workspace()
    assert "403" in info.value.message and "workspace id" in info.value.message


def test_not_found_is_an_api_error_with_status(ws: Any) -> None:
    client = make_client(ws.url)
    with pytest.raises(ApiError) as info:
        client.studio("GET", f"workspaces/{WS}/no-such-collection", what="no-such-collection")
    assert info.value.status == 404 and "'dev'" in info.value.message
    assert info.value.exit_code == ExitCode.REMOTE


def test_closed_port_is_unreachable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    client = make_client(f"http://127.0.0.1:{port}", sleeps=sleeps)
    with pytest.raises(RemoteError) as info:
        client.get_workspace()
    assert not isinstance(info.value, AuthError)
    assert info.value.exit_code == ExitCode.REMOTE
    assert "cannot reach workspace 'dev'" in info.value.message and str(port) in info.value.message
    assert "amlvc.toml" in info.value.message
    assert client.requests_made == 3 and len(sleeps) == 2


@pytest.mark.parametrize("kind", ["500", "503", "429", "reset", "truncate"])
def test_each_injected_fault_is_retried(tmp_path: Path, kind: str) -> None:
    with start_server(tmp_path / "data", workspaces=[(WS, TOKEN)], fault_rate=0.5,
                      fault_seed=seed_where(kind)) as handle:
        sleeps: list[float] = []
        client = make_client(handle.url, sleeps=sleeps)
        assert client.get_workspace()["WorkspaceId"] == WS
        assert client.requests_made == 2 and len(sleeps) == 1
        if kind == "429":
            assert sleeps[0] >= 1.0  # the server's Retry-After: 1 is a floor under the backoff


def test_retry_after_is_capped_by_the_policy(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", workspaces=[(WS, TOKEN)], fault_rate=0.5,
                      fault_seed=seed_where("429")) as handle:
        sleeps: list[float] = []
        client = make_client(handle.url, sleeps=sleeps,
                             retry=RetryPolicy(backoff=0.001, max_backoff=0.002, max_retry_after=0.25))
        client.get_workspace()
        assert sleeps == [0.25]


def test_always_failing_service_gives_up_with_exit_5(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", workspaces=[(WS, TOKEN)], fault_rate=1.0) as handle:
        sleeps: list[float] = []
        client = make_client(handle.url, sleeps=sleeps)
        with pytest.raises(RemoteError) as info:
            client.get_workspace()
        assert info.value.exit_code == ExitCode.REMOTE
        assert "'dev'" in info.value.message and "after 6 attempts" in info.value.message
        assert client.requests_made == 6 and len(sleeps) == 5


def test_backoff_grows_exponentially_with_jitter() -> None:
    import random

    policy = RetryPolicy(backoff=0.1, max_backoff=10.0)
    rng = random.Random(0)
    waits = [policy.delay(n, None, rng) for n in range(5)]
    for n, wait in enumerate(waits):
        cap = 0.1 * 2**n
        assert cap / 2 <= wait <= cap


def test_twenty_percent_faults_do_not_fail_a_series_of_reads(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", workspaces=[(WS, TOKEN)], fault_rate=0.2, fault_seed=7) as handle:
        client = make_client(handle.url)
        for _ in range(30):
            assert client.get_workspace()["WorkspaceId"] == WS
        assert client.requests_made > 30


# -- experiment calls against a seeded workspace ---------------------------------------------------


def test_typed_lists_and_experiment_calls(tmp_path: Path) -> None:
    from pushkit import TRAINING_ID, client, start

    with start(tmp_path) as handle, client(handle) as c:
        assert any(e["ExperimentId"] == TRAINING_ID for e in c.list_experiments())
        assert c.get_experiment(TRAINING_ID)["ExperimentId"] == TRAINING_ID
        for items in (c.list_modules(), c.list_datasources(), c.list_trainedmodels(), c.list_transformmodules()):
            assert isinstance(items, list) and all("Id" in item for item in items)
        with pytest.raises(ApiError) as info:
            c.get_experiment(TRAINING_ID.replace("b3d5", "0000"))
        assert info.value.status == 404 and "not found in workspace 'dev'" in info.value.message


def test_stale_if_match_is_a_conflict_and_writes_nothing(tmp_path: Path) -> None:
    from pushkit import TRAINING_ID, client, start

    from amlvc.canonical.normalize import to_push_body
    from amlvc.errors import ConflictError

    with start(tmp_path) as handle, client(handle) as c:
        doc = c.get_experiment(TRAINING_ID)
        stale = "W/\"datetime'2001-01-01T00%3A00%3A00.0000000Z'\""
        with pytest.raises(ConflictError) as info:
            c.save_experiment(TRAINING_ID, to_push_body({**doc, "Summary": "x"}), etag=stale)
        assert info.value.exit_code == ExitCode.CONFLICT
        assert "changed in workspace 'dev'" in info.value.message and "amlvc pull --remote dev" in info.value.message
        assert c.get_experiment(TRAINING_ID)["Etag"] == doc["Etag"]
        c.save_experiment(TRAINING_ID, to_push_body({**doc, "Summary": "y"}), etag=doc["Etag"])
        assert c.get_experiment(TRAINING_ID)["Summary"] == "y"


@pytest.mark.parametrize(("kind", "created"), [("500", 0), ("reset", 0), ("429", 1), ("503", 1)])
def test_create_is_repeated_only_when_the_service_certainly_ignored_it(tmp_path: Path, kind: str,
                                                                        created: int) -> None:
    from pushkit import TRAINING_ID, client, start

    from amlvc.canonical.normalize import to_push_body

    with start(tmp_path) as clean, client(clean) as c:
        body = to_push_body({**c.get_experiment(TRAINING_ID), "Description": "copy"})
    with start(tmp_path / "faulty", fault_rate=0.5, fault_seed=seed_where(kind)) as handle:
        c = client(handle)
        if created:
            assert c.create_experiment(body)["ExperimentId"]
            assert c.requests_made == 2
        else:
            with pytest.raises(ApiError):
                c.create_experiment(body)
            assert c.requests_made == 1  # not repeated: a second copy could appear
        names = [e["Description"] for e in client(handle).list_experiments()]
        assert names.count("copy") == created
