"""Fixtures for the sandbox's tests: servers on loopback, HTTP clients, a clock to move.

Every test talks to a started :class:`SandboxServer` over real HTTP with httpx; nothing is
mocked. Time-based rules (idempotency lifetimes, rate-limit windows) are driven by
:class:`ManualClock`, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sandbox_support import PERSONALITIES, TLS, ManualClock

from postscheduler.sandbox import SandboxServer


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at :data:`START`."""
    return ManualClock()


@pytest.fixture
def start_server(clock: ManualClock) -> Iterator[Callable[..., SandboxServer]]:
    """Start sandbox servers (personality first, then keyword options); all stopped after.

    The manual clock is used unless the test passes its own ``clock``.
    """
    started: list[SandboxServer] = []

    def start(personality: str = "mastodon", **options: Any) -> SandboxServer:
        options.setdefault("clock", clock)
        server = SandboxServer(personality, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def open_client() -> Iterator[Callable[..., httpx.Client]]:
    """Open httpx clients for a server (with a bearer token if given); all closed after."""
    clients: list[httpx.Client] = []

    def open_(server: SandboxServer, token: str | None = None, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        options.setdefault("verify", TLS)
        client = httpx.Client(base_url=server.url, headers=headers, **options)
        clients.append(client)
        return client

    yield open_
    for client in clients:
        client.close()


@pytest.fixture(params=PERSONALITIES)
def personality(request: pytest.FixtureRequest) -> str:
    """Each personality in turn."""
    return str(request.param)
