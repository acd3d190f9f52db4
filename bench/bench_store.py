"""Benchmark the store: sync of a 100,000-publication campaign, re-sync, queue and status.

    .venv/bin/python bench/bench_store.py [--publications 100000] [--postgres URL]

Generates a campaign of N publications (posts × accounts), then times, as an organiser
would run them (subprocesses of the real command line):
  - `postscheduler sync` into a fresh SQLite file (target ≤ 10 s), then again unchanged
    (target ≤ 3 s);
  - `postscheduler queue --limit 50` and `postscheduler status` (target ≤ 0.5 s each,
    reported both as whole commands and as the store call alone, in-process);
  - the size of the SQLite file;
  - the same sync / re-sync on PostgreSQL when --postgres URL is given (a fresh schema is
    created and dropped).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from postscheduler.store.database import create, normalise_url
from postscheduler.store.sql import SqlStore

ROOT = Path(__file__).resolve().parent.parent
EXE = [sys.executable, "-m", "postscheduler"]


def generate(
    folder: Path,
    publications: int,
    accounts: int = 20,
    *,
    opens: datetime | None = None,
    softwares: tuple[str, ...] = ("mastodon", "gotosocial", "pleroma", "takahe"),
) -> Path:
    """A campaign whose posts each go to every account: publications ≈ posts × accounts.

    The window is a year from 2017-10-05 in Caracas, or from ``opens`` (UTC) when given.
    """
    shutil.copy(ROOT / "config" / "statement.txt", folder / "statement.txt")
    posts = max(1, publications // accounts)
    if opens is None:
        zone, start = "America/Caracas", datetime(2017, 10, 5)
    else:
        zone, start = "UTC", opens.replace(microsecond=0, tzinfo=None)
    lines = [
        "[campaign]",
        'id = "bench"',
        'name = "Bench"',
        f'timezone = "{zone}"',
        f"start = {start.isoformat()}",
        f"end = {(start + timedelta(days=365)).isoformat()}",
        'statement = "statement.txt"',
        'language = "fr"',
        'hashtags = ["NousSommesTousLeVenezuela"]',
        'posting_hours = ["00:00", "24:00"]',
        'min_spacing = "1m"',
        "",
    ]
    for index in range(accounts):
        lines += [
            f"[accounts.a{index}]",
            f'instance = "https://s{index}.example"',
            f'token = {{ env = "TOKEN_{index}" }}',
            f'software = "{softwares[index % len(softwares)]}"',
            "",
        ]
    for number in range(posts):
        lines += [
            "[[posts]]",
            f'id = "p{number}"',
            f'text = "Message {number} : « {{excerpt}} »"',
            f'excerpt = {{ paragraph = 2, sentences = "{1 + number % 3}" }}',
            f'hashtags = ["Tag{number % 50}"]',
            "",
        ]
    path = folder / "campaign.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed, result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def store_calls(url: str) -> tuple[float, float]:
    store = SqlStore(create(url))
    start = time.perf_counter()
    store.publications(limit=50)
    queue = time.perf_counter() - start
    start = time.perf_counter()
    store.status()
    status = time.perf_counter() - start
    store.engine.dispose()
    return queue, status


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--publications", type=int, default=100_000)
    parser.add_argument(
        "--postgres", metavar="URL", default=os.environ.get("POSTSCHEDULER_TEST_POSTGRES_URL")
    )
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        campaign = generate(folder, args.publications)
        database = folder / "bench.sqlite3"
        url = f"sqlite:///{database}"
        first, said = timed([*EXE, "sync", str(campaign), "--db", url], env)
        print(f"sqlite  sync (fresh file):      {first:6.2f} s   target <= 10 s   [{said}]")
        again, said = timed([*EXE, "sync", str(campaign), "--db", url], env)
        print(f"sqlite  re-sync (unchanged):    {again:6.2f} s   target <= 3 s    [{said}]")
        queue, _ = timed([*EXE, "queue", "--limit", "50", "--db", url], env)
        status, _ = timed([*EXE, "status", "--db", url], env)
        queue_call, status_call = store_calls(url)
        for name, whole, call in (
            ("queue --limit 50", queue, queue_call),
            ("status", status, status_call),
        ):
            print(
                f"sqlite  {name + ':':23s} {whole:6.2f} s   "
                f"(store call {call * 1000:.0f} ms)   target <= 0.5 s"
            )
        size = database.stat().st_size + sum(
            p.stat().st_size for p in folder.glob("bench.sqlite3-*") if p.is_file()
        )
        megabytes = size / 1e6
        print(f"sqlite  database size:          {megabytes:6.1f} MB for {args.publications} rows")

        if args.postgres:
            server = normalise_url(args.postgres)
            schema = f"ps_bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(server)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                pg = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
                pg_url = pg.render_as_string(hide_password=False)
                first, said = timed([*EXE, "sync", str(campaign), "--db", pg_url], env)
                print(f"postgres sync (fresh schema):   {first:6.2f} s   target <= 10 s   [{said}]")
                again, said = timed([*EXE, "sync", str(campaign), "--db", pg_url], env)
                print(f"postgres re-sync (unchanged):   {again:6.2f} s   target <= 3 s    [{said}]")
                queue_call, status_call = store_calls(pg_url)
                print(
                    f"postgres queue / status (store calls): {queue_call * 1000:.0f} ms"
                    f" / {status_call * 1000:.0f} ms"
                )
            finally:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
