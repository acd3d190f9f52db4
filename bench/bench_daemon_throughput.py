"""Benchmark the daemon's throughput: publications per second, everything due at once.

    .venv/bin/python bench/bench_daemon_throughput.py [--publications 5000] [--accounts 100]
        [--workers 8] [--batch 32] [--sandboxes 2] [--driver daemon|once] [--dir DIR]
        [--profile FILE]

A fresh SQLite store holds ``--publications`` single-part publications spread over
``--accounts`` accounts, all already due (no pacing: min_spacing 0 and a budget that never
binds). The real dispatcher (``--workers`` threads, ``--batch`` claims per tick) with
Mastodon.py publishers sends them to sandbox servers running in ``--sandboxes`` separate
processes (accounts split between them), driven by the real :class:`Daemon` (its timer is
re-armed at once while claims keep coming) or by ``run --once``'s loop (``--driver once``).

Prints publications/s (target ≥ 500/s on 2 cores), the CPU used by this process and by
each sandbox process, the client-side CPU per publication (target ≤ 2 ms, the sandbox's
excluded), what each store call took, and checks that every publication was stored by a
sandbox exactly once. ``--profile FILE`` runs the dispatcher under cProfile and prints
where the time went (the top functions by own time and by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_daemon_lateness import (
    NO_BUDGET,
    Publishers,
    SandboxProcess,
    TimedStore,
    account_records,
    campaign_record,
    fresh_store,
    machine_busy_seconds,
    planned,
    read_record,
    sync,
    wait_until,
)

from postscheduler.clock import SystemClock
from postscheduler.daemon import Daemon, Timeline, run_once
from postscheduler.dispatcher import Dispatcher, DispatchSettings, TickReport
from postscheduler.domain.plan import PlannedPublication

TARGET_PER_SECOND = 500.0
TARGET_CLIENT_MS = 2.0


class ThreadProfiles:
    """cProfile for a multi-threaded run: one profiler per thread (cProfile sees only the
    thread that enabled it), wrapped around the functions given; CPU time (thread_time)."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.profiles: list[cProfile.Profile] = []
        self.lock = threading.Lock()

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def profiled(*args: Any, **kwargs: Any) -> Any:
            profile = getattr(self.local, "profile", None)
            if profile is None:
                profile = cProfile.Profile(time.thread_time)
                self.local.profile = profile
                with self.lock:
                    self.profiles.append(profile)
            return profile.runcall(function, *args, **kwargs)

        return profiled

    def dump(self, path: Path) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            stats.add(profile)
        stats.dump_stats(str(path))
        return stats


