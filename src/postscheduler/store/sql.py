"""The SQL store (SQLite by default, PostgreSQL for replicas), on SQLAlchemy 2.

Each method is one short transaction — SQLite's ``BEGIN IMMEDIATE`` (set up in
:mod:`postscheduler.store.database`), PostgreSQL's row locks (``FOR UPDATE``) — and never
waits on the network. A sync of 100,000 publications is a handful of bulk statements.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    Connection,
    Engine,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from postscheduler.domain.states import IllegalTransition, State, check_transition
from postscheduler.domain.sync import (
    REMOVED_FROM_FILE,
    Ending,
    Refusal,
    Stored,
    SyncPlan,
    diff,
)
from postscheduler.errors import (
    LeaseLost,
    PostschedulerError,
    StoreUnavailable,
    TransitionRefused,
    UnknownPublication,
)
from postscheduler.ports import (
    RECONCILE,
    AccountRecord,
    CampaignRecord,
    FileVersion,
    PublicationRecord,
    ServerProfile,
    StatusRow,
    TransitionRecord,
    WorkerInfo,
    WorkerRecord,
    WorkerState,
)
from postscheduler.store.common import (
    ADDED,
    CHANGED,
    MOVES_FOLLOWERS,
    REVIVED,
    SYNC_ACTOR,
    again_at,
    behind_ended,
    content_fields,
    follower_cause,
    holds_lease,
)
from postscheduler.store.database import BUSY_TIMEOUT_MS
from postscheduler.store.schema import (
    ACCOUNTS,
    CAMPAIGNS,
    FILE_VERSIONS,
    PUBLICATIONS,
    SERVER_PROFILES,
    TRANSITIONS,
    WORKERS,
    UTCDateTime,
)

if TYPE_CHECKING:
    from postscheduler.domain.plan import PlannedPublication

P = PUBLICATIONS
T = TRANSITIONS
#: Publications again, for subqueries about an account's other rows or a previous part.
_OTHER = P.alias("q")
_PREVIOUS = P.alias("r")

#: States a worker may claim (an uncertain one, to reconcile it).
_CLAIMABLE = (State.SCHEDULED.value, State.RETRYING.value, State.UNCERTAIN.value)


def _in_flight(campaign: Any, account: Any) -> Any:
    """The account named by these columns has a publication claimed right now."""
    return (
        select(_OTHER.c.id)
        .where(
            _OTHER.c.campaign_id == campaign,
            _OTHER.c.account == account,
            _OTHER.c.state == State.CLAIMED.value,
        )
        .exists()
    )


def _in_order() -> Any:
    """A publication's turn has come in its thread: it replies to nothing, or to a part
    already published."""
    previous_published = (
        select(_PREVIOUS.c.id)
        .where(_PREVIOUS.c.key == P.c.reply_to, _PREVIOUS.c.state == State.PUBLISHED.value)
        .exists()
    )
    return P.c.reply_to.is_(None) | previous_published


#: Rows per statement when a sync writes in bulk (keeps SQLite under its variable limit).
BATCH = 5_000
#: Publications again, for claim_due's "has something due" probe. Aliases are made once:
#: an alias builds its column collection on first use (~3 ms of CPU for this table).
_DUE = P.alias("d")

# The work queue's statements, built once: building a statement and its cache key costs
# ~1 ms of CPU each time (SQLAlchemy's construction), more than executing it on SQLite.
_NOW = bindparam("now", type_=UTCDateTime())

#: The accounts that could be given a claim now, locked (PostgreSQL) so that two replicas
#: never both pick one: open, with nothing in flight, and something due (one index probe).
_CLAIM_ACCOUNTS = (
    select(ACCOUNTS.c.campaign_id, ACCOUNTS.c.name)
    .join(CAMPAIGNS, CAMPAIGNS.c.id == ACCOUNTS.c.campaign_id)
    .where(
        ACCOUNTS.c.paused.is_(False),
        ACCOUNTS.c.held_reason.is_(None),
        CAMPAIGNS.c.paused.is_(False),
        ~_in_flight(ACCOUNTS.c.campaign_id, ACCOUNTS.c.name),
        select(_DUE.c.id)
        .where(
            _DUE.c.campaign_id == ACCOUNTS.c.campaign_id,
            _DUE.c.account == ACCOUNTS.c.name,
            _DUE.c.state.in_(_CLAIMABLE),
            _DUE.c.due_at <= _NOW,
        )
        .exists(),
    )
    .order_by(ACCOUNTS.c.campaign_id, ACCOUNTS.c.name)
    .with_for_update(of=ACCOUNTS, skip_locked=True)
)

#: One account's earliest claimable publication whose turn has come in its thread — unless
#: the account has a claim in flight after all. (PostgreSQL: _CLAIM_ACCOUNTS's view of the
#: claims is from when it began; an account another worker had locked, claimed and released
#: by then is locked here anyway, and only this later statement sees that worker's claim.)
_CLAIM_EARLIEST = (
    select(P.c.id, P.c.key, P.c.state, P.c.due_at)
    .where(
        P.c.campaign_id == bindparam("campaign_id"),
        P.c.account == bindparam("account"),
        P.c.state.in_(_CLAIMABLE),
        P.c.due_at <= _NOW,
        _in_order(),
        ~_in_flight(P.c.campaign_id, P.c.account),
    )
    .order_by(P.c.due_at, P.c.key)
    .limit(1)
    .with_for_update(of=P, skip_locked=True)
)

#: Claim the chosen rows: leased to the owner, one attempt more, "reconcile" when uncertain
#: (SET expressions read the row as it was before the update).
_CLAIM = (
    update(P)
    .where(P.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=State.CLAIMED.value,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires", type_=UTCDateTime()),
        attempt=P.c.attempt + 1,
        cause=case((P.c.state == State.UNCERTAIN.value, RECONCILE), else_="due"),
        updated_at=_NOW,
    )
    .returning(*P.c)
)

#: Record an outcome, only while the owner holds the claim; returns the row as it is now.
_RECORD = (
    update(P)
    .where(
        P.c.key == bindparam("b_key"),
        P.c.state == State.CLAIMED.value,
        P.c.lease_owner == bindparam("b_owner"),
    )
    .values(
        state=bindparam("b_state"),
        cause=bindparam("b_cause"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("b_now", type_=UTCDateTime()),
        next_attempt_at=bindparam("b_next", type_=UTCDateTime()),
        due_at=func.coalesce(bindparam("b_next", type_=UTCDateTime()), P.c.scheduled_at),
        remote_id=case(
            (bindparam("b_published", type_=Boolean()), bindparam("b_remote_id")),
            else_=P.c.remote_id,
        ),
        remote_url=case(
            (bindparam("b_published", type_=Boolean()), bindparam("b_remote_url")),
            else_=P.c.remote_url,
        ),
        published_at=case(
            (
                bindparam("b_published", type_=Boolean()),
                bindparam("b_published_at", type_=UTCDateTime()),
            ),
            else_=P.c.published_at,
        ),
        last_error=func.coalesce(bindparam("b_error", type_=String()), P.c.last_error),
    )
    .returning(*P.c)
)

_HISTORY = insert(T)


class SqlStore:
    """The store on a SQLAlchemy engine; see :class:`postscheduler.ports.Store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time and every transaction here begins IMMEDIATE (takes
        # the write lock). Threads of this process queue on this lock instead: a thread that
        # meets SQLite's lock sleeps in SQLite's busy handler (1, 2, 5 … 100 ms steps) even
        # once the lock is free, which made recording an outcome take ~100 ms under load.
        self._writer = threading.Lock() if engine.dialect.name == "sqlite" else None
        # SQLite commits one transaction at a time, each with its fsync (synchronous=FULL):
        # outcomes recorded by several threads at once share one (see _GroupCommit).
        self._group = _GroupCommit(self._begin) if self._writer is not None else None

    # -- sync -----------------------------------------------------------------------------

    def sync(
        self,
        campaign: CampaignRecord,
        accounts: Sequence[AccountRecord],
        planned: Sequence[PlannedPublication],
        version: FileVersion,
        *,
        dry_run: bool = False,
    ) -> SyncPlan:
        """See :class:`postscheduler.ports.Store`."""
        with self._begin() as db:
            rows = db.execute(
                select(
                    P.c.key,
                    P.c.state,
                    P.c.content_hash,
                    P.c.scheduled_at,
                    P.c.cause,
                    P.c.published_at,
                ).where(P.c.campaign_id == campaign.id)
            )
            stored = {
                key: Stored(key, State(state), digest, at, cause, published)
                for key, state, digest, at, cause, published in rows
            }
            plan = diff(planned, stored)
            states = {key: found.state for key, found in stored.items()}
            if dry_run:
                db.rollback()
                return behind_ended(plan, states)
            plan, states = self._lock_and_recheck(db, plan, stored)
            plan = behind_ended(plan, states)
            now = version.at
            self._write_campaign(db, campaign, accounts, now)
            self._insert(db, plan.added, now)
            self._rewrite(db, plan.changed, stored, now, revive=False)
            self._rewrite(db, plan.revived, stored, now, revive=True)
            self._end(db, plan.ended, now)
            self._cancel(db, plan.cancelled, now)
            self._add_version(db, version)
            return plan

    def _lock_and_recheck(
        self, db: Connection, plan: SyncPlan, stored: dict[str, Stored]
    ) -> tuple[SyncPlan, dict[str, State]]:
        """Lock the rows the sync will modify, and the parts that the parts it adds or
        revives reply to; drop any a worker took in the meantime. Returns the plan and the
        stored states, as they are now.

        On SQLite the transaction already holds the write lock; on PostgreSQL a daemon may
        have claimed a row between the read and now, and that row is then left alone. A
        part replied to is locked so that a worker cannot end it unseen: a worker recording
        it failed waits for this sync, then ends the parts this sync added behind it; one
        that ended it before is seen here. Rows are locked in thread order (part, then key),
        as ``record`` locks a part and then its later parts.
        """
        states = {key: found.state for key, found in stored.items()}
        keys = [p.key for p in (*plan.changed, *plan.revived)] + [s.key for s in plan.cancelled]
        coming = {p.key for p in (*plan.added, *plan.revived)}
        previous = {
            p.reply_to
            for p in (*plan.added, *plan.revived)
            if p.reply_to is not None and p.reply_to not in coming
        }
        if not (keys or previous) or db.dialect.name == "sqlite":
            return plan, states
        now_states: dict[str, State] = {}
        for chunk in _chunks(sorted({*keys, *previous}), BATCH):
            for key, state in db.execute(
                select(P.c.key, P.c.state)
                .where(_key_in(db, chunk))
                .order_by(P.c.part, P.c.key)
                .with_for_update()
            ):
                now_states[key] = State(state)
        states.update(now_states)
        moved = {k for k in keys if now_states.get(k) is not stored[k].state}
        if not moved:
            return plan, states
        refused = [
            Refusal(k, "taken by a worker during the sync: not changed") for k in sorted(moved)
        ]
        rechecked = SyncPlan(
            added=plan.added,
            changed=tuple(p for p in plan.changed if p.key not in moved),
            revived=tuple(p for p in plan.revived if p.key not in moved),
            cancelled=tuple(s for s in plan.cancelled if s.key not in moved),
            refused=plan.refused + tuple(refused),
            unchanged=plan.unchanged,
        )
        return rechecked, states

    def _write_campaign(
        self,
        db: Connection,
        campaign: CampaignRecord,
        accounts: Sequence[AccountRecord],
        now: datetime,
    ) -> None:
        values = {
            "name": campaign.name,
            "timezone": campaign.timezone,
            "window_start": campaign.window_start,
            "window_end": campaign.window_end,
            "misfire_policy": campaign.misfire_policy,
            "misfire_grace_s": int(campaign.misfire_grace.total_seconds()),
            "min_spacing_s": int(campaign.min_spacing.total_seconds()),
            "path": campaign.path,
            "updated_at": now,
        }
        C = CAMPAIGNS
        if db.execute(update(C).where(C.c.id == campaign.id).values(**values)).rowcount == 0:
            db.execute(insert(C).values(id=campaign.id, paused=False, created_at=now, **values))
        A = ACCOUNTS
        for account in accounts:
            fields = {
                "instance": account.instance,
                "software": account.software,
                "token_source": account.token_source,
                "updated_at": now,
            }
            where = and_(A.c.campaign_id == account.campaign, A.c.name == account.name)
            if db.execute(update(A).where(where).values(**fields)).rowcount == 0:
                db.execute(
                    insert(A).values(
                        campaign_id=account.campaign, name=account.name, paused=False, **fields
                    )
                )

    def _insert(self, db: Connection, added: Sequence[PlannedPublication], now: datetime) -> None:
        if not added:
            return
        ids = _new_ids(db, len(added))
        _bulk_insert(db, P, [_row(p, now, ident) for p, ident in zip(added, ids, strict=True)])
        _bulk_insert(
            db,
            T,
            [
                {
                    "publication_id": ident,
                    "at": now,
                    "from_state": None,
                    "to_state": State.SCHEDULED.value,
                    "cause": ADDED,
                    "attempt": 0,
                    "actor": SYNC_ACTOR,
                    "detail": None,
                }
                for ident in ids
            ],
        )

    def _rewrite(
        self,
        db: Connection,
        planned: Sequence[PlannedPublication],
        stored: dict[str, Stored],
        now: datetime,
        *,
        revive: bool,
    ) -> None:
        if not planned:
            return
        for chunk in _chunks(planned, BATCH):
            params = []
            for p in chunk:
                fields = content_fields(p)
                fields["media"] = list(fields["media"])
                params.append({"k": p.key, **fields, "updated_at": now, "new_due": p.scheduled_at})
            statement = update(P).where(P.c.key == bindparam("k"))
            if revive:
                statement = statement.values(
                    state=State.SCHEDULED.value,
                    cause=REVIVED,
                    next_attempt_at=None,
                    due_at=bindparam("new_due", type_=P.c.due_at.type),
                )
            else:
                new_due = bindparam("new_due", type_=P.c.due_at.type)
                # A retry never goes before its new time (NULL stays NULL: not retrying).
                retry = case((P.c.next_attempt_at < new_due, new_due), else_=P.c.next_attempt_at)
                statement = statement.values(
                    next_attempt_at=retry, due_at=func.coalesce(retry, new_due)
                )
            db.execute(statement, params)
            moves = {
                p.key: (stored[p.key].state, State.SCHEDULED if revive else stored[p.key].state)
                for p in chunk
            }
            self._log_many(db, moves, now, REVIVED if revive else CHANGED)

    def _end(self, db: Connection, ended: Sequence[Ending], now: datetime) -> None:
        """End the parts added or revived behind an ended part (see ``behind_ended``)."""
        by_cause: dict[tuple[State, str], list[str]] = {}
        for ending in ended:
            by_cause.setdefault((ending.state, ending.cause), []).append(ending.key)
        for (state, cause), keys in by_cause.items():
            for chunk in _chunks(keys, BATCH):
                db.execute(
                    update(P)
                    .where(P.c.key == bindparam("k"))
                    .values(state=state.value, cause=cause, updated_at=now),
                    [{"k": key} for key in chunk],
                )
                self._log_many(db, dict.fromkeys(chunk, (State.SCHEDULED, state)), now, cause)

    def _cancel(self, db: Connection, cancelled: Sequence[Stored], now: datetime) -> None:
        for chunk in _chunks(cancelled, BATCH):
            db.execute(
                update(P)
                .where(P.c.key == bindparam("k"))
                .values(state=State.CANCELLED.value, cause=REMOVED_FROM_FILE, updated_at=now),
                [{"k": s.key} for s in chunk],
            )
            moves = {s.key: (s.state, State.CANCELLED) for s in chunk}
            self._log_many(db, moves, now, REMOVED_FROM_FILE)

    def _log_many(
        self,
        db: Connection,
        moves: dict[str, tuple[State, State]],
        now: datetime,
        cause: str,
    ) -> None:
        """One history line per key: from → to state (equal for a change of content)."""
        found = db.execute(
            select(P.c.id, P.c.key, P.c.attempt).where(_key_in(db, list(moves)))
        ).all()
        db.execute(
            insert(T),
            [
                {
                    "publication_id": publication_id,
                    "at": now,
                    "from_state": moves[key][0].value,
                    "to_state": moves[key][1].value,
                    "cause": cause,
                    "attempt": attempt,
                    "actor": SYNC_ACTOR,
                    "detail": None,
                }
                for publication_id, key, attempt in found
            ],
        )

    def _add_version(self, db: Connection, version: FileVersion) -> None:
        db.execute(
            insert(FILE_VERSIONS).values(
                campaign_id=version.campaign,
                path=version.path,
                sha256=version.sha256,
                accepted=version.accepted,
                error=version.error,
                at=version.at,
            )
        )

    def record_file_version(self, version: FileVersion) -> None:
        """See :class:`postscheduler.ports.Store`."""
        with self._begin() as db:
            self._add_version(db, version)

    def file_versions(self, campaign: str | None = None) -> list[FileVersion]:
        """See :class:`postscheduler.ports.Store`."""
        V = FILE_VERSIONS
        query = select(V).order_by(V.c.at.desc(), V.c.id.desc())
        if campaign is not None:
            query = query.where(V.c.campaign_id == campaign)
        with self._begin() as db:
            return [
                FileVersion(
                    path=r.path,
                    sha256=r.sha256,
                    at=r.at,
                    campaign=r.campaign_id,
                    accepted=r.accepted,
                    error=r.error,
                )
                for r in db.execute(query)
            ]

    # -- reading --------------------------------------------------------------------------

    def campaigns(self) -> list[CampaignRecord]:
        """See :class:`postscheduler.ports.Store`."""
        C = CAMPAIGNS
        with self._begin() as db:
            return [
                CampaignRecord(
                    id=r.id,
                    name=r.name,
                    timezone=r.timezone,
                    window_start=r.window_start,
                    window_end=r.window_end,
                    misfire_policy=r.misfire_policy,
                    misfire_grace=_seconds(r.misfire_grace_s),
                    min_spacing=_seconds(r.min_spacing_s),
                    path=r.path,
                    paused=r.paused,
                )
                for r in db.execute(select(C).order_by(C.c.id))
            ]

    def accounts(self, campaign: str | None = None) -> list[AccountRecord]:
        """See :class:`postscheduler.ports.Store`."""
        A = ACCOUNTS
        query = select(A).order_by(A.c.campaign_id, A.c.name)
        if campaign is not None:
            query = query.where(A.c.campaign_id == campaign)
        with self._begin() as db:
            return [
                AccountRecord(
                    campaign=r.campaign_id,
                    name=r.name,
                    instance=r.instance,
                    software=r.software,
                    token_source=r.token_source,
                    paused=r.paused,
                    held_reason=r.held_reason,
                )
                for r in db.execute(query)
            ]

    def get(self, key: str) -> PublicationRecord:
        """See :class:`postscheduler.ports.Store`."""
        with self._begin() as db:
            return self._get(db, key)

    def _get(self, db: Connection, key: str, *, lock: bool = False) -> PublicationRecord:
        query = select(P).where(P.c.key == key)
        if lock:
            query = query.with_for_update()
        row = db.execute(query).mappings().first()
        if row is None:
            raise UnknownPublication(f"no publication {key!r}")
        return _record(row)

    def history(self, key: str) -> list[TransitionRecord]:
        """See :class:`postscheduler.ports.Store`."""
        with self._begin() as db:
            publication_id = db.execute(select(P.c.id).where(P.c.key == key)).scalar()
            if publication_id is None:
                raise UnknownPublication(f"no publication {key!r}")
            return [
                TransitionRecord(
                    at=r.at,
                    from_state=State(r.from_state) if r.from_state else None,
                    to_state=State(r.to_state),
                    cause=r.cause,
                    attempt=r.attempt,
                    actor=r.actor,
                    detail=r.detail,
                )
                for r in db.execute(
                    select(T).where(T.c.publication_id == publication_id).order_by(T.c.id)
                )
            ]

    def publications(
        self,
        *,
        state: State | None = None,
        account: str | None = None,
        campaign: str | None = None,
        post: str | None = None,
        limit: int | None = None,
    ) -> list[PublicationRecord]:
        """See :class:`postscheduler.ports.Store`."""
        query = select(P).order_by(P.c.due_at, P.c.key)
        if state is not None:
            query = query.where(P.c.state == state.value)
        if account is not None:
            query = query.where(P.c.account == account)
        if campaign is not None:
            query = query.where(P.c.campaign_id == campaign)
        if post is not None:
            query = query.where(P.c.post == post)
        if limit is not None:
            query = query.limit(limit)
        with self._begin() as db:
            return [_record(row) for row in db.execute(query).mappings()]

    def status(self, campaign: str | None = None) -> list[StatusRow]:
        """See :class:`postscheduler.ports.Store`."""
        A, C = ACCOUNTS, CAMPAIGNS
        pending = (State.SCHEDULED.value, State.RETRYING.value)
        with self._begin() as db:
            accounts = select(
                A.c.campaign_id, A.c.name, A.c.paused, A.c.held_reason, C.c.paused
            ).join(C, C.c.id == A.c.campaign_id)
            counts = select(P.c.campaign_id, P.c.account, P.c.state, func.count()).group_by(
                P.c.campaign_id, P.c.account, P.c.state
            )
            due = (
                select(P.c.campaign_id, P.c.account, func.min(P.c.due_at))
                .where(P.c.state.in_(pending))
                .group_by(P.c.campaign_id, P.c.account)
            )
            errors = (
                select(P.c.campaign_id, P.c.account, P.c.last_error, P.c.updated_at)
                .where(P.c.last_error.is_not(None))
                .order_by(P.c.updated_at)
            )
            if campaign is not None:
                accounts = accounts.where(A.c.campaign_id == campaign)
                counts = counts.where(P.c.campaign_id == campaign)
                due = due.where(P.c.campaign_id == campaign)
                errors = errors.where(P.c.campaign_id == campaign)
            rows: dict[tuple[str, str], dict[str, Any]] = {}
            for campaign_id, name, paused, held, campaign_paused in db.execute(
                accounts.order_by(A.c.campaign_id, A.c.name)
            ):
                rows[(campaign_id, name)] = {
                    "counts": {},
                    "paused": bool(paused or campaign_paused),
                    "held": held,
                    "due": None,
                    "error": None,
                }
            for campaign_id, name, state, count in db.execute(counts):
                if (campaign_id, name) in rows:
                    rows[(campaign_id, name)]["counts"][State(state)] = count
            for campaign_id, name, moment in db.execute(due):
                if (campaign_id, name) in rows:
                    rows[(campaign_id, name)]["due"] = _utc(moment)
            for campaign_id, name, error, _at in db.execute(errors):
                if (campaign_id, name) in rows:
                    rows[(campaign_id, name)]["error"] = error
        return [
            StatusRow(k[0], k[1], v["counts"], v["due"], v["error"], v["paused"], v["held"])
            for k, v in rows.items()
        ]

    # -- changing -------------------------------------------------------------------------

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
        """See :class:`postscheduler.ports.Store`."""
        with self._begin() as db:
            current = self._get(db, key, lock=True)
            try:
                check_transition(key, current.state, to)
            except IllegalTransition as error:
                raise TransitionRefused(str(error)) from None
            changes: dict[str, Any] = {"state": to.value, "cause": cause, "updated_at": now}
            if to is State.SCHEDULED:
                changes["next_attempt_at"] = again_at(current, now)
                changes["due_at"] = changes["next_attempt_at"] or current.scheduled_at
            db.execute(update(P).where(P.c.key == key).values(**changes))
            self._end_followers(db, key, to, now, actor)
            publication_id = db.execute(select(P.c.id).where(P.c.key == key)).scalar_one()
            db.execute(
                insert(T).values(
                    publication_id=publication_id,
                    at=now,
                    from_state=current.state.value,
                    to_state=to.value,
                    cause=cause,
                    attempt=current.attempt,
                    actor=actor,
                    detail=detail,
                )
            )
            return self._get(db, key)

    def set_paused(
        self, campaign: str, account: str | None, paused: bool, *, now: datetime
    ) -> None:
        """See :class:`postscheduler.ports.Store`."""
        with self._begin() as db:
            if account is None:
                C = CAMPAIGNS
                done = db.execute(
                    update(C).where(C.c.id == campaign).values(paused=paused, updated_at=now)
                ).rowcount
                if not done:
                    raise UnknownPublication(f"no campaign {campaign!r}")
                return
            A = ACCOUNTS
            values: dict[str, Any] = {"paused": paused, "updated_at": now}
            if not paused:
                values["held_reason"] = None
            done = db.execute(
                update(A)
                .where(and_(A.c.campaign_id == campaign, A.c.name == account))
                .values(**values)
            ).rowcount
            if not done:
                raise UnknownPublication(f"no account {account!r} in campaign {campaign!r}")

    # -- server profiles ------------------------------------------------------------------

    def save_profile(self, profile: ServerProfile) -> None:
        """See :class:`postscheduler.ports.Store` (one upsert: concurrent savers of one
        instance do not collide, the last one wins)."""
        S = SERVER_PROFILES
        values = {
            "software": profile.software,
            "version": profile.version,
            "limits": _profile_limits(profile),
            "fetched_at": profile.fetched_at,
        }
        with self._begin() as db:
            dialect = postgresql if db.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(S).values(instance=profile.instance, **values)
            db.execute(statement.on_conflict_do_update(index_elements=[S.c.instance], set_=values))

    def profile(self, instance: str) -> ServerProfile | None:
        """See :class:`postscheduler.ports.Store`."""
        S = SERVER_PROFILES
        with self._begin() as db:
            row = db.execute(select(S).where(S.c.instance == instance)).first()
        if row is None:
            return None
        return _profile_record(row.instance, row.software, row.version, row.limits, row.fetched_at)

    # -- workers (the daemons' heartbeat rows) --------------------------------------------

    def heartbeat(
        self, worker: WorkerInfo, *, now: datetime, state: WorkerState = WorkerState.RUNNING
    ) -> None:
        """See :class:`postscheduler.ports.Store` (one upsert, one short transaction)."""
        W = WORKERS
        values = {
            "hostname": worker.hostname,
            "pid": worker.pid,
            "version": worker.version,
            "state": WorkerState(state).value,
            "started_at": worker.started_at,
            "last_seen_at": now,
            "beat_every_s": math.ceil(worker.beat_every.total_seconds()),
            "files": list(worker.files),
            "campaigns": list(worker.campaigns),
        }
        with self._begin() as db:
            dialect = postgresql if db.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(W).values(owner=worker.owner, **values)
            db.execute(statement.on_conflict_do_update(index_elements=[W.c.owner], set_=values))

    def stopped(self, owner: str, *, now: datetime) -> bool:
        """See :class:`postscheduler.ports.Store`."""
        W = WORKERS
        with self._begin() as db:
            done = db.execute(
                update(W)
                .where(W.c.owner == owner)
                .values(state=WorkerState.STOPPED.value, last_seen_at=now)
            ).rowcount
        return bool(done)

    def workers(self) -> list[WorkerRecord]:
        """See :class:`postscheduler.ports.Store`."""
        W = WORKERS
        with self._begin() as db:
            rows = db.execute(select(W).order_by(W.c.owner)).all()
        return [_worker_record(row) for row in rows]

    def forget_workers(self, *, seen_before: datetime) -> int:
        """See :class:`postscheduler.ports.Store`."""
        W = WORKERS
        with self._begin() as db:
            gone = db.execute(W.delete().where(W.c.last_seen_at < seen_before)).rowcount
        return int(gone)

    # -- the work queue -------------------------------------------------------------------

    def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[PublicationRecord]:
        """See :class:`postscheduler.ports.Store`.

        One index probe per account with something due (a tick costs O(accounts with work),
        not O(accounts) nor O(publications)), then one UPDATE … RETURNING for all the claims
        and one multi-row INSERT for their history lines.
        """
        with self._begin() as db:
            accounts = db.execute(_CLAIM_ACCOUNTS, {"now": now}).all()
            chosen: list[tuple[Any, ...]] = []
            for campaign_id, name in accounts:
                row = db.execute(
                    _CLAIM_EARLIEST, {"campaign_id": campaign_id, "account": name, "now": now}
                ).first()
                if row is not None:
                    chosen.append(tuple(row))
            chosen.sort(key=lambda r: (r[3], r[1]))
            chosen = chosen[:limit]
            if not chosen:
                return []
            before = {ident: State(state) for ident, _key, state, _due in chosen}
            rows = db.execute(
                _CLAIM,
                {
                    "ids": list(before),
                    "owner": owner,
                    "expires": now + lease,
                    "now": now,
                },
            ).mappings()
            claimed = sorted(
                ((row["id"], _record(row)) for row in rows),
                key=lambda pair: (pair[1].due_at, pair[1].key),
            )
            db.execute(
                insert(T),
                [
                    _history_row(
                        ident,
                        (before[ident], State.CLAIMED),
                        now=now,
                        cause=record.cause or "due",
                        attempt=record.attempt,
                        actor=owner,
                    )
                    for ident, record in claimed
                ],
            )
            return [record for _ident, record in claimed]

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
        """See :class:`postscheduler.ports.Store`.

        The common case is two statements: an UPDATE … RETURNING that succeeds only while
        ``owner`` holds the claim, and the history line. Only when it matches nothing is the
        row read, to say why (unknown, or the lease lost).
        """
        try:
            check_transition(key, State.CLAIMED, to)
        except IllegalTransition as error:
            raise TransitionRefused(str(error)) from None
        published = remote_id is not None

        def write(db: Connection) -> PublicationRecord:
            row = (
                db.execute(
                    _RECORD,
                    {
                        "b_key": key,
                        "b_owner": owner,
                        "b_state": to.value,
                        "b_cause": cause,
                        "b_now": now,
                        "b_next": next_attempt_at,
                        "b_published": published,
                        "b_remote_id": remote_id,
                        "b_remote_url": remote_url,
                        "b_published_at": (published_at or now) if published else None,
                        "b_error": last_error,
                    },
                )
                .mappings()
                .first()
            )
            if row is None:
                holds_lease(self._get(db, key), owner)  # raises UnknownPublication/LeaseLost
                raise LeaseLost(f"{key} is no longer claimed by {owner}")  # pragma: no cover
            record = _record(row)
            self._history_line(
                db,
                row["id"],
                (State.CLAIMED, to),
                now=now,
                cause=cause,
                attempt=record.attempt,
                actor=owner,
                detail=detail,
            )
            if to in MOVES_FOLLOWERS:
                self._end_followers(db, key, to, now, owner)
            return record

        if self._group is not None:
            return self._group.run(write)
        with self._begin() as db:
            return write(db)

    def _end_followers(
        self, db: Connection, key: str, to: State, now: datetime, owner: str
    ) -> None:
        """Keep a thread whole (see :func:`postscheduler.store.common.follower_cause`)."""
        columns = (P.c.id, P.c.key, P.c.state, P.c.attempt, P.c.cause, P.c.scheduled_at)
        follower = db.execute(select(*columns).where(P.c.reply_to == key)).first()
        while follower is not None:
            ident, follower_key, state, attempt, previous_cause, scheduled_at = follower
            cause = follower_cause(to, State(state), previous_cause)
            if cause is None:
                return
            values: dict[str, Any] = {"state": to.value, "cause": cause, "updated_at": now}
            if to is State.SCHEDULED:
                values.update(next_attempt_at=None, due_at=scheduled_at)
            db.execute(update(P).where(P.c.id == ident).values(**values))
            self._history_line(
                db, ident, (State(state), to), now=now, cause=cause, attempt=attempt, actor=owner
            )
            follower = db.execute(select(*columns).where(P.c.reply_to == follower_key)).first()

    def keep_media(self, key: str, *, owner: str, media: Sequence[dict[str, Any]]) -> None:
        """See :class:`postscheduler.ports.Store`."""
        with self._begin() as db:
            current = self._get(db, key, lock=True)
            holds_lease(current, owner)
            db.execute(update(P).where(P.c.key == key).values(media=list(media)))

    def reap(self, *, now: datetime) -> list[str]:
        """See :class:`postscheduler.ports.Store`."""
        cause = "lease expired: its worker stopped before recording the outcome"
        with self._begin() as db:
            rows = db.execute(
                select(P.c.id, P.c.key, P.c.attempt, P.c.lease_owner)
                .where(P.c.state == State.CLAIMED.value, P.c.lease_expires_at <= now)
                .with_for_update(skip_locked=True)
            ).all()
            for ident, _key, attempt, previous_owner in rows:
                db.execute(
                    update(P)
                    .where(P.c.id == ident)
                    .values(
                        state=State.UNCERTAIN.value,
                        cause=cause,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                )
                self._history_line(
                    db,
                    ident,
                    (State.CLAIMED, State.UNCERTAIN),
                    now=now,
                    cause=cause,
                    attempt=attempt,
                    actor="reaper",
                    detail=f"lease of {previous_owner}",
                )
            return [key for _ident, key, _attempt, _owner in rows]

    def remote_ids(self, instance: str, *, published_since: datetime) -> set[str]:
        """See :class:`postscheduler.ports.Store`."""
        A = ACCOUNTS
        with self._begin() as db:
            found = db.execute(
                select(P.c.remote_id)
                .join(A, (A.c.campaign_id == P.c.campaign_id) & (A.c.name == P.c.account))
                .where(
                    A.c.instance == instance,
                    P.c.state == State.PUBLISHED.value,
                    P.c.remote_id.is_not(None),
                    P.c.published_at >= published_since,
                )
            ).scalars()
            return set(found)

    def hold_account(self, campaign: str, account: str, reason: str, *, now: datetime) -> None:
        """See :class:`postscheduler.ports.Store`."""
        A = ACCOUNTS
        with self._begin() as db:
            done = db.execute(
                update(A)
                .where(A.c.campaign_id == campaign, A.c.name == account)
                .values(held_reason=reason, updated_at=now)
            ).rowcount
            if not done:
                raise UnknownPublication(f"no account {account!r} in campaign {campaign!r}")

    def next_due(self) -> datetime | None:
        """See :class:`postscheduler.ports.Store`."""
        A, C = ACCOUNTS, CAMPAIGNS
        with self._begin() as db:
            # Only what claim_due could take: a timer armed for anything else would spin.
            due = db.execute(
                select(func.min(P.c.due_at))
                .select_from(P)
                .join(A, (A.c.campaign_id == P.c.campaign_id) & (A.c.name == P.c.account))
                .join(C, C.c.id == P.c.campaign_id)
                .where(
                    P.c.state.in_(_CLAIMABLE),
                    A.c.paused.is_(False),
                    A.c.held_reason.is_(None),
                    C.c.paused.is_(False),
                    ~_in_flight(P.c.campaign_id, P.c.account),
                    _in_order(),
                )
            ).scalar()
            lease = db.execute(
                select(func.min(P.c.lease_expires_at)).where(P.c.state == State.CLAIMED.value)
            ).scalar()
        moments = [m for m in (_utc(due), _utc(lease)) if m is not None]
        return min(moments) if moments else None

    def _history_line(
        self,
        db: Connection,
        ident: int,
        move: tuple[State | None, State],
        *,
        now: datetime,
        cause: str,
        attempt: int,
        actor: str,
        detail: str | None = None,
    ) -> None:
        db.execute(
            _HISTORY,
            _history_row(
                ident, move, now=now, cause=cause, attempt=attempt, actor=actor, detail=detail
            ),
        )

    # -- plumbing -------------------------------------------------------------------------

    def _begin(self) -> Any:
        return _Transaction(self.engine, self._writer)


_T = TypeVar("_T")


class _Pending:
    """One caller's write waiting for a group commit, and then its outcome."""

    def __init__(self, work: Callable[[Connection], Any]) -> None:
        self.work = work
        self.ready = threading.Event()
        self.lead = False
        self.result: Any = None
        self.error: BaseException | None = None


class _GroupCommit:
    """Group commit: the writes of threads that arrive together share one transaction.

    On SQLite every commit waits for its fsync (``synchronous=FULL``), one at a time: with
    outcomes arriving from several workers at once, the fsyncs — not the CPU — set the
    pace. Here the first caller leads: it runs, in one transaction, every write queued by
    then (each in a savepoint, so that one refused — LeaseLost, say — changes nothing and
    leaves the others whole), commits once, hands each caller its own result or error, and
    passes the lead to the first caller queued meanwhile. A caller returns only once its
    write is committed, as with a transaction of its own; if the commit fails, every
    caller of the group gets the error, and nothing of the group was written.
    """

    def __init__(self, begin: Callable[[], Any]) -> None:
        self._begin = begin
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False

    def run(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a transaction shared with the writes queued with it."""
        mine = _Pending(work)
        with self._lock:
            self._queue.append(mine)
            if not self._leading:
                self._leading = mine.lead = True
        if not mine.lead:
            mine.ready.wait()
        if mine.lead:
            self._lead()
        if mine.error is not None:
            raise mine.error
        result: _T = mine.result
        return result

    def _lead(self) -> None:
        with self._lock:
            group, self._queue = self._queue, []
        try:
            with self._begin() as db:
                for pending in group:
                    try:
                        with db.begin_nested():
                            pending.result = pending.work(db)
                    except PostschedulerError as error:  # this write refused, rolled back
                        pending.error = error
        except BaseException as error:
            for pending in group:
                pending.result, pending.error = None, error
        with self._lock:
            if self._queue:
                following = self._queue[0]
                following.lead = True
                following.ready.set()
            else:
                self._leading = False
        for pending in group:
            pending.ready.set()


class _Transaction:
    """``engine.begin()`` whose driver errors become one clear StoreUnavailable line.

    With ``writer`` (SQLite), the transaction first takes that in-process lock (for at most
    the busy timeout; then SQLite's own waiting applies, as between processes).
    """

    def __init__(self, engine: Engine, writer: threading.Lock | None = None) -> None:
        self.engine = engine
        self.writer = writer
        self.holding = False
        self.context: Any = None

    def __enter__(self) -> Connection:
        if self.writer is not None:
            self.holding = self.writer.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            self.context = self.engine.begin()
            connection: Connection = self.context.__enter__()
        except OperationalError as error:
            self._release()
            raise StoreUnavailable(_explain(error)) from None
        except BaseException:
            self._release()
            raise
        return connection

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        try:
            self.context.__exit__(kind, value, traceback)
        except OperationalError as error:
            raise StoreUnavailable(_explain(error)) from None
        finally:
            self._release()
        if isinstance(value, OperationalError):
            raise StoreUnavailable(_explain(value)) from None

    def _release(self) -> None:
        if self.holding and self.writer is not None:
            self.holding = False
            self.writer.release()


def _explain(error: OperationalError) -> str:
    text = str(error.orig) if error.orig is not None else str(error)
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    if "database is locked" in first:
        return "the database is locked by another writer for too long: try again, or stop it"
    if "readonly" in first or "read-only" in first:
        return "the database is read-only: fix its permissions (the file and its folder)"
    return f"the database cannot be used: {first}"


def _key_in(db: Connection, keys: Sequence[str]) -> Any:
    """``key IN (…)``; on PostgreSQL as ``key = ANY(array)``, one parameter, not thousands."""
    if db.dialect.name == "postgresql":
        return P.c.key == any_(bindparam("keys", value=list(keys), type_=ARRAY(String)))
    return P.c.key.in_(keys)


def _bulk_insert(db: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows at once.

    On SQLite the rows go straight to the driver's ``executemany`` with values already in
    SQLAlchemy's storage format (UTC text timestamps, JSON text): for 100,000 publications
    this is several times faster than per-value bind processing. Elsewhere, Core's
    executemany (batched multi-row VALUES on psycopg).
    """
    if not rows:
        return
    if db.dialect.name == "postgresql" and db.dialect.driver == "psycopg":
        _copy_rows(db, table, rows)
        return
    if db.dialect.name != "sqlite":
        for chunk in _chunks(rows, BATCH):
            db.execute(insert(table), list(chunk))
        return
    columns = list(rows[0])
    converters = [(i, _sqlite_converter(table.c[name])) for i, name in enumerate(columns)]
    converters = [(i, c) for i, c in converters if c is not None]
    values: list[tuple[Any, ...]] = []
    for row in rows:
        cells = list(row.values())
        for index, convert in converters:
            cells[index] = convert(cells[index])
        values.append(tuple(cells))
    # Table and column names come from our own schema, never from input.
    names, marks = ", ".join(columns), ", ".join("?" for _ in columns)
    db.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", values)  # noqa: S608


def _copy_rows(db: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's binary COPY through psycopg, inside the transaction of ``db``.

    psycopg's C adapters render each row: for 100,000 publications this takes a fraction of
    a second, where INSERT statements (even batched) take several.
    """
    columns = list(rows[0])
    types = [_PG_COPY_TYPES[type(table.c[name].type).__name__] for name in columns]
    names = ", ".join(columns)
    cursor = db.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                # JSON cells go as Python values: psycopg's json dumper encodes them (a
                # json.dumps here would store a JSON *string*, "[]" read back as "[]").
                copy.write_row(list(row.values()))
    finally:
        cursor.close()


#: PostgreSQL type names of our column types, for a binary COPY.
_PG_COPY_TYPES = {
    "String": "varchar",
    "Text": "text",
    "UTCDateTime": "timestamptz",
    "Integer": "int4",
    "BigInteger": "int8",
    "Boolean": "bool",
    "JSON": "json",
}


def _sqlite_converter(column: Any) -> Any:
    """How SQLAlchemy writes a value of ``column`` on SQLite, as a plain function (None when
    the value goes to the driver as it is)."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return _sqlite_timestamp
    if isinstance(kind, JSON):
        return lambda value: None if value is None else (json.dumps(value) if value else "[]")
    if isinstance(kind, Boolean):
        return lambda value: None if value is None else int(value)
    return None


@functools.lru_cache(maxsize=65_536)
def _sqlite_timestamp(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME text for an aware instant, in UTC (cached: a sync writes
    the same few instants many times)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to the store: times must be UTC-aware")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _new_ids(db: Connection, count: int) -> list[int]:
    """``count`` fresh publication ids, taken before a bulk insert so that no read-back of
    the new rows is needed for their history lines.

    PostgreSQL: from the column's sequence (safe with concurrent writers). SQLite: after the
    largest id, safe because the transaction holds the write lock (BEGIN IMMEDIATE).
    """
    if db.dialect.name == "postgresql":
        sequence = "pg_get_serial_sequence('publications', 'id')"
        query = text(f"SELECT nextval({sequence}) FROM generate_series(1, :n)")  # noqa: S608
        return [int(value) for value in db.execute(query, {"n": count}).scalars()]
    largest = db.execute(select(func.max(P.c.id))).scalar() or 0
    return list(range(largest + 1, largest + 1 + count))


def _row(p: PlannedPublication, now: datetime, ident: int) -> dict[str, Any]:
    fields = content_fields(p)
    fields["media"] = list(fields["media"])
    return {
        "id": ident,
        "key": p.key,
        "campaign_id": p.campaign,
        "account": p.account,
        **fields,
        "due_at": p.scheduled_at,
        "state": State.SCHEDULED.value,
        "attempt": 0,
        "cause": ADDED,
        "created_at": now,
        "updated_at": now,
    }


def _record(row: Any) -> PublicationRecord:
    return PublicationRecord(
        key=row["key"],
        campaign=row["campaign_id"],
        post=row["post"],
        occurrence=row["occurrence"],
        account=row["account"],
        part=row["part"],
        parts=row["parts"],
        scheduled_at=row["scheduled_at"],
        text=row["text"],
        spoiler_text=row["spoiler_text"],
        visibility=row["visibility"],
        language=row["language"],
        sensitive=bool(row["sensitive"]),
        media=tuple(row["media"] or ()),
        reply_to=row["reply_to"],
        content_hash=row["content_hash"],
        state=State(row["state"]),
        attempt=row["attempt"],
        next_attempt_at=row["next_attempt_at"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        remote_id=row["remote_id"],
        remote_url=row["remote_url"],
        published_at=row["published_at"],
        last_error=row["last_error"],
        cause=row["cause"],
        updated_at=row["updated_at"],
    )


def _history_row(
    ident: int,
    move: tuple[State | None, State],
    *,
    now: datetime,
    cause: str,
    attempt: int,
    actor: str,
    detail: str | None = None,
) -> dict[str, Any]:
    """One line of the audit trail, as the transitions table takes it."""
    before, after = move
    return {
        "publication_id": ident,
        "at": now,
        "from_state": before.value if before else None,
        "to_state": after.value,
        "cause": cause,
        "attempt": attempt,
        "actor": actor,
        "detail": detail,
    }


def _profile_limits(profile: ServerProfile) -> dict[str, Any]:
    """The ``limits`` JSON of a server profile: everything but its key, software, version
    and age (durations in seconds)."""
    ttl = profile.idempotency_ttl
    return {
        "max_characters": profile.max_characters,
        "characters_per_url": profile.characters_per_url,
        "max_media": profile.max_media,
        "idempotency_ttl_s": None if ttl is None else ttl.total_seconds(),
        "scheduled_at": profile.scheduled_at,
        "max_alt_text": profile.max_alt_text,
        "media_types": list(profile.media_types),
        "image_size_limit": profile.image_size_limit,
        "video_size_limit": profile.video_size_limit,
    }


def _profile_record(
    instance: str, software: str, version: str, limits: dict[str, Any], fetched_at: datetime
) -> ServerProfile:
    ttl = limits.get("idempotency_ttl_s")
    return ServerProfile(
        instance=instance,
        software=software,
        version=version,
        max_characters=int(limits["max_characters"]),
        characters_per_url=int(limits["characters_per_url"]),
        max_media=int(limits["max_media"]),
        idempotency_ttl=None if ttl is None else timedelta(seconds=ttl),
        scheduled_at=bool(limits["scheduled_at"]),
        fetched_at=fetched_at,
        max_alt_text=limits.get("max_alt_text"),
        media_types=tuple(limits.get("media_types") or ()),
        image_size_limit=limits.get("image_size_limit"),
        video_size_limit=limits.get("video_size_limit"),
    )


def _worker_record(row: Any) -> WorkerRecord:
    info = WorkerInfo(
        owner=row.owner,
        hostname=row.hostname,
        pid=row.pid,
        version=row.version,
        started_at=row.started_at,
        beat_every=timedelta(seconds=row.beat_every_s),
        files=tuple(row.files),
        campaigns=tuple(row.campaigns),
    )
    return WorkerRecord(info, WorkerState(row.state), row.last_seen_at)


def _utc(moment: Any) -> datetime | None:
    """An aggregate's timestamp: SQLite returns text for ``min()`` of a column."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)  # noqa: S101
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _seconds(value: int) -> timedelta:
    return timedelta(seconds=value)


_Item = TypeVar("_Item")


def _chunks(items: Sequence[_Item], size: int) -> Iterable[Sequence[_Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
