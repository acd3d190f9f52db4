"""Schema migrations: bring a database to this code's schema, or say exactly why not.

The migrations are Alembic scripts in the repository's top-level ``migrations/`` folder
(revision ``0001`` creates the schema of :mod:`postscheduler.store.schema`, ``0002`` adds
the workers' heartbeat rows). There is no ``alembic.ini``: :func:`alembic_config` builds
Alembic's configuration in code.

**Limitation:** the folder is found beside the source tree, at
``Path(postscheduler.__file__).resolve().parents[2] / "migrations"``, so postscheduler must run
from a source checkout (``pip install -e .`` of a clone, which is how this project runs). A
wheel would not carry ``migrations/``, and every function here then raises
:class:`~postscheduler.errors.StoreError` saying so.

The contracts:

- :func:`upgrade` brings a database to the head revision in ONE transaction (transactional
  DDL on both SQLite and PostgreSQL): a failure leaves the database as it was. Before it
  changes a SQLite file that already holds tables, it copies it aside with ``VACUUM INTO``.
  A database upgraded by a newer postscheduler (a revision this code does not know) is
  refused, never "fixed".
- :func:`ensure_current` is what every command that opens the store calls first: it raises
  :class:`~postscheduler.errors.SchemaMismatch` with one line saying what to do unless the
  database is exactly at the head revision.
- :func:`check` compares the database with the models (Alembic's autogenerate diff).
- Database errors become :class:`~postscheduler.errors.StoreUnavailable` (cannot reach, open,
  lock or write the database) or :class:`~postscheduler.errors.StoreError`, each with one
  line naming what to do; never a driver's traceback.
"""

from __future__ import annotations

import enum
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Dialect, Engine, inspect, text
from sqlalchemy.exc import CompileError, DBAPIError
from sqlalchemy.types import TypeEngine

import postscheduler

if TYPE_CHECKING:  # Alembic is imported where it is used: reading a revision needs none of it.
    from alembic.config import Config
    from alembic.script import ScriptDirectory
from postscheduler.errors import SchemaMismatch, StoreError, StoreUnavailable
from postscheduler.store import database
from postscheduler.store.schema import METADATA

#: The revision this code's models correspond to (a test checks that the scripts agree).
HEAD = "0002"
#: Where the Alembic scripts are: the top of the source checkout (see the module docstring).
MIGRATIONS_DIR = Path(postscheduler.__file__).resolve().parents[2] / "migrations"
#: The command that brings a database to the head revision, as messages name it.
UPGRADE_COMMAND = "postscheduler db upgrade"


@dataclass(frozen=True)
class UpgradeResult:
    """What :func:`upgrade` did.

    ``url`` is the database's URL without its password; ``before`` its revision before the
    upgrade (None: no schema yet); ``after`` its revision now (the head); ``backup`` the copy
    of the SQLite file taken before changing it, or None when none was needed or asked for.
    """

    url: str
    before: str | None
    after: str
    backup: Path | None

    @property
    def changed(self) -> bool:
        """Whether the upgrade changed the database (False: it was already at the head)."""
        return self.before != self.after


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found.

    ``revision`` is the database's revision (None: no schema yet), ``head`` this code's;
    ``known`` is False when the revision is not one of this code's (a newer postscheduler
    upgraded the database). ``differences`` are the autogenerate diff between the database
    and the models, one readable line each; empty when they match (and when there is no
    database file yet, as there is nothing to compare).
    """

    url: str
    revision: str | None
    head: str
    known: bool
    differences: tuple[str, ...]

    @property
    def at_head(self) -> bool:
        """Whether the database is at this code's head revision."""
        return self.revision == self.head

    @property
    def ok(self) -> bool:
        """Whether the database is at the head revision and matches the models exactly."""
        return self.at_head and not self.differences


# -- the scripts -----------------------------------------------------------------------------


def migrations_dir() -> Path:
    """The folder of the Alembic scripts; StoreError if this is not a source checkout."""
    folder = MIGRATIONS_DIR
    if not (folder / "env.py").is_file():
        raise StoreError(
            f"the database migrations are not in {folder}: run postscheduler from a source "
            "checkout (pip install -e .)"
        )
    return folder


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    from alembic.config import Config  # noqa: PLC0415

    """Alembic's configuration, built in code: the scripts' folder, and optionally a database.

    ``url`` becomes the ``sqlalchemy.url`` option (used by ``migrations/env.py`` when it opens
    the database itself, and in offline mode); ``connection`` is passed to ``env.py`` in
    ``config.attributes["connection"]``, and then used as it is, in its transaction.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    if url is not None:
        # The options go through configparser, whose interpolation reads "%" specially.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision of the scripts (what :func:`upgrade` brings a database to)."""
    head = _scripts().get_current_head()
    if head is None:
        raise StoreError(f"no migration in {migrations_dir()}: the checkout is incomplete")
    return head


