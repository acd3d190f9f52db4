"""The ``postscheduler db`` commands: ``upgrade``, ``current`` and ``check`` of the schema.

:func:`add_db_commands` adds them to the command line's sub-parsers. Like the rest of the
command line, only :mod:`argparse` is imported here at start-up; each handler imports
SQLAlchemy and Alembic when it runs. Handlers print one line (``check`` also prints one
line per difference) and return the exit status; errors are raised as
:class:`~postscheduler.errors.PostschedulerError`, which the command line prints as one line.
"""

from __future__ import annotations

import argparse

# The exit statuses of postscheduler.cli (not imported from there: cli imports this module).
EXIT_OK = 0
EXIT_PROBLEM = 1

DB_HELP = (
    "the database URL (default: $POSTSCHEDULER_DATABASE_URL, else postscheduler.sqlite3 in "
    "the state directory)"
)


def add_db_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``db`` and its sub-commands ``upgrade``, ``current``, ``check`` to ``subparsers``.

    Each sub-command sets ``handler`` (a function of the parsed arguments returning the exit
    status) and takes ``--db URL``.
    """
    db = subparsers.add_parser(
        "db",
        help="create or upgrade the database's schema, or show where it stands",
        description="The database's schema: upgrade it to this version, or inspect it.",
    )
    commands = db.add_subparsers(
        dest="db_command", metavar="{upgrade,current,check}", required=True
    )

    upgrade = commands.add_parser(
        "upgrade",
        help="create the schema, or bring it to this version (backing up a SQLite file first)",
        description=(
            "Bring the database to this version's schema, in one transaction. A SQLite file "
            "that already has tables is first copied to FILE.bak-REVISION-TIME."
        ),
    )
    upgrade.add_argument(
        "--no-backup", action="store_true", help="do not copy a SQLite file before upgrading"
    )
    upgrade.set_defaults(handler=_upgrade)

    current = commands.add_parser(
        "current",
        help="show the database's schema revision",
        description="Show the database's schema revision and how it compares with this version.",
    )
    current.set_defaults(handler=_current)

    check = commands.add_parser(
        "check",
        help="check that the database's schema is exactly this version's (exit 1 if not)",
        description=(
            "Check that the database is at this version's revision and that its tables match "
            "the models; print each difference. Exits 1 if anything differs."
        ),
    )
    check.set_defaults(handler=_check)

    for command in (upgrade, current, check):
        command.add_argument("--db", metavar="URL", default=None, help=DB_HELP)


def _url(args: argparse.Namespace) -> str:
    from postscheduler.store.database import resolve_url  # noqa: PLC0415 (lazy by design)

    return resolve_url(args.db)


def _upgrade(args: argparse.Namespace) -> int:
    from postscheduler.store import migrate  # noqa: PLC0415 (lazy by design)

    result = migrate.upgrade(_url(args), backup=not args.no_backup)
    if not result.changed:
        print(f"{result.url} is already at {result.after} (head): nothing to do")
        return EXIT_OK
    line = f"upgraded {result.url} ({result.before or 'none'} → {result.after})"
    if result.backup is not None:
        line += f"; backup: {result.backup}"
    print(line)
    return EXIT_OK


def _current(args: argparse.Namespace) -> int:
    from postscheduler.store import migrate  # noqa: PLC0415 (lazy by design)

    engine = migrate.open_engine(_url(args))
    try:
        revision = migrate.current_revision(engine)
    finally:
        engine.dispose()
    head = migrate.head_revision()
    if revision == head:
        print(f"current: {revision} (head)")
    elif revision is None:
        print(f"current: none (no schema yet: run `{migrate.UPGRADE_COMMAND}`)")
    elif revision in migrate.known_revisions():
        print(f"current: {revision} (behind head {head}: run `{migrate.UPGRADE_COMMAND}`)")
    else:
        print(
            f"current: {revision} (unknown to this postscheduler, whose head is {head}: "
            "a newer postscheduler upgraded it)"
        )
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from postscheduler.store import migrate  # noqa: PLC0415 (lazy by design)

    result = migrate.check(_url(args))
    if result.ok:
        print(f"check: ok, schema matches {result.head}")
        return EXIT_OK
    if not result.known:
        print(
            f"check: the database is at {result.revision}, which this postscheduler does not "
            f"know (its head is {result.head}): a newer postscheduler upgraded it"
        )
    elif not result.at_head:
        print(
            f"check: the database is at {result.revision or 'none'}, this postscheduler needs "
            f"{result.head}: run `{migrate.UPGRADE_COMMAND}`"
        )
    else:
        count = len(result.differences)
        print(
            f"check: the database is at {result.head} but differs from the models "
            f"({count} difference{'s' if count > 1 else ''}):"
        )
        for difference in result.differences:
            print(f"  - {difference}")
    return EXIT_PROBLEM
