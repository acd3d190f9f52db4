"""The daemon: APScheduler as the timer, the store as the truth, the dispatcher as the hands.

- One **date-trigger job** ("dispatch") is re-armed after every change to the next instant
  something could happen — the earliest due publication, retry time or lease expiry
  (:meth:`Store.next_due`). There is no polling loop: an idle daemon sleeps until then.
- **Interval jobs** for maintenance: the campaign files are watched (a changed file is
  synced; a refused edit is logged and recorded while the last good plan keeps running);
  the **heartbeat** writes this worker's row in the store (:meth:`Store.heartbeat`: who,
  where, since when, which files; ``status`` shows it); the timer is **checked against the
  store** every ``look_every`` (what another process made due — ``retry``, ``resume``,
  another replica — is seen within that time); and, when the daemon is given a
  :class:`~postscheduler.profile_refresh.ProfileRefresher`, the cached server profiles
  are **refreshed** before they go stale (once at start, then every ``refresh_every``).
  No job ever stops the daemon: their errors are logged and they run again.
- **The worker's row** is written at start (``running``; rows of workers not seen for
  :data:`FORGET_WORKERS_AFTER` are deleted then), every ``heartbeat_every``, when a stop
  begins (``stopping``) and once it is done (``stopped``). A worker that dies says nothing:
  its row stops moving, and ``status`` shows it stale after
  :data:`~postscheduler.ports.STALE_AFTER_BEATS` beats.
- **Signals**: SIGTERM/SIGINT stop claiming, put back what was claimed but not sent, give
  the requests already sent a grace period to be answered, and exit 0; SIGHUP re-reads
  every campaign file.
- **Memory**: planning a large campaign imports the campaign-file code and allocates far
  more than the plan it leaves in the store. With a SQL store each sync runs in a
  short-lived child process (:mod:`postscheduler.sync_process`): the daemon never imports
  that code, and the planning peak goes back to the system when the child exits. With a
  store only this process can open (in memory), the sync runs here, and after each one
  that planned the daemon hands what was freed back to the system (:func:`release_memory`).

APScheduler holds no posts: its jobs only say *when* to look at the store.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from postscheduler import __version__
from postscheduler.dispatcher import Dispatcher, TickReport
from postscheduler.errors import CampaignInvalid, PostschedulerError, SyncFailed
from postscheduler.ports import Clock, Store, WorkerInfo, WorkerState
from postscheduler.sync_process import sync_campaign

if TYPE_CHECKING:
    from postscheduler.profile_refresh import ProfileRefresher

log = logging.getLogger("postscheduler.daemon")

DISPATCH_JOB = "dispatch"
WATCH_EVERY = timedelta(seconds=2)
#: How often the worker's row is written.
HEARTBEAT_EVERY = timedelta(seconds=30)
#: How often the timer is checked against the store: what another process changed there
#: (``retry``, ``resume``, another replica's work) is seen within this long.
LOOK_EVERY = timedelta(seconds=30)
#: How often the server profiles are looked at (each is refreshed when about to go stale).
REFRESH_EVERY = timedelta(minutes=10)
#: At start, the rows of workers not seen for this long are deleted.
FORGET_WORKERS_AFTER = timedelta(days=7)
#: How long a stop waits for the requests already sent to be answered (systemd's
#: TimeoutStopSec, 90 s by default, leaves room for it).
STOP_GRACE = timedelta(seconds=30)


class Timeline:
    """How campaign instants map to the real clock the timer runs on.

    The real daemon lives in real time (``arrive`` does nothing, ``real_delay`` is the plain
    difference). A rehearsal compresses campaign time: see :class:`RehearsalTimeline`.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def real_delay(self, until: datetime) -> float:
        """Real seconds to wait before campaign instant ``until``."""
        return max((until - self.clock.now()).total_seconds(), 0.0)

    def arrive(self, moment: datetime) -> None:
        """The timer fired for ``moment``: campaign time has reached it."""


@dataclass(frozen=True)
class WatchedFile:
    """A campaign file and what it looked like when last read."""

    path: Path
    signature: tuple[float, int] | None


