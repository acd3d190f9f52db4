"""The store contract for the workers' heartbeat rows, run against every store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from postscheduler.ports import Store, WorkerInfo, WorkerRecord, WorkerState

STARTED = datetime(2017, 10, 5, 8, 0, 0, 250000, tzinfo=UTC)

ALBA = WorkerInfo(
    owner="alba.example:4242",
    hostname="alba.example",
    pid=4242,
    version="0.1.0.dev0",
    started_at=STARTED,
    beat_every=timedelta(seconds=30),
    files=("/etc/postscheduler/campaign.toml", "/etc/postscheduler/autre.toml"),
    campaigns=("venezuela-2017", "autre"),
)
PEUPLES = WorkerInfo(
    owner="peuples:17",
    hostname="peuples",
    pid=17,
    version="0.1.0.dev0",
    started_at=STARTED + timedelta(minutes=1),
    beat_every=timedelta(seconds=30),
)


def test_no_worker_has_written_a_row_yet(store: Store) -> None:
    assert store.workers() == []


def test_a_heartbeat_reads_back_exactly_as_running(store: Store) -> None:
    store.heartbeat(ALBA, now=STARTED)
    assert store.workers() == [WorkerRecord(ALBA, WorkerState.RUNNING, STARTED)]


def test_the_workers_are_listed_by_owner(store: Store) -> None:
    store.heartbeat(PEUPLES, now=STARTED)
    store.heartbeat(ALBA, now=STARTED)
    assert [w.owner for w in store.workers()] == [ALBA.owner, PEUPLES.owner]
    assert store.workers()[1].info == PEUPLES  # no files and no campaigns read back as ()


def test_each_heartbeat_moves_last_seen_and_replaces_the_row_of_that_owner_only(
    store: Store,
) -> None:
    store.heartbeat(ALBA, now=STARTED)
    store.heartbeat(PEUPLES, now=STARTED)
    later = STARTED + timedelta(seconds=30)
    synced = replace(ALBA, campaigns=("venezuela-2017",), files=ALBA.files[:1])
    store.heartbeat(synced, now=later)
    store.heartbeat(synced, now=later + timedelta(seconds=30), state=WorkerState.STOPPING)
    assert store.workers() == [
        WorkerRecord(synced, WorkerState.STOPPING, later + timedelta(seconds=30)),
        WorkerRecord(PEUPLES, WorkerState.RUNNING, STARTED),
    ]


def test_a_restart_under_the_same_owner_starts_the_row_again(store: Store) -> None:
    store.heartbeat(ALBA, now=STARTED)
    assert store.stopped(ALBA.owner, now=STARTED + timedelta(hours=1))
    again = replace(ALBA, pid=5000, started_at=STARTED + timedelta(hours=2))
    store.heartbeat(again, now=STARTED + timedelta(hours=2))
    assert store.workers() == [
        WorkerRecord(again, WorkerState.RUNNING, STARTED + timedelta(hours=2))
    ]


def test_stopped_marks_the_row_and_says_whether_there_was_one(store: Store) -> None:
    store.heartbeat(ALBA, now=STARTED)
    store.heartbeat(PEUPLES, now=STARTED)
    end = STARTED + timedelta(hours=3)
    assert store.stopped(ALBA.owner, now=end) is True
    assert store.stopped("nobody:1", now=end) is False
    assert store.workers() == [
        WorkerRecord(ALBA, WorkerState.STOPPED, end),
        WorkerRecord(PEUPLES, WorkerState.RUNNING, STARTED),
    ]


def test_the_times_read_back_are_utc_aware(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    store.heartbeat(
        replace(ALBA, started_at=STARTED.astimezone(paris)), now=STARTED.astimezone(paris)
    )
    (found,) = store.workers()
    assert (found.info.started_at, found.last_seen_at) == (STARTED, STARTED)
    assert found.info.started_at.utcoffset() == timedelta(0)
    assert found.last_seen_at.utcoffset() == timedelta(0)


def test_the_beat_is_kept_to_the_second_rounded_up(store: Store) -> None:
    store.heartbeat(replace(ALBA, beat_every=timedelta(milliseconds=1500)), now=STARTED)
    (found,) = store.workers()
    assert found.info.beat_every == timedelta(seconds=2)


def test_a_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="UTC-aware"):
        store.heartbeat(ALBA, now=datetime(2017, 10, 5, 8, 0))
    assert store.workers() == []


def test_forget_workers_deletes_only_the_rows_not_seen_since(store: Store) -> None:
    store.heartbeat(ALBA, now=STARTED)
    store.stopped(ALBA.owner, now=STARTED + timedelta(days=1))
    store.heartbeat(PEUPLES, now=STARTED + timedelta(days=2))
    third = replace(PEUPLES, owner="third:1")
    store.heartbeat(third, now=STARTED)  # died without a word two days ago

    assert store.forget_workers(seen_before=STARTED + timedelta(days=1)) == 1
    assert [w.owner for w in store.workers()] == [ALBA.owner, PEUPLES.owner]
    assert store.forget_workers(seen_before=STARTED + timedelta(days=1)) == 0
    assert store.forget_workers(seen_before=STARTED + timedelta(days=3)) == 2
    assert store.workers() == []
