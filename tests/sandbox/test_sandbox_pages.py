"""The HTML pages: the timeline followers would see, and each status's own page."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]


def test_the_timeline_shows_what_followers_see_newest_first(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    media = client.post(
        "/api/v2/media",
        files={"file": ("a.png", b"\x89PNG", "image/png")},
        data={"description": "Drapeaux <sur> la place"},
    ).json()
    first = client.post(
        "/api/v1/statuses",
        data={"status": "Premier message & #Paz", "media_ids[]": media["id"]},
    ).json()
    client.post(
        "/api/v1/statuses",
        data={"status": "La suite", "spoiler_text": "Violence", "in_reply_to_id": first["id"]},
    )
    client.post("/api/v1/statuses", data={"status": "secret", "visibility": "direct"})
    page = open_client(server).get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "Premier message &amp; " in html
    assert "<details><summary>Violence</summary><p>La suite</p>" in html
    assert 'alt="Drapeaux &lt;sur&gt; la place"' in html
    assert f'in reply to <a href="#status-{first["id"]}">' in html
    assert html.index("La suite") < html.index("Premier message")  # newest first
    assert "secret" not in html  # direct messages are not on the timeline
    assert "@alba@sandbox.test" in html


def test_a_status_url_opens_its_page(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("gotosocial")
    client = open_client(server, server.add_account("alba"))
    status = client.post("/api/v1/statuses", data={"status": "Une page à soi"}).json()
    page = httpx.get(status["url"])
    assert page.status_code == 200
    assert "Une page à soi" in page.text
    assert httpx.get(f"{server.url}/@peuples/{status['id']}").status_code == 404


def test_an_empty_timeline_says_so(start_server: StartServer, open_client: OpenClient) -> None:
    page = open_client(start_server("takahe")).get("/")
    assert "Nothing has been published yet." in page.text