def known_revisions() -> frozenset[str]:
    """Every revision of the scripts: a database at any other one was made by newer code."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter for autogenerate: compare only the tables the models know.

    A table in the database that no model describes belongs to someone else sharing the
    database (an APScheduler job store, say): it is neither a difference nor to be dropped.
    The price: a table of ours that a migration forgot to drop is not reported either.
    """
    return not (type_ == "table" and reflected and compare_to is None)


# -- opening the database --------------------------------------------------------------------


def open_engine(url: str, *, create_directory: bool = False) -> Engine:
    """:func:`postscheduler.store.database.create`, with a missing driver as a clear error.

    ``create_directory`` as there; the default (False) suits commands that only read.
    """
    try:
        return database.create(url, create_directory=create_directory)
    except ImportError as error:
        raise StoreUnavailable(
            f"the database driver is not installed ({error.name or error}): for PostgreSQL, "
            "pip install 'postscheduler[postgres]'"
        ) from error


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _missing_file(engine: Engine) -> Path | None:
    """The SQLite file of ``engine`` if it does not exist (connecting would create it)."""
    path = database.sqlite_path(engine.url.render_as_string(hide_password=False))
    return path if path is not None and not path.exists() else None


@contextmanager
def _connection(engine: Engine, action: str) -> Iterator[Connection]:
    """A connection to ``engine`` whose database errors become one-line StoreErrors."""
    try:
        connection = engine.connect()
    except DBAPIError as error:
        raise _problem(error, engine, action, connecting=True) from error
    with connection:
        try:
            yield connection
        except DBAPIError as error:
            raise _problem(error, engine, action, connecting=False) from error


def _problem(error: DBAPIError, engine: Engine, action: str, *, connecting: bool) -> StoreError:
    """The one line that says what went wrong with the database and what to do."""
    detail = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
    where = _where(engine)
    unchanged = "; nothing was changed" if action == "upgrade" else ""
    if engine.dialect.name == "sqlite":
        path = database.sqlite_path(engine.url.render_as_string(hide_password=False))
        known = _sqlite_problem(detail, str(path or where), unchanged)
        if known is not None:
            return known
    elif connecting:
        return StoreUnavailable(
            f"cannot connect to {where} ({detail}): check that the server is running and the "
            "URL (--db or POSTSCHEDULER_DATABASE_URL)"
        )
    elif error.connection_invalidated:
        return StoreUnavailable(f"lost the connection to {where} ({detail}){unchanged}")
    return StoreError(f"{action} of {where} failed: {detail}{unchanged}")


def _sqlite_problem(detail: str, target: str, unchanged: str) -> StoreUnavailable | None:
    """SQLite's errors that mean the file cannot be used as it is, said with what to do."""
    wait = f"{database.BUSY_TIMEOUT_MS / 1000:g} s"
    advice = (
        (
            ("locked",),
            f"{target} is locked by another process (waited {wait}): stop the postscheduler "
            f"daemon or the other command using it, then retry{unchanged}",
        ),
        (
            ("file is not a database",),
            f"{target} is not a SQLite database: check --db or POSTSCHEDULER_DATABASE_URL, "
            "or move the file aside",
        ),
        (("malformed",), f"{target} is damaged ({detail}): restore a backup"),
        (
            ("readonly", "read-only"),
            f"{target} is read-only: make it and its directory writable, or pass --db",
        ),
        (
            ("unable to open",),
            f"cannot open {target}: check that its directory exists and is writable, or pass --db",
        ),
        (("disk",), f"cannot write {target} ({detail}){unchanged}"),  # I/O error, disk full
    )
    lowered = detail.lower()
    for needles, message in advice:
        if any(needle in lowered for needle in needles):
            return StoreUnavailable(message)
    return None


def _raw_execute(connection: Connection, sql: str, parameters: tuple[Any, ...] = ()) -> None:
    """Run ``sql`` on the driver's connection, outside SQLAlchemy's transactions.

    For what SQLite refuses inside a transaction (``VACUUM``, ``PRAGMA foreign_keys``): the
    engine of :mod:`~postscheduler.store.database` puts the driver in autocommit mode and
    begins every SQLAlchemy transaction itself, so this runs on its own. The caller must
    have no transaction open.
    """
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, parameters)
    finally:
        cursor.close()


