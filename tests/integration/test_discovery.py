"""Server discovery: against the bundled sandbox in each personality, and against answers
the sandbox does not give (unknown software, broken servers), played by httpx's
MockTransport — nothing here leaves 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from postscheduler.campaign_file import load_campaign
from postscheduler.domain.campaign import Account
from postscheduler.domain.text import Counting
from postscheduler.errors import DiscoveryError
from postscheduler.ports import ServerProfile
from postscheduler.publishers.discovery import (
    counting_rules,
    describe_profile,
    discover,
    discovery_client,
    normalise_instance,
    online_rules,
    profile_for,
)
from postscheduler.sandbox.server import SandboxServer
from postscheduler.store.memory import MemoryStore

NOW = datetime(2017, 10, 1, 12, 0, tzinfo=UTC)
LONG_URL = "https://example.org/" + "a" * 80  # 100 characters


def account(instance: str, **fields: Any) -> Account:
    return Account.model_validate({"instance": instance, "token": {"env": "T"}, **fields})


# -- a scripted server (MockTransport) ------------------------------------------------------


@dataclass
class Script:
    """Answers by path; records every URL asked."""

    routes: dict[str, Callable[[httpx.Request], httpx.Response]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def json(self, path: str, document: Any, status: int = 200) -> Script:
        self.routes[path] = lambda _request: httpx.Response(status, json=document)
        return self

    def text(self, path: str, body: str, status: int = 200) -> Script:
        self.routes[path] = lambda _request: httpx.Response(status, text=body)
        return self

    def raise_(self, path: str, error: Exception) -> Script:
        def answer(_request: httpx.Request) -> httpx.Response:
            raise error

        self.routes[path] = answer
        return self

    def client(self) -> httpx.Client:
        def handle(request: httpx.Request) -> httpx.Response:
            self.asked.append(str(request.url))
            route = self.routes.get(request.url.path)
            return route(request) if route else httpx.Response(404, text="not found")

        return httpx.Client(transport=httpx.MockTransport(handle), follow_redirects=True)


def nodeinfo(script: Script, name: str, version: str, base: str = "https://x.example") -> Script:
    return script.json(
        "/.well-known/nodeinfo",
        {
            "links": [
                {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "/nodeinfo/2.0"},
                {
                    "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                    "href": f"{base}/nodeinfo/2.1",
                },
            ]
        },
    ).json("/nodeinfo/2.1", {"version": "2.1", "software": {"name": name, "version": version}})


def instance(max_characters: int = 3000, **statuses: Any) -> dict[str, Any]:
    return {
        "version": "4.0.0",
        "configuration": {
            "statuses": {"max_characters": max_characters, **statuses},
            "media_attachments": {
                "supported_mime_types": ["image/png"],
                "image_size_limit": 1000,
                "video_size_limit": 2000,
                "description_limit": 900,
            },
        },
    }


def test_the_newest_nodeinfo_and_v2_instance_make_the_profile() -> None:
    script = nodeinfo(Script(), "mastodon", "4.3.2").json(
        "/api/v2/instance", instance(1000, characters_reserved_per_url=30, max_media_attachments=8)
    )
    with script.client() as client:
        profile = discover("https://X.example/", client=client, now=NOW)
    assert profile == ServerProfile(
        instance="https://x.example",
        software="mastodon",
        version="4.3.2",
        max_characters=1000,
        characters_per_url=30,
        max_media=8,
        idempotency_ttl=timedelta(hours=1),
        scheduled_at=True,
        fetched_at=NOW,
        max_alt_text=900,
        media_types=("image/png",),
        image_size_limit=1000,
        video_size_limit=2000,
    )
    assert "https://x.example/nodeinfo/2.1" in script.asked
    assert "https://x.example/nodeinfo/2.0" not in script.asked


def test_an_unknown_software_is_kept_by_name_and_counted_cautiously() -> None:
    script = nodeinfo(Script(), "Misskey", "2024.1").json("/api/v1/instance", instance(3000))
    with script.client() as client:
        profile = discover("https://x.example", client=client, now=NOW)
    assert profile.software == "unknown:misskey"
    assert profile.idempotency_ttl is None
    assert profile.scheduled_at is False
    assert profile.characters_per_url == 0
    rules = counting_rules(profile, account("https://x.example"))
    assert rules.counting is Counting.GOTOSOCIAL
    assert rules.limit == 3000
    assert rules.measure(LONG_URL) == 100
    declared = counting_rules(profile, account("https://x.example", software="mastodon"))
    assert declared.counting is Counting.MASTODON
    assert "unknown software 'misskey' 2024.1, 3000 characters" in describe_profile(profile)


def test_without_nodeinfo_the_instance_version_string_names_the_software() -> None:
    script = Script().json(
        "/api/v1/instance",
        {"version": "2.7.2 (compatible; Pleroma 2.6.1)", "max_toot_chars": 7000, "upload_limit": 5},
    )
    with script.client() as client:
        profile = discover("https://x.example", client=client, now=NOW)
    assert (profile.software, profile.version) == ("pleroma", "2.6.1")
    assert profile.max_characters == 7000
    assert (profile.image_size_limit, profile.video_size_limit) == (5, 5)
    assert profile.idempotency_ttl == timedelta(hours=6)


def test_gotosocial_before_0_20_does_not_schedule() -> None:
    script = nodeinfo(Script(), "gotosocial", "0.19.1+git-x").json("/api/v2/instance", instance())
    with script.client() as client:
        assert discover("https://x.example", client=client, now=NOW).scheduled_at is False


def test_no_instance_document_is_one_line_naming_both_endpoints() -> None:
    script = nodeinfo(Script(), "mastodon", "4.3.2").text("/api/v2/instance", "<html>")
    with script.client() as client, pytest.raises(DiscoveryError) as caught:
        discover("https://x.example", client=client, now=NOW)
    message = str(caught.value)
    assert message == (
        "cannot ask https://x.example what server it is: no instance document "
        "(/api/v2/instance not JSON, /api/v1/instance 404)"
    )
    assert not any(url.endswith("/instance/") for url in script.asked)


def test_a_timeout_is_one_line() -> None:
    script = Script().raise_("/.well-known/nodeinfo", httpx.ReadTimeout("slow"))
    with script.client() as client, pytest.raises(DiscoveryError, match="no answer in time"):
        discover("https://x.example", client=client, now=NOW)


def test_a_redirect_to_plain_http_off_loopback_is_refused() -> None:
    script = Script()
    script.routes["/.well-known/nodeinfo"] = lambda _r: httpx.Response(
        302, headers={"Location": "http://elsewhere.example/nodeinfo"}
    )
    with script.client() as client, pytest.raises(DiscoveryError, match="refused to follow"):
        discover("https://x.example", client=client, now=NOW)
    assert "http://elsewhere.example/nodeinfo" not in script.asked


def test_a_redirect_within_https_is_followed() -> None:
    script = nodeinfo(Script(), "gotosocial", "0.20.0").json("/api/v2/instance", instance())
    script.routes["/.well-known/nodeinfo"], script.routes["/moved"] = (
        lambda _r: httpx.Response(301, headers={"Location": "/moved"}),
        script.routes["/.well-known/nodeinfo"],
    )
    with script.client() as client:
        assert discover("https://x.example", client=client, now=NOW).software == "gotosocial"
    assert "https://x.example/moved" in script.asked


def test_plain_http_is_refused_off_loopback_before_any_request() -> None:
    script = Script()
    with script.client() as client, pytest.raises(DiscoveryError, match="use https://"):
        discover("http://x.example", client=client, now=NOW)
    assert script.asked == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.social", "https://example.social"),
        ("https://Example.Social/", "https://example.social"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.3.4.5", "http://127.3.4.5"),
        ("http://localhost:3000/", "http://localhost:3000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
    ],
)
def test_instances_are_normalised(given: str, expected: str) -> None:
    assert normalise_instance(given) == expected


@pytest.mark.parametrize("given", ["http://example.social", "https://x.example/api", "ftp://x"])
def test_wrong_instances_are_refused(given: str) -> None:
    with pytest.raises(DiscoveryError):
        normalise_instance(given)


def test_the_account_s_own_limits_win_over_discovery() -> None:
    script = nodeinfo(Script(), "mastodon", "4.3.2").json("/api/v2/instance", instance(1000))
    with script.client() as client:
        profile = discover("https://x.example", client=client, now=NOW)
    rules = counting_rules(
        profile, account("https://x.example", max_characters=400, characters_per_url=10)
    )
    assert (rules.counting, rules.limit, rules.url_length) == (Counting.MASTODON, 400, 10)
    assert counting_rules(profile, account("https://x.example")).limit == 1000


def test_online_rules_ask_each_server_once_and_say_what_they_found(
    write_campaign: Callable[..., Path],
) -> None:
    path = write_campaign(
        """
