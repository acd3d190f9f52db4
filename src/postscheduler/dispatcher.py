"""The dispatcher: claim what is due, publish it, record what happened.

One :meth:`Dispatcher.tick` reads the clock once, reaps expired leases, claims due
publications (one per account, threads in order — the store guarantees it), and processes
them in a bounded pool, accounts in parallel. For each claim:

1. claimed to **reconcile** (it was uncertain): look for it on the server first — a status
   with its words created since its first claim, and not already recorded as another
   publication; found → published; not found → sent below, with the same Idempotency-Key;
2. **misfire** policy and window: too late → expired, with the reason;
3. **pacing**: too soon after the account's last status → back to the queue for later;
4. **media** uploaded (ids kept on the publication, so a retry does not upload again);
5. **post** with the publication's stable Idempotency-Key, replying to the previous part;
6. the outcome recorded: published · retrying (backoff, the server's reset time wins,
   never past the window) · uncertain (reconciled next time) · failed (the server's reason)
   · account held (401/403: its publications wait until ``resume``; organisers are told).

No database transaction is open while the network is used (DESIGN §4 invariant 6): the
claim, the media ids and the outcome are each their own short transaction.

Crash points (:mod:`postscheduler.crashpoints`, test-only: inert unless the environment
variable ``POSTSCHEDULER_CRASHPOINTS`` is set) mark where the torture test may kill the
process: ``after_claim``, ``after_send``, ``during_record`` and ``after_record``.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from postscheduler.crashpoints import crashpoint
from postscheduler.domain.keys import idempotency_key
from postscheduler.domain.states import State
from postscheduler.domain.timing import MASTODON_BUDGET, Budget, misfire, next_allowed, retry_at
from postscheduler.errors import (
    AccountUnusable,
    LeaseLost,
    OutcomeUnknown,
    PostschedulerError,
    PublishFailed,
    RetryLater,
)
from postscheduler.ports import (
    RECONCILE,
    AccountRecord,
    CampaignRecord,
    Clock,
    PublicationRecord,
    Publisher,
    Store,
    TransitionRecord,
)

log = logging.getLogger("postscheduler.dispatcher")

#: After an unknown outcome, wait this long before checking the server (it may be slow).
RECONCILE_DELAY = timedelta(seconds=30)
#: Why an unsent claim went back to the queue (the history says it).
LEASE_SHORT = "its lease ran short before it could be sent: back to the queue, unsent"
STOPPING = "the daemon stopped before it was sent: back to the queue, unsent"
#: Media ids are reused by a retry while younger than this (servers drop unattached media).
MEDIA_REUSE = timedelta(hours=1)
#: Reconciliation leaves out the statuses recorded as other publications since this long
#: before the search starts: our record times and the server's creation times may differ by
#: the two clocks' skew (the search itself allows a minute of it).
TAKEN_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class Notice:
    """Something the organisers should hear about (an account held, a failure)."""

    event: str
    campaign: str
    account: str
    message: str
    key: str | None = None


def worker_id(name: str | None = None) -> str:
    """This process's name on its claims and in the history: ``name`` (default host:pid)
    and a random suffix, so that two live processes given the same ``--owner`` — or a pid
    reused after a restart — never hold each other's leases (``web1#3fa94c``)."""
    base = name or f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}#{secrets.token_hex(3)}"


@dataclass(frozen=True)
class DispatchSettings:
    """How one worker claims and paces."""

    owner: str
    lease: timedelta = timedelta(minutes=10)
    batch: int = 32
    workers: int = 4
    budget: Budget = MASTODON_BUDGET


@dataclass
class TickReport:
    """What one tick did."""

    reaped: int = 0
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    next_due: datetime | None = None


PublisherFor = Callable[[CampaignRecord, AccountRecord], Publisher]


