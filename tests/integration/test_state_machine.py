"""The store and the dispatcher as one state machine, driven by Hypothesis.

A campaign file is edited (posts added, changed, removed; a series switched on and off),
publications are cancelled and retried by hand, workers claim and die, leases run out, the
clock moves, and the server answers every way it can (429, 5xx, a timeout before or after
it stored the status, a refusal, a revoked token) — against the in-memory store and a
SQLite store. After every step the invariants of DESIGN §3–§4 must hold:

- each publication is in exactly one state, whichever way the store is asked;
- the server holds each publication at most once (the fake server ignores Idempotency-Key,
  as GoToSocial and Takahē do, so only reconciliation can prevent a duplicate);
- a publication the server holds is published with that status's id, or still in flight
  (claimed, uncertain) — never scheduled, retrying, failed, expired or cancelled;
- nothing was sent before its time, after the window, or out of thread order;
- a tick that claimed nothing names a next due time in the future (else the daemon, which
  re-arms its timer to that time, would spin).

At the end of each run, with the faults gone and held accounts resumed, ticking and moving
the clock makes every publication final.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from postscheduler.cron import expand_cron
from postscheduler.dispatcher import Dispatcher, DispatchSettings, Notice, TickReport
from postscheduler.domain.campaign import CampaignFile
from postscheduler.domain.plan import plan_campaign
from postscheduler.domain.states import FINAL, PENDING, RETRYABLE_BY_HAND, State
from postscheduler.domain.sync import REMOVED_FROM_FILE
from postscheduler.domain.timing import misfire
from postscheduler.errors import (
    AccountUnusable,
    OutcomeUnknown,
    PublishFailed,
    RetryLater,
    TransitionRefused,
)
from postscheduler.ports import (
    RECONCILE,
    AccountRecord,
    CampaignRecord,
    FileVersion,
    PublicationRecord,
    Published,
    Publisher,
    Store,
)
from postscheduler.store.common import CLI_ACTOR, campaign_records
from postscheduler.store.database import create
from postscheduler.store.memory import MemoryStore
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore
from postscheduler.testing import FakeClock

CAMPAIGN = "sm"
ACCOUNTS = ("ana", "ben")
POSTS = ("p1", "p2", "p3", "p4")
#: The window, in UTC (the campaign's zone): 09:00 to 17:00.
WINDOW_START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
WINDOW_END = datetime(2030, 3, 1, 17, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)
#: Each account's server accepts this many characters: a long post becomes a thread.
LIMIT = 100

#: What the fake server does with the next call of an account (None: answers normally).
OUTCOMES = ("retry", "retry_at", "unknown", "lost", "failed", "revoked")


# -- the fake server and its publishers ------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A status the fake server stored."""

    id: str
    key: str
    account: str
    text: str
    idempotency_key: str
    in_reply_to_id: str | None
    at: datetime