[campaign]
id = "demo"
name = "Demo"
timezone = "Europe/Paris"
start = 2017-10-05T00:00:00
end = 2017-10-08T23:59:00
language = "fr"

[accounts.alba]
instance = "https://x.example"
token = { env = "A" }
software = "gotosocial"
max_characters = 450

[accounts.peuples]
instance = "https://x.example"
token = { env = "B" }

[[posts]]
id = "p"
text = "Bonjour"
at = 2017-10-05T10:00:00
"""
    )
    script = nodeinfo(Script(), "mastodon", "4.3.2").json("/api/v2/instance", instance(500))
    with script.client() as client:
        rules, notes = online_rules(load_campaign(path), store=None, client=client, now=NOW)
    assert rules["alba"].limit == 450
    assert rules["alba"].counting is Counting.MASTODON
    assert rules["peuples"].limit == 500
    assert script.asked.count("https://x.example/api/v2/instance") == 1
    assert notes[0] == "alba: https://x.example is Mastodon 4.3.2, 500 characters, a link counts 23"
    assert "alba: the file says GoToSocial but the server is Mastodon" in notes[1]
    assert "alba: the file's max_characters = 450 is used, the server says 500" in notes
    assert notes[-1].startswith("peuples: https://x.example is Mastodon")


# -- the sandbox ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    software: str
    version: str
    max_characters: int
    characters_per_url: int
    max_media: int
    idempotency_ttl: timedelta | None
    scheduled_at: bool
    counting: Counting


EXPECTED = {
    "mastodon": Expected(
        "mastodon", "4.3.2", 500, 23, 4, timedelta(hours=1), True, Counting.MASTODON
    ),
    "gotosocial": Expected(
        "gotosocial", "0.20.0 git-abc", 5000, 0, 6, None, True, Counting.GOTOSOCIAL
    ),
    "pleroma": Expected(
        "pleroma", "2.7.2", 5000, 0, 1000, timedelta(hours=6), True, Counting.PLEROMA
    ),
    "akkoma": Expected(
        "akkoma", "3.15.2", 5000, 0, 1000, timedelta(hours=6), True, Counting.PLEROMA
    ),
    "takahe": Expected("takahe", "0.11.0", 500, 0, 4, None, False, Counting.TAKAHE),
}


@pytest.fixture(params=sorted(EXPECTED))
def server(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    running = SandboxServer(personality=request.param)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def recording_client(asked: list[str]) -> httpx.Client:
    client = discovery_client()
    client.event_hooks["request"] = [lambda request: asked.append(str(request.url))]
    return client


def test_each_personality_is_discovered_as_it_is(server: SandboxServer) -> None:
    expected = EXPECTED[server.personality.name]
    with discovery_client() as client:
        profile = discover(server.url, client=client, now=NOW)
    assert profile.instance == server.url.rstrip("/")
    assert profile.software == expected.software
    assert profile.version == expected.version
    assert profile.max_characters == expected.max_characters
    assert profile.characters_per_url == expected.characters_per_url
    assert profile.max_media == expected.max_media
    assert profile.idempotency_ttl == expected.idempotency_ttl
    assert profile.scheduled_at is expected.scheduled_at
    assert profile.fetched_at == NOW
    assert profile.max_alt_text == 1500
    assert "image/png" in profile.media_types
    assert profile.image_size_limit
    assert counting_rules(profile, account(profile.instance)).counting is expected.counting


def test_takahe_is_asked_v1_without_a_trailing_slash() -> None:
    asked: list[str] = []
    with SandboxServer(personality="takahe") as running, recording_client(asked) as client:
        base = running.url.rstrip("/")
        profile = discover(running.url, client=client, now=NOW)
    assert profile.software == "takahe"
    assert f"{base}/api/v2/instance" in asked  # answered 404
    assert f"{base}/api/v1/instance" in asked
    assert not [url for url in asked if url.endswith("/")]


@pytest.mark.parametrize("personality", ["gotosocial", "mastodon", "takahe"])
def test_our_count_of_a_link_agrees_with_the_server(personality: str) -> None:
    """At the limit as we count it the server accepts the post; one character more and it
    refuses. On GoToSocial the link counts in full, although 25 is advertised."""
    from mastodon.errors import MastodonAPIError  # noqa: PLC0415

    from postscheduler.publishers.client import make_client  # noqa: PLC0415

    running = SandboxServer(personality=personality)
    running.start()
    try:
        token = running.add_account("alba")
        with discovery_client() as client:
            profile = discover(running.url, client=client, now=NOW)
        rules = counting_rules(profile, account(profile.instance))
        text = LONG_URL + " " + "a" * (rules.limit - rules.measure(LONG_URL + " "))
        assert rules.measure(text) == rules.limit
        api = make_client(running.url, token)
        api.status_post(text, visibility="public", language="en")
        with pytest.raises(MastodonAPIError):
            api.status_post(text + "a", visibility="public", language="en")
    finally:
        running.stop()
    if personality == "gotosocial":
        assert rules.measure(LONG_URL) == len(LONG_URL)
    if personality == "mastodon":
        assert rules.measure(LONG_URL) == 23


def free_port() -> tuple[socket.socket, int]:
    """A port on 127.0.0.1 that refuses connections (bound, not listening)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


