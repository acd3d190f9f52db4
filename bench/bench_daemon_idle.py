"""Benchmark an idle daemon: memory and CPU of `postscheduler run` with nothing due soon.

    .venv/bin/python bench/bench_daemon_idle.py [--publications 100000] [--idle 60]
                                                [--settle 10] [--plan-at-start]

Generates a campaign file whose window opens in 30 days (about ``--publications``
publications: posts × 20 accounts), syncs it into a fresh SQLite file with
`postscheduler sync`, then starts `postscheduler run` on the same file and database as a
subprocess (its start-up sync finds the file unchanged). With ``--plan-at-start`` the
database is only created (`postscheduler db upgrade`), and the daemon's start-up sync
plans every publication itself. Once it has logged "daemon started" and ``--settle``
seconds have passed, reads from ``/proc/PID``:

- RSS (``VmRSS``; target ≤ 70 MB) and its peak (``VmHWM``), threads;
- CPU time (utime + stime of ``/proc/PID/stat``) over ``--idle`` seconds (target ≤ 0.05 s
  per 60 s).

Then, in this process, what one run of each idle job costs — the file watcher (every 2 s),
the heartbeat (its row written every 30 s) and the profile refresh (every 10 min) — to say
which part of the idle CPU is theirs. Finally SIGTERM, and the daemon must exit 0. Nothing
is published and nothing leaves the machine (the instances are never contacted: nothing is
due for 30 days, and the refresh only asks again servers whose profile is cached — none).
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bench_store  # beside this script: the campaign generator both benchmarks use

from postscheduler.clock import SystemClock
from postscheduler.daemon import HEARTBEAT_EVERY, REFRESH_EVERY, WATCH_EVERY, Daemon, Timeline
from postscheduler.dispatcher import Dispatcher, DispatchSettings
from postscheduler.profile_refresh import ProfileRefresher
from postscheduler.store.database import create
from postscheduler.store.sql import SqlStore

ROOT = Path(__file__).resolve().parent.parent
EXE = [sys.executable, "-m", "postscheduler"]
TARGET_RSS_MB = 70.0
TARGET_CPU_S = 0.05
ACCOUNTS = 20


def generate(folder: Path, publications: int, opens: datetime) -> Path:
    """bench_store's campaign (every post to every account), on Mastodon accounts, in a
    window opening at ``opens``."""
    return bench_store.generate(
        folder, publications, ACCOUNTS, opens=opens, softwares=("mastodon",)
    )


def proc_status(pid: int) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        found[name] = value.strip()
    return found


def megabytes(value: str) -> float:
    """``/proc`` "1234 kB" as MB (10^6 bytes)."""
    return int(value.split(maxsplit=1)[0]) * 1024 / 1e6


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Lines:
    """The daemon's stderr, read in a thread (kept, and searchable)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        assert process.stderr is not None
        self.thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self.thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def seen(self, text: str) -> bool:
        with self.lock:
            return any(text in line for line in self.lines)

    def tail(self, count: int = 15) -> str:
        with self.lock:
            return "\n".join(self.lines[-count:])


def job_costs(campaign: Path, url: str, repeat: int = 200) -> tuple[float, float, float]:
    """CPU ms of one run of the file watcher (file unchanged), of the heartbeat (one row
    written) and of the profile refresh (nothing to ask), measured in this process on a
    daemon built like `run` builds it (its row written, its timer not started)."""
    store = SqlStore(create(url))
    clock = SystemClock()
    dispatcher = Dispatcher(store, lambda c, a: None, clock, DispatchSettings(owner="bench"))  # type: ignore[arg-type,return-value]
    refresher = ProfileRefresher(store, clock, margin=REFRESH_EVERY)
    daemon = Daemon(store, dispatcher, [campaign], timeline=Timeline(clock), refresher=refresher)
    daemon._introduce()
    costs = []
    for job in (daemon._watch, daemon.heartbeat, daemon.refresh_profiles):
        job()
        began = time.thread_time()
        for _ in range(repeat):
            job()
        costs.append((time.thread_time() - began) / repeat * 1000)
    refresher.close()
    dispatcher.close()
    store.engine.dispose()
    return costs[0], costs[1], costs[2]


