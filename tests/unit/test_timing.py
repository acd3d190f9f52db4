"""The daemon's timing rules: misfires, retries, pacing — tables and properties."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postscheduler.domain.timing import Budget, misfire, next_allowed, retry_at

T0 = datetime(2017, 10, 5, 12, 0, tzinfo=UTC)
END = datetime(2017, 10, 9, 3, 59, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("late", "policy", "grace", "expired"),
    [
        (timedelta(0), "grace", 15 * M, False),
        (30 * M / 60, "skip", 15 * M, False),  # 30 s late is on time
        (2 * M, "skip", 15 * M, True),
        (14 * M, "grace", 15 * M, False),
        (16 * M, "grace", 15 * M, True),
        (timedelta(days=2), "until_end", 15 * M, False),
    ],
)
def test_misfire_policies(late: timedelta, policy: str, grace: timedelta, expired: bool) -> None:
    verdict = misfire(due=T0, now=T0 + late, window_end=END, policy=policy, grace=grace)
    assert (verdict is not None) == expired
    if expired:
        assert policy in verdict


def test_nothing_is_sent_after_the_window_whatever_the_policy() -> None:
    for policy in ("grace", "skip", "until_end"):
        verdict = misfire(
            due=END - M, now=END + timedelta(seconds=1), window_end=END, policy=policy, grace=M * 60
        )
        assert verdict is not None
        assert "window ended" in verdict


def test_the_misfire_reason_says_how_late() -> None:
    verdict = misfire(
        due=T0, now=T0 + timedelta(hours=2, minutes=5), window_end=END, policy="grace", grace=15 * M
    )
    assert verdict == "missed by 2h5m (misfire policy grace: at most 15m late)"


def test_retries_back_off_exponentially_within_jitter_and_cap() -> None:
    rng = random.Random(7)
    delays = [
        retry_at(now=T0, attempt=n, window_end=END, rng=rng) - T0  # type: ignore[operator]
        for n in range(1, 12)
    ]
    for n, delay in enumerate(delays, start=1):
        nominal = min(timedelta(seconds=30) * 2 ** (n - 1), timedelta(hours=1))
        assert nominal * 0.5 <= delay <= nominal


def test_the_servers_reset_time_wins_when_later() -> None:
    reset = T0 + timedelta(hours=2)
    assert retry_at(now=T0, attempt=1, window_end=END, server_says=reset) == reset
    soon = T0 + timedelta(seconds=1)
    assert (
        retry_at(now=T0, attempt=1, window_end=END, server_says=soon, rng=random.Random(1)) > soon
    )  # type: ignore[operator]


def test_no_retry_past_the_window() -> None:
    assert retry_at(now=END - timedelta(seconds=5), attempt=3, window_end=END) is None
    assert retry_at(now=T0, attempt=1, window_end=END, server_says=END + M) is None


def test_spacing_and_budget() -> None:
    assert next_allowed([], now=T0, min_spacing=30 * M) == T0
    assert next_allowed([T0 - 10 * M], now=T0, min_spacing=30 * M) == T0 + 20 * M
    budget = Budget(count=3, period=timedelta(hours=1))
    sent = [T0 - 50 * M, T0 - 40 * M, T0 - 30 * M]
    assert next_allowed(sent, now=T0, min_spacing=M, budget=budget) == T0 + 10 * M


@given(
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=60).map(sorted),
    st.integers(min_value=0, max_value=120),
    st.integers(min_value=1, max_value=10),
)
def test_next_allowed_never_breaks_spacing_or_budget(
    offsets: list[int], spacing_m: int, count: int
) -> None:
    sent = [T0 + timedelta(minutes=o) for o in offsets]
    now = T0 + timedelta(minutes=offsets[-1] if offsets else 0)
    budget = Budget(count=count, period=timedelta(hours=1))
    moment = next_allowed(sent, now=now, min_spacing=timedelta(minutes=spacing_m), budget=budget)
    assert moment >= now
    if sent:
        assert moment - sent[-1] >= timedelta(minutes=spacing_m)
    in_window = [s for s in sent if s > moment - budget.period]
    assert len(in_window) < count
