"""The daemon's maintenance jobs: its heartbeat row in the store, and the profile refresh.

The real daemon (APScheduler, a SQLite store) on a fake clock. The jobs are called directly
where a test needs one to run now — nothing sleeps for time to pass; the only wait is for
the scheduler's thread to run the refresh it starts with (an event, bounded).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postscheduler import __version__
from postscheduler.daemon import FORGET_WORKERS_AFTER, REFRESH_EVERY, Daemon, Timeline
from postscheduler.dispatcher import Dispatcher, DispatchSettings
from postscheduler.domain.states import State
from postscheduler.errors import StoreUnavailable
from postscheduler.ports import (
    AccountRecord,
    CampaignRecord,
    Publisher,
    WorkerInfo,
    WorkerRecord,
    WorkerState,
)
from postscheduler.profile_refresh import ProfileRefresher, RefreshReport
from postscheduler.store.database import create
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore
from postscheduler.syncing import sync_file
from postscheduler.testing import FakeClock

NOW = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
OWNER = "maintenance-test"

CAMPAIGN = """\
[campaign]
id = "maint"
name = "Maintenance"
timezone = "UTC"
start = 2030-06-01T08:00:00
end = 2030-06-09T20:00:00
language = "fr"

[accounts.alba]
instance = "http://127.0.0.1:9"
token = { env = "MAINT_TOKEN" }
software = "mastodon"

