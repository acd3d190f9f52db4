"""The difference between a campaign file's plan and what the store holds (pure).

``diff`` decides, publication by publication, what a sync does — the store then applies the
whole answer in one transaction:

- **added**: planned, not stored yet → inserted as scheduled;
- **changed**: stored and still pending (scheduled, retrying), with other content or time
  → updated (new content hash), state kept;
- **revived**: cancelled because its post had left the file, and back → scheduled again;
- **cancelled**: pending, and no longer planned → cancelled with the reason;
- **refused**: a change or removal that cannot apply — in flight (claimed, uncertain) or
  final (published, failed, expired, cancelled by hand) — reported, nothing touched;
- **unchanged**: the rest.

The store then fills in **ended**: the thread parts it adds or revives behind a part that
ended unpublished (failed, expired, cancelled) end at once with that part, as the later
parts of a part that ends do (see :func:`postscheduler.store.common.behind_ended`).

Published history is never deleted or rewritten (invariant 5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from postscheduler.domain.states import IN_FLIGHT, PENDING, State

if TYPE_CHECKING:
    from postscheduler.domain.plan import PlannedPublication

#: The cause recorded when a post leaves the campaign file; only these come back by sync.
REMOVED_FROM_FILE = "removed from the campaign file"


@dataclass(frozen=True)
class Stored:
    """What the diff needs to know of a stored publication."""

    key: str
    state: State
    content_hash: str
    scheduled_at: datetime
    cause: str | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class Refusal:
    """A change the file asks for that cannot be applied, and why."""

    key: str
    reason: str


@dataclass(frozen=True)
class Ending:
    """An added or revived thread part that ends at once, in ``state``, with the part it
    replies to (which ended unpublished), for ``cause``."""

    key: str
    state: State
    cause: str


@dataclass(frozen=True)
class SyncPlan:
    """What one sync will do; see the module docstring. ``ended`` names some of the added
    and revived publications again: those that end at once (they are counted once)."""

    added: tuple[PlannedPublication, ...]
    changed: tuple[PlannedPublication, ...]
    revived: tuple[PlannedPublication, ...]
    cancelled: tuple[Stored, ...]
    refused: tuple[Refusal, ...]
    unchanged: tuple[str, ...]
    ended: tuple[Ending, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the sync writes nothing."""
        return not (self.added or self.changed or self.revived or self.cancelled)

    def counts(self) -> dict[str, int]:
        """How many publications fall in each group."""
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "revived": len(self.revived),
            "cancelled": len(self.cancelled),
            "refused": len(self.refused),
            "unchanged": len(self.unchanged),
        }


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "an unknown time"


def diff(planned: Iterable[PlannedPublication], stored: Mapping[str, Stored]) -> SyncPlan:
    """Compare the file's plan with the stored publications of the same campaign."""
    added: list[PlannedPublication] = []
    changed: list[PlannedPublication] = []
    revived: list[PlannedPublication] = []
    refused: list[Refusal] = []
    unchanged: list[str] = []
    seen: set[str] = set()
    for publication in planned:
        key = publication.key
        seen.add(key)
        current = stored.get(key)
        if current is None:
            added.append(publication)
            continue
        same = (
            current.content_hash == publication.content_hash
            and current.scheduled_at == publication.scheduled_at
        )
        if current.state is State.CANCELLED and current.cause == REMOVED_FROM_FILE:
            revived.append(publication)
        elif same:
            unchanged.append(key)
        elif current.state in PENDING:
            changed.append(publication)
        elif current.state in IN_FLIGHT:
            refused.append(Refusal(key, "being sent right now: not changed"))
        elif current.state is State.PUBLISHED:
            refused.append(
                Refusal(key, f"already published on {_when(current.published_at)}, not changed")
            )
        else:
            refused.append(Refusal(key, f"{current.state.value}: not changed (use retry)"))
    cancelled: list[Stored] = []
    for key, current in stored.items():
        if key in seen:
            continue
        if current.state in PENDING:
            cancelled.append(current)
        elif current.state in IN_FLIGHT:
            refused.append(Refusal(key, "removed from the file while being sent: not cancelled"))
    return SyncPlan(
        added=tuple(added),
        changed=tuple(changed),
        revived=tuple(revived),
        cancelled=tuple(sorted(cancelled, key=lambda s: s.key)),
        refused=tuple(refused),
        unchanged=tuple(unchanged),
    )