@contextmanager
def migration_transaction(connection: Connection) -> Iterator[None]:
    """The one transaction an upgrade runs in; rolled back if anything in it fails.

    On SQLite it follows SQLite's procedure for schema changes: foreign keys are switched
    off for the duration (otherwise a batch migration, which copies a table, drops the old
    one and renames the copy, would cascade deletes to child rows or fail), then
    ``PRAGMA foreign_key_check`` must find no broken reference before the commit.
    ``connection`` must have no transaction open.
    """
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _raw_execute(connection, "PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            yield
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    table, rowid, parent, _ = broken[0]
                    raise StoreError(
                        f"the upgrade would leave {len(broken)} rows referring to missing rows "
                        f"(first: {table} row {rowid}, referring to {parent}); "
                        "nothing was changed"
                    )
    finally:
        if sqlite:
            _raw_execute(connection, "PRAGMA foreign_keys=ON")


# -- where a database stands -----------------------------------------------------------------


class _Standing(enum.Enum):
    CURRENT = "at the head revision"
    EMPTY = "no postscheduler schema yet"
    BEHIND = "at an older revision"
    NEWER = "at a revision this code does not know"
    UNVERSIONED = "postscheduler tables without a revision"


@dataclass(frozen=True)
class _State:
    revision: str | None
    tables: frozenset[str]

    def standing(self, head: str, known: frozenset[str]) -> _Standing:
        if self.revision == head:
            return _Standing.CURRENT
        if self.revision is not None:
            return _Standing.BEHIND if self.revision in known else _Standing.NEWER
        if self.tables & METADATA.tables.keys():
            return _Standing.UNVERSIONED
        return _Standing.EMPTY


def _read_state(connection: Connection) -> _State:
    tables = frozenset(inspect(connection).get_table_names())
    revision = None
    if "alembic_version" in tables:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return _State(revision, tables)


def _mismatch(standing: _Standing, state: _State, head: str, where: str) -> SchemaMismatch:
    """The one-line refusal for a database that is not at the head revision."""
    if standing is _Standing.NEWER:
        return SchemaMismatch(
            f"the database at {where} was upgraded by a newer postscheduler (revision "
            f"{state.revision}); install that version or restore a backup"
        )
    if standing is _Standing.UNVERSIONED:
        return SchemaMismatch(
            f"the database at {where} has postscheduler tables but no schema revision (it was "
            f"not created by `{UPGRADE_COMMAND}`): restore a backup or use another database"
        )
    if standing is _Standing.EMPTY:
        return SchemaMismatch(
            f"the database at {where} has no postscheduler schema yet: run `{UPGRADE_COMMAND}`"
        )
    return SchemaMismatch(
        f"the database at {where} is at revision {state.revision}, this postscheduler needs "
        f"{head}: run `{UPGRADE_COMMAND}`"
    )


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None when it has no schema yet (or no file: none is made)."""
    if _missing_file(engine):
        return None
    with _connection(engine, "reading the schema revision") as connection:
        revision = _read_state(connection).revision
        connection.rollback()
    return revision


def ensure_current(engine: Engine) -> None:
    """Return if the database is at the head revision, else raise SchemaMismatch.

    The message is one line: behind (or empty) → run ``postscheduler db upgrade``; at a
    revision this code does not know → a newer postscheduler upgraded it: install that
    version or restore a backup. Nothing is ever written, and a missing SQLite file is not
    created. Database errors raise StoreUnavailable (or StoreError).
    """
    where = _where(engine)
    missing = _missing_file(engine)
    if missing is not None:
        raise SchemaMismatch(f"no database at {missing} yet: run `{UPGRADE_COMMAND}`")
    with _connection(engine, "reading the schema revision") as connection:
        state = _read_state(connection)
        connection.rollback()
    if state.revision == HEAD:
        return  # the common case, answered without loading Alembic's scripts
    head = head_revision()
    standing = state.standing(head, known_revisions())
    if standing is not _Standing.CURRENT:
        raise _mismatch(standing, state, head, where)


# -- upgrade and check -----------------------------------------------------------------------


def upgrade(url: str, *, backup: bool = True) -> UpgradeResult:
    """Bring the database at ``url`` to the head revision, in one transaction.

    A new or empty database gets the whole schema (a SQLite file and its folder are
    created). Before changing a SQLite file that already has tables and is not at the head,
    it is copied to ``<file>.bak-<revision or none>-<UTC time>`` with ``VACUUM INTO`` (unless
    ``backup`` is False); PostgreSQL is never copied (use ``pg_dump``). At the head already:
    nothing is done. Refused with SchemaMismatch, before anything is written: a revision this
    code does not know (a newer postscheduler's), and postscheduler tables without a
    revision. If a migration fails, everything is rolled back and StoreError says so.
    """
    engine = open_engine(url, create_directory=True)
    where = _where(engine)
    try:
        with _connection(engine, "upgrade") as connection:
            state = _read_state(connection)
            connection.rollback()
            if state.revision == HEAD:  # the common case, answered without Alembic's scripts
                return UpgradeResult(where, HEAD, HEAD, None)
            head = head_revision()
            known = known_revisions()
            standing = state.standing(head, known)
            if standing in (_Standing.NEWER, _Standing.UNVERSIONED):
                raise _mismatch(standing, state, head, where)
            if standing is _Standing.CURRENT:
                return UpgradeResult(where, head, head, None)
            path = database.sqlite_path(engine.url.render_as_string(hide_password=False))
            copy = None
            if backup and path is not None and state.tables:
                copy = _backup(connection, path, state.revision)
            with migration_transaction(connection):
                # Read again under the write lock: another process may have upgraded since.
                state = _read_state(connection)
                standing = state.standing(head, known)
                if standing in (_Standing.NEWER, _Standing.UNVERSIONED):
                    raise _mismatch(standing, state, head, where)
                if standing is not _Standing.CURRENT:
                    from alembic import command  # noqa: PLC0415

                    command.upgrade(alembic_config(connection=connection), "head")
            return UpgradeResult(where, state.revision, head, copy)
    finally:
        engine.dispose()


def _backup(connection: Connection, path: Path, revision: str | None) -> Path:
    """Copy the SQLite file aside with ``VACUUM INTO`` (a consistent snapshot); its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.bak-{revision or 'none'}-{stamp}")
    number = 1
    while target.exists():  # two upgrades within a second: keep both copies
        number += 1
        target = path.with_name(f"{path.name}.bak-{revision or 'none'}-{stamp}-{number}")
    try:
        _raw_execute(connection, "VACUUM INTO ?", (str(target),))
    except sqlite3.Error as error:
        raise StoreUnavailable(
            f"cannot back up {path} to {target} ({error}): free some space or fix the "
            "folder's permissions; nothing was changed"
        ) from error
    # The copy holds the same data: it gets the same permissions as the original.
    os.chmod(target, stat.S_IMODE(path.stat().st_mode))
    return target


def check(url: str) -> CheckResult:
    """Compare the database at ``url`` with this code: its revision, and the models' diff.

    The diff is Alembic's autogenerate comparison (types included) of the database's tables
    with the models, one readable line per difference; tables the models do not know are
    ignored (see :func:`include_object`). Nothing is written; a missing SQLite file is not
    created (its folder must exist).
    """
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    head = head_revision()
    known = known_revisions()
    engine = open_engine(url, create_directory=False)
    where = _where(engine)
    try:
        if _missing_file(engine):
            return CheckResult(where, None, head, True, ())
        with _connection(engine, "check") as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include_object}
            )
            diffs = compare_metadata(context, METADATA)
            differences = tuple(_describe(diff, connection.dialect) for diff in diffs)
            connection.rollback()
    finally:
        engine.dispose()
    return CheckResult(where, revision, head, revision is None or revision in known, differences)