def test_an_unreachable_server_is_one_line_with_the_instance() -> None:
    holder, port = free_port()
    try:
        with discovery_client() as client, pytest.raises(DiscoveryError) as caught:
            discover(f"http://127.0.0.1:{port}", client=client, now=NOW)
    finally:
        holder.close()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot ask http://127.0.0.1:{port} what server it is: ")
    assert "cannot connect" in message


def test_a_fresh_cached_profile_is_used_and_an_old_one_asked_again() -> None:
    running = SandboxServer(personality="gotosocial")
    running.start()
    store = MemoryStore()
    asked: list[str] = []
    try:
        with recording_client(asked) as client:
            first = profile_for(running.url, store=store, client=client, now=NOW)
            requests = len(asked)
            assert requests >= 3
            cached = profile_for(
                running.url, store=store, client=client, now=NOW + timedelta(hours=23)
            )
            assert cached == first
            assert len(asked) == requests
            older = profile_for(
                running.url, store=store, client=client, now=NOW + timedelta(hours=25)
            )
            assert len(asked) == 2 * requests
            assert older.fetched_at == NOW + timedelta(hours=25)
            assert store.profile(first.instance) == older
            # a clock that went back does not trust a profile "from the future"
            profile_for(running.url, store=store, client=client, now=NOW)
            assert len(asked) == 3 * requests
            short = profile_for(
                running.url,
                store=store,
                client=client,
                now=NOW + timedelta(minutes=10),
                ttl=timedelta(minutes=5),
            )
            assert short.fetched_at == NOW + timedelta(minutes=10)
    finally:
        running.stop()
    # the server is gone: a fresh cached profile still answers, without a request
    with recording_client(asked) as client:
        again = profile_for(
            first.instance, store=store, client=client, now=NOW + timedelta(minutes=20)
        )
    assert again == short
    assert len(asked) == 4 * requests


