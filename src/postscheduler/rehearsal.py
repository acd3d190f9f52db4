"""``postscheduler rehearse``: the whole campaign played out in a minute, for real.

The real daemon — store (a throwaway SQLite file), dispatcher, APScheduler timer,
Mastodon.py over HTTP — runs against bundled sandbox servers on 127.0.0.1 (one per
account, playing its server software), on a **compressed clock**: campaign time starts just
before the window opens, and the timer waits ``gap / speed`` real seconds between events.
Campaign time moves only when the timer fires (a stepped clock), so lateness is measured,
not caused, by the compression. Nothing sleeps for campaign time.

At the end: every publication's final state, the sandbox's own record of what it stored
(each exactly once?), and how late each went out, in campaign time.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from postscheduler.campaign_file import LoadedCampaign
from postscheduler.check import check_file, check_loaded
from postscheduler.daemon import Daemon, Timeline
from postscheduler.dispatcher import Dispatcher, DispatchSettings, TickReport
from postscheduler.domain.software import FACTS, Software
from postscheduler.domain.states import FINAL, State
from postscheduler.errors import CampaignInvalid
from postscheduler.ports import (
    AccountRecord,
    CampaignRecord,
    FileVersion,
    PublicationRecord,
    Publisher,
    ServerProfile,
)
from postscheduler.publishers.mastodon import MastodonPublisher
from postscheduler.sandbox import SandboxServer
from postscheduler.store.common import campaign_records
from postscheduler.store.database import create
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore

#: The real time a rehearsal aims to take when no speed is given.
TARGET_SECONDS = 40.0
#: A rehearsal that has not finished after this many real seconds is stopped.
REAL_TIMEOUT = 300.0


class RehearsalClock:
    """Campaign time that moves only when told to (see the module docstring)."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current campaign instant."""
        with self._lock:
            return self._now

    def reach(self, moment: datetime) -> None:
        """Move forward to ``moment`` (never backwards)."""
        with self._lock:
            self._now = max(self._now, moment)

    def epoch(self) -> float:
        """The campaign instant as seconds since the epoch (the sandbox's clock)."""
        return self.now().timestamp()


class RehearsalTimeline(Timeline):
    """Campaign gaps shortened ``speed`` times; campaign time jumps to each event."""

    def __init__(self, clock: RehearsalClock, speed: float) -> None:
        super().__init__(clock)
        self.rehearsal_clock = clock
        self.speed = speed

    def real_delay(self, until: datetime) -> float:
        """Real seconds before campaign instant ``until``: the gap, compressed."""
        return max((until - self.clock.now()).total_seconds() / self.speed, 0.0)

    def arrive(self, moment: datetime) -> None:
        """The timer fired for ``moment``: campaign time jumps there."""
        self.rehearsal_clock.reach(moment)


