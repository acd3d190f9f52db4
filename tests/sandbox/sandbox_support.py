"""Helpers shared by the sandbox's tests (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import re
import ssl
from typing import Any

import httpx

PERSONALITIES = ("mastodon", "gotosocial", "pleroma", "akkoma", "takahe")
#: One TLS context for every client: building one per client (httpx's default) costs
#: 60 ms, and the sandbox speaks plain HTTP anyway.
TLS = ssl.create_default_context()
#: 2017-10-05T12:00:00Z: far from any window edge of the default 3 h rate-limit window.
START = 1_507_204_800.0


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def oauth_token(
    client: httpx.Client, username: str = "alba", scopes: str = "read write"
) -> dict[str, Any]:
    """Run the whole OAuth flow (app, authorize page, code exchange); the token answer."""
    app = client.post(
        "/api/v1/apps",
        data={
            "client_name": "postscheduler",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": scopes,
        },
    )
    assert app.status_code == 200, app.text
    credentials = app.json()
    page = client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": credentials["client_id"],
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
            "scope": scopes,
            "username": username,
        },
    )
    assert page.status_code == 200, page.text
    match = re.search(r'id="authorization-code">([^<]+)<', page.text)
    assert match is not None, page.text
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": match.group(1),
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
        },
    )
    assert token.status_code == 200, token.text
    document: dict[str, Any] = token.json()
    return document
