"""Idempotency-Key as each server treats it: honoured per account, per key, or ignored."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sandbox_support import ManualClock

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]


def post(client: httpx.Client, text: str, key: str) -> httpx.Response:
    return client.post("/api/v1/statuses", data={"status": text}, headers={"Idempotency-Key": key})


@pytest.mark.parametrize("personality", ["mastodon", "pleroma", "akkoma"])
def test_a_replayed_key_returns_the_same_status_and_stores_nothing(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    first = post(client, "une fois", "venezuela/lancement/alba/1")
    again = post(client, "une fois", "venezuela/lancement/alba/1")
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert [s["text"] for s in server.statuses()] == ["une fois"]


@pytest.mark.parametrize("personality", ["gotosocial", "takahe"])
def test_servers_that_ignore_the_key_post_again(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    ids = {post(client, "encore", "same-key").json()["id"] for _ in range(3)}
    assert len(ids) == 3
    assert len(server.statuses()) == 3


def test_pleroma_marks_a_replay(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("pleroma")
    client = open_client(server, server.add_account("alba"))
    first = post(client, "x", "k")
    again = post(client, "x", "k")
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-original-request-id"] == first.headers["x-request-id"]
    assert again.content == first.content


@pytest.mark.parametrize(
    ("personality", "shared"), [("mastodon", False), ("pleroma", False), ("akkoma", True)]
)
def test_the_key_is_per_account_except_on_akkoma(
    personality: str, shared: bool, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    alba = open_client(server, server.add_account("alba"))
    peuples = open_client(server, server.add_account("peuples"))
    first = post(alba, "d'alba", "shared-key").json()
    second = post(peuples, "des peuples", "shared-key").json()
    if shared:
        # Akkoma's plug keys the cache by the key alone: the other account gets alba's status.
        assert second["id"] == first["id"]
        assert second["account"]["username"] == "alba"
        assert [s["account"] for s in server.statuses()] == ["alba"]
    else:
        assert second["id"] != first["id"]
        assert [s["account"] for s in server.statuses()] == ["alba", "peuples"]


@pytest.mark.parametrize(("personality", "lifetime"), [("mastodon", 3600), ("pleroma", 6 * 3600)])
def test_the_key_expires(
    personality: str,
    lifetime: int,
    start_server: StartServer,
    open_client: OpenClient,
    clock: ManualClock,
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    first = post(client, "x", "k").json()["id"]
    clock.advance(lifetime - 1)
    assert post(client, "x", "k").json()["id"] == first
    clock.advance(2)
    later = post(client, "x", "k").json()["id"]
    assert later != first
    assert len(server.statuses()) == 2


def test_mastodon_remembers_only_successes(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    assert post(client, "x" * 501, "k").status_code == 422
    fixed = post(client, "x" * 500, "k")
    assert fixed.status_code == 200
    assert post(client, "x" * 500, "k").json()["id"] == fixed.json()["id"]


def test_pleroma_replays_even_a_refusal(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("pleroma", max_characters=10)
    client = open_client(server, server.add_account("alba"))
    refused = post(client, "x" * 11, "k")
    assert refused.status_code == 422
    replayed = post(client, "short", "k")  # the plug answers from its cache, unchanged
    assert replayed.status_code == 422
    assert replayed.json() == refused.json()
    assert replayed.headers["idempotent-replayed"] == "true"
    assert server.statuses() == []
    assert post(client, "short", "other-key").status_code == 200


def test_mastodon_replays_ignore_the_new_parameters(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    first = post(client, "original", "k").json()
    replay = post(client, "changed", "k").json()
    assert replay["id"] == first["id"]
    assert replay["content"] == "<p>original</p>"
