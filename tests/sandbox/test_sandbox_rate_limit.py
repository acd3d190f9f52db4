"""Rate limits: N statuses per window, then 429 — with the headers each server sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from sandbox_support import START, ManualClock

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]

WINDOW = 3600.0
#: The first window boundary after START (windows are aligned on the epoch).
RESET = (START // WINDOW + 1) * WINDOW


def test_mastodon_limits_per_account_with_iso_reset_headers(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon", statuses_per_window=3, window_seconds=WINDOW)
    alba = open_client(server, server.add_account("alba"))
    remaining = []
    for number in range(3):
        answer = alba.post("/api/v1/statuses", data={"status": f"n{number}"})
        assert answer.status_code == 200
        remaining.append(answer.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    refused = alba.post("/api/v1/statuses", data={"status": "one too many"})
    assert refused.status_code == 429
    assert refused.json() == {"error": "Too many requests"}
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    reset = refused.headers["X-RateLimit-Reset"]
    assert reset.endswith(".000000Z")
    assert datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp() == RESET
    assert len(server.statuses()) == 3
    other = open_client(server, server.add_account("peuples"))
    assert other.post("/api/v1/statuses", data={"status": "mine"}).status_code == 200


def test_the_window_passes_with_the_clock(
    start_server: StartServer, open_client: OpenClient, clock: ManualClock
) -> None:
    server = start_server("mastodon", statuses_per_window=1, window_seconds=WINDOW)
    alba = open_client(server, server.add_account("alba"))
    assert alba.post("/api/v1/statuses", data={"status": "a"}).status_code == 200
    assert alba.post("/api/v1/statuses", data={"status": "b"}).status_code == 429
    clock.now = RESET
    answer = alba.post("/api/v1/statuses", data={"status": "c"})
    assert answer.status_code == 200
    assert answer.headers["X-RateLimit-Remaining"] == "0"


def test_mastodon_counts_only_statuses_it_stores(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon", statuses_per_window=2, window_seconds=WINDOW)
    alba = open_client(server, server.add_account("alba"))
    assert alba.post("/api/v1/statuses", data={"status": "x" * 501}).status_code == 422
    first = alba.post("/api/v1/statuses", data={"status": "a"}, headers={"Idempotency-Key": "k"})
    replay = alba.post("/api/v1/statuses", data={"status": "a"}, headers={"Idempotency-Key": "k"})
    assert replay.headers["X-RateLimit-Remaining"] == "1"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert alba.post("/api/v1/statuses", data={"status": "b"}).status_code == 200


def test_gotosocial_limits_per_ip_with_unix_reset_headers_on_every_answer(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("gotosocial", statuses_per_window=2, window_seconds=WINDOW)
    alba = open_client(server, server.add_account("alba"))
    peuples = open_client(server, server.add_account("peuples"))
    assert alba.post("/api/v1/statuses", data={"status": "a"}).status_code == 200
    assert peuples.post("/api/v1/statuses", data={"status": "b"}).status_code == 200
    refused = alba.post("/api/v1/statuses", data={"status": "c"})  # same IP: 127.0.0.1
    assert refused.status_code == 429
    assert refused.json() == {"error": "rate limit reached"}
    assert refused.headers["X-Ratelimit-Limit"] == "2"
    assert refused.headers["X-Ratelimit-Remaining"] == "0"
    assert refused.headers["X-Ratelimit-Reset"] == str(int(RESET))
    instance = alba.get("/api/v1/instance")
    assert instance.headers["X-Ratelimit-Remaining"] == "0"


@pytest.mark.parametrize("personality", ["pleroma", "akkoma"])
def test_pleroma_throttles_without_headers(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality, statuses_per_window=1, window_seconds=WINDOW)
    alba = open_client(server, server.add_account("alba"))
    assert alba.post("/api/v1/statuses", data={"status": "a"}).status_code == 200
    refused = alba.post("/api/v1/statuses", data={"status": "b"})
    assert refused.status_code == 429
    assert refused.json() == {"error": "Throttled"}
    assert not any(name.lower().startswith("x-ratelimit") for name in refused.headers)


def test_takahe_has_no_limit_and_no_headers(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("takahe", statuses_per_window=1, window_seconds=WINDOW)
    alba = open_client(server, server.add_account("alba"))
    for number in range(3):
        answer = alba.post("/api/v1/statuses", data={"status": f"n{number}"})
        assert answer.status_code == 200
        assert not any(name.lower().startswith("x-ratelimit") for name in answer.headers)
