"""The ``postscheduler`` command line.

Only :mod:`argparse` is imported at start-up; each command imports what it needs when it
runs, so that ``postscheduler --help`` answers at once on a small server. Every error the
tool raises on purpose becomes one line on stderr and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from postscheduler.cli_accounts import add_accounts_commands
from postscheduler.cli_daemon import add_daemon_commands
from postscheduler.cli_db import add_db_commands
from postscheduler.cli_queue import add_queue_commands
from postscheduler.cli_sandbox import add_sandbox_commands

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2


def _version() -> str:
    from postscheduler import __version__  # noqa: PLC0415 (lazy by design)

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="postscheduler",
        description=(
            "Publish a campaign's posts to Mastodon-compatible servers on time, exactly once, "
            "from a plain campaign file."
        ),
    )
    parser.add_argument("--version", action="version", version=f"postscheduler {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="show every publication of a campaign file as it will be sent, or what is wrong",
        description=(
            "Read and plan a campaign file: every publication with its time (local and UTC), "
            "account, text and character count as its server counts it. Exits 1 on errors."
        ),
    )
    check.add_argument("campaign", metavar="CAMPAIGN.toml", help="the campaign file")
    output = check.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON document instead")
    output.add_argument(
        "--full", action="store_true", help="also print every text exactly as it will be sent"
    )
    check.add_argument(
        "--strict", action="store_true", help="treat warnings as errors (exit 1 if any)"
    )
    check.add_argument(
        "--online",
        action="store_true",
        help="ask each account's server how it counts and what it accepts (needs the network)",
    )
    check.set_defaults(handler=_check)

    sync = commands.add_parser(
        "sync",
        help="apply a campaign file to the store: add, change and cancel publications",
        description=(
            "Check and plan a campaign file, then apply the difference to the store in one "
            "transaction: new publications added, changed ones updated, removed ones "
            "cancelled. Published history is never rewritten. A file with errors changes "
            "nothing and is recorded as refused."
        ),
    )
    sync.add_argument("campaign", metavar="CAMPAIGN.toml", help="the campaign file")
    sync.add_argument(
        "--dry-run", action="store_true", help="show what would change, write nothing"
    )
    sync.add_argument("--json", action="store_true", help="print a JSON document")
    sync.add_argument(
        "--force",
        action="store_true",
        help="plan the file again even if nothing it depends on changed since the last sync",
    )
    add_db_option(sync)
    sync.set_defaults(handler=_sync)

    add_queue_commands(commands)
    add_daemon_commands(commands)
    add_accounts_commands(commands)
    add_sandbox_commands(commands)
    add_db_commands(commands)

    statement = commands.add_parser(
        "statement",
        help="number the paragraphs and sentences of a statement, to write excerpts",
        description=(
            "Print a statement's paragraphs and sentences, numbered as excerpts refer to them "
            '({ paragraph = 2, sentences = "1-2" }).'
        ),
    )
    statement.add_argument("path", metavar="STATEMENT.txt", help="the statement (UTF-8 text)")
    statement.set_defaults(handler=_statement)
    return parser


def _check(args: argparse.Namespace) -> int:
    from postscheduler.check import (  # noqa: PLC0415 (lazy by design)
        check_file,
        problems_text,
        report_json,
        report_text,
        summary_line,
    )

    online = None
    if args.online:
        from datetime import UTC, datetime  # noqa: PLC0415

        from postscheduler.publishers.discovery import (  # noqa: PLC0415
            discovery_client,
            online_rules,
        )

        client = discovery_client()

        def online(loaded: Any) -> Any:
            return online_rules(loaded, store=None, client=client, now=datetime.now(UTC))

    try:
        report = check_file(args.campaign, online=online)
    finally:
        if args.online:
            client.close()
    failed = not report.ok or (args.strict and bool(report.warnings))
    if args.json:
        print(report_json(report))
        return EXIT_PROBLEM if failed else EXIT_OK
    width = shutil.get_terminal_size((120, 24)).columns
    text = report_text(report, full=args.full, width=width)
    for note in report.notes:
        print(note)
    if text:
        print(text)
    for line in problems_text(report):
        print(line, file=sys.stderr)
    print(summary_line(report), file=sys.stderr)
    return EXIT_PROBLEM if failed else EXIT_OK


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db URL``: which database (default: POSTSCHEDULER_DATABASE_URL, else the state dir)."""
    parser.add_argument(
        "--db",
        metavar="URL",
        default=None,
        help="database URL (default: $POSTSCHEDULER_DATABASE_URL, else a SQLite file in the "
        "state directory)",
    )


def _sync(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from postscheduler.errors import CampaignInvalid  # noqa: PLC0415
    from postscheduler.ports import Store  # noqa: PLC0415
    from postscheduler.store.database import resolve_url, sqlite_path  # noqa: PLC0415
    from postscheduler.store.memory import MemoryStore  # noqa: PLC0415
    from postscheduler.store.opening import open_store  # noqa: PLC0415
    from postscheduler.syncing import sync_file  # noqa: PLC0415

    store: Store
    path = sqlite_path(resolve_url(args.db))
    if args.dry_run and path is not None and not path.exists():
        store = MemoryStore()  # nothing stored yet: a dry run compares with an empty store
    else:
        store = open_store(args.db, upgrade=not args.dry_run)
    try:
        outcome = sync_file(
            store, args.campaign, datetime.now(UTC), dry_run=args.dry_run, force=args.force
        )
    except CampaignInvalid as error:
        if args.json:
            print(json.dumps({"ok": False, "file": args.campaign, "errors": error.lines()}))
        else:
            for line in error.lines():
                print(line, file=sys.stderr)
            print(f"{args.campaign}: refused, nothing changed", file=sys.stderr)
        return EXIT_PROBLEM
    if args.json:
        print(json.dumps({"ok": True, **outcome.as_json()}, ensure_ascii=False))
        return EXIT_OK
    for refusal in outcome.plan.refused:
        print(f"{refusal.key}: {refusal.reason}", file=sys.stderr)
    for warning in outcome.warnings:
        print(warning, file=sys.stderr)
    for line in outcome.key_lines():
        print(line)
    print(outcome.summary())
    return EXIT_OK


def _statement(args: argparse.Namespace) -> int:
    from postscheduler.domain.excerpts import ExcerptError, Statement  # noqa: PLC0415
    from postscheduler.errors import ConfigError  # noqa: PLC0415

    try:
        with open(args.path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(args.path, "no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(args.path, "is not UTF-8 text") from None
    except OSError as error:
        raise ConfigError(args.path, f"cannot be read: {error.strerror or error}") from None
    try:
        print(Statement.parse(text).describe())
    except ExcerptError as error:
        raise ConfigError(args.path, str(error)) from None
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from postscheduler.errors import PostschedulerError  # noqa: PLC0415

    try:
        status: int = args.handler(args)
    except PostschedulerError as error:
        from postscheduler.credentials import redact  # noqa: PLC0415

        print(f"postscheduler: {redact(str(error))}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