def due_plan(count: int, names: list[str], now: datetime) -> list[PlannedPublication]:
    """``count`` publications over ``names``, each account's a second apart, all due by now
    (the latest one second ago)."""
    width = len(names)
    rounds = -(-count // width)
    return [
        planned(
            "burst",
            n,
            names[n % width],
            now - timedelta(seconds=1 + rounds - n // width),
        )
        for n in range(count)
    ]


def main() -> None:  # noqa: PLR0915 - one straight script: set up, run, report
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--publications", type=int, default=5_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--dir", default=None, help="folder for the SQLite store (default: the temp dir)"
    )
    parser.add_argument("--batch", type=int, default=32, help="claims per tick (daemon: 32)")
    parser.add_argument("--sandboxes", type=int, default=2, help="sandbox processes")
    parser.add_argument("--driver", choices=("daemon", "once"), default="daemon")
    parser.add_argument("--timeout", type=float, default=240.0, help="give up after (seconds)")
    parser.add_argument("--profile", type=Path, help="cProfile the run into FILE and summarise")
    args = parser.parse_args()

    names = [f"a{i}" for i in range(args.accounts)]
    groups = [names[i :: args.sandboxes] for i in range(args.sandboxes)]
    with tempfile.TemporaryDirectory(prefix="bench-throughput-", dir=args.dir) as tmp:
        folder = Path(tmp)
        records = [folder / f"record{i}.jsonl" for i in range(args.sandboxes)]
        sandboxes = [
            SandboxProcess(group, record) for group, record in zip(groups, records, strict=True)
        ]
        try:
            url_of = {
                name: s.url for s, group in zip(sandboxes, groups, strict=True) for name in group
            }
            tokens = {name: t for s in sandboxes for name, t in s.tokens.items()}
            inner = fresh_store(folder)
            now = datetime.now(UTC)
            campaign = campaign_record("burst", now, min_spacing=timedelta(0))
            accounts = [account_records("burst", [name], url_of[name])[0] for name in names]
            plan = due_plan(args.publications, names, now)
            synced = sync(inner, campaign, accounts, plan)
            print(
                f"daemon throughput: {len(plan)} publications due at once over "
                f"{args.accounts} accounts (synced in {synced:.1f} s), {args.workers} workers, "
                f"batch {args.batch}, driver {args.driver}, {args.sandboxes} sandbox process(es)"
            )

            store = TimedStore(inner)
            publishers = Publishers("", tokens, timing=False)
            clock = SystemClock()
            settings = DispatchSettings(
                owner="bench", workers=args.workers, batch=args.batch, budget=NO_BUDGET
            )
            published = Counter[str]()
            lock = threading.Lock()

            def count(report: TickReport) -> None:
                with lock:
                    published.update(report.outcomes)

            dispatcher = Dispatcher(store, publishers, clock, settings)  # type: ignore[arg-type]
            profiles = ThreadProfiles() if args.profile else None
            if profiles is not None:
                # The worker threads run _process; the timer's thread (or this one) runs tick.
                dispatcher._process = profiles.wrap(dispatcher._process)  # type: ignore[method-assign]
                dispatcher.tick = profiles.wrap(dispatcher.tick)  # type: ignore[method-assign]
            sandbox_before = [s.cpu_seconds() for s in sandboxes]
            busy_before, cpu_before = machine_busy_seconds(), time.process_time()
            began = time.monotonic()
            if args.driver == "once":
                for report in run_once(dispatcher, limit=args.publications + 10):
                    count(report)
                dispatcher.close()
            else:
                daemon = Daemon(store, dispatcher, [], timeline=Timeline(clock), on_tick=count)  # type: ignore[arg-type]
                daemon.start()
                try:
                    wait_until(lambda: sum(published.values()) >= len(plan), timeout=args.timeout)
                finally:
                    daemon.stop()
            elapsed = time.monotonic() - began
            cpu = time.process_time() - cpu_before
            sandbox_cpu = [
                s.cpu_seconds() - b for s, b in zip(sandboxes, sandbox_before, strict=True)
            ]
            others = machine_busy_seconds() - busy_before - cpu - sum(sandbox_cpu)
        finally:
            for sandbox in sandboxes:
                sandbox.stop()
        stored = [row for record in records for row in read_record(record)]
        states = Counter(r.state.value for r in inner.publications(campaign="burst"))
        inner.engine.dispose()

    done = published["published"]
    rate = done / elapsed
    client_ms = cpu / max(done, 1) * 1000
    print(
        f"  {done} published in {elapsed:.2f} s: {rate:.0f} publications/s   "
        f"[{'meets' if rate >= TARGET_PER_SECOND else 'MISSES'} target >= 500/s]"
    )
    print(
        f"  client (this process) CPU {cpu:.1f} s = {client_ms:.2f} ms per publication   "
        f"[{'meets' if client_ms <= TARGET_CLIENT_MS else 'MISSES'} target <= 2 ms]"
    )
    sandbox_ms = sum(sandbox_cpu) / max(done, 1) * 1000
    print(
        f"  sandbox CPU: {', '.join(f'{c:.1f} s' for c in sandbox_cpu)} "
        f"({sum(sandbox_cpu) / elapsed:.0%} of one core, {sandbox_ms:.2f} ms per publication); "
        f"other processes on the machine: {max(others, 0.0) / elapsed:.2f} cores busy"
    )
    print(f"  outcomes: {dict(published)}; final states: {dict(states)}")
    print(f"  store calls: {store.breakdown()}")
    ids = Counter(str(row.get("idempotency_key")) for row in stored)
    duplicates = sum(n - 1 for n in ids.values() if n > 1)
    print(f"  the sandboxes stored {len(stored)} statuses ({duplicates} duplicates)")
    if profiles is not None and profiles.profiles:
        stats = profiles.dump(args.profile)
        print(f"\nprofile (CPU seconds per thread, {len(profiles.profiles)} threads merged):")
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
    if len(stored) != len(plan) or duplicates or states.get("published") != len(plan):
        print("  MISMATCH: not every publication was published exactly once")
        sys.exit(1)


if __name__ == "__main__":
    main()