class FakeServer:
    """Every account's server at once: stores statuses, ignores Idempotency-Key (as
    GoToSocial and Takahē do), answers an account's next call as it was told to, and notes
    any status sent early, late or out of thread order."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.statuses: list[Sent] = []
        self.forced: dict[str, str] = {}
        self.violations: list[str] = []

    def force(self, account: str, outcome: str) -> None:
        with self.lock:
            self.forced[account] = outcome

    def take(self, account: str) -> str | None:
        with self.lock:
            return self.forced.pop(account, None)

    def store(
        self, publication: PublicationRecord, idempotency_key: str, in_reply_to_id: str | None
    ) -> Sent:
        now = self.clock.now()
        with self.lock:
            if now < publication.scheduled_at:
                self.violations.append(
                    f"{publication.key} sent at {now:%H:%M:%S}, before its time "
                    f"{publication.scheduled_at:%H:%M:%S}"
                )
            if now > WINDOW_END:
                self.violations.append(f"{publication.key} sent at {now}, after the window")
            if publication.reply_to is None:
                if in_reply_to_id is not None:
                    self.violations.append(f"{publication.key} is a first part but replies")
            else:
                previous = [s for s in self.statuses if s.key == publication.reply_to]
                if not previous or previous[-1].id != in_reply_to_id:
                    self.violations.append(
                        f"{publication.key} sent before, or not in reply to, {publication.reply_to}"
                    )
            sent = Sent(
                id=str(len(self.statuses) + 1),
                key=publication.key,
                account=publication.account,
                text=publication.text,
                idempotency_key=idempotency_key,
                in_reply_to_id=in_reply_to_id,
                at=now,
            )
            self.statuses.append(sent)
            return sent

    def look(
        self, account: str, text: str, since: datetime, exclude: Collection[str]
    ) -> Sent | None:
        """Like a real reconciliation: the account's oldest status with that text created
        since ``since`` less a minute, leaving out the ids in ``exclude``."""
        with self.lock:
            return next(
                (
                    sent
                    for sent in self.statuses
                    if sent.account == account
                    and sent.text == text
                    and sent.at >= since - timedelta(minutes=1)
                    and sent.id not in exclude
                ),
                None,
            )


class FakePublisher:
    """The Publisher port for one account of the :class:`FakeServer`."""

    def __init__(self, server: FakeServer, account: str) -> None:
        self.server = server
        self.account = account

    def upload_media(self, media: dict[str, Any], path: str) -> str:
        raise AssertionError("these campaigns have no media")

    def post_status(
        self,
        publication: PublicationRecord,
        *,
        idempotency_key: str,
        in_reply_to_id: str | None,
        media_ids: Sequence[str],
    ) -> Published:
        assert publication.account == self.account
        outcome = self.server.take(self.account)
        if outcome == "retry":
            raise RetryLater("posting: server error 503 (Service Unavailable)", status=503)
        if outcome == "retry_at":
            reset = self.server.clock.now() + timedelta(minutes=45)
            raise RetryLater("posting: rate limited", status=429, retry_at=reset)
        if outcome == "unknown":
            raise OutcomeUnknown("posting: no answer after the request was sent")
        if outcome == "failed":
            raise PublishFailed("posting: refused by the server (422: Validation failed)")
        if outcome == "revoked":
            raise AccountUnusable("posting: the server refused the token (401)", status=401)
        sent = self.server.store(publication, idempotency_key, in_reply_to_id)
        if outcome == "lost":
            raise OutcomeUnknown("posting: the connection was closed without an answer")
        return Published(sent.id, f"https://fake.test/@{self.account}/{sent.id}", sent.at)

    def find_status(
        self,
        publication: PublicationRecord,
        *,
        since: datetime,
        exclude: Collection[str] = frozenset(),
    ) -> Published | None:
        outcome = self.server.take(self.account)
        # As MastodonPublisher.find_status answers: a lookup never has an unknown outcome.
        if outcome == "retry_at":
            reset = self.server.clock.now() + timedelta(minutes=45)
            raise RetryLater("looking for the status: rate limited", status=429, retry_at=reset)
        if outcome in ("retry", "unknown", "lost"):
            raise RetryLater("looking for the status: the server did not answer in time")
        if outcome == "failed":
            raise PublishFailed("looking for the status: not found (404)", status=404)
        if outcome == "revoked":
            raise AccountUnusable("looking for the status: the token was refused", status=401)
        sent = self.server.look(self.account, publication.text, since, exclude)
        if sent is None:
            return None
        return Published(sent.id, f"https://fake.test/@{self.account}/{sent.id}", sent.at)


class MidJitter:
    """A jitter that does not depend on which worker thread asks first."""

    def uniform(self, low: float, high: float) -> float:
        return (low + high) / 2


# -- the campaign file, as models in memory -------------------------------------------------


@dataclass(frozen=True)
class PostSpec:
    """One ``[[posts]]`` entry of the edited file."""

    at: int  # minutes after the window opens
    accounts: tuple[str, ...]
    version: int
    long: bool


def post_text(post: str, version: int, long: bool) -> str:
    """Unique words, so that reconciliation by text can only find this post's parts."""
    if not long:
        return f"{post} v{version}: a short note."
    return f"{post} v{version}: " + " ".join(f"{post}v{version}w{i}" for i in range(24))


#: The series fires once in the window: occurrences of a series all say the same words, and
#: reconciliation, which compares words, cannot tell them apart (see the xfail test below).
SERIES_CRON = "0 12 * * *"


