"""Refreshing the cached server profiles (the daemon's job), against sandbox servers on
loopback, on a fake clock: nothing sleeps, nothing leaves 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from postscheduler.domain.states import State
from postscheduler.ports import AccountRecord, ServerProfile
from postscheduler.profile_refresh import ProfileChange, ProfileRefresher, server_rules
from postscheduler.publishers.discovery import discovery_client, profile_for
from postscheduler.sandbox import SandboxServer
from postscheduler.store.memory import MemoryStore
from postscheduler.syncing import sync_file
from postscheduler.testing import FakeClock

NOW = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
TTL = timedelta(hours=24)
#: 83 characters however counted: fits Mastodon's 500, not 60.
LONG = "Un message assez long pour ne plus tenir dans la nouvelle limite du serveur, hélas."
SHORT = "Un message court."

CAMPAIGN = """\
[campaign]
id = "refresh"
name = "Refresh"
timezone = "UTC"
start = 2030-06-01T08:00:00
end = 2030-06-09T20:00:00
language = "fr"
min_spacing = "0m"

[accounts.alba]
instance = "{alba}"
token = {{ env = "REFRESH_ALBA_TOKEN" }}
software = "mastodon"

[accounts.peuples]
instance = "{peuples}"
token = {{ env = "REFRESH_PEUPLES_TOKEN" }}
software = "mastodon"

[[posts]]
id = "long"
at = 2030-06-03T10:00:00
text = "{long}"

[[posts]]
id = "court"
at = 2030-06-03T11:00:00
text = "{short}"

[[posts]]
id = "deja"
at = 2030-06-01T09:00:00
text = "{long}"
accounts = ["alba"]
"""


class World:
    """Two sandbox servers (one account each), a memory store holding the campaign, both
    servers' profiles cached at NOW, and a refresher asking through a recording client."""

    def __init__(self, folder: Path) -> None:
        self.clock = FakeClock(NOW)
        self.alba = SandboxServer("mastodon", clock=self.clock.epoch).start()
        self.peuples = SandboxServer("mastodon", clock=self.clock.epoch).start()
        self.store = MemoryStore()
        path = folder / "campaign.toml"
        path.write_text(
            CAMPAIGN.format(alba=self.alba.url, peuples=self.peuples.url, long=LONG, short=SHORT),
            encoding="utf-8",
        )
        sync_file(self.store, path, NOW)
        self.asked: list[str] = []
        self.client = discovery_client()
        self.client.event_hooks["request"] = [lambda request: self.asked.append(str(request.url))]
        for server in (self.alba, self.peuples):
            profile_for(server.url, store=self.store, client=self.client, now=NOW)
        self.asked.clear()
        self.changes: list[ProfileChange] = []

    def refresher(self, margin: timedelta = timedelta(0)) -> ProfileRefresher:
        return ProfileRefresher(
            self.store,
            self.clock,
            client=self.client,
            ttl=TTL,
            margin=margin,
            on_change=self.changes.append,
        )

    def profile(self, server: SandboxServer) -> ServerProfile:
        found = self.store.profile(server.url)
        assert found is not None
        return found

    def close(self) -> None:
        self.client.close()
        self.alba.stop()
        self.peuples.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path)
    try:
        yield made
    finally:
        made.close()


def asked_of(world: World, server: SandboxServer) -> list[str]:
    return [url for url in world.asked if url.startswith(server.url)]


def events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def test_a_fresh_profile_is_not_asked_for_again(world: World) -> None:
    world.clock.set(NOW + TTL - timedelta(seconds=1))

    report = world.refresher().refresh()

    assert report.fresh == sorted([world.alba.url, world.peuples.url])
    assert (report.refreshed, report.changed, report.failed) == ([], [], {})
    assert world.asked == []
    assert world.profile(world.alba).fetched_at == NOW


def test_a_stale_profile_is_asked_for_again_and_saved_with_its_new_age(world: World) -> None:
    later = world.clock.advance(TTL)

    report = world.refresher().refresh()

    assert report.refreshed == sorted([world.alba.url, world.peuples.url])
    assert report.changed == []  # the same server, the same profile
    assert world.changes == []
    assert world.profile(world.alba).fetched_at == later
    assert world.profile(world.peuples).fetched_at == later
    assert f"{world.alba.url}/api/v2/instance" in world.asked


def test_with_a_margin_a_profile_is_refreshed_before_the_next_run_would_find_it_stale(
    world: World,
) -> None:
    refresher = world.refresher(margin=timedelta(minutes=10))
    world.clock.set(NOW + TTL - timedelta(minutes=11))
    assert refresher.refresh().refreshed == []

    world.clock.set(NOW + TTL - timedelta(minutes=9))
    assert len(refresher.refresh().refreshed) == 2


def test_a_profile_from_the_future_is_stale(world: World) -> None:
    """The clock went back (or the profile was saved by a host whose clock is ahead)."""
    refresher = world.refresher()
    cached = world.profile(world.alba)
    world.store.save_profile(replace(cached, fetched_at=NOW + timedelta(hours=1)))

    assert refresher.refresh().refreshed == [world.alba.url]


