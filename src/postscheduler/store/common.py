"""What every store shares: turning a planned publication into a stored one, the history
line of a sync, and the campaign's records built from its file."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from postscheduler.domain.states import State
from postscheduler.domain.sync import Ending, SyncPlan
from postscheduler.errors import LeaseLost
from postscheduler.ports import AccountRecord, CampaignRecord, FileVersion, PublicationRecord

if TYPE_CHECKING:
    from postscheduler.domain.campaign import CampaignFile
    from postscheduler.domain.plan import MediaFile, PlannedPublication

#: Who made a change, in the history: sync, the command line, or a worker's id.
SYNC_ACTOR = "sync"
CLI_ACTOR = "cli"

ADDED = "added from the campaign file"
CHANGED = "changed in the campaign file"
REVIVED = "back in the campaign file"
#: The cause of a thread part that ended (or came back) with the part it replies to.
FOLLOWER_CAUSE = "the part it replies to is"


def media_json(media: Sequence[MediaFile]) -> tuple[dict[str, Any], ...]:
    """Media as stored: what the publisher needs to upload them again."""
    return tuple(
        {
            "path": m.path,
            "alt": m.alt,
            "mime": m.mime,
            "size": m.size,
            "sha256": m.sha256,
            "focus": list(m.focus) if m.focus is not None else None,
        }
        for m in media
    )


def new_record(planned: PlannedPublication, now: datetime) -> PublicationRecord:
    """A publication as stored when first planned: scheduled, never tried."""
    return PublicationRecord(
        key=planned.key,
        campaign=planned.campaign,
        post=planned.post,
        occurrence=planned.occurrence,
        account=planned.account,
        part=planned.part,
        parts=planned.parts,
        scheduled_at=planned.scheduled_at,
        text=planned.text,
        spoiler_text=planned.spoiler_text,
        visibility=planned.visibility.value,
        language=planned.language,
        sensitive=planned.sensitive,
        media=media_json(planned.media),
        reply_to=planned.reply_to,
        content_hash=planned.content_hash,
        state=State.SCHEDULED,
        cause=ADDED,
        updated_at=now,
    )


def content_fields(planned: PlannedPublication) -> dict[str, Any]:
    """The fields a sync rewrites when a pending publication's content or time changes."""
    return {
        "post": planned.post,
        "occurrence": planned.occurrence,
        "part": planned.part,
        "parts": planned.parts,
        "scheduled_at": planned.scheduled_at,
        "text": planned.text,
        "spoiler_text": planned.spoiler_text,
        "visibility": planned.visibility.value,
        "language": planned.language,
        "sensitive": planned.sensitive,
        "media": media_json(planned.media),
        "reply_to": planned.reply_to,
        "content_hash": planned.content_hash,
    }


#: The outcomes that can move a thread's later parts (see :func:`follower_cause`); any other
#: leaves them as they are, so a store need not look at them.
MOVES_FOLLOWERS = frozenset({State.SCHEDULED, State.FAILED, State.EXPIRED, State.CANCELLED})


def follower_cause(to: State, follower: State, previous_cause: str | None) -> str | None:
    """Keep a thread whole: the cause to give a later part when the part before it becomes
    ``to``, or None when that part is left as it is.

    A part failed, expired or cancelled takes its waiting (scheduled, retrying) followers
    with it; a part scheduled again (retry by hand) brings back the followers that had
    ended because of it, and only those.
    """
    if to is State.SCHEDULED:
        back = follower in (State.FAILED, State.EXPIRED, State.CANCELLED)
        return (
            f"{FOLLOWER_CAUSE} back"
            if back and (previous_cause or "").startswith(FOLLOWER_CAUSE)
            else None
        )
    if to in (State.FAILED, State.EXPIRED, State.CANCELLED) and follower in (
        State.SCHEDULED,
        State.RETRYING,
    ):
        return f"{FOLLOWER_CAUSE} {to.value}"
    return None


def behind_ended(plan: SyncPlan, states: Mapping[str, State]) -> SyncPlan:
    """``plan`` with its ``ended`` filled in: the thread parts it adds or revives behind a
    part that ended unpublished — directly, or behind such a part it ends too.

    Each takes that part's state with the cause :func:`follower_cause` gives the later
    parts of a part that ends (so a retry of that part by hand brings them back); else it
    would wait forever, as a part is claimed only once the part it replies to is published.
    ``states`` holds the campaign's stored publications as the sync found them (on
    PostgreSQL, the parts replied to are read again under lock: see ``SqlStore.sync``).
    """
    coming = {p.key: p for p in (*plan.added, *plan.revived)}
    after = dict(states)
    after.update(dict.fromkeys(coming, State.SCHEDULED))
    after.update((gone.key, State.CANCELLED) for gone in plan.cancelled)
    ended: list[Ending] = []
    for publication in sorted(coming.values(), key=lambda p: (p.part, p.key)):
        previous = after.get(publication.reply_to) if publication.reply_to else None
        cause = None if previous is None else follower_cause(previous, State.SCHEDULED, None)
        if previous is not None and cause is not None:
            after[publication.key] = previous
            ended.append(Ending(publication.key, previous, cause))
    return dataclasses.replace(plan, ended=tuple(ended))


def again_at(record: PublicationRecord, now: datetime) -> datetime | None:
    """The retry time of a publication scheduled again by hand (``transition`` to
    scheduled): none while its scheduled time is still to come; ``now`` once it has passed
    — a retry by hand is meant to be sent, not to expire at once under the misfire policy
    for a time it was never going to meet."""
    return None if record.scheduled_at >= now else now


def holds_lease(record: PublicationRecord, owner: str) -> None:
    """Raise :class:`LeaseLost` unless ``owner`` still holds ``record``'s claim."""
    if record.state is not State.CLAIMED or record.lease_owner != owner:
        raise LeaseLost(
            f"{record.key} is no longer claimed by {owner} (it is {record.state.value})"
        )


def updated(record: PublicationRecord, **changes: Any) -> PublicationRecord:
    """``record`` with ``changes`` applied."""
    return dataclasses.replace(record, **changes)


def campaign_records(
    file: CampaignFile, path: str, window: tuple[datetime, datetime]
) -> tuple[CampaignRecord, list[AccountRecord]]:
    """The campaign and account records a sync writes, from a validated file."""
    settings = file.campaign
    campaign = CampaignRecord(
        id=settings.id,
        name=settings.name,
        timezone=settings.timezone,
        window_start=window[0],
        window_end=window[1],
        misfire_policy=settings.misfire.policy.value,
        misfire_grace=settings.misfire.grace,
        min_spacing=settings.min_spacing,
        path=path,
    )
    accounts = [
        AccountRecord(
            campaign=settings.id,
            name=name,
            instance=account.instance,
            software=account.software.value,
            token_source=_token_source(
                account.token.env, account.token.file, account.token.credential
            ),
        )
        for name, account in file.accounts.items()
    ]
    return campaign, accounts


def _token_source(env: str | None, file: str | None, credential: str | None) -> str:
    if env:
        return f"env:{env}"
    if file:
        return f"file:{file}"
    return f"credential:{credential}"


def file_version(path: str, source: bytes, at: datetime, **fields: Any) -> FileVersion:
    """A reading of a campaign file, named by the SHA-256 of its bytes."""
    return FileVersion(path=path, sha256=hashlib.sha256(source).hexdigest(), at=at, **fields)
