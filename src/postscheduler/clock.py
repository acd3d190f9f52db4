"""Clocks: where "now" comes from (the Clock port).

- :class:`SystemClock` — the real time, for the daemon.
- :class:`ScaledClock` — campaign time for a rehearsal: it starts at a chosen instant and
  runs ``speed`` times faster than the real clock, so a four-day campaign plays out in a
  minute; :meth:`ScaledClock.to_real` converts a campaign instant into the real instant a
  timer must fire at. Nothing sleeps for campaign time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SystemClock:
    """The real time, UTC-aware."""

    def now(self) -> datetime:
        """The current instant."""
        return datetime.now(UTC)


class ScaledClock:
    """Campaign time running ``speed`` times faster than real time from ``start``."""

    def __init__(self, start: datetime, speed: float, *, monotonic: float | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self._origin = time.monotonic() if monotonic is None else monotonic

    def now(self) -> datetime:
        """The current campaign instant."""
        return self.start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    def epoch(self) -> float:
        """The current campaign instant as seconds since the epoch (for the sandbox)."""
        return self.now().timestamp()

    def real_delay(self, until: datetime) -> float:
        """Real seconds until campaign instant ``until`` (0 if it has passed)."""
        return max((until - self.now()).total_seconds() / self.speed, 0.0)