def test_an_instance_never_discovered_is_left_to_the_publishing_path(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    with SandboxServer("mastodon") as alba, SandboxServer("mastodon") as peuples:
        store = MemoryStore()
        path = tmp_path / "campaign.toml"
        path.write_text(
            CAMPAIGN.format(alba=alba.url, peuples=peuples.url, long=LONG, short=SHORT),
            encoding="utf-8",
        )
        sync_file(store, path, NOW)
        asked: list[str] = []
        urls = sorted([alba.url, peuples.url])
        with httpx.Client(event_hooks={"request": [lambda r: asked.append(str(r.url))]}) as client:
            report = ProfileRefresher(store, clock, client=client).refresh()
    assert report.unknown == urls
    assert asked == []
    assert [store.profile(url) for url in urls] == [None, None]


def test_a_lowered_limit_is_logged_with_every_queued_publication_that_no_longer_fits(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    gone = "refresh/deja/alba/1"  # too long as well, but already published: not queued
    for state in (State.CLAIMED, State.PUBLISHED):
        world.store.transition(gone, state, now=NOW, cause="test", actor="worker")
    with world.alba.sandbox.lock:
        world.alba.sandbox.max_characters = 60
    world.clock.advance(TTL)
    caplog.set_level(logging.INFO, logger="postscheduler.profiles")

    report = world.refresher().refresh()

    (change,) = report.changed
    assert (change.instance, change.before.max_characters) == (world.alba.url, 500)
    assert change.after.max_characters == 60
    assert world.profile(world.alba).max_characters == 60
    assert [a.name for a in change.accounts] == ["alba"]
    assert [(t.key, t.characters, t.limit) for t in change.too_long] == [
        ("refresh/long/alba/1", len(LONG), 60)
    ]
    assert world.changes == [change]

    (changed,) = events(caplog, "profile_changed")
    assert "500 characters" in changed.getMessage()
    assert "60 characters" in changed.getMessage()
    (warning,) = events(caplog, "too_long_for_server")
    assert warning.levelno == logging.WARNING
    assert warning.__dict__["key"] == "refresh/long/alba/1"
    assert warning.__dict__["account"] == "alba"
    assert warning.getMessage().startswith(f"refresh/long/alba/1: {len(LONG)} characters")
    # The other server did not change: nothing said of it.
    assert all(world.peuples.url not in r.getMessage() for r in caplog.records)


def test_a_raised_limit_is_logged_and_nothing_is_too_long(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with world.peuples.sandbox.lock:
        world.peuples.sandbox.max_characters = 1000
    world.clock.advance(TTL)
    caplog.set_level(logging.INFO, logger="postscheduler.profiles")

    (change,) = world.refresher().refresh().changed

    assert change.instance == world.peuples.url
    assert change.too_long == ()
    assert len(events(caplog, "profile_changed")) == 1
    assert events(caplog, "too_long_for_server") == []


def test_a_server_that_cannot_be_asked_keeps_its_profile_and_the_others_are_refreshed(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    alba = world.alba.url
    world.alba.stop()
    later = world.clock.advance(TTL)

    report = world.refresher().refresh()

    assert list(report.failed) == [alba]
    assert "cannot connect" in report.failed[alba]
    cached = world.store.profile(alba)
    assert cached is not None
    assert cached.fetched_at == NOW  # kept as it was
    assert report.refreshed == [world.peuples.url]
    assert world.profile(world.peuples).fetched_at == later
    (failed,) = events(caplog, "profile_refresh_failed")
    assert failed.levelno == logging.WARNING
    assert "is kept and asked for again later" in failed.getMessage()


def test_many_publications_too_long_end_in_one_summary_line(
    world: World, caplog: pytest.LogCaptureFixture, write_campaign: Callable[..., Path]
) -> None:
    posts = "".join(
        f'\n[[posts]]\nid = "p{n:02}"\nat = 2030-06-04T{n % 24:02}:00:00\ntext = "{LONG}"\n'
        f'accounts = ["alba"]\n'
        for n in range(24)
    )
    path = write_campaign(
        CAMPAIGN.format(alba=world.alba.url, peuples=world.peuples.url, long=LONG, short=SHORT)
        + posts
    )
    sync_file(world.store, path, NOW)
    with world.alba.sandbox.lock:
        world.alba.sandbox.max_characters = 60
    world.clock.advance(TTL)

    (change,) = world.refresher().refresh().changed

    assert len(change.too_long) == 26  # long, deja (due, not sent yet) and p00 … p23
    lines = events(caplog, "too_long_for_server")
    assert len(lines) == 21
    assert "6 more queued publications do not fit" in lines[-1].getMessage()


def test_the_server_s_counting_is_used_and_an_unknown_software_follows_the_file() -> None:
    mastodon = ServerProfile("https://m.example", "mastodon", "4.3.2", 500, 23, 4, None, True, NOW)
    unknown = ServerProfile(
        "https://u.example", "unknown:misskey", "1", 300, 0, 4, None, False, NOW
    )
    link = "https://example.org/" + "a" * 80
    account = AccountRecord("c", "alba", "https://u.example", "pleroma", "env:T")
    assert server_rules(mastodon, account).measure(link) == 23
    rules = server_rules(unknown, account)
    assert (rules.limit, rules.measure(link)) == (300, 100)
    auto = AccountRecord("c", "alba", "https://u.example", "auto", "env:T")
    assert server_rules(unknown, auto).measure("é" * 3, "cw") == 5  # code points