def _describe(diff: Any, dialect: Dialect) -> str:
    """One line for one entry of Alembic's diff (a tuple, or a list of a column's changes)."""
    if isinstance(diff, list):
        return "; ".join(_describe(change, dialect) for change in diff)
    kind = diff[0]
    if kind.startswith("modify_"):
        return _describe_change(diff, dialect)
    if kind in ("add_table", "remove_table"):
        subject = f"table {diff[1].name}"
    elif kind in ("add_column", "remove_column"):
        subject = f"column {diff[2]}.{diff[3].name}"
    elif kind in ("add_index", "remove_index"):
        index = diff[1]
        columns = ", ".join(column.name for column in index.columns)
        subject = f"index {index.name} on {index.table.name}({columns})"
    elif kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        subject = f"constraint {diff[1].name} on {diff[1].table.name}"
    else:
        return repr(diff)
    side = "missing from the database" if kind.startswith("add_") else "not in the models"
    return f"{subject}: {side}"


def _describe_change(diff: Any, dialect: Dialect) -> str:
    """One line for a ``modify_*`` entry: a column's type, nullability, default or comment."""
    kind, _schema, table, column, _existing, in_database, in_models = diff
    if kind == "modify_type":
        in_database = _type_name(in_database, dialect)
        in_models = _type_name(in_models, dialect)
    elif kind == "modify_nullable":
        in_database = "NULL" if in_database else "NOT NULL"
        in_models = "NULL" if in_models else "NOT NULL"
    aspect = kind.removeprefix("modify_")
    return (
        f"column {table}.{column}: {aspect} {in_database} in the database, "
        f"{in_models} in the models"
    )


def _type_name(type_: TypeEngine[Any], dialect: Dialect) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except CompileError:
        return repr(type_)
