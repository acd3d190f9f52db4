"""Injected faults, observed from a real client: delays, statuses, resets, revocation, down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sandbox_support import ManualClock

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]

#: What httpx raises when the server closes the connection without answering.
CONNECTION_LOST = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def post(client: httpx.Client, text: str, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/v1/statuses", data={"status": text}, headers=headers)


def test_delay_answers_late(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    server.faults.add("POST /api/v1/statuses", "delay", seconds=0.3)
    began = time.monotonic()
    assert post(client, "late").status_code == 200
    assert time.monotonic() - began >= 0.3
    began = time.monotonic()
    assert post(client, "on time").status_code == 200
    assert time.monotonic() - began < 0.3


def test_delay_makes_a_client_time_out_and_the_status_is_still_stored(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"), timeout=0.1)
    server.faults.add("POST /api/v1/statuses", "delay", seconds=0.4)
    with pytest.raises(httpx.ReadTimeout):
        post(client, "sent anyway")
    deadline = time.monotonic() + 2
    while not server.statuses() and time.monotonic() < deadline:
        time.sleep(0.02)  # the server finishes the request after the client gave up
    assert [s["text"] for s in server.statuses()] == ["sent anyway"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_status_answers_an_error_and_stores_nothing(
    status: int, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    server.faults.add("POST /api/v1/statuses", "status", times=2, status=status)
    assert [post(client, "x").status_code for _ in range(3)] == [status, status, 200]
    assert len(server.statuses()) == 1


def test_status_can_carry_a_body_and_headers(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    server.faults.add(
        "POST /api/v1/statuses",
        "status",
        status=429,
        body={"error": "Too many requests"},
        headers={"X-RateLimit-Reset": "2017-10-05T15:00:00.000000Z", "Retry-After": "60"},
    )
    answer = post(client, "x")
    assert answer.status_code == 429
    assert answer.json() == {"error": "Too many requests"}
    assert answer.headers["X-RateLimit-Reset"] == "2017-10-05T15:00:00.000000Z"
    assert answer.headers["Retry-After"] == "60"


def test_reset_before_stores_nothing(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    server.faults.add("POST /api/v1/statuses", "reset_before")
    with pytest.raises(CONNECTION_LOST):
        post(client, "lost")
    assert server.statuses() == []
    assert post(client, "next").status_code == 200


def test_reset_after_stores_although_the_client_got_no_answer(
    tmp_path: Path, start_server: StartServer, open_client: OpenClient
) -> None:
    record = tmp_path / "record.jsonl"
    server = start_server("mastodon", record_path=record)
    client = open_client(server, server.add_account("alba"))
    server.faults.add("POST /api/v1/statuses", "reset_after")
    with pytest.raises(CONNECTION_LOST):
        post(client, "sent, unanswered", key="k1")
    assert [s["text"] for s in server.statuses()] == ["sent, unanswered"]
    assert "sent, unanswered" in record.read_text(encoding="utf-8")
    # Mastodon honours the key: the retry returns the stored status, nothing new.
    retry = post(client, "sent, unanswered", key="k1")
    assert retry.status_code == 200
    assert retry.json()["id"] == server.statuses()[0]["id"]
    assert len(server.statuses()) == 1


def test_reset_after_then_a_retry_duplicates_on_gotosocial(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("gotosocial")
    client = open_client(server, server.add_account("alba"))
    server.faults.add("POST /api/v1/statuses", "reset_after")
    with pytest.raises(CONNECTION_LOST):
        post(client, "once?", key="k1")
    assert post(client, "once?", key="k1").status_code == 200
    # The key is ignored: a client must reconcile (look at the account's statuses) first.
    assert [s["text"] for s in server.statuses()] == ["once?", "once?"]


def test_revoke_invalidates_the_token_from_that_request_on(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    token = server.add_account("alba")
    client = open_client(server, token)
    server.faults.add("POST /api/v1/statuses", "revoke")
    answer = post(client, "x")
    assert answer.status_code == 401
    assert answer.json() == {"error": "The access token was revoked"}
    assert client.get("/api/v1/accounts/verify_credentials").status_code == 401
    assert server.statuses() == []


def test_down_refuses_at_once_for_a_duration_of_sandbox_time(
    start_server: StartServer, open_client: OpenClient, clock: ManualClock
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    server.faults.add("* /", "down", seconds=60)
    for _ in range(3):
        with pytest.raises(CONNECTION_LOST):
            client.get("/api/v1/instance")
    clock.advance(61)
    assert client.get("/api/v1/instance").status_code == 200
    assert server.faults.pending() == []


def test_down_without_a_duration_counts_requests(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    server.faults.add("GET /api/v1/instance", "down", times=1)
    with pytest.raises(CONNECTION_LOST):
        client.get("/api/v1/instance")
    assert client.get("/api/v1/instance").status_code == 200


def test_faults_match_method_and_path_prefix(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    server.faults.add("POST /api/v1/statuses", "status", status=503)
    assert client.get("/api/v1/instance").status_code == 200
    assert client.get("/api/v1/accounts/verify_credentials").status_code == 200
    assert post(client, "x").status_code == 503
    server.faults.add("GET /api/v1/accounts", "status", status=500)
    assert client.get("/api/v1/accounts/verify_credentials").status_code == 500
    server.faults.add("POST /api/v1/statuses", "status", status=502, times=5)
    server.faults.clear()
    assert post(client, "y").status_code == 200


@pytest.mark.parametrize(
    ("pattern", "kind", "params"),
    [
        ("POST /x", "explode", {}),
        ("/x extra words", "revoke", {}),
        ("POST x", "revoke", {}),
        ("POST /x", "delay", {}),
        ("POST /x", "status", {}),
        ("POST /x", "status", {"status": 99}),
        ("POST /x", "revoke", {"seconds": 1}),
    ],
)
def test_a_malformed_fault_is_refused(
    pattern: str, kind: str, params: dict[str, object], start_server: StartServer
) -> None:
    server = start_server("mastodon")
    with pytest.raises(ValueError, match=r"."):
        server.faults.add(pattern, kind, **params)
    assert server.faults.pending() == []


def test_faults_over_http(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("mastodon")
    admin = open_client(server)
    created = admin.post(
        "/_sandbox/faults",
        json=[
            {"pattern": "POST /api/v1/statuses", "kind": "status", "status": 503, "times": 2},
            {"pattern": "POST /api/v1/statuses", "kind": "reset_after"},
        ],
    )
    assert created.status_code == 201
    assert [f["kind"] for f in created.json()["faults"]] == ["status", "reset_after"]
    token = admin.post("/_sandbox/accounts", json={"username": "alba"}).json()["token"]
    client = open_client(server, token)
    assert [post(client, "x").status_code for _ in range(2)] == [503, 503]
    with pytest.raises(CONNECTION_LOST):
        post(client, "stored, unanswered")
    stored = admin.get("/_sandbox/statuses").json()
    assert [s["text"] for s in stored] == ["stored, unanswered"]
    assert admin.get("/_sandbox/faults").json() == {"faults": []}
    admin.post("/_sandbox/faults", json={"faults": [{"pattern": "* /", "kind": "down"}]})
    assert admin.delete("/_sandbox/faults").json() == {"faults": []}
    assert post(client, "after").status_code == 200
    bad = admin.post("/_sandbox/faults", json={"pattern": "POST /x", "kind": "explode"})
    assert bad.status_code == 400


def test_administration_is_never_faulted(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    admin = open_client(server)
    server.faults.add("* /", "down", seconds=600)
    assert admin.get("/_sandbox").json()["personality"] == "mastodon"
    assert admin.delete("/_sandbox/faults").status_code == 200
    assert admin.get("/api/v1/instance").status_code == 200


def test_the_admin_api_moves_the_clock_and_revokes(
    start_server: StartServer, open_client: OpenClient, clock: ManualClock
) -> None:
    server = start_server("mastodon")
    admin = open_client(server)
    token = admin.post("/_sandbox/accounts", json={"username": "alba"}).json()["token"]
    moved = admin.post("/_sandbox/clock", json={"advance": 3600}).json()
    assert moved == {"now": "2017-10-05T13:00:00.000Z", "offset": 3600.0}
    assert admin.post("/_sandbox/clock", json={"offset": 0}).json()["offset"] == 0.0
    assert server.now() == clock.now
    assert admin.post("/_sandbox/revoke", json={"token": token}).json() == {"revoked": True}
    assert open_client(server, token).get("/api/v1/accounts/verify_credentials").status_code == 401
    assert admin.get("/_sandbox/nothing").status_code == 404
    assert admin.post("/_sandbox/accounts", json={"username": "not valid!"}).status_code == 400
