"""The in-memory store: the SQL store's twin for unit tests and rehearsals.

Same contract as :class:`postscheduler.store.sql.SqlStore` (``tests/contract`` runs one suite
against both); a lock makes each method one atomic step, as a transaction would.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from postscheduler.domain.states import IllegalTransition, State, check_transition
from postscheduler.domain.sync import REMOVED_FROM_FILE, Stored, SyncPlan, diff
from postscheduler.errors import TransitionRefused, UnknownPublication
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
    CHANGED,
    REVIVED,
    SYNC_ACTOR,
    again_at,
    behind_ended,
    content_fields,
    follower_cause,
    holds_lease,
    new_record,
    updated,
)

if TYPE_CHECKING:
    from postscheduler.domain.plan import PlannedPublication


class MemoryStore:
    """A store that keeps everything in dictionaries, for one process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._campaigns: dict[str, CampaignRecord] = {}
        self._accounts: dict[tuple[str, str], AccountRecord] = {}
        self._publications: dict[str, PublicationRecord] = {}
        self._history: dict[str, list[TransitionRecord]] = defaultdict(list)
        self._versions: list[FileVersion] = []
        self._profiles: dict[str, ServerProfile] = {}
        self._workers: dict[str, WorkerRecord] = {}

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
        with self._lock:
            stored = {
                key: Stored(key, r.state, r.content_hash, r.scheduled_at, r.cause, r.published_at)
                for key, r in self._publications.items()
                if r.campaign == campaign.id
            }
            plan = behind_ended(diff(planned, stored), {k: s.state for k, s in stored.items()})
            if dry_run:
                return plan
            now = version.at
            previous = self._campaigns.get(campaign.id)
            self._campaigns[campaign.id] = (
                campaign if previous is None else updated_campaign(campaign, previous)
            )
            for account in accounts:
                old = self._accounts.get((account.campaign, account.name))
                self._accounts[(account.campaign, account.name)] = (
                    account
                    if old is None
                    else replace(account, paused=old.paused, held_reason=old.held_reason)
                )
            for publication in plan.added:
                record = new_record(publication, now)
                self._publications[record.key] = record
                self._log(record.key, None, State.SCHEDULED, now, record.cause or "", attempt=0)
            for publication in plan.changed:
                current = self._publications[publication.key]
                retry = current.next_attempt_at
                if retry is not None and retry < publication.scheduled_at:
                    retry = publication.scheduled_at  # a retry never goes before its new time
                self._publications[publication.key] = updated(
                    current, **content_fields(publication), next_attempt_at=retry, updated_at=now
                )
                self._log(
                    publication.key,
                    current.state,
                    current.state,
                    now,
                    CHANGED,
                    attempt=current.attempt,
                )
            for publication in plan.revived:
                current = self._publications[publication.key]
                self._publications[publication.key] = updated(
                    current,
                    **content_fields(publication),
                    state=State.SCHEDULED,
                    cause=REVIVED,
                    next_attempt_at=None,
                    updated_at=now,
                )
                self._log(
                    publication.key,
                    current.state,
                    State.SCHEDULED,
                    now,
                    REVIVED,
                    attempt=current.attempt,
                )
            for ending in plan.ended:
                current = self._publications[ending.key]
                self._publications[ending.key] = updated(
                    current, state=ending.state, cause=ending.cause, updated_at=now
                )
                self._log(
                    ending.key,
                    current.state,
                    ending.state,
                    now,
                    ending.cause,
                    attempt=current.attempt,
                )
            for gone in plan.cancelled:
                current = self._publications[gone.key]
                self._publications[gone.key] = updated(
                    current, state=State.CANCELLED, cause=REMOVED_FROM_FILE, updated_at=now
                )
                self._log(
                    gone.key,
                    current.state,
                    State.CANCELLED,
                    now,
                    REMOVED_FROM_FILE,
                    attempt=current.attempt,
                )
            self._versions.append(version)
            return plan

    def record_file_version(self, version: FileVersion) -> None:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            self._versions.append(version)

    def file_versions(self, campaign: str | None = None) -> list[FileVersion]:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            found = [v for v in self._versions if campaign is None or v.campaign == campaign]
            return sorted(found, key=lambda v: v.at, reverse=True)

    # -- reading --------------------------------------------------------------------------

    def campaigns(self) -> list[CampaignRecord]:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            return [self._campaigns[k] for k in sorted(self._campaigns)]

    def accounts(self, campaign: str | None = None) -> list[AccountRecord]:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            return [
                self._accounts[k]
                for k in sorted(self._accounts)
                if campaign is None or k[0] == campaign
            ]

    def get(self, key: str) -> PublicationRecord:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            try:
                return self._publications[key]
            except KeyError:
                raise UnknownPublication(f"no publication {key!r}") from None

    def history(self, key: str) -> list[TransitionRecord]:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            self.get(key)
            return list(self._history[key])

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
        with self._lock:
            found = [
                r
                for r in self._publications.values()
                if (state is None or r.state is state)
                and (account is None or r.account == account)
                and (campaign is None or r.campaign == campaign)
                and (post is None or r.post == post)
            ]
        found.sort(key=lambda r: (r.due_at, r.key))
        return found if limit is None else found[:limit]

    def status(self, campaign: str | None = None) -> list[StatusRow]:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            rows: dict[tuple[str, str], StatusRow] = {}
            for (campaign_id, name), account in sorted(self._accounts.items()):
                if campaign is not None and campaign_id != campaign:
                    continue
                paused = account.paused or self._campaigns[campaign_id].paused
                rows[(campaign_id, name)] = StatusRow(
                    campaign_id, name, {}, None, None, paused, account.held_reason
                )
            latest_error: dict[tuple[str, str], tuple[datetime, str]] = {}
            for record in self._publications.values():
                row = rows.get((record.campaign, record.account))
                if row is None:
                    continue
                row.counts[record.state] = row.counts.get(record.state, 0) + 1
                if record.state in (State.SCHEDULED, State.RETRYING) and (
                    row.next_due is None or record.due_at < row.next_due
                ):
                    rows[(record.campaign, record.account)] = row = StatusRow(
                        row.campaign,
                        row.account,
                        row.counts,
                        record.due_at,
                        row.last_error,
                        row.paused,
                        row.held_reason,
                    )
                if record.last_error and record.updated_at is not None:
                    best = latest_error.get((record.campaign, record.account))
                    if best is None or record.updated_at > best[0]:
                        latest_error[(record.campaign, record.account)] = (
                            record.updated_at,
                            record.last_error,
                        )
            return [
                StatusRow(
                    row.campaign,
                    row.account,
                    row.counts,
                    row.next_due,
                    latest_error.get(k, (None, None))[1],
                    row.paused,
                    row.held_reason,
                )
                for k, row in rows.items()
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
        with self._lock:
            current = self.get(key)
            try:
                check_transition(key, current.state, to)
            except IllegalTransition as error:
                raise TransitionRefused(str(error)) from None
            changes: dict[str, object] = {"state": to, "cause": cause, "updated_at": now}
            if to is State.SCHEDULED:
                changes["next_attempt_at"] = again_at(current, now)
            record = updated(current, **changes)
            self._publications[key] = record
            self._log(
                key,
                current.state,
                to,
                now,
                cause,
                attempt=current.attempt,
                actor=actor,
                detail=detail,
            )
            self._end_followers(key, to, now, actor)
            return record

    def set_paused(
        self, campaign: str, account: str | None, paused: bool, *, now: datetime
    ) -> None:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            if campaign not in self._campaigns:
                raise UnknownPublication(f"no campaign {campaign!r}")
            if account is None:
                self._campaigns[campaign] = replace(self._campaigns[campaign], paused=paused)
                return
            if (campaign, account) not in self._accounts:
                raise UnknownPublication(f"no account {account!r} in campaign {campaign!r}")
            old = self._accounts[(campaign, account)]
            self._accounts[(campaign, account)] = AccountRecord(
                **{
                    **old.__dict__,
                    "paused": paused,
                    "held_reason": None if not paused else old.held_reason,
                }
            )

    # -- server profiles ------------------------------------------------------------------

    def save_profile(self, profile: ServerProfile) -> None:
        """See :class:`postscheduler.ports.Store`."""
        if profile.fetched_at.tzinfo is None or profile.fetched_at.utcoffset() is None:
            raise ValueError("a server profile's fetched_at must be UTC-aware")
        with self._lock:
            self._profiles[profile.instance] = replace(
                profile, fetched_at=profile.fetched_at.astimezone(UTC)
            )

    def profile(self, instance: str) -> ServerProfile | None:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            return self._profiles.get(instance)

    # -- workers (the daemons' heartbeat rows) --------------------------------------------

    def heartbeat(
        self, worker: WorkerInfo, *, now: datetime, state: WorkerState = WorkerState.RUNNING
    ) -> None:
        """See :class:`postscheduler.ports.Store`."""
        worker = replace(
            worker,
            started_at=_aware(worker.started_at),
            beat_every=timedelta(seconds=math.ceil(worker.beat_every.total_seconds())),
        )
        with self._lock:
            self._workers[worker.owner] = WorkerRecord(worker, WorkerState(state), _aware(now))

    def stopped(self, owner: str, *, now: datetime) -> bool:
        """See :class:`postscheduler.ports.Store`."""
        now = _aware(now)
        with self._lock:
            found = self._workers.get(owner)
            if found is None:
                return False
            self._workers[owner] = replace(found, state=WorkerState.STOPPED, last_seen_at=now)
            return True

    def workers(self) -> list[WorkerRecord]:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            return [self._workers[owner] for owner in sorted(self._workers)]

    def forget_workers(self, *, seen_before: datetime) -> int:
        """See :class:`postscheduler.ports.Store`."""
        seen_before = _aware(seen_before)
        with self._lock:
            gone = [o for o, w in self._workers.items() if w.last_seen_at < seen_before]
            for owner in gone:
                del self._workers[owner]
            return len(gone)

    # -- the work queue -------------------------------------------------------------------

    def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[PublicationRecord]:
        """See :class:`postscheduler.ports.Store`."""
        claimable = (State.SCHEDULED, State.RETRYING, State.UNCERTAIN)
        with self._lock:
            busy = {
                (r.campaign, r.account)
                for r in self._publications.values()
                if r.state is State.CLAIMED
            }
            best: dict[tuple[str, str], PublicationRecord] = {}
            for record in self._publications.values():
                where = (record.campaign, record.account)
                if (
                    record.state not in claimable
                    or record.due_at > now
                    or where in busy
                    or not self._open(*where)
                    or (
                        record.reply_to is not None
                        and self._publications[record.reply_to].state is not State.PUBLISHED
                    )
                ):
                    continue
                current = best.get(where)
                if current is None or (record.due_at, record.key) < (current.due_at, current.key):
                    best[where] = record
            chosen = sorted(best.values(), key=lambda r: (r.due_at, r.key))[:limit]
            claimed = []
            for record in chosen:
                cause = RECONCILE if record.state is State.UNCERTAIN else "due"
                new = updated(
                    record,
                    state=State.CLAIMED,
                    lease_owner=owner,
                    lease_expires_at=now + lease,
                    attempt=record.attempt + 1,
                    cause=cause,
                    updated_at=now,
                )
                self._publications[record.key] = new
                self._log(
                    record.key,
                    record.state,
                    State.CLAIMED,
                    now,
                    cause,
                    attempt=new.attempt,
                    actor=owner,
                )
                claimed.append(new)
            return claimed

    def _open(self, campaign: str, account: str) -> bool:
        found = self._accounts.get((campaign, account))
        return (
            found is not None
            and not found.paused
            and found.held_reason is None
            and not self._campaigns[campaign].paused
        )

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
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            current = self.get(key)
            holds_lease(current, owner)
            try:
                check_transition(key, current.state, to)
            except IllegalTransition as error:
                raise TransitionRefused(str(error)) from None
            changes: dict[str, object] = {
                "state": to,
                "cause": cause,
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
                "next_attempt_at": next_attempt_at,
            }
            if remote_id is not None:
                changes.update(
                    remote_id=remote_id, remote_url=remote_url, published_at=published_at or now
                )
            if last_error is not None:
                changes["last_error"] = last_error
            record = updated(current, **changes)
            self._publications[key] = record
            self._log(
                key,
                State.CLAIMED,
                to,
                now,
                cause,
                attempt=current.attempt,
                actor=owner,
                detail=detail,
            )
            self._end_followers(key, to, now, owner)
            return record

    def _end_followers(self, key: str, to: State, now: datetime, owner: str) -> None:
        """Keep a thread whole (see :func:`postscheduler.store.common.follower_cause`)."""
        followers = {r.reply_to: r for r in self._publications.values() if r.reply_to}
        follower = followers.get(key)
        while follower is not None:
            cause = follower_cause(to, follower.state, follower.cause)
            if cause is None:
                return
            changes: dict[str, object] = {"state": to, "cause": cause, "updated_at": now}
            if to is State.SCHEDULED:
                changes["next_attempt_at"] = None
            self._publications[follower.key] = updated(follower, **changes)
            self._log(
                follower.key, follower.state, to, now, cause, attempt=follower.attempt, actor=owner
            )
            follower = followers.get(follower.key)

    def keep_media(self, key: str, *, owner: str, media: Sequence[dict[str, Any]]) -> None:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            current = self.get(key)
            holds_lease(current, owner)
            self._publications[key] = updated(current, media=tuple(media))

    def reap(self, *, now: datetime) -> list[str]:
        """See :class:`postscheduler.ports.Store`."""
        cause = "lease expired: its worker stopped before recording the outcome"
        with self._lock:
            expired = [
                r
                for r in self._publications.values()
                if r.state is State.CLAIMED
                and r.lease_expires_at is not None
                and r.lease_expires_at <= now
            ]
            for record in expired:
                self._publications[record.key] = updated(
                    record,
                    state=State.UNCERTAIN,
                    cause=cause,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
                self._log(
                    record.key,
                    State.CLAIMED,
                    State.UNCERTAIN,
                    now,
                    cause,
                    attempt=record.attempt,
                    actor="reaper",
                    detail=f"lease of {record.lease_owner}",
                )
            return [r.key for r in expired]

    def remote_ids(self, instance: str, *, published_since: datetime) -> set[str]:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            there = {k for k, a in self._accounts.items() if a.instance == instance}
            return {
                r.remote_id
                for r in self._publications.values()
                if r.state is State.PUBLISHED
                and r.remote_id is not None
                and r.published_at is not None
                and r.published_at >= published_since
                and (r.campaign, r.account) in there
            }

    def hold_account(self, campaign: str, account: str, reason: str, *, now: datetime) -> None:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            if (campaign, account) not in self._accounts:
                raise UnknownPublication(f"no account {account!r} in campaign {campaign!r}")
            old = self._accounts[(campaign, account)]
            self._accounts[(campaign, account)] = replace(old, held_reason=reason)

    def next_due(self) -> datetime | None:
        """See :class:`postscheduler.ports.Store`."""
        with self._lock:
            busy = {
                (r.campaign, r.account)
                for r in self._publications.values()
                if r.state is State.CLAIMED
            }
            # Only what claim_due could take: a timer armed for anything else would spin.
            moments = [
                r.due_at
                for r in self._publications.values()
                if r.state in (State.SCHEDULED, State.RETRYING, State.UNCERTAIN)
                and self._open(r.campaign, r.account)
                and (r.campaign, r.account) not in busy
                and (r.reply_to is None or self._publications[r.reply_to].state is State.PUBLISHED)
            ] + [
                r.lease_expires_at
                for r in self._publications.values()
                if r.state is State.CLAIMED and r.lease_expires_at is not None
            ]
        return min(moments) if moments else None

    def _log(
        self,
        key: str,
        before: State | None,
        after: State,
        at: datetime,
        cause: str,
        *,
        attempt: int,
        actor: str = SYNC_ACTOR,
        detail: str | None = None,
    ) -> None:
        self._history[key].append(
            TransitionRecord(at, before, after, cause, attempt, actor, detail)
        )


def updated_campaign(new: CampaignRecord, old: CampaignRecord) -> CampaignRecord:
    """The file's new description of a campaign, keeping what only the store knows."""
    return replace(new, paused=old.paused)


def _aware(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is refused, as the SQL store refuses it."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r} given to the store: times must be UTC-aware")
    return moment.astimezone(UTC)
