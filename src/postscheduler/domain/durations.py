"""Durations as organisers write them: ``"30m"``, ``"1h30m"``, ``"2d"``, ``"45s"``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """Parse ``"1h30m"``-style text into a timedelta; raise ValueError with a readable message.

    Units are ``d``, ``h``, ``m``, ``s``, largest first, each at most once; ``"0m"`` is zero.
    """
    compact = text.strip().replace(" ", "").lower()
    match = _DURATION.fullmatch(compact)
    if not compact or match is None or not any(match.groups()):
        raise ValueError(
            f"{text!r} is not a duration: write a number with a unit, e.g. '30m', '1h30m', '2d'"
        )
    seconds = sum(
        int(value) * _UNITS[unit]
        for value, unit in zip(match.groups(), "dhms", strict=True)
        if value is not None
    )
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration`, in whole seconds (90 minutes → ``1h30m``)."""
    remaining = int(delta.total_seconds())
    if remaining == 0:
        return "0m"
    parts = []
    for unit in "dhms":
        amount, remaining = divmod(remaining, _UNITS[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
