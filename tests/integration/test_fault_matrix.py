"""Every server software × every way a server fails, over real HTTP.

A small campaign — a two-part thread, then three single posts, one account — is
dispatched against a sandbox server of each personality, with a fake clock (the sandbox
follows it), while the server fails one way: a burst of 503s, a 429 with its reset time,
the connection cut before or after the status is stored, an answer slower than the read
timeout, the token revoked, the server down for ten minutes, a permanent refusal.

For each: every publication ends in the state it should (published; scheduled behind a held
account when the token is revoked; failed with the server's words when it refuses), the
server holds each publication exactly once, the thread in order, nothing before its time
or after the window — and the dispatcher never asks its timer to fire in the past.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postscheduler.check import check_file
from postscheduler.dispatcher import RECONCILE_DELAY, Dispatcher, DispatchSettings, Notice
from postscheduler.domain.software import FACTS, Software
from postscheduler.domain.states import State
from postscheduler.ports import (
    AccountRecord,
    CampaignRecord,
    FileVersion,
    PublicationRecord,
    Publisher,
    ServerProfile,
)
from postscheduler.publishers.client import Timeouts
from postscheduler.publishers.mastodon import MastodonPublisher
from postscheduler.sandbox import SandboxServer
from postscheduler.store.common import campaign_records
from postscheduler.store.memory import MemoryStore
from postscheduler.testing import FakeClock

PERSONALITIES = ("mastodon", "gotosocial", "pleroma", "akkoma", "takahe")
STATUSES = "POST /api/v1/statuses"
#: The window opens at 08:00 Paris time (06:00 UTC, summer time) and closes at 20:00.
OPENS = datetime(2030, 5, 2, 6, 0, tzinfo=UTC)
CLOSES = datetime(2030, 5, 2, 18, 0, tzinfo=UTC)
#: The thread's time, the first thing sent: every fault below meets it first.
THREAD_AT = datetime(2030, 5, 2, 7, 0, tzinfo=UTC)
READ_TIMEOUT = 0.3

CAMPAIGN_FILE = """\
[campaign]
id = "matrix"
name = "Fault matrix"
timezone = "Europe/Paris"
start = 2030-05-02T08:00:00
end = 2030-05-02T20:00:00
language = "fr"
min_spacing = "30m"
misfire = {{ policy = "grace", grace = "15m" }}

[accounts.alba]
instance = "{url}"
token = {{ env = "ALBA_TOKEN" }}
software = "{software}"
max_characters = 160

[[posts]]
id = "fil"
at = 2030-05-02T09:00:00
text = "Premier point : la solidarité ne se décrète pas, elle se construit jour après jour. \
Second point : chaque ville peut organiser sa propre mobilisation. \
Troisième point : racontez-la ici, avec vos photos et vos mots, pour que tout le monde la voie."

[[posts]]
id = "midi"
at = 2030-05-02T12:00:00
text = "Midi : les rassemblements commencent."

[[posts]]
id = "soir"
at = 2030-05-02T18:00:00
text = "Ce soir, partagez ce que vous avez vu."

