"""Test doubles shipped with the package: a clock that moves only when told to."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class FakeClock:
    """A clock for tests and property-based runs: ``now()`` is what was last set."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a FakeClock needs a UTC-aware start")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The fake current instant."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta``; returns the new instant."""
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (never backwards)."""
        with self._lock:
            if moment < self._now:
                raise ValueError("a FakeClock never goes backwards")
            self._now = moment

    def epoch(self) -> float:
        """The fake instant as seconds since the epoch (for the sandbox's clock)."""
        return self.now().timestamp()
