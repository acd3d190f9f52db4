"""Posting and reading statuses: the stored shape, defaults per server, content, paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sandbox_support import START, ManualClock

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]


def test_a_status_is_stored_and_answered_in_mastodon_shape(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    answer = client.post(
        "/api/v1/statuses",
        data={
            "status": "Nous sommes tous le Venezuela",
            "spoiler_text": "politique",
            "visibility": "unlisted",
            "language": "fr",
            "sensitive": "true",
        },
    )
    assert answer.status_code == 200, answer.text
    status = answer.json()
    assert status["spoiler_text"] == "politique"
    assert status["visibility"] == "unlisted"
    assert status["sensitive"] is True
    assert status["language"] == (None if personality == "takahe" else "fr")
    assert status["in_reply_to_id"] is None
    assert status["media_attachments"] == []
    assert status["account"]["username"] == "alba"
    assert status["url"] == f"{server.url}/@alba/{status['id']}"
    assert status["created_at"] == "2017-10-05T12:00:00.000Z"
    assert status["content"] == "<p>Nous sommes tous le Venezuela</p>"
    [stored] = server.statuses()
    assert stored["id"] == status["id"]
    assert stored["text"] == "Nous sommes tous le Venezuela"
    assert stored["account"] == "alba"
    assert stored["personality"] == personality


def test_a_json_body_is_accepted(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    media = client.post("/api/v2/media", files={"file": ("a.png", b"\x89PNG", "image/png")}).json()
    answer = client.post(
        "/api/v1/statuses",
        json={
            "status": "json",
            "sensitive": True,
            "media_ids": [media["id"]],
            "visibility": "private",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["sensitive"] is True
    assert answer.json()["visibility"] == "private"
    assert [m["id"] for m in answer.json()["media_attachments"]] == [media["id"]]


#: personality: (visibility, language) when the request omits both.
DEFAULTS = {
    "mastodon": ("public", "en"),
    "gotosocial": ("unlisted", "en"),
    "pleroma": ("public", None),
    "akkoma": ("public", None),
    "takahe": ("public", None),
}


def test_omitted_visibility_and_language_take_the_servers_defaults(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    status = open_client(server, server.add_account("alba")).post(
        "/api/v1/statuses", data={"status": "defaults"}
    )
    assert (status.json()["visibility"], status.json()["language"]) == DEFAULTS[personality]


def test_gotosocial_defaults_come_from_the_account_settings(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("gotosocial")
    me = open_client(server, server.add_account("alba")).get("/api/v1/accounts/verify_credentials")
    assert me.json()["source"]["privacy"] == "unlisted"
    assert me.json()["source"]["language"] == "en"


@pytest.mark.parametrize(
    ("personality", "status"),
    [("mastodon", 422), ("gotosocial", 400), ("pleroma", 422), ("takahe", 400)],
)
def test_an_unknown_visibility_is_refused(
    personality: str, status: int, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    answer = open_client(server, server.add_account("alba")).post(
        "/api/v1/statuses", data={"status": "x", "visibility": "everyone"}
    )
    assert answer.status_code == status
    assert server.statuses() == []


def test_a_spoiler_makes_a_mastodon_status_sensitive_but_not_a_pleroma_one(
    start_server: StartServer, open_client: OpenClient
) -> None:
    for personality, sensitive in (("mastodon", True), ("pleroma", False)):
        server = start_server(personality)
        answer = open_client(server, server.add_account("alba")).post(
            "/api/v1/statuses", data={"status": "text", "spoiler_text": "cw"}
        )
        assert answer.json()["sensitive"] is sensitive, personality


def test_mastodon_makes_a_lone_spoiler_the_text(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    answer = open_client(server, server.add_account("alba")).post(
        "/api/v1/statuses", data={"status": "", "spoiler_text": "only a warning"}
    )
    assert answer.status_code == 200
    assert answer.json()["spoiler_text"] == ""
    assert answer.json()["content"] == "<p>only a warning</p>"


def test_content_is_html_as_mastodon_formats_it(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    server.add_account("peuples")
    client = open_client(server, server.add_account("alba"))
    text = (
        "Solidarité <b>&</b> « paix »\nligne deux\n\n#Venezuela2017 et #2017 "
        "https://example.org/a/very/long/path/that/goes/on.html. @peuples @inconnu@ailleurs.example"
    )
    status = client.post("/api/v1/statuses", data={"status": text}).json()
    content = status["content"]
    assert content.startswith(
        "<p>Solidarité &lt;b&gt;&amp;&lt;/b&gt; « paix »<br />ligne deux</p><p>"
    )
    assert (
        f'<a href="{server.url}/tags/venezuela2017" class="mention hashtag" rel="tag">' in content
    )
    assert "#<span>Venezuela2017</span></a> et #2017 " in content  # #2017 is not a hashtag
    assert (
        '<a href="https://example.org/a/very/long/path/that/goes/on.html" target="_blank" '
        'rel="nofollow noopener" translate="no"><span class="invisible">https://</span>'
        '<span class="ellipsis">example.org/a/very/long/path/t</span>'
        '<span class="invisible">hat/goes/on.html</span></a>. ' in content
    )
    assert (
        f'<a href="{server.url}/@peuples" class="u-url mention">@<span>peuples</span></a>'
        in content
    )
    assert content.endswith(" @inconnu@ailleurs.example</p>")  # unknown: plain text
    assert [t["name"] for t in status["tags"]] == ["venezuela2017"]
    assert [m["acct"] for m in status["mentions"]] == ["peuples"]


def test_get_status_and_its_visibility(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("mastodon")
    alba = open_client(server, server.add_account("alba"))
    other = open_client(server, server.add_account("peuples"))
    anonymous = open_client(server)
    public = alba.post("/api/v1/statuses", data={"status": "public"}).json()["id"]
    private = alba.post("/api/v1/statuses", data={"status": "p", "visibility": "private"}).json()[
        "id"
    ]
    assert anonymous.get(f"/api/v1/statuses/{public}").json()["id"] == public
    assert alba.get(f"/api/v1/statuses/{private}").status_code == 200
    assert other.get(f"/api/v1/statuses/{private}").status_code == 404
    missing = anonymous.get("/api/v1/statuses/123")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Record not found"}


def test_account_statuses_are_newest_first_and_paged(
    personality: str, start_server: StartServer, open_client: OpenClient, clock: ManualClock
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    account_id = client.get("/api/v1/accounts/verify_credentials").json()["id"]
    ids = []
    for number in range(7):
        clock.advance(1)
        ids.append(client.post("/api/v1/statuses", data={"status": f"n{number}"}).json()["id"])
    assert ids == sorted(ids, key=lambda i: (len(i), i))  # ids increase
    path = f"/api/v1/accounts/{account_id}/statuses"
    first = client.get(path, params={"limit": 3})
    assert [s["id"] for s in first.json()] == ids[6:3:-1]
    following = first.links["next"]["url"]
    second = client.get(following)
    assert [s["id"] for s in second.json()] == ids[3:0:-1]
    newer = client.get(path, params={"min_id": ids[1], "limit": 2}).json()
    assert [s["id"] for s in newer] == [ids[3], ids[2]]
    since = client.get(path, params={"since_id": ids[4]}).json()
    assert [s["id"] for s in since] == [ids[6], ids[5]]
    everything = client.get(path, params={"limit": 100}).json()
    assert len(everything) == 7


def test_account_statuses_can_leave_out_replies_and_hide_private_ones(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    alba = open_client(server, server.add_account("alba"))
    account_id = alba.get("/api/v1/accounts/verify_credentials").json()["id"]
    first = alba.post("/api/v1/statuses", data={"status": "first"}).json()["id"]
    alba.post("/api/v1/statuses", data={"status": "reply", "in_reply_to_id": first})
    alba.post("/api/v1/statuses", data={"status": "private", "visibility": "private"})
    path = f"/api/v1/accounts/{account_id}/statuses"
    assert len(alba.get(path).json()) == 3
    assert len(alba.get(path, params={"exclude_replies": "true"}).json()) == 2
    assert [s["content"] for s in open_client(server).get(path).json()] == [
        "<p>reply</p>",
        "<p>first</p>",
    ]
    assert alba.get(f"/api/v1/statuses/{first}").json()["replies_count"] == 1


def test_every_stored_status_is_one_flushed_line_of_the_record(
    tmp_path: Path, start_server: StartServer, open_client: OpenClient
) -> None:
    record = tmp_path / "record.jsonl"
    server = start_server("pleroma", record_path=record)
    client = open_client(server, server.add_account("alba"))
    first = client.post(
        "/api/v1/statuses",
        data={"status": "  un  ", "visibility": "public", "language": "fr"},
        headers={"Idempotency-Key": "campagne/un"},
    ).json()
    client.post("/api/v1/statuses", data={"status": "deux", "in_reply_to_id": first["id"]})
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert lines == server.statuses()
    assert [line["text"] for line in lines] == ["un", "deux"]  # Pleroma trims the text
    assert lines[0]["idempotency_key"] == "campagne/un"
    assert lines[0]["created_at"] == "2017-10-05T12:00:00.000Z"
    assert lines[1]["in_reply_to_id"] == first["id"]
    assert {line["personality"] for line in lines} == {"pleroma"}


def test_the_record_file_is_appended_to_across_servers(
    tmp_path: Path, start_server: StartServer
) -> None:
    record = tmp_path / "record.jsonl"
    for text in ("before", "after"):
        server = start_server("mastodon", record_path=record)
        httpx.post(
            f"{server.url}/api/v1/statuses",
            data={"status": text},
            headers={"Authorization": f"Bearer {server.add_account('alba')}"},
        )
        server.stop()
    texts = [json.loads(line)["text"] for line in record.read_text(encoding="utf-8").splitlines()]
    assert texts == ["before", "after"]


def test_statuses_can_be_filtered_by_account(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("gotosocial")
    open_client(server, server.add_account("alba")).post("/api/v1/statuses", data={"status": "a"})
    open_client(server, server.add_account("peuples")).post(
        "/api/v1/statuses", data={"status": "p"}
    )
    assert [s["text"] for s in server.statuses("peuples")] == ["p"]
    assert [s["text"] for s in server.statuses("ALBA")] == ["a"]


def test_the_clock_gives_created_at(
    start_server: StartServer, open_client: OpenClient, clock: ManualClock
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    clock.advance(3600.25)
    assert client.post("/api/v1/statuses", data={"status": "x"}).json()["created_at"] == (
        "2017-10-05T13:00:00.250Z"
    )
    assert server.now() == START + 3600.25