class Dispatcher:
    """Publishes what is due; see the module docstring."""

    def __init__(
        self,
        store: Store,
        publisher_for: PublisherFor,
        clock: Clock,
        settings: DispatchSettings,
        *,
        notify: Callable[[Notice], None] | None = None,
        rng: random.Random | None = None,
        on_published: Callable[[PublicationRecord], None] | None = None,
    ) -> None:
        self.store = store
        self.publisher_for = publisher_for
        self.clock = clock
        self.settings = settings
        self.notify = notify or log_notice
        self.on_published = on_published or (lambda record: None)
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._sent: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="publish")
        #: Set by :meth:`drain`: claims not yet sent go back to the queue, unsent.
        self.stopping = threading.Event()
        #: Claims handed to the pool and not finished, by key (drain waits for none).
        self._queued: dict[str, tuple[Future[str], PublicationRecord]] = {}
        self._idle = threading.Condition()

    def close(self) -> None:
        """Let the publications in flight finish, then stop the pool."""
        self._pool.shutdown(wait=True)

    def drain(self, grace: timedelta) -> bool:
        """Stop sending: a claim not yet sent goes back to the queue, and this waits up to
        ``grace`` (real time) for the requests already sent to be answered and recorded.

        Returns whether nothing is held any more. When False, what is still in flight keeps
        its lease: if the process ends now, the lease expires and the publication is looked
        for on the server before anything is sent again (it is never lost nor doubled).
        """
        self.stopping.set()
        # Claims still waiting for a worker (all of them busy, maybe with a slow server)
        # are put back from here, now: waiting for a worker could outlast the grace.
        with self._idle:
            unstarted = [record for future, record in self._queued.values() if future.cancel()]
        for record in unstarted:
            try:
                self._put_back(record, STOPPING)
            except PostschedulerError as error:  # its lease will expire: reconciled then
                log.warning("could not put %s back: %s", record.key, error)
            finally:
                self._done_with(record)
        with self._idle:
            return self._idle.wait_for(lambda: not self._queued, timeout=grace.total_seconds())

    def tick(self) -> TickReport:
        """Reap, claim what is due now, publish it; returns what happened and what is next."""
        now = self.clock.now()
        report = TickReport()
        report.reaped = len(self.store.reap(now=now))
        claimed = self.store.claim_due(
            owner=self.settings.owner,
            now=now,
            lease=self.settings.lease,
            limit=self.settings.batch,
        )
        crashpoint("after_claim")
        report.claimed = len(claimed)
        if claimed:
            campaigns = {c.id: c for c in self.store.campaigns()}
            accounts = {(a.campaign, a.name): a for a in self.store.accounts()}
            futures = []
            with self._idle:
                for record in claimed:
                    future = self._pool.submit(
                        self._process,
                        record,
                        campaigns[record.campaign],
                        accounts[(record.campaign, record.account)],
                    )
                    self._queued[record.key] = (future, record)
                    futures.append(future)
            for future in futures:
                try:
                    report.outcomes[future.result()] += 1
                except CancelledError:  # never started: drain() put it back
                    report.outcomes["put back"] += 1
        report.next_due = self.store.next_due()
        return report

    # -- one publication ------------------------------------------------------------------

    def _record(self, key: str, **outcome: Any) -> PublicationRecord:
        """Record an outcome in the store (see :meth:`Store.record`), then log it: one line
        per outcome, with the key and what the organisers need to know."""
        done = self.store.record(key, **outcome)
        level = _outcome_level(done)
        if log.isEnabledFor(level):  # the line is built only when someone reads it
            log.log(
                level,
                "%s",
                _outcome_line(done),
                extra={"event": done.state.value, "key": key, "cause": done.cause},
            )
        return done

    def _process(
        self, record: PublicationRecord, campaign: CampaignRecord, account: AccountRecord
    ) -> str:
        try:
            return self._handle(record, campaign, account)
        finally:
            self._done_with(record)

    def _done_with(self, record: PublicationRecord) -> None:
        with self._idle:
            self._queued.pop(record.key, None)
            self._idle.notify_all()

    def _handle(
        self, record: PublicationRecord, campaign: CampaignRecord, account: AccountRecord
    ) -> str:
        try:
            if self.stopping.is_set():
                return self._put_back(record, STOPPING)
            return self._publish(record, campaign, account)
        except LeaseLost as error:
            log.warning("lease lost", extra={"event": "lease_lost", "key": record.key})
            return f"lease lost: {error}"
        except PostschedulerError as error:
            if record.cause == RECONCILE:
                # It may be on the server and nobody could look: sending it again (a retry)
                # could publish it twice. It stays uncertain and is looked for again.
                return self._look_again(record, error)
            # Anything else we raise on purpose (a credential, a discovery failure): retry.
            return self._retry(record, campaign, str(error), server_says=None)

    def _publish(
        self, record: PublicationRecord, campaign: CampaignRecord, account: AccountRecord
    ) -> str:
        now = self.clock.now()
        publisher = self.publisher_for(campaign, account)
        settled = self._settle_before_sending(record, campaign, account, publisher, now)
        if settled is not None:
            return settled
        return self._send(record, campaign, account, publisher)

    def _settle_before_sending(
        self,
        record: PublicationRecord,
        campaign: CampaignRecord,
        account: AccountRecord,
        publisher: Publisher,
        now: datetime,
    ) -> str | None:
        """Reconcile, misfire, pacing: the outcome when it is decided before any send."""
        if record.cause == RECONCILE:
            history = self.store.history(record.key)
            # Nothing of it can be on the server from before its first claim; and a status
            # recorded as another publication is not it (a series says the same words).
            since = _first_claim(history) or record.scheduled_at
            taken = self.store.remote_ids(account.instance, published_since=since - TAKEN_MARGIN)
            found = publisher.find_status(record, since=since, exclude=taken)
            if found is not None:
                return self._published(record, found.remote_id, found.url, "found on the server")
            later = self._reaped_recently(history, now)
            if later is not None:
                self._record(
                    record.key,
                    owner=self.settings.owner,
                    to=State.UNCERTAIN,
                    now=now,
                    cause="not on the server yet; its worker may only be slow: looked for again "
                    f"at {later:%H:%M:%S} UTC",
                    next_attempt_at=later,
                )
                return "uncertain"
        first_try = record.next_attempt_at is None and record.part == 1
        verdict = misfire(
            due=record.scheduled_at if first_try else now,
            now=now,
            window_end=campaign.window_end,
            policy=campaign.misfire_policy,
            grace=campaign.misfire_grace,
        )
        if verdict is not None:
            self._record(
                record.key, owner=self.settings.owner, to=State.EXPIRED, now=now, cause=verdict
            )
            return "expired"
        if record.part == 1:
            allowed = self._pace(campaign, account, now)
            if allowed > now:
                self._record(
                    record.key,
                    owner=self.settings.owner,
                    to=State.RETRYING,
                    now=now,
                    cause=f"paced: the account's next status may go at {allowed:%H:%M:%S} UTC",
                    next_attempt_at=allowed,
                )
                return "paced"
        return None

    def _send(
        self,
        record: PublicationRecord,
        campaign: CampaignRecord,
        account: AccountRecord,
        publisher: Publisher,
    ) -> str:
        """Upload the media, post the status, and record what the server answered."""
        try:
            media_ids = self._media(record, campaign, publisher, self.clock.now())
            reply_to = self.store.get(record.reply_to).remote_id if record.reply_to else None
            unsent = self._not_to_send(record)
            if unsent is not None:
                return self._put_back(record, unsent)
            published = publisher.post_status(
                record,
                idempotency_key=idempotency_key(record.key, record.content_hash),
                in_reply_to_id=reply_to,
                media_ids=media_ids,
            )
        except RetryLater as error:
            return self._retry(record, campaign, str(error), server_says=error.retry_at)
        except OutcomeUnknown as error:
            self._record(
                record.key,
                owner=self.settings.owner,
                to=State.UNCERTAIN,
                now=self.clock.now(),
                cause="no answer after sending: it will be looked for on the server",
                last_error=str(error),
                next_attempt_at=self.clock.now() + RECONCILE_DELAY,
            )
            return "uncertain"
        except PublishFailed as error:
            self._record(
                record.key,
                owner=self.settings.owner,
                to=State.FAILED,
                now=self.clock.now(),
                cause="refused by the server",
                last_error=str(error),
            )
            self.notify(Notice("failed", record.campaign, record.account, str(error), record.key))
            return "failed"
        except AccountUnusable as error:
            reason = str(error)
            self.store.hold_account(record.campaign, record.account, reason, now=self.clock.now())
            self._record(
                record.key,
                owner=self.settings.owner,
                to=State.SCHEDULED,
                now=self.clock.now(),
                cause="account held: its token was refused",
                last_error=reason,
            )
            self.notify(Notice("account_held", record.campaign, record.account, reason, record.key))
            return "account held"
        crashpoint("after_send")
        if record.part == 1:
            with self._lock:
                self._sent[(campaign.id, account.name)].append(self.clock.now())
        return self._published(record, published.remote_id, published.url, "published")

    def _published(
        self, record: PublicationRecord, remote_id: str, url: str | None, cause: str
    ) -> str:
        now = self.clock.now()
        crashpoint("during_record")
        done = self._record(
            record.key,
            owner=self.settings.owner,
            to=State.PUBLISHED,
            now=now,
            cause=cause,
            remote_id=remote_id,
            remote_url=url,
            published_at=now,
        )
        crashpoint("after_record")
        self.on_published(done)
        return "published"

    def _retry(
        self,
        record: PublicationRecord,
        campaign: CampaignRecord,
        reason: str,
        *,
        server_says: datetime | None,
    ) -> str:
        now = self.clock.now()
        moment = retry_at(
            now=now,
            attempt=record.attempt,
            window_end=campaign.window_end,
            server_says=server_says,
            rng=self.rng,
        )
        if moment is None:
            self._record(
                record.key,
                owner=self.settings.owner,
                to=State.EXPIRED,
                now=now,
                cause="the window ends before it could be tried again",
                last_error=reason,
            )
            return "expired"
        self._record(
            record.key,
            owner=self.settings.owner,
            to=State.RETRYING,
            now=now,
            cause="will try again",
            last_error=reason,
            next_attempt_at=moment,
        )
        return "retrying"

    def _lease_too_short(self, record: PublicationRecord) -> bool:
        """True when less than half the lease is left: too late to start a send.

        A claim can wait in the pool, or its worker stall (a paused VM, SIGSTOP, swapping),
        past its lease; another worker then reaps it and, not finding it on the server,
        sends it — a late send of ours would publish it twice where the server ignores the
        Idempotency-Key. So a send starts only in the first half of the lease, and a reaped
        claim is sent again only two leases after it was claimed (:meth:`_reaped_recently`):
        a worker stalled between this check and its request has 1.5 leases to land it.
        """
        expires = record.lease_expires_at
        return expires is not None and self.clock.now() + self.settings.lease / 2 > expires

    def _not_to_send(self, record: PublicationRecord) -> str | None:
        """Why a claim must go back to the queue unsent rather than be sent now, if so."""
        if self.stopping.is_set():
            return STOPPING
        if self._lease_too_short(record):
            return LEASE_SHORT
        return None

    def _put_back(self, record: PublicationRecord, cause: str) -> str:
        """Return an unsent claim to the queue, due now (uncertain ones stay uncertain)."""
        now = self.clock.now()
        self._record(
            record.key,
            owner=self.settings.owner,
            to=State.UNCERTAIN if record.cause == RECONCILE else State.RETRYING,
            now=now,
            cause=cause,
            next_attempt_at=now,
        )
        return "put back"

    def _reaped_recently(
        self, history: Sequence[TransitionRecord], now: datetime
    ) -> datetime | None:
        """When a reaped claim may be sent again, if that is still to come (else None): two
        leases after it was claimed, as its worker may be stalled with the request still to
        land (see :meth:`_lease_too_short`). The dead worker's lease is taken as how long it
        held the claim, at most our own. ``history``: the publication's."""
        claimed: datetime | None = None
        reaped: tuple[datetime, datetime] | None = None
        for line in history:
            if line.to_state is State.CLAIMED:
                claimed = line.at
            elif line.to_state is State.UNCERTAIN:
                reaped = (claimed, line.at) if line.actor == "reaper" and claimed else None
        if reaped is None:
            return None
        claimed_at, reaped_at = reaped
        later = claimed_at + 2 * min(reaped_at - claimed_at, self.settings.lease)
        return later if later > now else None

    def _look_again(self, record: PublicationRecord, error: PostschedulerError) -> str:
        """Reconciling failed before the server said whether it holds the publication."""
        now = self.clock.now()
        if isinstance(error, AccountUnusable):
            self.store.hold_account(record.campaign, record.account, str(error), now=now)
            self.notify(
                Notice("account_held", record.campaign, record.account, str(error), record.key)
            )
        moment = retry_at(
            now=now,
            attempt=record.attempt,
            window_end=datetime.max.replace(tzinfo=UTC),  # looking is not publishing
            server_says=error.retry_at if isinstance(error, RetryLater) else None,
            rng=self.rng,
        )
        self._record(
            record.key,
            owner=self.settings.owner,
            to=State.UNCERTAIN,
            now=now,
            cause="could not look for it on the server: it will be looked for again",
            last_error=str(error),
            next_attempt_at=moment,
        )
        return "uncertain"

    def _pace(self, campaign: CampaignRecord, account: AccountRecord, now: datetime) -> datetime:
        with self._lock:
            sent = self._sent[(campaign.id, account.name)]
            floor = now - self.settings.budget.period
            sent[:] = [moment for moment in sent if moment > floor]
            return next_allowed(
                sent, now=now, min_spacing=campaign.min_spacing, budget=self.settings.budget
            )

    def _media(
        self,
        record: PublicationRecord,
        campaign: CampaignRecord,
        publisher: Publisher,
        now: datetime,
    ) -> list[str]:
        if not record.media:
            return []
        folder = Path(campaign.path).parent
        kept: list[dict[str, Any]] = []
        ids: list[str] = []
        changed = False
        for item in record.media:
            uploaded = _moment(item.get("uploaded_at"))
            if item.get("remote_id") and uploaded is not None and now - uploaded < MEDIA_REUSE:
                ids.append(str(item["remote_id"]))
                kept.append(item)
                continue
            remote_id = publisher.upload_media(item, str(folder / item["path"]))
            ids.append(remote_id)
            kept.append({**item, "remote_id": remote_id, "uploaded_at": now.isoformat()})
            changed = True
        if changed:
            self.store.keep_media(record.key, owner=self.settings.owner, media=kept)
        return ids


