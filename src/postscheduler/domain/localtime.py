"""Local wall-clock times resolved to UTC instants, with DST gaps and folds made explicit."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo


class Resolution(enum.Enum):
    """How a wall-clock time maps onto instants in its zone."""

    EXACT = "exact"  # one instant
    GAP = "gap"  # no instant: the clocks skipped over it (spring forward)
    FOLD = "fold"  # two instants: the clocks went through it twice (fall back)


@dataclass(frozen=True)
class Resolved:
    """A wall-clock time's instant(s) in UTC.

    ``instant`` is the one to use: for a fold the first (earlier) of the two, for a gap the
    wall time shifted forward by the gap (02:30 in a 02:00→03:00 gap is 03:30), so callers
    that only warn still get a sensible answer.
    ``other`` is the second instant of a fold.
    """

    kind: Resolution
    instant: datetime
    other: datetime | None = None


def resolve_local(wall: datetime, zone: ZoneInfo) -> Resolved:
    """Resolve ``wall`` (naive, or aware — then taken as it is) in ``zone`` to UTC."""
    if wall.tzinfo is not None:
        return Resolved(Resolution.EXACT, wall.astimezone(UTC))
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    first_utc = first.astimezone(UTC)
    second_utc = second.astimezone(UTC)
    if first_utc.astimezone(zone).replace(tzinfo=None) != wall:
        # In a gap, fold=0 reads the wall time with the offset from before the transition,
        # which lands as far past the gap's end as the wall time was past its start.
        return Resolved(Resolution.GAP, max(first_utc, second_utc))
    if first_utc != second_utc:
        return Resolved(Resolution.FOLD, min(first_utc, second_utc), max(first_utc, second_utc))
    return Resolved(Resolution.EXACT, first_utc)


def to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The aware local time of a UTC instant."""
    return instant.astimezone(zone)
