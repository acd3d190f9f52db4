"""The boundaries of postscheduler: what the core asks of the outside world.

Adapters implement these Protocols — the store (in memory, SQLite, PostgreSQL), and later
the publisher and the notifier. One contract-test suite runs against every store
(``tests/contract``), so that they behave alike.

Records crossing the boundary are frozen dataclasses; every time is UTC-aware.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from postscheduler.domain.states import State
from postscheduler.domain.sync import SyncPlan

if TYPE_CHECKING:
    from postscheduler.domain.plan import PlannedPublication


#: The cause of a claim taken from ``uncertain``: check the server before sending again.
RECONCILE = "claimed to reconcile: it may already be on the server"


class Clock(Protocol):
    """Where "now" comes from: the system clock in production, a fake one in tests."""

    def now(self) -> datetime:
        """The current instant, UTC-aware."""
        ...


@dataclass(frozen=True)
class CampaignRecord:
    """A campaign as the store keeps it (from its file's ``[campaign]`` table)."""

    id: str
    name: str
    timezone: str
    window_start: datetime
    window_end: datetime
    misfire_policy: str
    misfire_grace: timedelta
    path: str
    min_spacing: timedelta = timedelta(0)
    paused: bool = False


@dataclass(frozen=True)
class AccountRecord:
    """An account of a campaign. ``token_source`` says where the token is read, never what
    it is (``env:ALBA_TOKEN``)."""

    campaign: str
    name: str
    instance: str
    software: str
    token_source: str
    paused: bool = False
    held_reason: str | None = None


@dataclass(frozen=True)
class FileVersion:
    """One reading of a campaign file, accepted or refused."""

    path: str
    sha256: str
    at: datetime
    campaign: str | None = None
    accepted: bool = True
    error: str | None = None


@dataclass(frozen=True)
class PublicationRecord:
    """A stored publication: what to send, when, and where it stands."""

    key: str
    campaign: str
    post: str
    occurrence: str | None
    account: str
    part: int
    parts: int
    scheduled_at: datetime
    text: str
    spoiler_text: str
    visibility: str
    language: str
    sensitive: bool
    media: tuple[dict[str, Any], ...]
    reply_to: str | None
    content_hash: str
    state: State
    attempt: int = 0
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    remote_id: str | None = None
    remote_url: str | None = None
    published_at: datetime | None = None
    last_error: str | None = None
    cause: str | None = None
    updated_at: datetime | None = None

    @property
    def due_at(self) -> datetime:
        """When it should next be tried: its retry time, else its scheduled time."""
        return self.next_attempt_at or self.scheduled_at


@dataclass(frozen=True)
class TransitionRecord:
    """One line of a publication's history."""

    at: datetime
    from_state: State | None
    to_state: State
    cause: str
    attempt: int
    actor: str
    detail: str | None = None


@dataclass(frozen=True)
class StatusRow:
    """Counts by state for one account of one campaign, with what comes next."""

    campaign: str
    account: str
    counts: dict[State, int] = field(default_factory=dict)
    next_due: datetime | None = None
    last_error: str | None = None
    paused: bool = False
    held_reason: str | None = None


@dataclass(frozen=True)
class ServerProfile:
    """What one server is and accepts, from discovery (or the software's defaults).

    ``software`` is a :class:`postscheduler.domain.software.Software` value, or
    ``unknown:NAME`` for a server that names itself otherwise in its NodeInfo.
    ``characters_per_url`` is what one link costs as the server really counts it; 0 means
    links count at their full length (GoToSocial advertises 25 but does so).
    ``idempotency_ttl`` is how long the server remembers an ``Idempotency-Key`` (None: it
    ignores the key, so an uncertain publication must be reconciled before any re-send).
    ``scheduled_at`` says whether the server holds a status posted with ``scheduled_at``.
    """

    instance: str
    software: str
    version: str
    max_characters: int
    characters_per_url: int
    max_media: int
    idempotency_ttl: timedelta | None
    scheduled_at: bool
    fetched_at: datetime
    max_alt_text: int | None = None
    media_types: tuple[str, ...] = ()
    image_size_limit: int | None = None
    video_size_limit: int | None = None


class WorkerState(enum.StrEnum):
    """Where a daemon (a ``run`` process) stands, as its heartbeat row says."""

    RUNNING = "running"
    #: Draining: it claims nothing more and lets what is in flight finish (SIGTERM).
    STOPPING = "stopping"
    #: It exited cleanly. A worker that dies (kill -9, power loss) never says so: its row
    #: stays ``running`` and only its age (``last_seen_at``) tells.
    STOPPED = "stopped"


@dataclass(frozen=True)
class WorkerInfo:
    """What a daemon says of itself in its heartbeat row.

    ``owner`` is its name in the history and on its leases (``host:pid`` by default);
    ``beat_every`` how often it writes the row, so that a reader can tell a late row (more
    than a few beats old) without knowing the daemon's settings. ``campaigns`` are the ids
    of the campaigns of ``files``, as far as it knows them.
    """

    owner: str
    hostname: str
    pid: int
    version: str
    started_at: datetime
    beat_every: timedelta
    files: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()


#: A worker whose row has not been written for more than this many of its beats is stale.
STALE_AFTER_BEATS = 3


@dataclass(frozen=True)
class WorkerRecord:
    """A daemon's heartbeat row: what it said of itself, its state and when it last did."""

    info: WorkerInfo
    state: WorkerState
    last_seen_at: datetime

    @property
    def owner(self) -> str:
        """The worker's name (the row's key)."""
        return self.info.owner

    def stale(self, now: datetime) -> bool:
        """Whether the worker should have written its row since (more than
        :data:`STALE_AFTER_BEATS` beats ago) but has not: dead, hung or cut off from the
        database. A stopped worker is never stale."""
        if self.state is WorkerState.STOPPED:
            return False
        return now - self.last_seen_at > STALE_AFTER_BEATS * self.info.beat_every


@dataclass(frozen=True)
class Published:
    """A status the server holds: its id and public URL."""

    remote_id: str
    url: str | None
    created_at: datetime | None = None


class Publisher(Protocol):
    """Sends publications to one account's server and says exactly what happened.

    Every method either returns, or raises one of the publish errors of
    :mod:`postscheduler.errors` — ``RetryLater`` (with ``retry_at`` when the server said),
    ``OutcomeUnknown`` (the request may have been acted on), ``PublishFailed`` (refused for
    good), ``AccountUnusable`` (token revoked or refused) — never a library's exception.
    No method holds a database transaction: callers record the outcome afterwards.
    """

    def upload_media(self, media: dict[str, Any], path: str) -> str:
        """Upload one attachment (``media`` as stored, the file at ``path``), wait until the
        server has processed it (bounded by a deadline), and return its media id."""
        ...

    def post_status(
        self,
        publication: PublicationRecord,
        *,
        idempotency_key: str,
        in_reply_to_id: str | None,
        media_ids: Sequence[str],
    ) -> Published:
        """Post ``publication`` (text, content warning, visibility, language, sensitivity)."""
        ...

    def find_status(
        self,
        publication: PublicationRecord,
        *,
        since: datetime,
        exclude: Collection[str] = frozenset(),
    ) -> Published | None:
        """Reconcile: the account's oldest status created since ``since`` (less a minute of
        clock skew) whose text and content warning are the publication's (compared as
        text, not HTML), leaving out the ids in ``exclude`` — statuses already recorded as
        other publications (a series says the same words every time). None if the server
        has none."""
        ...


class Store(Protocol):
    """The single source of truth: publications, their states and history.

    Contracts every implementation keeps (see ``tests/contract``):

    - ``sync`` applies :func:`postscheduler.domain.sync.diff` in one transaction, records
      the file version and a history line for every publication it inserts, changes,
      revives or cancels; a thread part it inserts or revives behind a part that ended
      unpublished ends at once with it (``SyncPlan.ended``, with its own history line:
      :func:`postscheduler.store.common.behind_ended`); with ``dry_run`` it writes nothing
      and returns the same plan.
    - Every change of state is checked by
      :func:`postscheduler.domain.states.check_transition` and written with a history line
      (from, to, when, cause, attempt, actor) in the same transaction; an illegal one
      raises :class:`postscheduler.errors.TransitionRefused` and changes nothing.
    - ``publications`` lists in due order (retry time, else scheduled time), then key.
    - Unknown keys raise :class:`postscheduler.errors.UnknownPublication`.
    """

    def sync(
        self,
        campaign: CampaignRecord,
        accounts: Sequence[AccountRecord],
        planned: Sequence[PlannedPublication],
        version: FileVersion,
        *,
        dry_run: bool = False,
    ) -> SyncPlan:
        """Make the stored campaign match its file's plan (see the module contract)."""
        ...

    def record_file_version(self, version: FileVersion) -> None:
        """Remember a reading of a campaign file — most useful for a refused one."""
        ...

    def file_versions(self, campaign: str | None = None) -> list[FileVersion]:
        """The readings of campaign files, newest first."""
        ...

    def campaigns(self) -> list[CampaignRecord]:
        """Every stored campaign, by id."""
        ...

    def accounts(self, campaign: str | None = None) -> list[AccountRecord]:
        """The accounts of one campaign, or of all, by campaign then name."""
        ...

    def get(self, key: str) -> PublicationRecord:
        """The publication with ``key``."""
        ...

    def history(self, key: str) -> list[TransitionRecord]:
        """Every change of state of ``key``, oldest first."""
        ...

    def publications(
        self,
        *,
        state: State | None = None,
        account: str | None = None,
        campaign: str | None = None,
        post: str | None = None,
        limit: int | None = None,
    ) -> list[PublicationRecord]:
        """Publications matching every filter given, in due order."""
        ...

    def status(self, campaign: str | None = None) -> list[StatusRow]:
        """Counts by state per campaign and account, next due time, last error."""
        ...

    def transition(
        self,
        key: str,
        to: State,
        *,
        now: datetime,
        cause: str,
        actor: str,
        detail: str | None = None,
    ) -> PublicationRecord:
        """Move ``key`` to ``to`` (cancel, retry by hand…), with its history line.

        Scheduled again (a retry by hand), it is due at its scheduled time if that is still
        to come, else at once (``now``, as a retry: the misfire policy does not expire it
        for its original time); the later parts of its thread it had ended come back."""
        ...

    def set_paused(
        self, campaign: str, account: str | None, paused: bool, *, now: datetime
    ) -> None:
        """Pause or resume a campaign (``account`` None) or one of its accounts."""
        ...

    def save_profile(self, profile: ServerProfile) -> None:
        """Remember what discovery learnt of ``profile.instance``, replacing what was known
        of it (one profile per instance; ``fetched_at`` says how old it is)."""
        ...

    def profile(self, instance: str) -> ServerProfile | None:
        """The profile last saved for ``instance`` (exactly as saved), None if none was."""
        ...

    # -- workers (the daemons' heartbeat rows) ------------------------------------------

    def heartbeat(
        self, worker: WorkerInfo, *, now: datetime, state: WorkerState = WorkerState.RUNNING
    ) -> None:
        """Write ``worker``'s row (one per ``owner``, replaced whole): what it says of
        itself, ``state``, and ``now`` as the time it was last seen. ``beat_every`` is kept
        to the second, rounded up (never 0 for a beat under a second)."""
        ...

    def stopped(self, owner: str, *, now: datetime) -> bool:
        """Mark ``owner``'s row stopped, last seen ``now``; False when it has no row."""
        ...

    def workers(self) -> list[WorkerRecord]:
        """Every worker's row, by owner."""
        ...

    def forget_workers(self, *, seen_before: datetime) -> int:
        """Delete the rows last seen before ``seen_before`` (whatever their state: a row that
        old is a worker long gone). Returns how many were deleted."""
        ...

    # -- the work queue (the daemon) ----------------------------------------------------

    def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[PublicationRecord]:
        """Claim up to ``limit`` publications due at ``now``, in one short transaction.

        Due means: ``scheduled``, ``retrying`` or ``uncertain`` with ``due_at <= now``; its
        campaign and account not paused, the account not held; nothing of that account
        already claimed (**one in flight per account**); for a thread part, the part it
        replies to already published (**threads in order**). At most one per account per
        call, earliest due first. Each becomes ``claimed`` by ``owner`` until
        ``now + lease``, its attempt counted, with a history line; one claimed from
        ``uncertain`` has cause :data:`RECONCILE` — it may already be on the server.
        PostgreSQL: accounts and rows are locked ``FOR UPDATE SKIP LOCKED``, so replicas
        share the work with no coordinator.
        """
        ...

    def record(
        self,
        key: str,
        *,
        owner: str,
        to: State,
        now: datetime,
        cause: str,
        detail: str | None = None,
        remote_id: str | None = None,
        remote_url: str | None = None,
        published_at: datetime | None = None,
        next_attempt_at: datetime | None = None,
        last_error: str | None = None,
    ) -> PublicationRecord:
        """Record the outcome of a claim: only while ``owner`` still holds the lease
        (else :class:`postscheduler.errors.LeaseLost`, and nothing changes). The lease is
        cleared. A thread part that ends failed or expired takes its later parts with it."""
        ...

    def keep_media(self, key: str, *, owner: str, media: Sequence[dict[str, Any]]) -> None:
        """Remember the server's ids of uploaded media (while ``owner`` holds the claim), so
        that a retry does not upload them again."""
        ...

    def reap(self, *, now: datetime) -> list[str]:
        """Claims whose lease has run out (``lease_expires_at <= now``: their worker died or
        hung) become ``uncertain``: they may have been sent. Returns their keys.

        A lease ends at its ``lease_expires_at`` instant, which :meth:`next_due` names: a
        tick at exactly that instant reaps it (never a wake-up that finds nothing to do)."""
        ...

    def remote_ids(self, instance: str, *, published_since: datetime) -> set[str]:
        """The server's ids of the statuses recorded as published on ``instance`` (by any
        account of any campaign there) at or after ``published_since``: reconciliation
        never takes one of them for another publication."""
        ...

    def hold_account(self, campaign: str, account: str, reason: str, *, now: datetime) -> None:
        """Hold an account (its token was refused): nothing of it is claimed until resumed."""
        ...

    def next_due(self) -> datetime | None:
        """The earliest instant something could be claimed or reaped (None: nothing waits):
        a due time, or a lease's end — at which :meth:`reap` takes it."""
        ...