def measure(
    campaign: Path, url: str, env: dict[str, str], args: argparse.Namespace
) -> tuple[float, float, float, str, float, int, Lines]:
    """Run the daemon; return RSS, peak, RSS after, threads, idle CPU, exit status, stderr."""
    process = subprocess.Popen(
        [*EXE, "run", str(campaign), "--db", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = Lines(process)
    try:
        started = time.monotonic()
        deadline = started + 180
        while time.monotonic() < deadline and process.poll() is None:
            if lines.seen("daemon started"):
                break
            time.sleep(0.1)
        if not lines.seen("daemon started"):
            sys.exit(f"the daemon did not start:\n{lines.tail()}")
        print(f"  started in {time.monotonic() - started:.1f} s; settling {args.settle:.0f} s")
        time.sleep(args.settle)
        status = proc_status(process.pid)
        rss, peak = megabytes(status["VmRSS"]), megabytes(status["VmHWM"])
        before = cpu_seconds(process.pid)
        time.sleep(args.idle)
        idle_cpu = cpu_seconds(process.pid) - before
        after = proc_status(process.pid)
        rss_after = megabytes(after["VmRSS"])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(timeout=10)
    return rss, peak, rss_after, status["Threads"], idle_cpu, code, lines


def queued(database: Path) -> int:
    """How many publications the SQLite file holds waiting."""
    with sqlite3.connect(database) as db:
        count: int = db.execute(
            "SELECT count(*) FROM publications WHERE state = 'scheduled'"
        ).fetchone()[0]
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--publications", type=int, default=100_000)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measured")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after start-up")
    parser.add_argument(
        "--plan-at-start",
        action="store_true",
        help="let the daemon's start-up sync plan the campaign (no `sync` before `run`)",
    )
    args = parser.parse_args()
    env = {**os.environ, **{f"IDLE_TOKEN_{i}": f"not-a-real-token-{i}" for i in range(ACCOUNTS)}}
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        folder = Path(tmp)
        campaign = generate(folder, args.publications, datetime.now(UTC) + timedelta(days=30))
        database = folder / "idle.sqlite3"
        url = f"sqlite:///{database}"
        began = time.perf_counter()
        before_run = ["db", "upgrade"] if args.plan_at_start else ["sync", str(campaign)]
        synced = subprocess.run(
            [*EXE, *before_run, "--db", url],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=300,
        )
        if synced.returncode != 0:
            sys.exit(f"sync failed:\n{synced.stdout[-2000:]}{synced.stderr[-2000:]}")
        if not args.plan_at_start:
            print(
                f"idle daemon: {queued(database)} publications queued, the first due in 30 "
                f"days (synced in {time.perf_counter() - began:.1f} s)"
            )

        measured = measure(campaign, url, env, args)
        if args.plan_at_start:
            print(
                f"  the daemon planned {queued(database)} publications at start, the first "
                "due in 30 days"
            )
        watch_ms, heartbeat_ms, refresh_ms = job_costs(campaign, url)

    rss, peak, rss_after, threads, idle_cpu, code, lines = measured
    per_minute = idle_cpu * 60 / args.idle
    print(
        f"  RSS after settling: {rss:.1f} MB (peak {peak:.1f} MB; {rss_after:.1f} MB after the "
        f"idle period; {threads} threads)   "
        f"[{'meets' if rss <= TARGET_RSS_MB else 'MISSES'} target <= {TARGET_RSS_MB:.0f} MB]"
    )
    print(
        f"  CPU over {args.idle:.0f} idle seconds: {idle_cpu:.3f} s ({per_minute:.3f} s/min)   "
        f"[{'meets' if per_minute <= TARGET_CPU_S else 'MISSES'} target <= {TARGET_CPU_S} s/min]"
    )
    watches = 60 / WATCH_EVERY.total_seconds()
    beats = 60 / HEARTBEAT_EVERY.total_seconds()
    refreshes = 60 / REFRESH_EVERY.total_seconds()
    print(
        f"  one file-watcher run (file unchanged): {watch_ms:.3f} ms CPU × {watches:.0f}/min = "
        f"{watch_ms * watches / 1000:.4f} s/min; one heartbeat: {heartbeat_ms:.3f} ms × "
        f"{beats:.0f}/min = {heartbeat_ms * beats / 1000:.4f} s/min; one profile refresh "
        f"({ACCOUNTS} accounts, nothing to ask): {refresh_ms:.3f} ms × {refreshes:.1f}/min "
        "(measured in-process, without APScheduler's own wake-ups)"
    )
    print(f"  SIGTERM → exit status {code}   [{'ok' if code == 0 else 'NOT 0'}]")
    if code != 0:
        print(lines.tail())
        sys.exit(1)


if __name__ == "__main__":
    main()
