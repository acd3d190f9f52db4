"""Benchmark the daemon's lateness: from a publication's due instant to its request sent.

    .venv/bin/python bench/bench_daemon_lateness.py [--sizes 1000,10000,100000] [--stream 300]
                                                    [--seconds 40] [--accounts 20] [--workers 4]

For each size N, a fresh SQLite store holds N publications: N − stream of them in a "bulk"
campaign due in the coming weeks (never during the run), and a "stream" campaign of a few
hundred due at random instants over ``--seconds`` of real time. The real :class:`Daemon`
(APScheduler date job re-armed to ``store.next_due()``) runs on the system clock with the
real dispatcher and Mastodon.py publishers, against a sandbox server in **its own process**
(``python -m postscheduler.sandbox``) so that the server does not share the daemon's GIL.

Lateness is measured twice, on the same (system) clock:

- **sent**: a Publisher wrapper takes ``time.time()`` just before ``post_status``;
- **received**: the sandbox's ``created_at`` for the status (millisecond precision, taken
  when it stores the status), from its JSONL record.

Prints p50 / p99 / max per size, and what each store call took inside the daemon
(target: p99 ≤ 50 ms at 100,000). Every loop is bounded; the run takes about
``sizes × (seconds + sync + 15 s)``.

Other benchmarks import the helpers here (sandbox process, generated plans, the timing
wrappers).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from postscheduler.clock import SystemClock
from postscheduler.daemon import Daemon, Timeline
from postscheduler.dispatcher import Dispatcher, DispatchSettings
from postscheduler.domain.campaign import Visibility
from postscheduler.domain.keys import idempotency_key, publication_key
from postscheduler.domain.plan import PlannedPublication
from postscheduler.domain.software import FACTS, Software
from postscheduler.domain.timing import Budget
from postscheduler.ports import (
    AccountRecord,
    CampaignRecord,
    FileVersion,
    PublicationRecord,
    Published,
    Publisher,
    ServerProfile,
)
from postscheduler.publishers.client import Timeouts
from postscheduler.publishers.mastodon import MastodonPublisher
from postscheduler.store.database import create
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore

TARGET_P99_MS = 50.0
#: No pacing in the benchmarks: the budget is never the limit.
NO_BUDGET = Budget(count=1_000_000_000, period=timedelta(hours=3))


# -- the sandbox, in its own process -------------------------------------------------------


class SandboxProcess:
    """``python -m postscheduler.sandbox`` with ``accounts``; stopped on exit (bounded)."""

    def __init__(self, accounts: Sequence[str], record: Path | None) -> None:
        command = [
            sys.executable,
            "-m",
            "postscheduler.sandbox",
            "--accounts",
            ",".join(accounts),
            "--statuses-per-window",
            "1000000000",
        ]
        if record is not None:
            command += ["--record", str(record)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = json.loads(self.process.stdout.readline())
        self.url: str = line["url"]
        self.tokens: dict[str, str] = line["tokens"]
        self.pid: int = self.process.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid) or 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by ``pid`` (Linux ``/proc``), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile_of(url: str) -> ServerProfile:
    facts = FACTS[Software.MASTODON]
    return ServerProfile(
        instance=url,
        software="mastodon",
        version="sandbox",
        max_characters=facts.max_characters,
        characters_per_url=facts.characters_per_url,
        max_media=facts.max_media,
        idempotency_ttl=facts.idempotency_ttl,
        scheduled_at=False,
        fetched_at=datetime.now(UTC),
    )


# -- stores and plans ----------------------------------------------------------------------


def fresh_store(folder: Path, name: str = "bench") -> SqlStore:
    """A migrated SQLite store in ``folder`` (WAL, synchronous=FULL: as the daemon opens it)."""
    url = f"sqlite:///{folder / (name + '.sqlite3')}"
    upgrade(url, backup=False)
    return SqlStore(create(url))


def campaign_record(ident: str, now: datetime, *, min_spacing: timedelta) -> CampaignRecord:
    return CampaignRecord(
        id=ident,
        name=ident,
        timezone="UTC",
        window_start=now - timedelta(hours=1),
        window_end=now + timedelta(days=400),
        misfire_policy="grace",
        misfire_grace=timedelta(hours=1),
        path=f"/nonexistent/{ident}.toml",
        min_spacing=min_spacing,
    )


def account_records(campaign: str, names: Sequence[str], url: str) -> list[AccountRecord]:
    return [AccountRecord(campaign, name, url, "mastodon", f"env:TOKEN_{name}") for name in names]


def planned(
    campaign: str, number: int, account: str, at: datetime, text: str | None = None
) -> PlannedPublication:
    """One generated single-part publication (text ~100 characters, as a campaign's)."""
    post = f"p{number}"
    body = text or f"Message {number} : « Nous sommes tous le Venezuela » #Tag{number % 50}"
    return PlannedPublication(
        key=publication_key(campaign, post, account, 1),
        campaign=campaign,
        post=post,
        occurrence=None,
        account=account,
        instance="sandbox",
        part=1,
        parts=1,
        scheduled_at=at,
        local_at=at,
        text=body,
        spoiler_text="",
        visibility=Visibility.PUBLIC,
        language="fr",
        sensitive=False,
        hashtags=(f"Tag{number % 50}",),
        media=(),
        reply_to=None,
        characters=len(body),
        limit=500,
        counting="mastodon",
        content_hash=f"{campaign}-{number}".encode().hex()[:64].ljust(64, "0"),
    )


def sync(
    store: SqlStore,
    campaign: CampaignRecord,
    accounts: Sequence[AccountRecord],
    publications: Sequence[PlannedPublication],
) -> float:
    """Sync ``publications`` into ``store``; return the seconds it took."""
    began = time.perf_counter()
    store.sync(
        campaign,
        accounts,
        publications,
        FileVersion(campaign.path, "bench", datetime.now(UTC), campaign=campaign.id),
    )
    return time.perf_counter() - began


def bulk_plan(
    campaign: str, count: int, accounts: Sequence[str], start: datetime
) -> list[PlannedPublication]:
    """``count`` publications from ``start`` on: each post to every account, a minute apart."""
    width = len(accounts)
    return [
        planned(campaign, n, accounts[n % width], start + timedelta(minutes=n // width))
        for n in range(count)
    ]


# -- timing wrappers -----------------------------------------------------------------------


class TimingPublisher:
    """A Publisher that notes ``time.time()`` just before each ``post_status``."""

    def __init__(self, inner: Publisher, sent: dict[str, float], lock: threading.Lock) -> None:
        self.inner = inner
        self.sent = sent
        self.lock = lock

    def upload_media(self, media: dict[str, Any], path: str) -> str:
        return self.inner.upload_media(media, path)

    def post_status(
        self,
        publication: PublicationRecord,
        *,
        idempotency_key: str,
        in_reply_to_id: str | None,
        media_ids: Sequence[str],
    ) -> Published:
        moment = time.time()
        with self.lock:
            self.sent.setdefault(publication.key, moment)
        return self.inner.post_status(
            publication,
            idempotency_key=idempotency_key,
            in_reply_to_id=in_reply_to_id,
            media_ids=media_ids,
        )

    def find_status(
        self,
        publication: PublicationRecord,
        *,
        since: datetime,
        exclude: Collection[str] = frozenset(),
    ) -> Published | None:
        return self.inner.find_status(publication, since=since, exclude=exclude)


class Publishers:
    """``publisher_for``: one Mastodon.py publisher per account (as LivePublishers does)."""

    def __init__(self, url: str, tokens: dict[str, str], *, timing: bool = True) -> None:
        self.url = url
        self.tokens = tokens
        self.timing = timing
        self.sent: dict[str, float] = {}
        self._lock = threading.Lock()
        self._publishers: dict[tuple[str, str], Publisher] = {}

    def __call__(self, campaign: CampaignRecord, account: AccountRecord) -> Publisher:
        key = (campaign.id, account.name)
        with self._lock:
            if key not in self._publishers:
                inner = MastodonPublisher(
                    profile_of(account.instance),
                    self.tokens[account.name],
                    timeouts=Timeouts(connect=5, read=30),
                )
                self._publishers[key] = (
                    TimingPublisher(inner, self.sent, self._lock) if self.timing else inner
                )
            return self._publishers[key]


class TimedStore:
    """The store, with the wall time of each call noted per method (for the breakdown)."""

    WATCHED = frozenset(
        {"reap", "claim_due", "campaigns", "accounts", "record", "next_due", "get", "keep_media"}
    )

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.calls: dict[str, list[float]] = defaultdict(list)
        #: For each claimed key: when its claim_due began and ended (``time.time()``).
        self.claims: dict[str, tuple[float, float]] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in self.WATCHED:
            return attribute
        calls = self.calls[name]

        def timed(*args: Any, **kwargs: Any) -> Any:
            began, wall = time.perf_counter(), time.time()
            try:
                result = attribute(*args, **kwargs)
            finally:
                calls.append(time.perf_counter() - began)
            if name == "claim_due":
                ended = time.time()
                for record in result:
                    self.claims.setdefault(record.key, (wall, ended))
            return result

        return timed

    def breakdown(self) -> str:
        parts = []
        for name in sorted(self.calls):
            values = sorted(self.calls[name])
            if values:
                parts.append(
                    f"{name} ×{len(values)} mean {statistics.fmean(values) * 1000:.1f} "
                    f"p99 {percentile(values, 0.99) * 1000:.1f} ms"
                )
        return "; ".join(parts)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted ``ordered``."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def wait_until(done: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    """Poll ``done`` until true or ``timeout`` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(step)
    return done()


# -- the lateness run ----------------------------------------------------------------------


def read_record(path: Path) -> list[dict[str, Any]]:
    """The sandbox's JSONL record: every status it stored."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, from ``/proc/stat``)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def stream_plan(
    names: Sequence[str], first: datetime, args: argparse.Namespace, rng: random.Random
) -> list[PlannedPublication]:
    """``--stream`` publications due over ``--seconds`` from ``first``, at random instants,
    in groups of ``--burst`` (one post to several accounts at the same instant)."""
    groups = max(1, args.stream // args.burst)
    offsets = sorted(rng.uniform(0, args.seconds) for _ in range(groups))
    due: list[PlannedPublication] = []
    for offset in offsets:
        at = first + timedelta(seconds=offset)
        for account in rng.sample(list(names), min(args.burst, len(names))):
            due.append(planned("stream", len(due), account, at))
    return due


def lateness(
    due: Sequence[PlannedPublication],
    sent: dict[str, float],
    claims: dict[str, tuple[float, float]],
    stored: Sequence[dict[str, Any]],
) -> dict[str, list[float]]:
    """Seconds late, sorted, by stage: sent, received (by the sandbox), and the parts of
    "sent": timer (due → claim begins), claim, handoff (claimed → post_status)."""
    by_key = {p.key: p for p in due}
    late: dict[str, list[float]] = defaultdict(list)
    for key, moment in sent.items():
        due_at = by_key[key].scheduled_at.timestamp()
        late["sent"].append(moment - due_at)
        if key in claims:
            claim_began, claim_ended = claims[key]
            late["timer"].append(claim_began - due_at)
            late["claim"].append(claim_ended - claim_began)
            late["handoff"].append(moment - claim_ended)
    received = {str(row.get("idempotency_key")): row for row in stored}
    for p in due:
        row = received.get(idempotency_key(p.key, p.content_hash))
        if row is not None:
            at = datetime.fromisoformat(str(row["created_at"]).replace("Z", "+00:00"))
            late["received"].append((at - p.scheduled_at).total_seconds())
    return {name: sorted(values) for name, values in late.items()}


def run_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    names = [f"a{i}" for i in range(args.accounts)]
    rng = random.Random(size)  # noqa: S311 - a reproducible spread, not a secret
    with tempfile.TemporaryDirectory(prefix="bench-lateness-", dir=args.dir) as tmp:
        folder = Path(tmp)
        record = folder / "record.jsonl"
        with SandboxProcess(names, record) as sandbox:
            inner = fresh_store(folder)
            now = datetime.now(UTC)
            bulk = campaign_record("bulk", now, min_spacing=timedelta(minutes=1))
            bulk_accounts = account_records("bulk", names, sandbox.url)
            plan = bulk_plan("bulk", size - args.stream, names, now + timedelta(days=2))
            bulk_seconds = sync(inner, bulk, bulk_accounts, plan)
            del plan
            # The stream: due from --lead seconds from now, spread over --seconds.
            first = datetime.now(UTC) + timedelta(seconds=args.lead)
            stream = campaign_record("stream", first, min_spacing=timedelta(0))
            due = stream_plan(names, first, args, rng)
            sync(inner, stream, account_records("stream", names, sandbox.url), due)

            store = TimedStore(inner)
            publishers = Publishers(sandbox.url, sandbox.tokens)
            clock = SystemClock()
            settings = DispatchSettings(owner="bench", workers=args.workers, budget=NO_BUDGET)
            dispatcher = Dispatcher(store, publishers, clock, settings)  # type: ignore[arg-type]
            daemon = Daemon(store, dispatcher, [], timeline=Timeline(clock))  # type: ignore[arg-type]
            cpu_before, busy_before = time.process_time(), machine_busy_seconds()
            sandbox_before, began = sandbox.cpu_seconds(), time.monotonic()
            daemon.start()
            try:
                wait_until(
                    lambda: len(publishers.sent) >= len(due),
                    timeout=args.lead + args.seconds + 30,
                )
                time.sleep(0.5)  # let the last outcomes be recorded
            finally:
                daemon.stop()
            elapsed = time.monotonic() - began
            cpu = time.process_time() - cpu_before
            sandbox_cpu = sandbox.cpu_seconds() - sandbox_before
            others = machine_busy_seconds() - busy_before - cpu - sandbox_cpu
        stored = read_record(record)
        states = {r.key: r.state for r in inner.publications(campaign="stream")}
        inner.engine.dispose()
    return {
        "size": size,
        "bulk_sync": bulk_seconds,
        "due": len(due),
        "late": lateness(due, publishers.sent, store.claims, stored),
        "stored": len(stored),
        "published": sum(1 for s in states.values() if s.value == "published"),
        "cpu": cpu,
        "sandbox_cpu": sandbox_cpu,
        "others": max(others, 0.0) / elapsed,
        "breakdown": store.breakdown(),
    }


def describe(values: Sequence[float]) -> str:
    if not values:
        return "no data"
    ms = [v * 1000 for v in values]
    return (
        f"p50 {statistics.median(ms):7.1f} ms   p99 {percentile(ms, 0.99):7.1f} ms   "
        f"max {max(ms):7.1f} ms   min {min(ms):6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--stream", type=int, default=300, help="publications due during the run")
    parser.add_argument("--seconds", type=float, default=40.0, help="the stream's spread")
    parser.add_argument("--burst", type=int, default=1, help="accounts due at the same instant")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds before the first due")
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--dir", default=None, help="folder for the SQLite store (default: the temp dir)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    failed = False
    print(
        f"daemon lateness: {args.stream} due over {args.seconds:.0f} s (groups of {args.burst}), "
        f"{args.accounts} accounts, {args.workers} workers, sandbox in its own process; "
        f"target p99 <= {TARGET_P99_MS:.0f} ms"
    )
    for size in sizes:
        result = run_size(size, args)
        late = result["late"]
        p99 = percentile(late["sent"], 0.99) * 1000 if late.get("sent") else float("inf")
        verdict = "meets" if p99 <= TARGET_P99_MS else "MISSES"
        print(f"\n{size:>7} publications queued (bulk sync {result['bulk_sync']:.1f} s)")
        print(f"  due → request sent:      {describe(late.get('sent', []))}   [{verdict} target]")
        print(f"  due → sandbox stored it: {describe(late.get('received', []))}")
        print("  of which:")
        print(f"    due → claim begins:    {describe(late.get('timer', []))}")
        print(f"    claim_due itself:      {describe(late.get('claim', []))}")
        print(f"    claimed → sending:     {describe(late.get('handoff', []))}")
        print(
            f"  {result['due']} due, {len(late.get('sent', []))} sent, {result['stored']} stored "
            f"by the sandbox, {result['published']} recorded published"
        )
        print(
            f"  CPU: daemon process {result['cpu']:.1f} s, sandbox {result['sandbox_cpu']:.1f} s; "
            f"other processes on the machine meanwhile: {result['others']:.2f} cores busy"
        )
        print(f"  store calls in the daemon: {result['breakdown']}")
        if result["stored"] != result["due"] or result["published"] != result["due"]:
            print("  MISMATCH: not every due publication was published exactly once")
            failed = True
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
