"""Concurrency, request encodings, ``scheduled_at`` and ``language`` per server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sandbox_support import START, TLS

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]


def test_concurrent_clients_each_status_stored_once_and_recorded_in_id_order(
    tmp_path: Path, start_server: StartServer
) -> None:
    record = tmp_path / "record.jsonl"
    server = start_server("mastodon", record_path=record, statuses_per_window=10_000)
    names = [f"compte{i}" for i in range(8)]
    tokens = {name: server.add_account(name) for name in names}
    acknowledged: list[str] = []
    lock = threading.Lock()

    def publish(name: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[name]}"}
        with httpx.Client(base_url=server.url, headers=headers, verify=TLS) as client:
            for number in range(25):
                key = f"{name}/{number}"
                for _ in range(2):  # every post sent twice with its key: stored once
                    answer = client.post(
                        "/api/v1/statuses",
                        data={"status": key},
                        headers={"Idempotency-Key": key},
                    )
                    assert answer.status_code == 200
                with lock:
                    acknowledged.append(answer.json()["id"])

    threads = [threading.Thread(target=publish, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stored = server.statuses()
    assert len(stored) == len(acknowledged) == 200
    assert sorted(s["id"] for s in stored) == sorted(acknowledged)
    assert len({s["text"] for s in stored}) == 200
    lines = [json.loads(line)["id"] for line in record.read_text(encoding="utf-8").splitlines()]
    assert lines == [s["id"] for s in stored]
    assert lines == sorted(lines, key=lambda i: (len(i), i))


def test_a_chunked_body_is_read(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    answer = client.post(
        "/api/v1/statuses",
        content=iter([b"status=en+", b"morceaux&visibility=unlisted"]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"] == "<p>en morceaux</p>"
    assert answer.json()["visibility"] == "unlisted"


def test_malformed_json_is_a_400(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    answer = client.post(
        "/api/v1/statuses", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert server.statuses() == []


def at(seconds_from_start: float) -> str:
    return datetime.fromtimestamp(START + seconds_from_start, UTC).isoformat()


OFFSETS = (-60, 120, 3600)
#: personality: what becomes of a post scheduled 1 minute ago, 2 minutes ahead, 1 hour ahead:
#: "now" (posted at once) or the refusal's status code. The sandbox keeps no scheduled
#: status, so one far enough ahead is refused (with the server's validation status).
SCHEDULED = {
    "mastodon": ("now", 422, 422),
    "gotosocial": (400, 400, 400),
    "pleroma": ("now", "now", 422),
    "takahe": ("now", "now", "now"),
}


@pytest.mark.parametrize("personality", sorted(SCHEDULED))
def test_scheduled_at(personality: str, start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    outcomes = dict(zip(OFFSETS, SCHEDULED[personality], strict=True))
    for offset, expected in outcomes.items():
        answer = client.post(
            "/api/v1/statuses", data={"status": f"at {offset}", "scheduled_at": at(offset)}
        )
        if expected == "now":
            assert answer.status_code == 200, (offset, answer.text)
            assert answer.json()["created_at"] == "2017-10-05T12:00:00.000Z"
        else:
            assert answer.status_code == expected, (offset, answer.text)
    posted = [s["text"] for s in server.statuses()]
    assert posted == [
        f"at {o}"
        for o, e in zip((-60, 120, 3600), SCHEDULED[personality], strict=True)
        if e == "now"
    ]


#: personality: (status, stored language) for ``language=not a language!``.
BAD_LANGUAGE = {
    "mastodon": (200, "en"),
    "gotosocial": (400, None),
    "pleroma": (422, None),
    "takahe": (200, None),
}


@pytest.mark.parametrize("personality", sorted(BAD_LANGUAGE))
def test_an_invalid_language(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    answer = client.post("/api/v1/statuses", data={"status": "x", "language": "not a language!"})
    status, language = BAD_LANGUAGE[personality]
    assert answer.status_code == status
    if status == 200:
        assert answer.json()["language"] == language
