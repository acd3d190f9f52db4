"""Media uploads: synchronous images, Mastodon's asynchronous video, limits, alt text."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


def upload(
    client: httpx.Client,
    data: bytes = PNG,
    mime: str = "image/png",
    *,
    description: str = "Une foule, place Bolívar",
    version: int = 2,
    focus: str = "0.5,-0.25",
) -> httpx.Response:
    return client.post(
        f"/api/v{version}/media",
        files={"file": ("upload", data, mime)},
        data={"description": description, "focus": focus},
    )


#: The status of POST /api/v2/media for an image, per personality.
IMAGE_STATUS = {"mastodon": 200, "gotosocial": 200, "pleroma": 202, "akkoma": 202, "takahe": 200}


def test_an_image_is_ready_at_once_and_attaches_with_its_alt_text(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    answer = upload(client)
    assert answer.status_code == IMAGE_STATUS[personality]
    media = answer.json()
    assert media["type"] == "image"
    assert media["url"].startswith(f"{server.url}/media/{media['id']}/")
    assert media["description"] == "Une foule, place Bolívar"
    assert media["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert httpx.get(media["url"]).content == PNG
    status = client.post("/api/v1/statuses", data={"status": "photo", "media_ids[]": [media["id"]]})
    assert status.status_code == 200, status.text
    assert status.json()["media_attachments"][0]["description"] == "Une foule, place Bolívar"
    [stored] = server.statuses()
    assert stored["media_ids"] == [media["id"]]
    assert stored["media_descriptions"] == ["Une foule, place Bolívar"]


def test_a_mastodon_video_is_processed_after_polls(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon", media_processing_polls=2)
    client = open_client(server, server.add_account("alba"))
    answer = upload(client, MP4, "video/mp4")
    assert answer.status_code == 202
    media = answer.json()
    assert media["url"] is None
    early = client.post("/api/v1/statuses", data={"status": "too soon", "media_ids[]": media["id"]})
    assert early.status_code == 422
    assert early.json() == {
        "error": "Cannot attach files that have not finished processing. Try again in a moment!"
    }
    polls = [client.get(f"/api/v1/media/{media['id']}") for _ in range(3)]
    assert [p.status_code for p in polls] == [206, 206, 200]
    assert polls[1].json()["url"] is None
    assert polls[2].json()["url"] is not None
    ready = client.post("/api/v1/statuses", data={"status": "now", "media_ids[]": media["id"]})
    assert ready.status_code == 200
    assert ready.json()["media_attachments"][0]["type"] == "video"


def test_a_mastodon_video_through_v1_is_synchronous(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    answer = upload(client, MP4, "video/mp4", version=1)
    assert answer.status_code == 200
    assert answer.json()["url"] is not None


@pytest.mark.parametrize(("personality", "status"), [("gotosocial", 200), ("pleroma", 202)])
def test_other_servers_process_video_at_once(
    personality: str, status: int, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    answer = upload(client, MP4, "video/mp4")
    assert answer.status_code == status
    assert answer.json()["url"] is not None
    assert client.get(f"/api/v1/media/{answer.json()['id']}").status_code == 200


def test_takahe_takes_images_only(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("takahe")
    client = open_client(server, server.add_account("alba"))
    assert upload(client, MP4, "video/mp4").status_code == 400


def test_the_description_can_be_changed_before_posting(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    media = upload(client, description="").json()
    changed = client.put(f"/api/v1/media/{media['id']}", data={"description": "Texte alternatif"})
    assert changed.status_code == 200
    assert changed.json()["description"] == "Texte alternatif"
    client.post("/api/v1/statuses", data={"status": "x", "media_ids[]": media["id"]})
    assert server.statuses()[0]["media_descriptions"] == ["Texte alternatif"]
    after = client.put(f"/api/v1/media/{media['id']}", data={"description": "trop tard"})
    assert after.status_code == 404  # attached: Mastodon no longer lets it change


#: personality: (status, error) when a status names a media id that does not exist.
UNKNOWN_MEDIA = {
    "mastodon": (422, "Media 999 not found or already attached to another post"),
    "gotosocial": (400, "Bad Request: media not found: 999"),
    "takahe": (404, "not_found"),
}


@pytest.mark.parametrize("personality", sorted(UNKNOWN_MEDIA))
def test_an_unknown_media_id_is_refused(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    answer = client.post("/api/v1/statuses", data={"status": "x", "media_ids[]": "999"})
    status, error = UNKNOWN_MEDIA[personality]
    assert (answer.status_code, answer.json()) == (status, {"error": error})
    assert server.statuses() == []


@pytest.mark.parametrize("personality", ["pleroma", "akkoma"])
def test_pleroma_drops_an_unknown_media_id(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    answer = client.post("/api/v1/statuses", data={"status": "x", "media_ids[]": "999"})
    assert answer.status_code == 200
    assert answer.json()["media_attachments"] == []


def test_media_cannot_be_attached_twice_on_mastodon(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    media = upload(client).json()["id"]
    assert (
        client.post("/api/v1/statuses", data={"status": "a", "media_ids[]": media}).status_code
        == 200
    )
    again = client.post("/api/v1/statuses", data={"status": "b", "media_ids[]": media})
    assert again.status_code == 422


#: personality: (the most attachments, the status and error beyond it)
TOO_MANY = {
    "mastodon": (4, 422, "Cannot attach more than 4 files"),
    "gotosocial": (6, 400, "Bad Request: media files exceed max count (6)"),
}


@pytest.mark.parametrize("personality", sorted(TOO_MANY))
def test_too_many_attachments_are_refused(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    limit, status, error = TOO_MANY[personality]
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    ids = [upload(client).json()["id"] for _ in range(limit + 1)]
    answer = client.post("/api/v1/statuses", data={"status": "x", "media_ids[]": ids})
    assert (answer.status_code, answer.json()) == (status, {"error": error})
    accepted = client.post("/api/v1/statuses", data={"status": "x", "media_ids[]": ids[:limit]})
    assert accepted.status_code == 200
    assert len(accepted.json()["media_attachments"]) == limit


def test_a_status_of_media_alone_is_not_empty(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, server.add_account("alba"))
    media = upload(client).json()["id"]
    answer = client.post("/api/v1/statuses", data={"status": "", "media_ids[]": media})
    assert answer.status_code == 200, answer.text


def test_someone_elses_media_cannot_be_read(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    alba = open_client(server, server.add_account("alba"))
    media = upload(alba).json()["id"]
    peuples = open_client(server, server.add_account("peuples"))
    assert peuples.get(f"/api/v1/media/{media}").status_code == 404
    refused = peuples.post("/api/v1/statuses", data={"status": "x", "media_ids[]": media})
    assert refused.status_code == 422


def test_a_mastodon_alt_text_is_at_most_1500_characters(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    assert upload(client, description="a" * 1500).status_code == 200
    assert upload(client, description="a" * 1501).status_code == 422


def test_an_unsupported_type_is_refused(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("mastodon")
    client = open_client(server, server.add_account("alba"))
    assert upload(client, b"%PDF", "application/pdf").status_code == 422