[[posts]]
id = "fin"
at = 2030-05-02T19:30:00
text = "Merci à toutes et à tous."
"""


class Matrix:
    """One sandbox server, the campaign in a store, a dispatcher on a fake clock."""

    def __init__(self, personality: str, folder: Path, *, read_timeout: float = 5.0) -> None:
        self.personality = personality
        self.clock = FakeClock(OPENS - timedelta(minutes=1))
        self.server = SandboxServer(personality, clock=self.clock.epoch).start()
        self.token = self.server.add_account("alba")
        self.read_timeout = read_timeout
        path = folder / "campaign.toml"
        path.write_text(
            CAMPAIGN_FILE.format(url=self.server.url, software=personality), encoding="utf-8"
        )
        report = check_file(path)
        assert report.ok, [p.message for p in report.errors]
        assert report.loaded is not None
        assert report.window == (OPENS, CLOSES)
        self.store = MemoryStore()
        campaign, accounts = campaign_records(report.loaded.campaign, str(path), report.window)
        self.campaign = campaign.id
        self.store.sync(
            campaign,
            accounts,
            report.publications,
            FileVersion(str(path), "v1", self.clock.now(), campaign=campaign.id),
        )
        self.publishers: dict[str, Publisher] = {}
        self.notices: list[Notice] = []
        self.dispatcher = Dispatcher(
            self.store,
            self.publisher_for,
            self.clock,
            DispatchSettings(owner="matrix", workers=2),
            notify=self.notices.append,
        )
        #: Called after every tick (a case may wait there for the server to catch up).
        self.after_tick: Callable[[], None] = lambda: None

    def publisher_for(self, campaign: CampaignRecord, account: AccountRecord) -> Publisher:
        if account.name not in self.publishers:
            software = Software(self.personality)
            facts = FACTS[software]
            profile = ServerProfile(
                instance=self.server.url,
                software=software.value,
                version="sandbox",
                max_characters=facts.max_characters,
                characters_per_url=facts.characters_per_url,
                max_media=facts.max_media,
                idempotency_ttl=facts.idempotency_ttl,
                scheduled_at=False,
                fetched_at=self.clock.now(),
            )
            self.publishers[account.name] = MastodonPublisher(
                profile,
                self.token,
                timeouts=Timeouts(connect=2, read=self.read_timeout),
                sleep=lambda _seconds: None,
                now=self.clock.now,
            )
        return self.publishers[account.name]

    def close(self) -> None:
        self.dispatcher.close()
        self.server.stop()

    def records(self) -> list[PublicationRecord]:
        return self.store.publications()

    def thread(self) -> tuple[PublicationRecord, PublicationRecord]:
        first, second = sorted(self.store.publications(post="fil"), key=lambda r: r.part)
        return first, second

    def run(self, *, limit: int = 300) -> None:
        """Tick; jump the clock to the next due instant; until nothing waits."""
        for _ in range(limit):
            report = self.dispatcher.tick()
            self.after_tick()
            now = self.clock.now()
            if report.next_due is None:
                return
            if not report.claimed:
                # The daemon re-arms its timer to next_due: in the past, it would spin.
                assert report.next_due > now, f"next_due {report.next_due} is not after {now}"
            self.clock.set(max(now, report.next_due))
        raise AssertionError("the campaign did not finish")

    def assert_held_exactly_once(self) -> None:
        """The server holds each published publication once, and nothing else; threads in
        order; nothing early, nothing after the window."""
        stored = self.server.statuses("alba")
        published = [r for r in self.records() if r.state is State.PUBLISHED]
        ids = Counter(str(s["id"]) for s in stored)
        assert sorted(ids) == sorted(str(r.remote_id) for r in published)
        assert set(ids.values()) <= {1}
        texts = Counter(s["text"] for s in stored)
        assert set(texts.values()) <= {1}, f"a text was posted twice: {texts}"
        by_id = {str(s["id"]): s for s in stored}
        for record in published:
            status = by_id[str(record.remote_id)]
            assert status["text"] == record.text
            assert record.published_at is not None
            assert record.scheduled_at <= record.published_at <= CLOSES
            created = datetime.fromisoformat(str(status["created_at"]).replace("Z", "+00:00"))
            assert record.scheduled_at <= created <= CLOSES + timedelta(seconds=1)
            if record.reply_to is not None:
                previous = self.store.get(record.reply_to)
                assert previous.state is State.PUBLISHED
                assert status["in_reply_to_id"] == previous.remote_id
                assert previous.published_at is not None
                assert previous.published_at <= record.published_at

    def causes(self, record: PublicationRecord) -> list[str]:
        return [line.cause for line in self.store.history(record.key)]


@pytest.fixture(params=PERSONALITIES)
def personality(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def matrix(personality: str, tmp_path: Path) -> Iterator[Matrix]:
    built = Matrix(personality, tmp_path)
    try:
        yield built
    finally:
        built.close()


def all_published(matrix: Matrix) -> None:
    records = matrix.records()
    assert len(records) == 5  # the thread's two parts and three posts
    assert {r.state for r in records} == {State.PUBLISHED}, [
        (r.key, r.state.value, r.last_error) for r in records
    ]
    matrix.assert_held_exactly_once()


# -- the faults --------------------------------------------------------------------------------


def test_without_faults_everything_is_published_once_on_time(matrix: Matrix) -> None:
    matrix.run()
    all_published(matrix)
    for record in matrix.records():
        assert record.published_at == record.scheduled_at
        assert record.attempt == 1


def test_a_burst_of_503_is_retried(matrix: Matrix) -> None:
    matrix.server.faults.add(STATUSES, "status", times=3, status=503)
    matrix.run()
    all_published(matrix)
    first, second = matrix.thread()
    assert first.attempt == 4
    assert matrix.causes(first).count("will try again") == 3
    assert "503" in (first.last_error or "")
    # Backoff: 30 s, 60 s, 120 s, each with a jitter in [0.5, 1).
    assert (
        THREAD_AT + timedelta(seconds=105)
        <= first.published_at
        <= THREAD_AT
        + timedelta(  # type: ignore[operator]
            seconds=210
        )
    )
    assert second.published_at == first.published_at


def reset_header(personality: str, reset: datetime) -> dict[str, str]:
    """X-RateLimit-Reset as each server writes it (GoToSocial: unix time; Mastodon and
    the others given one: ISO 8601)."""
    if personality == "gotosocial":
        return {"X-Ratelimit-Reset": str(int(reset.timestamp()))}
    return {"X-RateLimit-Reset": reset.isoformat().replace("+00:00", "Z")}


def test_429_waits_until_the_reset_time(matrix: Matrix, personality: str) -> None:
    reset = THREAD_AT + timedelta(minutes=20)
    matrix.server.faults.add(
        STATUSES,
        "status",
        status=429,
        body={"error": "Too many requests"},
        headers=reset_header(personality, reset),
    )
    seen: list[PublicationRecord] = []
    matrix.after_tick = lambda: seen.append(matrix.thread()[0])
    matrix.run()
    all_published(matrix)
    retrying = [r for r in seen if r.state is State.RETRYING]
    assert retrying, "the 429 did not put the first part back to wait"
    assert {r.next_attempt_at for r in retrying} == {reset}
    first, second = matrix.thread()
    assert first.published_at == reset
    assert second.published_at == reset
    assert first.attempt == 2


def test_a_connection_reset_before_the_status_is_stored(matrix: Matrix) -> None:
    matrix.server.faults.add(STATUSES, "reset_before")
    matrix.run()
    all_published(matrix)
    first, _second = matrix.thread()
    causes = matrix.causes(first)
    assert "no answer after sending: it will be looked for on the server" in causes
    assert first.cause == "published"  # looked for, not found, sent again
    assert first.published_at == THREAD_AT + RECONCILE_DELAY


def test_a_connection_reset_after_the_status_is_stored(matrix: Matrix) -> None:
    matrix.server.faults.add(STATUSES, "reset_after")
    matrix.run()
    all_published(matrix)
    first, _second = matrix.thread()
    assert first.cause == "found on the server"
    assert first.published_at == THREAD_AT + RECONCILE_DELAY


def test_an_answer_slower_than_the_read_timeout(personality: str, tmp_path: Path) -> None:
    matrix = Matrix(personality, tmp_path, read_timeout=READ_TIMEOUT)
    try:
        matrix.server.faults.add(STATUSES, "delay", seconds=READ_TIMEOUT * 3)

        def server_caught_up() -> None:
            # The fake clock jumps the reconciliation delay at once; the slow server really
            # needs its second. Here every request reaches the server, so each uncertain
            # publication will be stored: wait (bounded) until it is, as 30 s would.
            for record in matrix.records():
                if record.state is State.UNCERTAIN:
                    deadline = time.monotonic() + 10
                    while record.text not in {s["text"] for s in matrix.server.statuses()}:
                        assert time.monotonic() < deadline, "the slow server never stored it"
                        time.sleep(0.02)

        matrix.after_tick = server_caught_up
        matrix.run()
        all_published(matrix)
        first, _second = matrix.thread()
        assert first.cause == "found on the server"
        assert "did not answer in time" in (first.last_error or "")
    finally:
        matrix.close()


def test_a_revoked_token_holds_the_account_and_tells_the_organisers(
    matrix: Matrix, personality: str
) -> None:
    matrix.server.faults.add(STATUSES, "revoke")
    matrix.run()
    records = matrix.records()
    assert {r.state for r in records} == {State.SCHEDULED}
    assert matrix.server.statuses("alba") == []
    held = {a.name: a for a in matrix.store.accounts()}["alba"]
    assert held.held_reason is not None
    assert "refused the token" in held.held_reason
    assert [(n.event, n.key) for n in matrix.notices] == [("account_held", "matrix/fil/alba/1")]
    assert matrix.clock.now() == THREAD_AT  # nothing was claimed after the refusal
    # A new token, the account resumed: everything goes out, once, still on time.
    matrix.token = matrix.server.add_account("alba")
    matrix.publishers.clear()
    matrix.store.set_paused(matrix.campaign, "alba", False, now=matrix.clock.now())
    matrix.run()
    all_published(matrix)


def test_a_server_down_for_ten_minutes_then_back(matrix: Matrix) -> None:
    # Down from now (a minute before the window opens) until ten minutes after the thread
    # was due: its first try, and the first looks for it, meet a closed door.
    back = THREAD_AT + timedelta(minutes=10)
    matrix.server.faults.add("/", "down", seconds=(back - matrix.clock.now()).total_seconds())
    matrix.run()
    all_published(matrix)
    first, second = matrix.thread()
    assert first.published_at is not None
    # Backoff doubles: the first try after the server is back is at most about twice the
    # time it was down.
    assert back <= first.published_at <= THREAD_AT + timedelta(minutes=31)
    assert second.published_at == first.published_at
    causes = matrix.causes(first)
    # Cut off: it may have been sent; while down, nobody can look; back: not there, sent.
    assert "no answer after sending: it will be looked for on the server" in causes
    assert "could not look for it on the server: it will be looked for again" in causes
    assert first.cause == "published"


def test_a_refusal_fails_with_the_servers_words_and_ends_the_thread(matrix: Matrix) -> None:
    matrix.server.faults.add(
        STATUSES, "status", status=422, body={"error": "Validation failed: Text is spam"}
    )
    matrix.run()
    first, second = matrix.thread()
    assert first.state is State.FAILED
    assert "Validation failed: Text is spam" in (first.last_error or "")
    assert second.state is State.FAILED
    assert second.cause == "the part it replies to is failed"
    others = [r for r in matrix.records() if r.post != "fil"]
    assert {r.state for r in others} == {State.PUBLISHED}
    assert [n.event for n in matrix.notices] == ["failed"]
    matrix.assert_held_exactly_once()
    assert len(matrix.server.statuses("alba")) == 3
