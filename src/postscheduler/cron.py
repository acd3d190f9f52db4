"""Cron expressions for ``[[series]]``, expanded with APScheduler's CronTrigger.

This is the small adapter that keeps the planner free of scheduler imports: the planner
receives :func:`expand_cron` as a plain function.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def expand_cron(
    expression: str, zone: ZoneInfo, start: datetime, end: datetime, limit: int = 10_001
) -> Sequence[datetime]:
    """Every instant in ``[start, end]`` at which the five-field crontab ``expression`` fires,
    read in ``zone`` (so ``0 9 * * *`` is 09:00 local time every day, DST included).
    A wall time the clocks pass twice (a DST fold) fires once, at its first instant; one
    they skip (a DST gap) fires as far after the gap as it was into it.

    Stops after ``limit`` instants (the planner refuses that many anyway).
    Raises ValueError with a readable message for a malformed expression.
    """
    # Imported here: most campaigns have no series, and check should not pay for it.
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415

    try:
        trigger = CronTrigger.from_crontab(expression, timezone=zone)
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"{expression!r} is not a cron expression (minute hour day month weekday, "
            f"e.g. '0 9 * * *'): {error}"
        ) from None
    instants: list[datetime] = []
    seen: set[datetime] = set()
    previous: datetime | None = None
    moment = start.astimezone(UTC)
    while True:
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None or fire > end or len(instants) >= limit:
            return instants
        instant = fire.astimezone(UTC)
        if instant < moment:  # the trigger did not move forward: stop rather than loop
            return instants
        wall = fire.replace(tzinfo=None)
        if wall not in seen:
            seen.add(wall)
            instants.append(instant)
        previous = fire
        # Step in UTC: arithmetic on a local time would drop its fold and go backwards.
        moment = instant + timedelta(microseconds=1)