def campaign_file(
    posts: dict[str, PostSpec], series: int | None, cron: str = SERIES_CRON
) -> CampaignFile:
    """The campaign file with ``posts`` and, when ``series`` is a version, a series on ana
    that fires at ``cron``."""
    document: dict[str, Any] = {
        "campaign": {
            "id": CAMPAIGN,
            "name": "State machine",
            "timezone": "UTC",
            "start": WINDOW_START.replace(tzinfo=None),
            "end": WINDOW_END.replace(tzinfo=None),
            "language": "en",
            "min_spacing": "5m",
            "misfire": {"policy": "grace", "grace": "20m"},
        },
        "accounts": {
            name: {
                "instance": f"http://127.0.0.1:{8001 + index}",
                "token": {"env": f"{name.upper()}_TOKEN"},
                "software": "mastodon",
                "max_characters": LIMIT,
            }
            for index, name in enumerate(ACCOUNTS)
        },
        "posts": [
            {
                "id": name,
                "accounts": list(spec.accounts),
                "at": (WINDOW_START + timedelta(minutes=spec.at)).replace(tzinfo=None),
                "text": post_text(name, spec.version, spec.long),
            }
            for name, spec in sorted(posts.items())
        ],
    }
    if series is not None:
        document["series"] = [
            {
                "id": "reminder",
                "accounts": ["ana"],
                "cron": cron,
                "text": f"reminder v{series}: the same words every time.",
            }
        ]
    return CampaignFile.model_validate(document)


_TEMPLATE: dict[str, Path] = {}


def sqlite_template() -> Path:
    """A SQLite database at the head revision, built once and copied for each run."""
    if "path" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="postscheduler-sm-template-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "template.sqlite3"
        upgrade(f"sqlite:///{path}", backup=False)
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


