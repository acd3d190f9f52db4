"""When to send, and when to try again: the daemon's timing rules, as pure functions.

- **Misfires** (DESIGN §4 invariant 3): a publication claimed later than it was due follows
  the campaign's policy — ``grace`` (publish if at most that late), ``skip`` (only on
  time), ``until_end`` (publish late until the window ends) — and never after the window.
- **Retries**: exponential backoff with jitter, capped; a time the server gave wins; never
  past the window's end.
- **Pacing** per account: at least ``min_spacing`` between two statuses, and a budget kept
  under the server's own limit (Mastodon: 300 statuses per 3 hours).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from postscheduler.domain.durations import format_duration

#: Lateness that is not a misfire: the time it takes to notice a due publication and claim it.
ON_TIME = timedelta(seconds=60)
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)


def misfire(
    *,
    due: datetime,
    now: datetime,
    window_end: datetime,
    policy: str,
    grace: timedelta,
) -> str | None:
    """None when a publication due at ``due`` may be sent at ``now``; else why it expires."""
    if now > window_end:
        return f"the campaign window ended at {window_end:%Y-%m-%d %H:%M} UTC"
    late = now - due
    if late <= ON_TIME:
        return None
    if policy == "until_end":
        return None
    if policy == "grace" and late <= grace:
        return None
    allowed = "on time" if policy == "skip" else f"at most {format_duration(grace)} late"
    return f"missed by {format_duration(_whole(late))} (misfire policy {policy}: {allowed})"


def retry_at(
    *,
    now: datetime,
    attempt: int,
    window_end: datetime,
    server_says: datetime | None = None,
    rng: random.Random | None = None,
    base: timedelta = RETRY_BASE,
    cap: timedelta = RETRY_CAP,
) -> datetime | None:
    """When to try attempt ``attempt + 1``; None when that would be after the window.

    Backoff: ``base × 2^(attempt−1)``, capped at ``cap``, times a jitter in [0.5, 1) so that
    accounts hit by one outage do not all come back at once. A time the server gave
    (``Retry-After``, ``X-RateLimit-Reset``) wins when it is later.
    """
    exponent = max(attempt - 1, 0)
    delay = min(cap, base * (2 ** min(exponent, 20)))
    jitter = (rng or random.Random()).uniform(0.5, 1.0)  # noqa: S311 - not for secrets
    moment = now + delay * jitter
    if server_says is not None and server_says > moment:
        moment = server_says
    return moment if moment <= window_end else None


@dataclass(frozen=True)
class Budget:
    """At most ``count`` statuses per ``period`` (a sliding window), per account."""

    count: int
    period: timedelta


#: Mastodon allows 300 statuses per 3 hours per account; we keep a margin under it.
MASTODON_BUDGET = Budget(count=280, period=timedelta(hours=3))


def next_allowed(
    sent: Sequence[datetime],
    *,
    now: datetime,
    min_spacing: timedelta,
    budget: Budget = MASTODON_BUDGET,
) -> datetime:
    """The earliest instant ≥ ``now`` at which the account may send again.

    ``sent`` holds the account's recent send times, sorted. Thread parts are not spaced:
    the caller passes only the sends that count for spacing.
    """
    moment = now
    if sent:
        moment = max(moment, sent[-1] + min_spacing)
    recent = sent[bisect.bisect_right(sent, moment - budget.period) :]
    if len(recent) >= budget.count:
        # Wait until the oldest send that still counts leaves the window.
        moment = max(moment, recent[len(recent) - budget.count] + budget.period)
    return moment


def _whole(delta: timedelta) -> timedelta:
    return timedelta(seconds=int(delta.total_seconds()))