@dataclass
class RehearsalResult:
    """What a rehearsal showed."""

    speed: float
    real_seconds: float
    counts: Counter[str]
    duplicates: list[str]
    missing: list[str]
    lateness: list[float]
    publications: list[PublicationRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every publication final, and the servers hold each published one exactly once."""
        finished = all(State(state) in FINAL for state in self.counts)
        return finished and not self.duplicates and not self.missing

    def summary(self) -> list[str]:
        """The closing lines for people."""
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.counts.items()))
        late = (
            f"lateness (campaign time): median {_span(statistics.median(self.lateness))}, "
            f"max {_span(max(self.lateness))}"
            if self.lateness
            else "nothing was published"
        )
        return [
            f"{sum(self.counts.values())} publications: {states}",
            f"duplicates on the servers: {len(self.duplicates)}; missing: {len(self.missing)}",
            late,
            f"played at {self.speed:.0f}× in {self.real_seconds:.1f} s real time",
            "rehearsal passed" if self.ok else "rehearsal FAILED",
        ]

    def as_json(self) -> dict[str, Any]:
        """The result as ``rehearse --json`` prints it."""
        return {
            "ok": self.ok,
            "speed": self.speed,
            "real_seconds": round(self.real_seconds, 3),
            "counts": dict(self.counts),
            "duplicates": self.duplicates,
            "missing": self.missing,
            "lateness_seconds": {
                "median": statistics.median(self.lateness) if self.lateness else None,
                "max": max(self.lateness) if self.lateness else None,
            },
            "publications": [
                {
                    "key": p.key,
                    "state": p.state.value,
                    "scheduled_at": p.scheduled_at.isoformat(),
                    "published_at": p.published_at.isoformat() if p.published_at else None,
                    "remote_url": p.remote_url,
                    "cause": p.cause,
                }
                for p in self.publications
            ],
        }


def rehearse(
    path: str | Path,
    *,
    speed: float | None = None,
    progress: Callable[[str], None] = print,
    workdir: Path | None = None,
) -> RehearsalResult:
    """Rehearse the campaign at ``path``; raises CampaignInvalid when it does not check."""
    report = check_file(path)
    if not report.ok or report.loaded is None or report.window is None:
        raise CampaignInvalid(str(path), report.problems)
    window_start, window_end = report.window
    if speed is None:
        speed = max((window_end - window_start).total_seconds() / TARGET_SECONDS, 1.0)
    clock = RehearsalClock(window_start - timedelta(minutes=1))
    with tempfile.TemporaryDirectory(prefix="postscheduler-rehearsal-") as scratch:
        folder = workdir or Path(scratch)
        servers = _servers(report.loaded, clock, folder)
        try:
            return _play(
                path,
                report.loaded,
                servers,
                clock=clock,
                speed=speed,
                folder=folder,
                progress=progress,
            )
        finally:
            for server, _token in servers.values():
                server.stop()


def _servers(
    loaded: LoadedCampaign, clock: RehearsalClock, folder: Path
) -> dict[str, tuple[SandboxServer, str]]:
    servers: dict[str, tuple[SandboxServer, str]] = {}
    for name, account in loaded.campaign.accounts.items():
        software = Software.MASTODON if account.software is Software.AUTO else account.software
        server = SandboxServer(
            software.value,
            clock=clock.epoch,
            record_path=folder / f"{name}.jsonl",
            max_characters=account.max_characters,
        ).start()
        servers[name] = (server, server.add_account(name))
    return servers


def _play(
    path: str | Path,
    loaded: LoadedCampaign,
    servers: dict[str, tuple[SandboxServer, str]],
    *,
    clock: RehearsalClock,
    speed: float,
    folder: Path,
    progress: Callable[[str], None],
) -> RehearsalResult:
    accounts = {
        name: account.model_copy(update={"instance": servers[name][0].url})
        for name, account in loaded.campaign.accounts.items()
    }
    file = loaded.campaign.model_copy(update={"accounts": accounts})
    played = LoadedCampaign(loaded.path, file, loaded.statement, loaded.media, loaded.source)
    report = check_loaded(str(path), played)
    assert report.window is not None  # noqa: S101 - checked by the caller
    url = f"sqlite:///{folder / 'rehearsal.sqlite3'}"
    upgrade(url, backup=False)
    store = SqlStore(create(url))
    campaign, account_records = campaign_records(file, str(Path(path).resolve()), report.window)
    store.sync(
        campaign,
        account_records,
        report.publications,
        FileVersion(str(path), "rehearsal", clock.now(), campaign=campaign.id),
    )
    zone = file.campaign.zone
    publishers: dict[str, Publisher] = {}
    lock = threading.Lock()

    def publisher_for(_campaign: CampaignRecord, account: AccountRecord) -> Publisher:
        with lock:
            if account.name not in publishers:
                server, token = servers[account.name]
                publishers[account.name] = MastodonPublisher(_profile(server, clock.now()), token)
            return publishers[account.name]

    def published(record: PublicationRecord) -> None:
        late = (record.published_at or clock.now()) - record.scheduled_at
        local = record.scheduled_at.astimezone(zone)
        progress(
            f"{local:%Y-%m-%d %H:%M %z}  {record.account:<10} {record.post} "
            f"{record.part}/{record.parts}  published  (+{_span(late.total_seconds())})"
        )

    done = threading.Event()
    total = len(report.publications)

    def ticked(tick: TickReport) -> None:
        for outcome, count in tick.outcomes.items():
            if outcome != "published":
                progress(f"{clock.now():%Y-%m-%d %H:%M}Z  {count} {outcome}")
        finished = sum(
            n for row in store.status() for state, n in row.counts.items() if state in FINAL
        )
        if finished >= total or tick.next_due is None:
            done.set()

    dispatcher = Dispatcher(
        store,
        publisher_for,
        clock,
        DispatchSettings(owner="rehearsal", workers=4),
        on_published=published,
    )
    daemon = Daemon(store, dispatcher, [], timeline=RehearsalTimeline(clock, speed), on_tick=ticked)
    started = time.monotonic()
    daemon.start()
    try:
        done.wait(timeout=REAL_TIMEOUT)
    finally:
        daemon.stop()
    real = time.monotonic() - started
    records = store.publications()
    store.engine.dispose()
    return _result(records, servers, speed, real)


def _result(
    records: list[PublicationRecord],
    servers: dict[str, tuple[SandboxServer, str]],
    speed: float,
    real: float,
) -> RehearsalResult:
    counts = Counter(r.state.value for r in records)
    duplicates: list[str] = []
    missing: list[str] = []
    for name, (server, _token) in servers.items():
        stored = server.statuses(name)
        ids = Counter(str(s["id"]) for s in stored)
        published = {r.remote_id for r in records if r.account == name and r.remote_id}
        duplicates += [f"{name}: {i}" for i, n in ids.items() if n > 1]
        extra = len(stored) - len(published)
        if extra > 0:
            duplicates.append(f"{name}: {extra} more status(es) on the server than published")
        missing += [f"{name}: {i}" for i in published - set(ids)]
    lateness = [
        (r.published_at - r.scheduled_at).total_seconds()
        for r in records
        if r.published_at is not None
    ]
    return RehearsalResult(speed, real, counts, duplicates, missing, lateness, records)


def _profile(server: SandboxServer, now: datetime) -> ServerProfile:
    software = Software(server.personality.name)
    facts = FACTS[software]
    return ServerProfile(
        instance=server.url,
        software=software.value,
        version="sandbox",
        max_characters=facts.max_characters,
        characters_per_url=facts.characters_per_url,
        max_media=facts.max_media,
        idempotency_ttl=facts.idempotency_ttl,
        scheduled_at=False,
        fetched_at=now.astimezone(UTC),
    )


def _span(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
