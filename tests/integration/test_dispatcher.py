"""The dispatcher over real HTTP: the example campaign played against sandbox servers with a
fake clock — every publication final, each exactly once, threads in order, on time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postscheduler.campaign_file import load_campaign
from postscheduler.check import check_loaded
from postscheduler.dispatcher import (
    STOPPING,
    Dispatcher,
    DispatchSettings,
    Notice,
    TickReport,
    log_notice,
)
from postscheduler.domain.states import FINAL, State
from postscheduler.ports import (
    AccountRecord,
    CampaignRecord,
    FileVersion,
    PublicationRecord,
    Published,
    Publisher,
    ServerProfile,
)
from postscheduler.publishers.client import Timeouts
from postscheduler.publishers.mastodon import MastodonPublisher
from postscheduler.sandbox import SandboxServer
from postscheduler.store.common import campaign_records
from postscheduler.store.memory import MemoryStore
from postscheduler.testing import FakeClock

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "campaign.toml"


class Rig:
    """The example campaign in a store, one sandbox per account, a fake clock."""

    def __init__(self, servers: dict[str, SandboxServer], clock: FakeClock) -> None:
        self.servers = servers
        self.clock = clock
        self.store = MemoryStore()
        self.tokens = {name: server.add_account(name) for name, server in servers.items()}
        loaded = load_campaign(EXAMPLE)
        accounts = {
            name: account.model_copy(update={"instance": servers[name].url})
            for name, account in loaded.campaign.accounts.items()
        }
        file = loaded.campaign.model_copy(update={"accounts": accounts})
        loaded = type(loaded)(loaded.path, file, loaded.statement, loaded.media, loaded.source)
        report = check_loaded(str(EXAMPLE), loaded)
        assert report.ok, report.problems
        assert report.window is not None
        self.window = report.window
        self.planned = report.publications
        campaign, account_records = campaign_records(file, str(EXAMPLE), report.window)
        self.store.sync(
            campaign,
            account_records,
            report.publications,
            FileVersion(str(EXAMPLE), "x", clock.now(), campaign=campaign.id),
        )
        self.publishers: dict[str, Publisher] = {}
        self.notices: list[Notice] = []
        self.dispatcher = Dispatcher(
            self.store,
            self.publisher_for,
            clock,
            DispatchSettings(owner="test", workers=2),
            notify=self.notices.append,
        )

    def publisher_for(self, campaign: CampaignRecord, account: AccountRecord) -> Publisher:
        if account.name not in self.publishers:
            server = self.servers[account.name]
            profile = ServerProfile(
                instance=server.url,
                software=server.personality.name,
                version="t",
                max_characters=500,
                characters_per_url=23,
                max_media=4,
                idempotency_ttl=timedelta(hours=1),
                scheduled_at=False,
                fetched_at=self.clock.now(),
            )
            self.publishers[account.name] = MastodonPublisher(
                profile,
                self.tokens[account.name],
                timeouts=Timeouts(connect=2, read=2),
                sleep=lambda _s: None,
                now=self.clock.now,
            )
        return self.publishers[account.name]

    def run_until_done(self, *, limit: int = 500) -> None:
        """Tick; jump the clock to the next due instant; until nothing waits."""
        for _ in range(limit):
            report = self.dispatcher.tick()
            if report.next_due is None:
                return
            if report.next_due > self.clock.now():
                self.clock.set(report.next_due)
        raise AssertionError("the campaign did not finish")


@pytest.fixture
def rig() -> Iterator[Rig]:
    clock = FakeClock(datetime(2017, 10, 4, 12, 0, tzinfo=UTC))
    servers = {
        "alba": SandboxServer("mastodon", clock=clock.epoch),
        "peuples": SandboxServer("gotosocial", clock=clock.epoch),
    }
    for server in servers.values():
        server.start()
    built = Rig(servers, clock)
    try:
        yield built
    finally:
        built.dispatcher.close()
        for server in servers.values():
            server.stop()


def test_the_example_campaign_is_published_exactly_once_in_order_and_on_time(rig: Rig) -> None:
    rig.run_until_done()
    records = rig.store.publications()
    assert {r.state for r in records} == {State.PUBLISHED}
    for name, server in rig.servers.items():
        stored = server.statuses(name)
        mine = [r for r in records if r.account == name]
        assert len(stored) == len(mine)  # exactly once
        assert sorted(s["id"] for s in stored) == sorted(r.remote_id for r in mine)
    for record in records:
        assert record.published_at is not None
        assert record.published_at >= record.scheduled_at  # never early
        assert record.published_at <= rig.window[1]  # never after the window
        if record.reply_to:
            previous = rig.store.get(record.reply_to)
            assert previous.published_at is not None
            assert previous.published_at <= record.published_at
    thread = [r for r in records if r.post == "bataille-historique" and r.account == "alba"]
    alba = {s["id"]: s for s in rig.servers["alba"].statuses("alba")}
    assert alba[thread[1].remote_id]["in_reply_to_id"] == thread[0].remote_id
    drapeau = next(r for r in records if r.post == "drapeau")
    assert drapeau.media[0]["remote_id"]


def test_server_errors_are_retried_until_published(rig: Rig) -> None:
    rig.servers["alba"].faults.add("POST /api/v1/statuses", "status", times=3, status=503)
    rig.run_until_done()
    records = rig.store.publications(account="alba")
    assert {r.state for r in records} == {State.PUBLISHED}
    first = records[0]
    assert first.attempt == 4
    causes = [h.cause for h in rig.store.history(first.key)]
    assert causes.count("will try again") == 3
    assert len(rig.servers["alba"].statuses("alba")) == len(records)


def test_an_unknown_outcome_is_reconciled_not_sent_twice(rig: Rig) -> None:
    # GoToSocial ignores Idempotency-Key: only reconciliation prevents a duplicate.
    rig.servers["peuples"].faults.add("POST /api/v1/statuses", "reset_after", times=2)
    rig.run_until_done()
    records = rig.store.publications(account="peuples")
    assert {r.state for r in records} == {State.PUBLISHED}
    stored = rig.servers["peuples"].statuses("peuples")
    assert len(stored) == len(records)
    found = [r for r in records if r.cause == "found on the server"]
    assert len(found) == 2


def test_a_revoked_token_holds_the_account_and_tells_the_organisers(rig: Rig) -> None:
    rig.servers["peuples"].revoke(rig.tokens["peuples"])
    rig.run_until_done()
    peuples = rig.store.publications(account="peuples")
    assert {r.state for r in peuples} == {State.SCHEDULED}
    assert [n.event for n in rig.notices] == ["account_held"]
    assert {r.state for r in rig.store.publications(account="alba")} == {State.PUBLISHED}
    held = {a.name: a for a in rig.store.accounts()}["peuples"]
    assert held.held_reason is not None
    assert "refused the token" in held.held_reason


def test_a_refused_post_fails_with_the_servers_reason_and_the_rest_goes_on(rig: Rig) -> None:
    rig.servers["alba"].faults.add(
        "POST /api/v1/statuses", "status", status=422, body={"error": "Validation failed: spam"}
    )
    rig.run_until_done()
    records = rig.store.publications(account="alba")
    failed = [r for r in records if r.state is State.FAILED]
    assert len(failed) == 1
    assert "Validation failed: spam" in (failed[0].last_error or "")
    assert all(r.state in FINAL for r in records)
    assert [n.event for n in rig.notices] == ["failed"]


def test_a_daemon_down_past_the_grace_expires_with_the_reason(rig: Rig) -> None:
    # Wake up two hours after the first post was due (grace is 15 minutes).
    first = min(p.scheduled_at for p in rig.planned)
    rig.clock.set(first + timedelta(hours=2))
    rig.run_until_done()
    expired = [r for r in rig.store.publications() if r.state is State.EXPIRED]
    assert expired
    assert all("missed by" in (r.cause or "") for r in expired)
    published = [r for r in rig.store.publications() if r.state is State.PUBLISHED]
    assert all(
        r.scheduled_at >= first + timedelta(hours=2) - timedelta(minutes=15) for r in published
    )


class Gate:
    """A publisher whose first post waits at a gate: a request in flight, held open."""

    def __init__(self, inner: Publisher, entered: threading.Event, gate: threading.Event) -> None:
        self.inner = inner
        self.entered = entered
        self.gate = gate

    def upload_media(self, media: dict[str, Any], path: str) -> str:
        return self.inner.upload_media(media, path)

    def post_status(self, publication: PublicationRecord, **kwargs: Any) -> Published:
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(10), "the test never opened the gate"
        return self.inner.post_status(publication, **kwargs)

    def find_status(self, publication: PublicationRecord, *, since: datetime) -> Published | None:
        return self.inner.find_status(publication, since=since)


def test_stopping_puts_back_what_was_claimed_but_not_sent_and_waits_for_the_rest(
    rig: Rig,
) -> None:
    # Both accounts have something due; one worker: the second claim waits in the pool.
    firsts = [min(p.scheduled_at for p in rig.planned if p.account == name) for name in rig.servers]
    rig.clock.set(max(firsts))
    entered, gate = threading.Event(), threading.Event()
    dispatcher = Dispatcher(
        rig.store,
        lambda c, a: Gate(rig.publisher_for(c, a), entered, gate),
        rig.clock,
        DispatchSettings(owner="stopper", workers=1),
    )
    reports: list[TickReport] = []
    ticking = threading.Thread(target=lambda: reports.append(dispatcher.tick()))
    ticking.start()
    try:
        assert entered.wait(10)
        # A request is in flight: the grace runs out before its answer.
        assert dispatcher.drain(timedelta(milliseconds=50)) is False
    finally:
        gate.set()
        ticking.join(10)
    assert dispatcher.drain(timedelta(seconds=10)) is True
    dispatcher.close()
    assert reports[0].claimed == 2
    assert reports[0].outcomes == {"published": 1, "put back": 1}
    states = {r.key: r for r in rig.store.publications() if r.attempt > 0}
    sent = [r for r in states.values() if r.state is State.PUBLISHED]
    back = [r for r in states.values() if r.state is State.RETRYING]
    assert len(sent) == 1
    assert len(back) == 1
    assert back[0].cause == STOPPING
    assert back[0].due_at == rig.clock.now()  # due again at once, for the next daemon
    assert back[0].lease_owner is None
    stored = {name: server.statuses(name) for name, server in rig.servers.items()}
    assert sum(len(s) for s in stored.values()) == 1


def test_every_outcome_is_logged_with_its_key_and_what_the_server_said(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.servers["alba"].faults.add(
        "POST /api/v1/statuses", "status", status=422, body={"error": "Validation failed: spam"}
    )
    rig.servers["peuples"].faults.add("POST /api/v1/statuses", "status", times=1, status=503)
    with caplog.at_level(logging.INFO, logger="postscheduler.dispatcher"):
        rig.run_until_done()
    lines = [r.getMessage() for r in caplog.records if r.name == "postscheduler.dispatcher"]
    failed = [line for line in lines if line.startswith("failed ")]
    assert len(failed) == 1
    assert "Validation failed: spam" in failed[0]
    assert any(line.startswith("retrying venezuela-2017/") and "503" in line for line in lines)
    published = [r for r in rig.store.publications() if r.state is State.PUBLISHED]
    for record in published:
        assert f"published {record.key}: {record.remote_url}" in lines
    levels = {r.getMessage().split(" ")[0]: r.levelno for r in caplog.records}
    assert (levels["failed"], levels["retrying"], levels["published"]) == (
        logging.ERROR,
        logging.WARNING,
        logging.INFO,
    )


def test_the_default_notifier_logs_the_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="postscheduler.dispatcher"):
        log_notice(Notice("account_held", "venezuela-2017", "peuples", "token refused", "k"))
    assert caplog.messages == ["account held: venezuela-2017/peuples: token refused"]
