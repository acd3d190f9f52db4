"""Mastodon.py — the client library postscheduler publishes with — against the sandbox.

The whole path a real organiser takes: register the app, authorize, log in, post with an
idempotency key, upload media (polling), reply, and read the statuses back.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from mastodon import Mastodon
from mastodon.errors import MastodonAPIError

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]


def log_in(server: SandboxServer) -> Mastodon:
    client_id, client_secret = Mastodon.create_app(
        "postscheduler", api_base_url=server.url, scopes=["read", "write"]
    )
    api = Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        api_base_url=server.url,
        mastodon_version="4.0.0",
        version_check_mode="none",
        ratelimit_method="throw",
    )
    url = api.auth_request_url(scopes=["read", "write"], allow_http=True)
    page = httpx.get(f"{url}&username=alba").text  # httpx's params= would replace the query
    match = re.search(r'id="authorization-code">([^<]+)<', page)
    assert match is not None
    api.log_in(code=match.group(1), scopes=["read", "write"], allow_http=True)
    return api


@pytest.mark.parametrize("personality", ["mastodon", "gotosocial", "pleroma", "akkoma", "takahe"])
def test_mastodon_py_publishes_through_the_sandbox(
    personality: str, start_server: StartServer
) -> None:
    server = start_server(personality, media_processing_polls=1)
    api = log_in(server)
    try:
        assert api.account_verify_credentials().username == "alba"
        first = api.status_post(
            "Nous sommes tous le Venezuela",
            idempotency_key="k1",
            visibility="public",
            language="fr",
        )
        again = api.status_post(
            "Nous sommes tous le Venezuela",
            idempotency_key="k1",
            visibility="public",
            language="fr",
        )
        honoured = personality in ("mastodon", "pleroma", "akkoma")
        assert (again.id == first.id) is honoured
        media = api.media_post(b"\x89PNG....", mime_type="image/png", description="alt")
        reply = api.status_post("suite", in_reply_to_id=first, media_ids=[media])
        assert reply.in_reply_to_id == first.id
        assert reply.media_attachments[0].description == "alt"
        mine = api.account_statuses(api.me())
        assert mine[0].id == reply.id
    finally:
        api.session.close()


def test_mastodon_py_polls_a_video_until_processed(start_server: StartServer) -> None:
    server = start_server("mastodon", media_processing_polls=2)
    api = log_in(server)
    try:
        video = api.media_post(b"\x00\x00video", mime_type="video/mp4", synchronous=True)
        assert video.url is not None
        assert api.status_post("video", media_ids=[video]).media_attachments[0].type == "video"
    finally:
        api.session.close()


def test_mastodon_py_sees_the_refusal_with_its_status_code(start_server: StartServer) -> None:
    server = start_server("mastodon")
    api = log_in(server)
    try:
        with pytest.raises(MastodonAPIError) as raised:
            api.status_post("x" * 501)
        assert raised.value.args[1] == 422
        assert "character limit of 500 exceeded" in raised.value.args[3]
    finally:
        api.session.close()