[[posts]]
id = "later"
at = 2030-06-08T10:00:00
text = "Dans une semaine."
"""


def no_publisher(campaign: CampaignRecord, account: AccountRecord) -> Publisher:
    raise AssertionError("nothing is due: nothing is published")


class Rig:
    """A SQLite store, a campaign file (synced or not), a dispatcher and daemons on them."""

    def __init__(self, folder: Path) -> None:
        self.clock = FakeClock(NOW)
        url = f"sqlite:///{folder / 'store.sqlite3'}"
        upgrade(url, backup=False)
        self.engine = create(url)
        self.store = SqlStore(self.engine)
        self.path = folder / "campaign.toml"
        self.path.write_text(CAMPAIGN, encoding="utf-8")
        self.daemons: list[Daemon] = []

    def daemon(self, **options: Any) -> Daemon:
        dispatcher = Dispatcher(
            self.store, no_publisher, self.clock, DispatchSettings(owner=OWNER, workers=1)
        )
        made = Daemon(
            options.pop("store", self.store),
            dispatcher,
            [self.path],
            timeline=Timeline(self.clock),
            **options,
        )
        self.daemons.append(made)
        return made

    def row(self) -> WorkerRecord:
        (found,) = [w for w in self.store.workers() if w.owner == OWNER]
        return found

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        self.engine.dispose()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    try:
        yield made
    finally:
        made.close()


def test_the_row_is_written_at_start_every_beat_and_says_stopped_at_the_end(rig: Rig) -> None:
    sync_file(rig.store, rig.path, NOW)  # as `run` does before it starts the daemon
    daemon = rig.daemon(heartbeat_every=timedelta(seconds=30))

    daemon.start()

    info = WorkerInfo(
        owner=OWNER,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        version=__version__,
        started_at=NOW,
        beat_every=timedelta(seconds=30),
        files=(str(rig.path),),
        campaigns=("maint",),
    )
    assert rig.store.workers() == [WorkerRecord(info, WorkerState.RUNNING, NOW)]

    beat = rig.clock.advance(timedelta(seconds=30))
    daemon.heartbeat()
    assert rig.row() == WorkerRecord(info, WorkerState.RUNNING, beat)

    end = rig.clock.advance(timedelta(seconds=7))
    daemon.stop()
    assert rig.row() == WorkerRecord(info, WorkerState.STOPPED, end)


def test_the_heartbeat_and_refresh_are_interval_jobs(rig: Rig) -> None:
    plain = rig.daemon(heartbeat_every=timedelta(seconds=30))
    plain.start()
    heartbeat = plain._scheduler.get_job("heartbeat")
    assert heartbeat is not None
    assert heartbeat.trigger.interval == timedelta(seconds=30)
    assert plain._scheduler.get_job("refresh_profiles") is None  # no refresher given
    plain.stop()

    refresher = ProfileRefresher(rig.store, rig.clock, margin=REFRESH_EVERY)
    try:
        refreshing = rig.daemon(refresher=refresher)
        refreshing.start()
        job = refreshing._scheduler.get_job("refresh_profiles")
        assert job is not None
        assert job.trigger.interval == REFRESH_EVERY
    finally:
        refresher.close()


def test_a_stop_right_after_a_start_leaves_no_dispatch_job_to_fire(rig: Rig) -> None:
    """Each start arms the dispatch job for "now"; a stop that came as it fired made
    APScheduler's thread raise JobLookupError (it removes a fired date job after submitting
    it, and once shut down looks for it among the jobs not yet added only), about one stop
    in ten here. The daemon now drops the job when a stop begins. pytest fails a test whose
    threads raise."""
    for _ in range(40):
        daemon = rig.daemon()
        daemon.start()
        daemon.stop()
        assert daemon._scheduler.get_job("dispatch") is None


def test_what_another_process_makes_due_is_seen_by_the_look_again_job(rig: Rig) -> None:
    sync_file(rig.store, rig.path, NOW)
    daemon = rig.daemon()
    daemon.start()
    job = daemon._scheduler.get_job("look_again")
    assert job is not None
    assert job.trigger.interval == timedelta(seconds=30)
    key = "maint/later/alba/1"
    due = rig.store.get(key).scheduled_at
    # The start dispatches at once (in the scheduler's thread), then arms a week ahead.
    deadline = time.monotonic() + 10
    while daemon._armed_for != due:
        assert time.monotonic() < deadline, "the daemon never armed for the publication"
        time.sleep(0.01)  # waiting for the scheduler's thread, not for time to pass
    # Another process (the command line) cancels it, then retries it: due at its time.
    rig.store.transition(key, State.CANCELLED, now=NOW, cause="no", actor="cli")
    daemon.look_again()
    assert daemon._armed_for is None
    assert daemon._scheduler.get_job("dispatch") is None
    rig.store.transition(key, State.SCHEDULED, now=NOW, cause="retry by hand", actor="cli")
    daemon.look_again()
    assert daemon._armed_for == due
    assert daemon._scheduler.get_job("dispatch") is not None


def test_a_file_synced_while_running_adds_its_campaign_to_the_row(rig: Rig) -> None:
    daemon = rig.daemon()
    daemon.start()
    assert rig.row().info.campaigns == ()  # not synced yet: no campaign known

    assert daemon.sync(rig.path)
    daemon.heartbeat()

    assert rig.row().info.campaigns == ("maint",)


def test_a_beat_once_a_stop_has_begun_says_stopping(rig: Rig) -> None:
    daemon = rig.daemon()
    daemon.start()
    daemon.stopping.set()  # a signal arrived: the drain is under way

    daemon.heartbeat()

    assert rig.row().state is WorkerState.STOPPING


def test_rows_of_workers_gone_for_long_are_deleted_at_start(rig: Rig) -> None:
    template = WorkerInfo("x:1", "x", 1, "0.0.1", NOW - timedelta(days=30), timedelta(seconds=30))
    rig.store.heartbeat(
        replace(template, owner="gone:1"), now=NOW - FORGET_WORKERS_AFTER - timedelta(seconds=1)
    )
    rig.store.heartbeat(replace(template, owner="recent:2"), now=NOW - timedelta(days=1))

    rig.daemon().start()

    assert [w.owner for w in rig.store.workers()] == [OWNER, "recent:2"]


class FailingHeartbeats(SqlStore):
    """A store whose heartbeat rows cannot be written (the database is gone)."""

    def heartbeat(self, worker: WorkerInfo, **_: Any) -> None:
        raise StoreUnavailable("cannot reach the database")

    def stopped(self, owner: str, **_: Any) -> bool:
        raise StoreUnavailable("cannot reach the database")


def test_a_heartbeat_that_cannot_be_written_is_logged_and_the_daemon_goes_on(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postscheduler.daemon")
    daemon = rig.daemon(store=FailingHeartbeats(rig.engine))

    daemon.start()
    daemon.heartbeat()
    daemon.stop()

    failures = [r for r in caplog.records if getattr(r, "event", None) == "heartbeat_failed"]
    assert len(failures) == 4  # at start, the beat, and the stop (stopping, then stopped)
    assert all("cannot reach the database" in r.getMessage() for r in failures)
    assert any("daemon stopped" in r.getMessage() for r in caplog.records)


class Refresher(ProfileRefresher):
    """Counts its runs (and may fail), asking no server."""

    def __init__(self, rig: Rig, *, fail: bool) -> None:
        super().__init__(rig.store, rig.clock)
        self.fail = fail
        self.ran = threading.Event()

    def refresh(self) -> RefreshReport:
        self.ran.set()
        if self.fail:
            raise RuntimeError("a bug in the refresh")
        return RefreshReport()


def test_the_refresh_runs_once_at_start_in_the_scheduler_s_thread(rig: Rig) -> None:
    refresher = Refresher(rig, fail=False)
    try:
        rig.daemon(refresher=refresher).start()
        assert refresher.ran.wait(timeout=10)
    finally:
        refresher.close()


def test_a_refresh_that_fails_is_logged_and_never_stops_the_daemon(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    refresher = Refresher(rig, fail=True)
    try:
        daemon = rig.daemon(refresher=refresher)
        daemon.start()
        assert refresher.ran.wait(timeout=10)
        daemon.refresh_profiles()  # and again, from here: it does not raise
        assert daemon._scheduler.running
        assert daemon._scheduler.get_job("refresh_profiles") is not None
    finally:
        refresher.close()
    failures = [r for r in caplog.records if getattr(r, "event", None) == "profile_refresh_failed"]
    assert failures
    assert all(r.levelno == logging.ERROR and r.exc_info for r in failures)
