"""The crash-safety torture at full size: kill the daemon ≥ 100 times per database.

    .venv/bin/python bench/bench_torture.py [--kills 120] [--posts 50] [--accounts 20]
        [--seconds 300] [--only sqlite|postgresql] [--postgres URL] [--seed 1]

The same scenarios as ``tests/e2e/test_torture.py`` (whose machinery this loads), without
CI's time limit: a campaign of ``posts`` × ``accounts`` publications plus three threads,
half the accounts on a Mastodon sandbox and half on a GoToSocial one (which ignores the
Idempotency-Key); ``postscheduler run --lease 2 --workers 4`` SIGKILLed at random or
killed by its crash points until ``--kills`` deaths, then one clean run; then every
publication must be published exactly once, threads in order, none early or late.

- **sqlite**: one daemon, restarted after each death;
- **postgresql** (``--postgres URL``, default ``$POSTSCHEDULER_TEST_POSTGRES_URL``; skipped
  without one): three replicas killed independently, one SIGSTOPped past its lease while
  it holds claims (its late outcomes must be refused), on a fresh schema dropped afterwards.

Prints one line of figures per scenario (runs, kills, crash-point exits, restarts, the
history's claims, reaps and reconciliations, duplicates, lost, wall time) and a summary;
exits 1 if any scenario found a problem.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from postscheduler.store.database import normalise_url

ROOT = Path(__file__).resolve().parents[1]


def load_torture() -> ModuleType:
    """``tests/e2e/test_torture.py`` as a module (it is not a package)."""
    path = ROOT / "tests" / "e2e" / "test_torture.py"
    spec = importlib.util.spec_from_file_location("test_torture", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_torture"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@contextmanager
def postgres_schema(server: str) -> Iterator[str]:
    """A URL on a fresh schema of ``server``, dropped afterwards."""
    server = normalise_url(server)
    name = f"ps_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    url = make_url(server).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=120, help="deaths per database")
    parser.add_argument("--posts", type=int, default=50, help="posts on every account")
    parser.add_argument("--accounts", type=int, default=20, help="accounts (even, ≥ 10)")
    parser.add_argument("--seconds", type=float, default=300.0, help="longest torture")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--postgres", default=os.environ.get("POSTSCHEDULER_TEST_POSTGRES_URL"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torture = load_torture()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bench-torture-") as scratch:
        for label in ("sqlite", "postgresql"):
            if args.only not in (None, label):
                continue
            if label == "postgresql" and not args.postgres:
                print("postgresql: skipped (no --postgres URL)")
                continue
            folder = Path(scratch) / label
            folder.mkdir()
            with torture.two_sandboxes(args.accounts) as (mastodon, gotosocial):
                campaign = torture.write_campaign(
                    folder,
                    mastodon=mastodon,
                    gotosocial=gotosocial,
                    short_posts=args.posts,
                    seed=args.seed,
                )
                options = {
                    "kills": args.kills,
                    "seconds": args.seconds,
                    "seed": args.seed,
                    "label": label,
                }
                if label == "sqlite":
                    db = f"sqlite:///{folder / 'torture.sqlite3'}"
                    outcomes.append(
                        torture.torture_and_verify(campaign, db, replicas=1, stall=False, **options)
                    )
                else:
                    with postgres_schema(args.postgres) as db:
                        outcomes.append(
                            torture.torture_and_verify(
                                campaign, db, replicas=3, stall=True, **options
                            )
                        )
    failed = False
    for outcome in outcomes:
        figures, verdict = outcome.figures, outcome.verdict
        problems = verdict.problems()
        if figures.tracebacks:
            problems["tracebacks"] = [figures.tracebacks[0][-2000:]]
        failed = failed or bool(problems) or verdict.statuses != verdict.publications
        print(
            f"{outcome.label}: runs={figures.deaths + figures.other_exits} "
            f"deaths={figures.deaths} "
            f"(kills={figures.kills}, crash-point exits={figures.crash_exits}) "
            f"publications={verdict.publications} statuses={verdict.statuses} "
            f"duplicates={len(verdict.duplicates)} lost={len(verdict.lost)} "
            f"not published={len(verdict.not_published)} wall={outcome.wall_seconds:.1f}s"
        )
        for name, values in problems.items():
            print(f"  {name}: {values}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