class Daemon:
    """Publishes the campaigns of ``files`` from ``store``; see the module docstring."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        files: Sequence[Path],
        *,
        timeline: Timeline,
        on_tick: Callable[[TickReport], None] | None = None,
        watch_every: timedelta = WATCH_EVERY,
        grace: timedelta = STOP_GRACE,
        heartbeat_every: timedelta = HEARTBEAT_EVERY,
        look_every: timedelta = LOOK_EVERY,
        refresher: ProfileRefresher | None = None,
        refresh_every: timedelta = REFRESH_EVERY,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.clock = dispatcher.clock
        self.timeline = timeline
        self.files = [WatchedFile(Path(f), _signature(Path(f))) for f in files]
        self.on_tick = on_tick or (lambda report: None)
        self.watch_every = watch_every
        self.grace = grace
        self.heartbeat_every = heartbeat_every
        self.look_every = look_every
        self.refresher = refresher
        self.refresh_every = refresh_every
        #: What this worker says of itself in its heartbeat row (set by :meth:`start`).
        self.worker: WorkerInfo | None = None
        #: The watched files' paths as the store keeps them (resolved), and their campaigns.
        self._paths = [_resolved(Path(f)) for f in files]
        self._campaign_of: dict[str, str] = {}
        #: Set to ask the daemon to stop (a signal, or the end of a rehearsal).
        self.stopping = threading.Event()
        self._stopped = False
        self._armed_for: datetime | None = None
        self._arm_lock = threading.Lock()
        self._beat_lock = threading.Lock()
        self._scheduler = BackgroundScheduler(timezone=UTC)

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        """Write this worker's row, start the timer: dispatch now, then whenever something
        is next due; the maintenance jobs at their intervals."""
        self._introduce()
        self._scheduler.add_job(
            self._watch,
            "interval",
            seconds=self.watch_every.total_seconds(),
            id="watch",
            max_instances=1,
            coalesce=True,
        )
        self._scheduler.add_job(
            self.heartbeat,
            "interval",
            seconds=self.heartbeat_every.total_seconds(),
            id="heartbeat",
            max_instances=1,
            coalesce=True,
        )
        self._scheduler.add_job(
            self.look_again,
            "interval",
            seconds=self.look_every.total_seconds(),
            id="look_again",
            max_instances=1,
            coalesce=True,
        )
        if self.refresher is not None:
            self._scheduler.add_job(
                self.refresh_profiles,
                "interval",
                seconds=self.refresh_every.total_seconds(),
                next_run_time=datetime.now(UTC),  # once at start too, in the job's thread
                id="refresh_profiles",
                max_instances=1,
                coalesce=True,
            )
        self._scheduler.start()
        self.arm(self.clock.now())
        log.info("daemon started", extra={"event": "started"})

    def stop(self) -> bool:
        """Stop claiming; put back what was claimed but not sent; give the requests already
        sent ``grace`` to be answered and recorded. Idempotent.

        Returns whether everything ended cleanly. False: requests still in flight after the
        grace period keep their leases (the process may exit; they are looked for on the
        server once the leases expire, never sent twice blindly).
        """
        # Under the arm lock: an arm() under way finishes its calls to the scheduler first
        # (it takes the scheduler's job-store lock, which shutdown(wait=True) holds while
        # it waits for the running jobs: a job arming then would never end).
        with self._arm_lock:
            self.stopping.set()
            # Nothing is dispatched once stopping: drop the date job now. Left in place, it
            # could fire as the scheduler shuts down, and APScheduler 3 then fails to remove
            # it (once stopped, it looks among the jobs not yet added only): its thread died
            # with a JobLookupError traceback.
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(DISPATCH_JOB)
        if self._stopped:
            return True
        self._stopped = True
        self.heartbeat(WorkerState.STOPPING)
        idle = self.dispatcher.drain(self.grace)
        self._scheduler.shutdown(wait=idle)
        if not idle:
            log.warning(
                "stopped with requests still unanswered after %s s: their leases will expire "
                "and they will be looked for on the server before anything is sent again",
                self.grace.total_seconds(),
                extra={"event": "stopped_in_flight"},
            )
            return False
        self.dispatcher.close()
        self._say_stopped()
        log.info("daemon stopped", extra={"event": "stopped"})
        return True

    def run_forever(self) -> bool:
        """Start, and serve until SIGTERM/SIGINT (SIGHUP re-reads the campaign files);
        returns :meth:`stop`'s answer."""
        self.install_signals()
        self.start()
        release_memory()  # what the start-up sync allocated and freed
        try:
            self.stopping.wait()
        finally:
            clean = self.stop()
        return clean

    def install_signals(self) -> None:
        """SIGTERM/SIGINT → stop; SIGHUP → reload (main thread only)."""

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping on signal", extra={"event": "signal", "signal": signum})
            self.stopping.set()

        def reload(_signum: int, _frame: FrameType | None) -> None:
            threading.Thread(target=self.reload, name="reload", daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    # -- the timer ------------------------------------------------------------------------

    def arm(self, due: datetime | None) -> None:
        """Fire the dispatch job at campaign instant ``due``, or sooner if the store now
        holds something due sooner (None and nothing waiting: no job).

        The store is read again under the lock, so that two arms racing — a file sync
        arming "now" while a dispatch run arms the later time it had read before the
        sync committed — end with the earlier instant, not whichever came last.
        """
        with self._arm_lock:
            if self.stopping.is_set():
                return
            try:
                fresh = self.store.next_due()
            except PostschedulerError as error:
                log.error("cannot read the next due time: %s", error, extra={"event": "arm"})
                fresh = self.clock.now() + timedelta(seconds=30)
            moments = [moment for moment in (due, fresh) if moment is not None]
            due = min(moments) if moments else None
            if due is None:
                self._armed_for = None
                if self._scheduler.get_job(DISPATCH_JOB):
                    self._scheduler.remove_job(DISPATCH_JOB)
                return
            self._armed_for = due
            run_at = datetime.now(UTC) + timedelta(seconds=self.timeline.real_delay(due))
            self._scheduler.add_job(
                self._dispatch,
                "date",
                run_date=run_at,
                args=[due],
                id=DISPATCH_JOB,
                replace_existing=True,
                misfire_grace_time=None,
                coalesce=True,
                max_instances=1,
            )

    def _dispatch(self, due: datetime) -> None:
        if self.stopping.is_set():
            return
        self.timeline.arrive(due)
        report = self._tick()
        # More may be due at once (one per account per tick), or something became due while
        # that tick ran: look again straight away, in this run of the job. Re-arming the job
        # for "now" from inside itself raced with APScheduler: it could fire before this run
        # ended, be skipped (max_instances=1) and be dropped (a date job), and then nothing
        # was dispatched until the next sync. (Bounded: claims make progress; a moment
        # already past that claims nothing is looked at again only twice.)
        again = 2
        while not self.stopping.is_set():
            if not report.claimed:
                if again == 0 or report.next_due is None or report.next_due > self.clock.now():
                    break
                again -= 1
            report = self._tick()
        self.arm(report.next_due)

    def _tick(self) -> TickReport:
        try:
            report = self.dispatcher.tick()
        except PostschedulerError as error:
            log.error("dispatch failed: %s", error, extra={"event": "dispatch_failed"})
            report = TickReport(next_due=self.clock.now() + timedelta(seconds=30))
        except Exception:
            # A bug must not stop the timer: the dispatch job is a one-shot date job, and
            # an exception escaping it left the daemon alive but never dispatching again.
            log.exception("dispatch failed unexpectedly", extra={"event": "dispatch_failed"})
            report = TickReport(next_due=self.clock.now() + timedelta(seconds=30))
        self.on_tick(report)
        return report

    # -- campaign files -------------------------------------------------------------------

    def _watch(self) -> None:
        for index, watched in enumerate(self.files):
            signature = _signature(watched.path)
            if signature == watched.signature:
                continue
            self.files[index] = WatchedFile(watched.path, signature)
            self.sync(watched.path)

    def reload(self) -> None:
        """Re-read every campaign file now (SIGHUP)."""
        for watched in self.files:
            self.sync(watched.path, force=True)

    def sync(self, path: Path, *, force: bool = False) -> bool:
        """Sync one campaign file (in a child process for a SQL store); a refused edit, a
        store error or a failed sync process is logged and the last good plan kept."""
        try:
            report = sync_campaign(self.store, path, self.clock.now(), force=force)
        except CampaignInvalid as error:
            for line in error.lines():
                log.error("%s", line, extra={"event": "edit_refused", "file": str(path)})
            log.error(
                "%s: edit refused, the last good plan keeps running",
                path,
                extra={"event": "edit_refused", "file": str(path)},
            )
            return False
        except SyncFailed as error:
            log.error(
                "%s: %s; the last good plan keeps running",
                path,
                error,
                extra={"event": "sync_failed", "file": str(path)},
            )
            return False
        except PostschedulerError as error:
            log.error("%s: %s", path, error, extra={"event": "sync_failed", "file": str(path)})
            return False
        log.info("%s", report.summary, extra={"event": "synced", "file": str(path)})
        self._campaign_of[_resolved(path)] = report.campaign
        self.arm(self.store.next_due())
        if report.planned:
            release_memory()  # what an in-process sync allocated (a child's went with it)
        return True

    # -- maintenance ----------------------------------------------------------------------

    def look_again(self) -> None:
        """The look-again job: arm the timer for what the store now holds. Another process
        may have made something due sooner — ``retry`` or ``resume`` on the command line,
        another replica — and only this process's own changes re-arm it otherwise."""
        self.arm(None)

    def _introduce(self) -> None:
        """Say who this worker is (its row, written now) and forget long-gone workers."""
        now = self.clock.now()
        try:
            for campaign in self.store.campaigns():
                self._campaign_of.setdefault(campaign.path, campaign.id)
            self.store.forget_workers(seen_before=now - FORGET_WORKERS_AFTER)
        except PostschedulerError as error:
            log.error(
                "cannot tidy the workers' rows: %s", error, extra={"event": "heartbeat_failed"}
            )
        self.worker = WorkerInfo(
            owner=self.dispatcher.settings.owner,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            started_at=now,
            beat_every=self.heartbeat_every,
            files=tuple(str(watched.path) for watched in self.files),
        )
        self.heartbeat()

    def heartbeat(self, state: WorkerState = WorkerState.RUNNING) -> None:
        """Write this worker's row: ``state``, the files and campaigns it runs, seen now.
        A store that cannot be written is logged; the next beat tries again.

        Once a stop has begun, a beat says ``stopping`` whatever it was asked (under a
        lock, so that a beat of the job cannot write ``running`` after the stop's own)."""
        if self.worker is None:
            return
        with self._beat_lock:
            if state is WorkerState.RUNNING and self.stopping.is_set():
                state = WorkerState.STOPPING
            campaigns = tuple(
                self._campaign_of[path] for path in self._paths if path in self._campaign_of
            )
            if campaigns != self.worker.campaigns:
                self.worker = replace(self.worker, campaigns=campaigns)
            try:
                self.store.heartbeat(self.worker, now=self.clock.now(), state=state)
            except PostschedulerError as error:
                log.error(
                    "cannot write this worker's heartbeat: %s",
                    error,
                    extra={"event": "heartbeat_failed"},
                )
                return
        log.debug("%s; next due %s", state.value, self._armed_for, extra={"event": "heartbeat"})

    def _say_stopped(self) -> None:
        if self.worker is None:
            return
        try:
            self.store.stopped(self.worker.owner, now=self.clock.now())
        except PostschedulerError as error:
            log.error(
                "cannot mark this worker stopped: %s", error, extra={"event": "heartbeat_failed"}
            )

    def refresh_profiles(self) -> None:
        """The profile-refresh job: never raises (a failure is logged; the next run retries)."""
        if self.refresher is None or self.stopping.is_set():
            return
        try:
            self.refresher.refresh()
        except Exception:
            log.exception(
                "refreshing the server profiles failed", extra={"event": "profile_refresh_failed"}
            )


def _resolved(path: Path) -> str:
    """A campaign file's path as the store keeps it (resolved)."""
    return str(path.resolve())


def release_memory() -> None:
    """Collect garbage, then return the C heap's free pages to the system.

    Python's own allocator gives a 1 MiB arena back only once it is empty, and glibc's
    ``malloc`` keeps freed memory for later, so after a large sync the process would stay
    as big as its peak. ``malloc_trim(0)`` (glibc only; elsewhere the collection alone)
    releases the free pages: about 80 MB after planning 100,000 publications.
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # noqa: PLC0415 (only where it is used)

    try:
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:  # pragma: no cover - no C library to open
        return
    if trim is not None:  # musl has no malloc_trim
        trim(0)


def _signature(path: Path) -> tuple[float, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime, stat.st_size)


def run_once(dispatcher: Dispatcher, *, limit: int = 10_000) -> list[TickReport]:
    """``run --once``: publish what is due now, then return (for cron and tests)."""
    reports: list[TickReport] = []
    for _ in range(limit):
        report = dispatcher.tick()
        reports.append(report)
        if not report.claimed:
            break
    return reports
