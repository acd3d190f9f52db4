"""Crash points: places where the torture test may kill the daemon on purpose.

**Test-only, and inert otherwise.** :func:`crashpoint` does nothing at all unless the
environment variable ``POSTSCHEDULER_CRASHPOINTS`` is set when this module is first
imported, e.g.::

    POSTSCHEDULER_CRASHPOINTS="after_claim:0.02,after_send:0.02,during_record:0.02"
    POSTSCHEDULER_CRASH_SEED=7          # optional: the same crashes for the same run

Each ``name:probability`` pair arms one named point: each pass through it then ends the
process with ``os._exit(137)`` with that probability — like ``kill -9``: no ``finally``,
no flush, no lease released, no outcome recorded. The dispatcher's points are
``after_claim``, ``after_send`` (the server has the status, the store does not know),
``during_record`` (just before a published outcome is recorded) and ``after_record``.

The variable is read once, at import; a malformed value raises ``ValueError`` then, so a
torture run cannot silently test nothing.
"""

from __future__ import annotations

import os
import random
import threading

ENV = "POSTSCHEDULER_CRASHPOINTS"
SEED_ENV = "POSTSCHEDULER_CRASH_SEED"
#: The exit status of a crash point: what a shell reports for a process killed by SIGKILL.
EXIT_STATUS = 137


def _parse(text: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition(":")
        try:
            probability = float(value)
        except ValueError:
            probability = -1.0
        if not sep or not name.strip() or not 0.0 <= probability <= 1.0:
            raise ValueError(f"{ENV}: {item.strip()!r} is not NAME:PROBABILITY (0 to 1)")
        points[name.strip()] = probability
    return points


_POINTS: dict[str, float] = _parse(os.environ.get(ENV, ""))
_SEED = os.environ.get(SEED_ENV)
_RNG = random.Random(_SEED)  # noqa: S311 - test faults, not secrets
_LOCK = threading.Lock()


def crashpoint(name: str) -> None:
    """End the process here, at random, if the crash point ``name`` is armed (see above)."""
    if not _POINTS:
        return
    probability = _POINTS.get(name)
    if not probability:
        return
    with _LOCK:
        draw = _RNG.random()
    if draw < probability:
        os._exit(EXIT_STATUS)