def test_without_a_store_the_server_is_always_asked() -> None:
    running = SandboxServer(personality="mastodon")
    running.start()
    asked: list[str] = []
    try:
        with recording_client(asked) as client:
            profile_for(running.url, store=None, client=client, now=NOW)
            once = len(asked)
            profile_for(running.url, store=None, client=client, now=NOW)
    finally:
        running.stop()
    assert len(asked) == 2 * once


def test_online_rules_name_the_account_whose_server_is_unreachable(
    write_campaign: Callable[..., Path],
) -> None:
    holder, port = free_port()
    path = write_campaign(
        f"""
[campaign]
id = "demo"
name = "Demo"
timezone = "Europe/Paris"
start = 2017-10-05T00:00:00
end = 2017-10-08T23:59:00
language = "fr"

[accounts.alba]
instance = "http://127.0.0.1:{port}"
token = {{ env = "A" }}

[[posts]]
id = "p"
text = "Bonjour"
at = 2017-10-05T10:00:00
"""
    )
    try:
        with discovery_client() as client, pytest.raises(DiscoveryError) as caught:
            online_rules(load_campaign(path), store=None, client=client, now=NOW)
    finally:
        holder.close()
    assert str(caught.value).startswith(f"alba: cannot ask http://127.0.0.1:{port} ")
    assert caught.value.account == "alba"


def test_the_profile_is_described_by_the_software_s_own_name(server: SandboxServer) -> None:
    with discovery_client() as client:
        profile = discover(server.url, client=client, now=NOW)
    label = {
        "mastodon": "Mastodon 4.3.2, 500 characters, a link counts 23",
        "gotosocial": "GoToSocial 0.20.0 git-abc, 5000 characters, links at full length",
        "pleroma": "Pleroma 2.7.2, 5000 characters, links at full length",
        "akkoma": "Akkoma 3.15.2, 5000 characters, links at full length",
        "takahe": "Takahē 0.11.0, 500 characters, links at full length",
    }
    assert describe_profile(profile) == label[profile.software]