def copy_database(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


# -- the machine ------------------------------------------------------------------------------

posts_strategy = st.sampled_from(POSTS)
#: Most posts in the first two hours (they meet, and meet the faults); some up to the end.
at_strategy = st.integers(0, 12).map(lambda n: n * 10) | st.integers(0, 48).map(lambda n: n * 10)
accounts_strategy = st.sampled_from([("ana",), ("ben",), ("ana", "ben")])


class PublishingMachine(RuleBasedStateMachine):
    """The store (of :attr:`kind`) and a dispatcher, against the fake server."""

    kind: ClassVar[str] = "memory"
    series_cron: ClassVar[str] = SERIES_CRON

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(WINDOW_START - timedelta(minutes=30))
        self.server = FakeServer(self.clock)
        self.folder = Path(tempfile.mkdtemp(prefix="postscheduler-sm-"))
        self.engine: Any = None
        self.store: Store
        if self.kind == "sqlite":
            path = self.folder / "store.sqlite3"
            copy_database(sqlite_template(), path)
            self.engine = create(f"sqlite:///{path}")
            self.store = SqlStore(self.engine)
        else:
            self.store = MemoryStore()
        self.notices: list[Notice] = []
        self.publishers = {name: FakePublisher(self.server, name) for name in ACCOUNTS}
        self.dispatcher = Dispatcher(
            self.store,
            self.publisher_for,
            self.clock,
            DispatchSettings(owner="worker", lease=LEASE, workers=2),
            notify=self.notices.append,
            rng=MidJitter(),  # type: ignore[arg-type]
        )
        self.posts: dict[str, PostSpec] = {}
        self.series: int | None = None
        self.syncs = 0
        self.last_tick: TickReport | None = None

    def publisher_for(self, campaign: CampaignRecord, account: AccountRecord) -> Publisher:
        return self.publishers[account.name]

    # -- the file ------------------------------------------------------------------------

    def sync(self) -> None:
        if not self.posts and self.series is None:
            return  # a file without posts is refused: nothing would change
        file = campaign_file(self.posts, self.series, self.series_cron)
        plan = plan_campaign(file, None, {}, expand_cron)
        assert plan.ok, [p.message for p in plan.problems]
        assert plan.window_start is not None
        assert plan.window_end is not None
        campaign, accounts = campaign_records(
            file, "/campaigns/sm.toml", (plan.window_start, plan.window_end)
        )
        self.syncs += 1
        before = {r.key: r for r in self.store.publications()}
        result = self.store.sync(
            campaign,
            accounts,
            plan.publications,
            FileVersion("/campaigns/sm.toml", f"v{self.syncs}", self.clock.now(), CAMPAIGN),
        )
        planned = {p.key: p for p in plan.publications}
        after = {r.key: r for r in self.store.publications()}
        ended = {e.key: e for e in result.ended}
        for key, record in after.items():
            was = before.get(key)
            if key not in planned:  # left the file: pending ones cancelled, others kept
                assert was is not None, key
                expected = State.CANCELLED if was.state in PENDING else was.state
                assert record.state is expected, key
            elif was is None or (
                was.state is State.CANCELLED and was.cause == REMOVED_FROM_FILE
            ):  # added, or back in the file
                assert record.content_hash == planned[key].content_hash, key
                reply_to = planned[key].reply_to
                previous = after[reply_to] if reply_to else None
                if previous is not None and previous.state in FINAL - {State.PUBLISHED}:
                    # behind a part that ended unpublished: it ends with it, at once
                    assert key in ended, key
                    assert record.state is previous.state, key
                    assert record.cause == ended[key].cause, key
                    assert record.cause.startswith("the part it replies to is"), key
                else:
                    assert key not in ended, key
                    assert record.state is State.SCHEDULED, key
            elif was.state in PENDING:  # changed in place, its state kept
                assert record.state is was.state, key
                assert record.content_hash == planned[key].content_hash, key
                assert record.scheduled_at == planned[key].scheduled_at, key
            else:  # in flight or final: refused, untouched (published history above all)
                assert record.state is was.state, key
                assert (record.text, record.remote_id) == (was.text, was.remote_id), key
        newly_cancelled = {
            key
            for key, record in after.items()
            if record.state is State.CANCELLED
            and key in before
            and before[key].state is not State.CANCELLED
        }
        assert newly_cancelled == {gone.key for gone in result.cancelled}

    @initialize(
        first=st.dictionaries(
            posts_strategy,
            st.builds(PostSpec, at_strategy, accounts_strategy, st.just(1), st.booleans()),
            min_size=1,
            max_size=3,
        ),
        series=st.booleans(),
    )
    def start(self, first: dict[str, PostSpec], series: bool) -> None:
        self.posts = dict(first)
        self.series = 1 if series else None
        self.sync()

    @precondition(lambda self: len(self.posts) < len(POSTS))
    @rule(
        data=st.data(),
        at=at_strategy,
        accounts=accounts_strategy,
        long=st.booleans(),
    )
    def add_post(self, data: st.DataObject, at: int, accounts: tuple[str, ...], long: bool) -> None:
        name = data.draw(st.sampled_from([p for p in POSTS if p not in self.posts]))
        self.posts[name] = PostSpec(at, accounts, 1, long)
        self.sync()

    @precondition(lambda self: bool(self.posts))
    @rule(
        data=st.data(),
        new_text=st.booleans(),
        at=st.none() | at_strategy,
        long=st.none() | st.booleans(),
    )
    def change_post(
        self, data: st.DataObject, new_text: bool, at: int | None, long: bool | None
    ) -> None:
        name = data.draw(st.sampled_from(sorted(self.posts)))
        old = self.posts[name]
        self.posts[name] = PostSpec(
            old.at if at is None else at,
            old.accounts,
            old.version + 1 if new_text else old.version,
            old.long if long is None else long,
        )
        self.sync()

    @precondition(lambda self: len(self.posts) > 1 or (self.posts and self.series))
    @rule(data=st.data())
    def remove_post(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.posts)))
        del self.posts[name]
        self.sync()

    @precondition(lambda self: bool(self.posts))
    @rule()
    def toggle_series(self) -> None:
        self.series = None if self.series else self.syncs + 1
        self.sync()

    # -- people ----------------------------------------------------------------------------

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        records = self.store.publications()
        if not records:
            return
        record = data.draw(st.sampled_from(records))
        if record.state in PENDING:
            done = self.store.transition(
                record.key, State.CANCELLED, now=self.clock.now(), cause="cancelled", actor="cli"
            )
            assert done.state is State.CANCELLED
        else:
            with pytest.raises(TransitionRefused):
                self.store.transition(
                    record.key,
                    State.CANCELLED,
                    now=self.clock.now(),
                    cause="cancelled",
                    actor=CLI_ACTOR,
                )
            assert self.store.get(record.key).state is record.state

    @precondition(lambda self: any(r.state in RETRYABLE_BY_HAND for r in self.store.publications()))
    @rule(data=st.data())
    def retry_by_hand(self, data: st.DataObject) -> None:
        candidates = [r for r in self.store.publications() if r.state in RETRYABLE_BY_HAND]
        record = data.draw(st.sampled_from(candidates))
        done = self.store.transition(
            record.key, State.SCHEDULED, now=self.clock.now(), cause="retry", actor=CLI_ACTOR
        )
        assert done.state is State.SCHEDULED

    @rule(account=st.sampled_from(ACCOUNTS))
    def resume(self, account: str) -> None:
        self.store.set_paused(CAMPAIGN, account, False, now=self.clock.now())
        assert {a.name: a for a in self.store.accounts(CAMPAIGN)}[account].held_reason is None

    # -- workers and time --------------------------------------------------------------------

    @rule(after_sending=st.booleans())
    def claim_and_crash(self, after_sending: bool) -> None:
        """Another worker claims what is due, maybe sends it, and dies before recording."""
        now = self.clock.now()
        claimed = self.store.claim_due(owner="ghost", now=now, lease=LEASE, limit=10)
        for record in claimed:
            assert record.state is State.CLAIMED
            assert record.lease_owner == "ghost"
            assert record.due_at <= now
        if not after_sending:
            return
        for record in claimed:
            # What a real worker does before sending (see Dispatcher._settle_before_sending).
            if record.cause == RECONCILE:
                history = self.store.history(record.key)
                since = next(h.at for h in history if h.to_state is State.CLAIMED)
                instance = {a.name: a for a in self.store.accounts(CAMPAIGN)}[record.account]
                taken = self.store.remote_ids(
                    instance.instance, published_since=since - timedelta(hours=1)
                )
                if self.server.look(record.account, record.text, since, taken):
                    continue
            first_try = record.next_attempt_at is None and record.part == 1
            if misfire(
                due=record.scheduled_at if first_try else now,
                now=now,
                window_end=WINDOW_END,
                policy="grace",
                grace=timedelta(minutes=20),
            ):
                continue
            reply_to = self.store.get(record.reply_to).remote_id if record.reply_to else None
            self.server.store(record, "ghost", reply_to)

    @rule()
    def leases_run_out(self) -> None:
        self.clock.advance(LEASE + timedelta(seconds=1))
        ghosts = [r.key for r in self.store.publications(state=State.CLAIMED)]
        self.tick()
        for key in ghosts:
            assert self.store.get(key).lease_owner != "ghost", f"{key}: its lease was not reaped"

    @rule(minutes=st.integers(1, 120))
    def advance(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule()
    def advance_to_next_due(self) -> None:
        due = self.store.next_due()
        if due is not None and due > self.clock.now():
            self.clock.set(due)

    @rule(
        outcome=st.none() | st.sampled_from(OUTCOMES),
        account=st.sampled_from(ACCOUNTS),
        when_due=st.booleans(),
    )
    def tick_with(self, outcome: str | None, account: str, when_due: bool) -> None:
        """The server answers ``account``'s next call with ``outcome``; tick now, or when
        something is next due."""
        if outcome is not None:
            self.server.force(account, outcome)
        if when_due:
            self.advance_to_next_due()
        self.tick()

    def tick(self) -> TickReport:
        report = self.dispatcher.tick()
        self.last_tick = report
        if currently_in_test_context():
            for outcome in report.outcomes:
                event(f"tick outcome: {outcome.split(':')[0]}")
        now = self.clock.now()
        for record in self.store.publications(state=State.CLAIMED):
            assert record.lease_owner == "ghost", f"{record.key} left claimed by the dispatcher"
        if not report.claimed:
            # The daemon re-arms its timer to next_due: one not in the future would spin it.
            # (A lease ending exactly now was reaped by this tick: next_due names its end,
            # and reap() takes it at that instant — both pinned by tests/contract.)
            assert report.next_due is None or report.next_due > now, (
                f"nothing could be claimed at {now}, yet next_due says {report.next_due}: "
                + ", ".join(
                    f"{r.key} {r.state.value} due {r.due_at:%H:%M:%S}"
                    for r in self.store.publications()
                    if r.state not in FINAL and r.due_at <= now
                )
            )
        return report

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def one_state_each(self) -> None:
        records = self.store.publications()
        keys = [r.key for r in records]
        assert len(keys) == len(set(keys))
        seen: Counter[str] = Counter()
        for state in State:
            for record in self.store.publications(state=state):
                assert record.state is state
                seen[record.key] += 1
        assert seen == Counter(keys), "a publication listed under no state, or under two"
        counted: Counter[str] = Counter()
        for row in self.store.status(CAMPAIGN):
            counted[row.account] += sum(row.counts.values())
        assert counted == Counter(r.account for r in records)

    @invariant()
    def the_server_agrees(self) -> None:
        assert not self.server.violations, self.server.violations
        sent: dict[str, list[Sent]] = defaultdict(list)
        with self.server.lock:
            for status in self.server.statuses:
                sent[status.key].append(status)
        twice = {key: len(found) for key, found in sent.items() if len(found) > 1}
        assert not twice, f"published more than once: {twice}"
        records = {r.key: r for r in self.store.publications()}
        assert set(sent) <= set(records)
        for key, record in records.items():
            held = sent.get(key, [])
            if record.state is State.PUBLISHED:
                assert record.remote_id is not None
                assert held, f"{key} is published, but the server does not hold it"
                assert record.remote_id == held[0].id, (
                    f"{key} is published as status {record.remote_id}, which is "
                    + next(
                        (f"{s.key}'s" for s in self.server.statuses if s.id == record.remote_id),
                        "unknown",
                    )
                )
                assert record.published_at is not None
            elif record.state not in (State.CLAIMED, State.UNCERTAIN):
                assert not held, (
                    f"{key} is {record.state.value} ({record.cause}), yet the server holds it"
                )

    # -- the end --------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None:  # a run that failed already is not drained
                self.drain()
        finally:
            self.close()

    def close(self) -> None:
        self.dispatcher.close()
        if self.engine is not None:
            self.engine.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    def drain(self) -> None:
        """No more faults, held accounts resumed: every publication ends (bounded)."""
        with self.server.lock:
            self.server.forced.clear()
        for _ in range(500):
            for account in ACCOUNTS:
                self.store.set_paused(CAMPAIGN, account, False, now=self.clock.now())
            report = self.tick()
            self.one_state_each()
            self.the_server_agrees()
            records = self.store.publications()
            orphans = self.orphans(records)
            if all(r.state in FINAL or r.key in orphans for r in records):
                return
            if report.next_due is None:
                pending = [f"{r.key}: {r.state.value}" for r in records if r.state not in FINAL]
                raise AssertionError(f"nothing is due, yet these never end: {pending}")
            if report.next_due > self.clock.now():
                self.clock.set(report.next_due)
            # else more is due now (one claim per account per tick): tick again
        pending = [f"{r.key}: {r.state.value}" for r in self.store.publications()]
        raise AssertionError(f"the campaign did not finish: {pending}")

    def orphans(self, records: Sequence[PublicationRecord]) -> set[str]:
        """Thread parts waiting behind a part that ended unpublished, because a later part
        was retried by hand alone: they can never be sent, and nothing ends them. A known
        gap, left to a design decision. (A part that a sync adds or revives behind an ended
        part, or that waits behind a part cancelled by hand, ends with it: not an orphan.)"""
        by_key = {r.key: r for r in records}
        found: set[str] = set()
        for record in sorted(records, key=lambda r: r.part):
            previous = by_key.get(record.reply_to) if record.reply_to else None
            if (
                previous is not None
                and record.state not in FINAL
                and (
                    previous.key in found
                    or (
                        previous.state in FINAL - {State.PUBLISHED}
                        and any(
                            line.actor == CLI_ACTOR and line.to_state is State.SCHEDULED
                            for line in self.store.history(record.key)
                        )
                    )
                )
            ):
                found.add(record.key)
        return found


class SqlitePublishingMachine(PublishingMachine):
    kind = "sqlite"


TestStateMachineMemory = PublishingMachine.TestCase
TestStateMachineMemory.settings = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestStateMachineSqlite = SqlitePublishingMachine.TestCase
TestStateMachineSqlite.settings = settings(
    max_examples=35,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# -- the shrunk cases, kept as plain tests ------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def machine(request: pytest.FixtureRequest) -> Iterator[PublishingMachine]:
    """The machine as a harness, driven by hand."""
    built = PublishingMachine() if request.param == "memory" else SqlitePublishingMachine()
    try:
        yield built
    finally:
        built.close()


def at_window_start(machine: PublishingMachine, posts: dict[str, PostSpec]) -> None:
    machine.start(first=posts, series=False)
    machine.clock.set(WINDOW_START)


def check(machine: PublishingMachine) -> None:
    machine.one_state_each()
    machine.the_server_agrees()


def test_a_failed_lookup_leaves_the_publication_uncertain(machine: PublishingMachine) -> None:
    # Stored, answer lost; then the server cannot be asked whether it holds it. Sending it
    # again (as a plain retry) would publish it twice on a server that ignores the key.
    at_window_start(machine, {"p1": PostSpec(0, ("ana",), 1, False)})
    machine.tick_with("lost", "ana", when_due=False)
    key = "sm/p1/ana/1"
    assert machine.store.get(key).state is State.UNCERTAIN
    for outcome in ("retry", "revoked", "failed"):
        machine.tick_with(outcome, "ana", when_due=True)
        check(machine)
        record = machine.store.get(key)
        assert record.state is State.UNCERTAIN, (outcome, record.cause)
        machine.resume("ana")
    held = [n for n in machine.notices if n.event == "account_held"]
    assert [n.key for n in held] == [key]
    machine.drain()
    record = machine.store.get(key)
    assert record.state is State.PUBLISHED
    assert record.cause == "found on the server"
    assert len(machine.server.statuses) == 1


def test_a_retry_never_goes_before_a_later_time_from_the_file(
    machine: PublishingMachine,
) -> None:
    at_window_start(machine, {"p1": PostSpec(0, ("ana",), 1, False)})
    machine.tick_with("retry", "ana", when_due=False)
    key = "sm/p1/ana/1"
    assert machine.store.get(key).state is State.RETRYING
    machine.change_post(data=FixedDraws("p1"), new_text=False, at=60, long=None)  # type: ignore[arg-type]
    record = machine.store.get(key)
    assert record.state is State.RETRYING
    assert record.due_at == WINDOW_START + timedelta(minutes=60)
    machine.drain()
    check(machine)
    published = machine.store.get(key)
    assert published.published_at == WINDOW_START + timedelta(minutes=60)


def test_next_due_skips_a_thread_part_waiting_for_its_first_part(
    machine: PublishingMachine,
) -> None:
    # p1 and the thread p2 are due together on ana: one goes, the other is paced 5 minutes;
    # p2's second part, due now, cannot go before its first: next_due must not name it
    # (the daemon would re-arm its timer in the past and spin until then).
    at_window_start(
        machine, {"p1": PostSpec(0, ("ana",), 1, False), "p2": PostSpec(0, ("ana",), 1, True)}
    )
    first = machine.tick()
    assert first.claimed == 1
    second = machine.tick()
    assert second.outcomes == {"paced": 1}
    third = machine.tick()
    assert third.claimed == 0
    assert third.next_due == WINDOW_START + timedelta(minutes=5)
    machine.drain()
    assert {r.state for r in machine.store.publications()} == {State.PUBLISHED}


def test_a_thread_part_behind_a_cancelled_part_ends_with_it(machine: PublishingMachine) -> None:
    at_window_start(machine, {"p1": PostSpec(0, ("ana",), 1, True)})
    machine.store.transition(
        "sm/p1/ana/1", State.CANCELLED, now=machine.clock.now(), cause="no", actor=CLI_ACTOR
    )
    machine.drain()
    assert machine.store.get("sm/p1/ana/2").state in FINAL


def test_a_part_added_behind_a_failed_part_ends_with_it(machine: PublishingMachine) -> None:
    # Part 2 is claimed only once part 1 is published: added behind a failed part 1, it
    # would wait forever. It ends with part 1, as record() ends a failed part's later parts.
    at_window_start(machine, {"p1": PostSpec(0, ("ana",), 1, False)})
    machine.tick_with("failed", "ana", when_due=False)
    assert machine.store.get("sm/p1/ana/1").state is State.FAILED
    machine.change_post(data=FixedDraws("p1"), new_text=False, at=None, long=True)  # type: ignore[arg-type]
    later = [r for r in machine.store.publications(post="p1") if r.part > 1]
    assert later
    for record in later:
        assert record.state is State.FAILED
        assert record.cause == "the part it replies to is failed"
        assert [(h.from_state, h.to_state, h.actor) for h in machine.store.history(record.key)] == [
            (None, State.SCHEDULED, "sync"),
            (State.SCHEDULED, State.FAILED, "sync"),
        ]
    machine.drain()
    assert {r.state for r in machine.store.publications(post="p1")} == {State.FAILED}
    # A retry of part 1 by hand brings its later parts back; this time all go.
    machine.store.transition(
        "sm/p1/ana/1", State.SCHEDULED, now=machine.clock.now(), cause="retry", actor=CLI_ACTOR
    )
    assert {r.state for r in machine.store.publications(post="p1")} == {State.SCHEDULED}
    machine.drain()
    check(machine)
    assert {r.state for r in machine.store.publications(post="p1")} == {State.PUBLISHED}


class TwiceADay(PublishingMachine):
    series_cron = "0 14,16 * * *"


def test_an_uncertain_occurrence_is_not_taken_for_a_later_one() -> None:
    # Occurrences of a series say the same words: the later one's status, recorded as its
    # own, must not be taken for the earlier one, which never reached the server.
    machine = TwiceADay()
    try:
        machine.start(first={}, series=True)
        machine.clock.set(datetime(2030, 3, 1, 14, 0, tzinfo=UTC))
        machine.tick_with("unknown", "ana", when_due=False)  # the request never arrived
        early = "sm/reminder@20300301T1400/ana/1"
        assert machine.store.get(early).state is State.UNCERTAIN
        for _ in range(3):  # the server cannot be asked: 429, come back in 45 minutes
            machine.tick_with("retry_at", "ana", when_due=True)
        assert machine.store.get(early).due_at > datetime(2030, 3, 1, 16, 0, tzinfo=UTC)
        machine.tick_with(None, "ana", when_due=True)  # 16:00: the next occurrence goes
        assert machine.store.get("sm/reminder@20300301T1600/ana/1").state is State.PUBLISHED
        machine.tick_with(None, "ana", when_due=True)  # the early one is looked for
        check(machine)
        record = machine.store.get(early)
        assert record.cause != "found on the server"
        machine.drain()
        check(machine)
        assert [s.key for s in machine.server.statuses] == [
            "sm/reminder@20300301T1600/ana/1",
            early,
        ]
    finally:
        machine.close()


def test_an_uncertain_occurrence_that_was_sent_is_found_before_a_later_one() -> None:
    # Both occurrences reached the server, neither answer came back: each is matched with
    # its own status — the oldest not already recorded, created since its first claim.
    machine = TwiceADay()
    try:
        machine.start(first={}, series=True)
        machine.clock.set(datetime(2030, 3, 1, 14, 0, tzinfo=UTC))
        machine.tick_with("lost", "ana", when_due=False)  # stored, the answer lost
        early = "sm/reminder@20300301T1400/ana/1"
        for _ in range(3):  # the server cannot be asked until after 16:00
            machine.tick_with("retry_at", "ana", when_due=True)
        machine.clock.set(datetime(2030, 3, 1, 16, 0, tzinfo=UTC))
        assert machine.store.get(early).due_at > machine.clock.now()
        machine.claim_and_crash(after_sending=True)  # 16:00: sent by a worker that dies
        late = "sm/reminder@20300301T1600/ana/1"
        assert [s.key for s in machine.server.statuses] == [early, late]
        machine.drain()
        check(machine)
        ids = {s.key: s.id for s in machine.server.statuses}
        assert machine.store.get(early).remote_id == ids[early]
        assert machine.store.get(late).remote_id == ids[late]
    finally:
        machine.close()


class FixedDraws:
    """Stands for Hypothesis's ``data`` when a rule is called by hand: draws ``value``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def draw(self, strategy: Any, label: Any = None) -> Any:
        return self.value
