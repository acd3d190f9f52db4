"""Discovery as each server answers it: instance v1/v2, NodeInfo, OAuth metadata."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]

#: personality: (version, nodeinfo name, nodeinfo version, max characters, media, per URL)
FACTS = {
    "mastodon": ("4.3.2", "mastodon", "4.3.2", 500, 4, 23),
    "gotosocial": ("0.20.0 git-abc", "gotosocial", "0.20.0 git-abc", 5000, 6, 25),
    "pleroma": ("2.7.2 (compatible; Pleroma 2.7.2)", "pleroma", "2.7.2", 5000, 1000, 23),
    "akkoma": ("2.7.2 (compatible; Akkoma 3.15.2)", "akkoma", "3.15.2", 5000, 1000, 23),
    "takahe": ("takahe/0.11.0", "takahe", "0.11.0", 500, 4, 23),
}


def test_instance_v1(personality: str, start_server: StartServer, open_client: OpenClient) -> None:
    version, _, _, characters, media, per_url = FACTS[personality]
    answer = open_client(start_server(personality)).get("/api/v1/instance")
    assert answer.status_code == 200
    document = answer.json()
    assert document["version"] == version
    assert document["uri"] == "sandbox.test"
    statuses = document["configuration"]["statuses"]
    assert statuses == {
        "max_characters": characters,
        "max_media_attachments": media,
        "characters_reserved_per_url": per_url,
    }


def test_instance_v2(personality: str, start_server: StartServer, open_client: OpenClient) -> None:
    answer = open_client(start_server(personality)).get("/api/v2/instance")
    if personality == "takahe":
        assert answer.status_code == 404
        return
    version, _, _, characters, media, per_url = FACTS[personality]
    assert answer.status_code == 200
    document = answer.json()
    assert document["version"] == version
    assert document["domain"] == "sandbox.test"
    configuration = document["configuration"]
    assert configuration["statuses"]["max_characters"] == characters
    assert configuration["statuses"]["characters_reserved_per_url"] == per_url
    assert configuration["statuses"]["max_media_attachments"] == media
    attachments = configuration["media_attachments"]
    assert "image/png" in attachments["supported_mime_types"]
    assert attachments["image_size_limit"] > 0
    assert "video_size_limit" in attachments


def test_max_characters_overrides_the_limit_everywhere(
    start_server: StartServer, open_client: OpenClient
) -> None:
    client = open_client(start_server("gotosocial", max_characters=1200))
    v1 = client.get("/api/v1/instance").json()
    v2 = client.get("/api/v2/instance").json()
    assert v1["configuration"]["statuses"]["max_characters"] == 1200
    assert v1["max_toot_chars"] == 1200
    assert v2["configuration"]["statuses"]["max_characters"] == 1200


def test_nodeinfo(personality: str, start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server(personality)
    client = open_client(server)
    links = client.get("/.well-known/nodeinfo").json()["links"]
    schema_2_0 = [link for link in links if link["rel"].endswith("/schema/2.0")]
    assert schema_2_0 == [
        {
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
            "href": f"{server.url}/nodeinfo/2.0",
        }
    ]
    _, name, version, *_ = FACTS[personality]
    document = httpx.get(schema_2_0[0]["href"]).json()
    assert document["software"] == {"name": name, "version": version}
    assert document["version"] == "2.0"


def test_the_instance_counts_accounts_and_statuses(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    token = server.add_account("alba")
    server.add_account("peuples")
    client = open_client(server, token)
    client.post("/api/v1/statuses", data={"status": "one"})
    stats = client.get("/api/v1/instance").json()["stats"]
    assert stats["user_count"] == 2
    assert stats["status_count"] == 1


@pytest.mark.parametrize(
    ("personality", "status"),
    [("takahe", 404), ("mastodon", 200), ("gotosocial", 200), ("pleroma", 200)],
)
def test_a_trailing_slash_is_a_missing_route_only_on_takahe(
    personality: str, status: int, start_server: StartServer, open_client: OpenClient
) -> None:
    answer = open_client(start_server(personality)).get("/api/v1/instance/")
    assert answer.status_code == status


def test_mastodon_publishes_its_oauth_metadata_and_the_others_do_not(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    document = open_client(server).get("/.well-known/oauth-authorization-server").json()
    assert document["token_endpoint"] == f"{server.url}/oauth/token"
    assert "authorization_code" in document["grant_types_supported"]
    other = open_client(start_server("gotosocial")).get("/.well-known/oauth-authorization-server")
    assert other.status_code == 404


def test_an_unknown_route_is_not_found(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    answer = open_client(start_server(personality)).get("/api/v1/nothing-here")
    assert answer.status_code == 404
