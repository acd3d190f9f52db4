"""The ``run`` and ``rehearse`` commands (imports happen when they run)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from postscheduler.ports import Store

EXIT_OK = 0
EXIT_PROBLEM = 1


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def add_daemon_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` and ``rehearse``."""
    run = subparsers.add_parser(
        "run",
        help="the daemon: publish each campaign's posts at their times, exactly once",
        description=(
            "Sync the campaign files, then publish every publication at its time, retrying "
            "what can be retried, and follow edits to the files (a refused edit is logged "
            "and the last good plan keeps running). SIGTERM/SIGINT finish what is in flight "
            "and exit; SIGHUP re-reads the files. Several `run` processes may share one "
            "PostgreSQL database."
        ),
    )
    run.add_argument("campaigns", metavar="CAMPAIGN.toml", nargs="+", help="campaign files")
    run.add_argument("--db", metavar="URL", default=None, help="database URL")
    run.add_argument("--once", action="store_true", help="publish what is due now, then exit")
    run.add_argument("--workers", type=int, default=4, help="accounts published in parallel")
    run.add_argument(
        "--lease",
        type=_positive,
        default=600.0,
        metavar="SECONDS",
        help="how long a claim is held before another worker may take it over (default 600)",
    )
    run.add_argument(
        "--owner",
        default=None,
        help=(
            "this worker's name on its claims and in the history (default host:pid; "
            "a random suffix is added so that no two processes share one)"
        ),
    )
    run.add_argument(
        "--grace",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help=(
            "on SIGTERM/SIGINT, how long to wait for requests already sent to be answered; "
            "claims not yet sent go back to the queue at once (default 30)"
        ),
    )
    run.add_argument("--verbose", action="store_true", help="log debug details")
    run.set_defaults(handler=_run)

    rehearse = subparsers.add_parser(
        "rehearse",
        help="play the whole campaign against bundled local servers in about a minute",
        description=(
            "Run the real daemon against bundled Mastodon-compatible servers on 127.0.0.1 "
            "with a compressed clock: each publication appears as it is published, then a "
            "summary. Exits 0 only if every publication ended and each was published "
            "exactly once. Nothing leaves this machine."
        ),
    )
    rehearse.add_argument("campaign", metavar="CAMPAIGN.toml", help="the campaign file")
    rehearse.add_argument(
        "--speed",
        type=_positive,
        default=None,
        help="how many times faster than real time (default: the window in ~40 s)",
    )
    rehearse.add_argument("--json", action="store_true", help="print a JSON document at the end")
    rehearse.set_defaults(handler=_rehearse)


def _setup_logging(verbose: bool) -> None:
    import logging  # noqa: PLC0415

    from postscheduler.credentials import install_redaction  # noqa: PLC0415

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    install_redaction()
    # Our own lines say what happens; the libraries' routine INFO lines would drown them.
    for noisy in ("alembic", "apscheduler", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    import logging  # noqa: PLC0415
    import os  # noqa: PLC0415
    from datetime import timedelta  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from postscheduler.clock import SystemClock  # noqa: PLC0415
    from postscheduler.daemon import REFRESH_EVERY, Daemon, Timeline, run_once  # noqa: PLC0415
    from postscheduler.dispatcher import Dispatcher, DispatchSettings, worker_id  # noqa: PLC0415
    from postscheduler.profile_refresh import ProfileChange, ProfileRefresher  # noqa: PLC0415
    from postscheduler.publishers.factory import LivePublishers  # noqa: PLC0415
    from postscheduler.store.opening import open_store  # noqa: PLC0415

    _setup_logging(args.verbose)
    clock = SystemClock()
    store = open_store(args.db, upgrade=True)
    # `--once` syncs in this process (it exits soon after); the daemon in a child process.
    if not _sync_at_start(store, args.campaigns, clock.now(), here=args.once):
        return EXIT_PROBLEM
    owner = worker_id(args.owner)
    publishers = LivePublishers(store, clock)
    settings = DispatchSettings(
        owner=owner, workers=max(args.workers, 1), lease=timedelta(seconds=args.lease)
    )
    dispatcher = Dispatcher(store, publishers, clock, settings)
    try:
        if args.once:
            reports = run_once(dispatcher)
            dispatcher.close()
            done: dict[str, Any] = {}
            for report in reports:
                for outcome_name, count in report.outcomes.items():
                    done[outcome_name] = done.get(outcome_name, 0) + count
            summary = ", ".join(f"{n} {name}" for name, n in sorted(done.items()))
            print(summary or "nothing was due", file=sys.stderr)
            return EXIT_OK

        def rebuild_publishers(change: ProfileChange) -> None:
            # Built with the old profile: rebuilt with the new one when next needed.
            for account in change.accounts:
                publishers.forget(account.campaign, account.name)

        refresher = ProfileRefresher(
            store, clock, margin=REFRESH_EVERY, on_change=rebuild_publishers
        )
        daemon = Daemon(
            store,
            dispatcher,
            [Path(p) for p in args.campaigns],
            timeline=Timeline(clock),
            refresher=refresher,
            grace=timedelta(seconds=args.grace),
        )
        try:
            clean = daemon.run_forever()
        finally:
            refresher.close()
        if not clean:
            # Requests still unanswered after the grace period: leave now rather than wait
            # for them (their leases expire; they are reconciled before any new send).
            logging.shutdown()
            sys.stderr.flush()
            os._exit(EXIT_OK)
        return EXIT_OK
    finally:
        publishers.close()
        store.engine.dispose()


def _sync_at_start(
    store: Store, paths: Sequence[str], now: datetime, *, here: bool = False
) -> bool:
    """Sync each campaign file before the daemon starts; False if one is refused (or its
    sync process fails) and the store holds no earlier plan to run.

    Each sync runs in a child process (:mod:`postscheduler.sync_process`; in this one when
    ``here``): the daemon neither imports the campaign-file code nor keeps the planning peak.
    """
    from postscheduler.errors import CampaignInvalid, SyncFailed  # noqa: PLC0415
    from postscheduler.sync_process import sync_campaign  # noqa: PLC0415

    known = {c.id for c in store.campaigns()}
    for path in paths:
        try:
            print(sync_campaign(store, path, now, here=here).summary, file=sys.stderr)
        except (CampaignInvalid, SyncFailed) as error:
            refused = isinstance(error, CampaignInvalid)
            lines = error.lines() if isinstance(error, CampaignInvalid) else [f"{path}: {error}"]
            for line in lines:
                print(line, file=sys.stderr)
            what = "refused" if refused else "not synced"
            if not known:
                print(f"{path}: {what}, and no earlier plan to run", file=sys.stderr)
                return False
            print(f"{path}: {what}; the last good plan keeps running", file=sys.stderr)
    return True


def _rehearse(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from postscheduler.rehearsal import rehearse  # noqa: PLC0415

    def progress(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    result = rehearse(args.campaign, speed=args.speed, progress=progress)
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        for line in result.summary():
            print(line)
    return EXIT_OK if result.ok else EXIT_PROBLEM