def log_notice(notice: Notice) -> None:
    """The default notifier: the organisers read the log (the journal)."""
    log.error(
        "%s: %s/%s: %s",
        notice.event.replace("_", " "),
        notice.campaign,
        notice.account,
        notice.message,
        extra={"event": f"notice_{notice.event}", "key": notice.key},
    )


def _outcome_level(record: PublicationRecord) -> int:
    """How loud an outcome just recorded is: failed is an error; expired, retrying,
    uncertain are warnings; published and paced are news."""
    state = record.state
    if state is State.PUBLISHED:
        return logging.INFO
    if state is State.FAILED:
        return logging.ERROR
    if state is State.RETRYING and (record.cause or "").startswith("paced"):
        return logging.INFO
    return logging.WARNING


def _outcome_line(record: PublicationRecord) -> str:
    """The log line of an outcome just recorded: what, which, and why."""
    state = record.state
    if state is State.PUBLISHED:
        return f"published {record.key}: {record.remote_url or record.remote_id}"
    if state is State.FAILED:
        return f"failed {record.key}: {record.last_error or record.cause}"
    if state is State.RETRYING and (record.cause or "").startswith("paced"):
        return f"waiting {record.key}: {record.cause}"
    if state in (State.RETRYING, State.UNCERTAIN):
        error = f" [{record.last_error}]" if record.last_error else ""
        when = f" (next at {record.due_at:%Y-%m-%d %H:%M:%S} UTC)"
        return f"{state.value} {record.key}: {record.cause}{error}{when}"
    return f"{state.value} {record.key}: {record.cause}"


def _first_claim(history: Sequence[TransitionRecord]) -> datetime | None:
    """When a publication was first claimed: nothing of it was sent before (None: never)."""
    return next((line.at for line in history if line.to_state is State.CLAIMED), None)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
