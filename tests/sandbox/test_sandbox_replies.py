"""Replies: threads, and a reply to a status that does not exist, per server."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]

#: personality: (status, error) for a reply to a missing status; None: posted top-level.
MISSING_TARGET: dict[str, tuple[int, str] | None] = {
    "mastodon": (404, "The post you are trying to reply to does not appear to exist."),
    "gotosocial": (404, "Not Found: target status not found"),
    "pleroma": (422, "The post being replied to was deleted"),
    "akkoma": (422, "Parent post does not exist or was deleted"),
    "takahe": None,
}


def test_a_reply_to_a_missing_status(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    answer = client.post("/api/v1/statuses", data={"status": "suite", "in_reply_to_id": "4242"})
    expected = MISSING_TARGET[personality]
    if expected is None:
        assert answer.status_code == 200
        assert answer.json()["in_reply_to_id"] is None
        assert server.statuses()[0]["in_reply_to_id"] is None
    else:
        assert (answer.status_code, answer.json()) == (expected[0], {"error": expected[1]})
        assert server.statuses() == []


def test_a_thread_links_each_part_to_the_previous(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    parent = None
    for part in ("1/3", "2/3", "3/3"):
        data = {"status": part}
        if parent:
            data["in_reply_to_id"] = parent
        answer = client.post("/api/v1/statuses", data=data).json()
        assert answer["in_reply_to_id"] == parent
        parent = answer["id"]
    records = server.statuses()
    assert [r["in_reply_to_id"] for r in records] == [None, records[0]["id"], records[1]["id"]]


@pytest.mark.parametrize("personality", ["mastodon", "gotosocial"])
def test_a_reply_to_someone_elses_private_status_is_a_missing_target(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    alba = open_client(server, server.add_account("alba"))
    peuples = open_client(server, server.add_account("peuples"))
    private = alba.post("/api/v1/statuses", data={"status": "p", "visibility": "private"}).json()
    answer = peuples.post("/api/v1/statuses", data={"status": "r", "in_reply_to_id": private["id"]})
    assert answer.status_code == 404
