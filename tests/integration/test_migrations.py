"""Migrations against real databases: a SQLite file, and PostgreSQL when it is configured.

Every PostgreSQL test runs in a fresh, empty schema (the ``postgres_schema_url`` fixture);
they skip with a reason when ``POSTSCHEDULER_TEST_POSTGRES_URL`` is unset and fail when it
is set but the server does not answer.

The shipped scripts make a database at ``0001`` behind the code (the real upgrade to
``0002`` is tested below). For the rest — failing, refused or batch migrations — the tests
copy ``migrations/`` into a temporary folder, add a revision ``0003`` written for the test
(after the shipped head, ``0002``), and point :mod:`postscheduler.store.migrate` at the copy.
A database at ``0002`` is then behind, exactly as it will be when a real ``0003`` ships.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, insert, inspect, text

from postscheduler.cli_db import add_db_commands
from postscheduler.errors import SchemaMismatch, StoreError, StoreUnavailable
from postscheduler.store import database, migrate
from postscheduler.store.schema import ACCOUNTS, CAMPAIGNS, METADATA, PUBLICATIONS

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OUR_TABLES = set(METADATA.tables)
BACKUP_NAME = re.compile(r"^store\.sqlite3\.bak-(?P<revision>\w+)-\d{8}T\d{6}Z$")

# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """An empty database on each backend: a new SQLite file, a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def engine_for() -> Iterator[Callable[[str], Engine]]:
    """Engines made by the store's factory (without creating folders), disposed at the end."""
    engines: list[Engine] = []

    def make(url: str) -> Engine:
        engine = database.create(url, create_directory=False)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = database.create(url, create_directory=False)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> list[Any]:
    """Run ``statements`` in one transaction; the rows of the last one."""
    engine = database.create(url, create_directory=False)
    try:
        with engine.begin() as connection:
            rows: list[Any] = []
            for statement in statements:
                result = connection.execute(text(statement))
                rows = list(result.all()) if result.returns_rows else []
            return rows
    finally:
        engine.dispose()


def version(url: str) -> str | None:
    rows = execute(url, "SELECT version_num FROM alembic_version")
    return rows[0][0] if rows else None


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


def file_of(url: str) -> Path:
    path = database.sqlite_path(url)
    assert path is not None
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed(url: str) -> None:
    """One campaign, its account and one publication."""
    engine = database.create(url, create_directory=False)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(CAMPAIGNS),
                [
                    {
                        "id": "essai",
                        "name": "Campagne d'essai",
                        "timezone": "Europe/Paris",
                        "window_start": NOW,
                        "window_end": NOW,
                        "misfire_policy": "grace",
                        "misfire_grace_s": 900,
                        "min_spacing_s": 1800,
                        "path": "/srv/essai/campaign.toml",
                        "paused": False,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                ],
            )
            connection.execute(
                insert(ACCOUNTS),
                [
                    {
                        "campaign_id": "essai",
                        "name": "alba",
                        "instance": "https://alba.example",
                        "software": "mastodon",
                        "token_source": "env:ALBA_TOKEN",
                        "paused": False,
                        "updated_at": NOW,
                    }
                ],
            )
            connection.execute(
                insert(PUBLICATIONS),
                [
                    {
                        "key": "essai/bonjour/alba/1",
                        "campaign_id": "essai",
                        "post": "bonjour",
                        "account": "alba",
                        "part": 1,
                        "parts": 1,
                        "scheduled_at": NOW,
                        "due_at": NOW,
                        "text": "Bonjour",
                        "spoiler_text": "",
                        "visibility": "public",
                        "language": "fr",
                        "sensitive": False,
                        "media": [],
                        "content_hash": "0" * 64,
                        "state": "scheduled",
                        "attempt": 0,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                ],
            )
    finally:
        engine.dispose()


def row_counts(url: str) -> dict[str, int]:
    return {
        table: execute(url, f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 (fixed names)
        for table in ("campaigns", "accounts", "publications")
    }


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


# -- a second revision, written by the tests -------------------------------------------------

REVISION_0003 = '''\
"""A second revision, written by the tests."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    raise NotImplementedError
'''

#: A plain, additive change (any backend).
ADD_NOTES = 'op.add_column("campaigns", sa.Column("notes", sa.Text(), nullable=True))'
#: A batch migration of the parent of cascading foreign keys: SQLite copies the table, drops
#: the old one and renames the copy; with foreign keys on, the drop would delete (cascade) or
#: fail on the rows referring to it. SQLite only (PostgreSQL refuses to drop a referred table).
BATCH_NOTES = """\
with op.batch_alter_table("campaigns", recreate="always") as batch:
    batch.add_column(sa.Column("notes", sa.Text(), nullable=True))"""
#: A migration that fails halfway, after creating a table.
FAILING = """\
op.create_table("scratch", sa.Column("id", sa.Integer(), primary_key=True))
op.execute("INSERT INTO no_such_table VALUES (1)")"""
#: A migration that leaves a row referring to a missing one (foreign keys are off meanwhile).
ORPHAN = """\
op.execute(
    "INSERT INTO accounts (campaign_id, name, instance, software, token_source, paused, "
    "updated_at) VALUES ('ghost', 'alba', 'https://a.example', 'mastodon', 'env:A', 0, "
    "'2024-05-01 00:00:00')"
)"""


@pytest.fixture
def add_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make ``migrate`` use a copy of the migrations with a revision 0003 of the given body.

    As a real new revision would, it also moves ``migrate.HEAD`` (the code's declared head,
    which answers the common "already current" case without reading the scripts).
    """

    def add(body: str) -> None:
        folder = tmp_path / "migrations"
        shutil.copytree(
            migrate.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__")
        )
        source = REVISION_0003.format(body=textwrap.indent(body, "    "))
        (folder / "versions" / "0003_for_tests.py").write_text(source, encoding="utf-8")
        monkeypatch.setattr(migrate, "MIGRATIONS_DIR", folder)
        monkeypatch.setattr(migrate, "HEAD", "0003")

    return add


# -- the scripts -----------------------------------------------------------------------------


def test_head_constant_is_the_scripts_head() -> None:
    assert migrate.head_revision() == migrate.HEAD == "0002"
    assert migrate.known_revisions() == {"0001", "0002"}


def test_the_migrations_folder_is_in_the_checkout() -> None:
    root = Path(__file__).resolve().parents[2]
    assert migrate.migrations_dir() == root / "migrations"


def test_a_missing_migrations_folder_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", Path("/nonexistent/migrations"))
    with pytest.raises(StoreError, match=r"source checkout \(pip install -e \.\)") as error:
        migrate.upgrade(sqlite_url)
    one_line(error)


# -- upgrade and check on each backend -------------------------------------------------------


def test_upgrade_creates_the_schema_of_the_models(
    db_url: str, engine_for: Callable[[str], Engine]
) -> None:
    result = migrate.upgrade(db_url)

    assert (result.before, result.after, result.backup) == (None, "0002", None)
    assert result.changed
    assert tables(db_url) == OUR_TABLES | {"alembic_version"}
    assert migrate.current_revision(engine_for(db_url)) == migrate.HEAD
    migrate.ensure_current(engine_for(db_url))


def test_the_migrated_schema_has_no_difference_from_the_models(db_url: str) -> None:
    """The "no pending autogenerate diff" test: 0001 then 0002 create exactly schema.py's
    schema."""
    migrate.upgrade(db_url)

    result = migrate.check(db_url)

    assert result.differences == ()
    assert (result.revision, result.head, result.known) == ("0002", "0002", True)
    assert result.ok


def test_constraints_and_indexes_have_the_naming_convention_names(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = database.create(db_url, create_directory=False)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            for table in METADATA.sorted_tables:
                expected = {
                    "pk": table.primary_key.name,
                    "fk": {fk.name for fk in table.foreign_key_constraints},
                    "ix": {index.name for index in table.indexes},
                }
                found = {
                    "pk": inspector.get_pk_constraint(table.name)["name"],
                    "fk": {fk["name"] for fk in inspector.get_foreign_keys(table.name)},
                    "ix": {
                        index["name"]
                        for index in inspector.get_indexes(table.name)
                        # PostgreSQL lists the index behind a unique constraint too.
                        if not index.get("duplicates_constraint")
                    },
                }
                assert found == expected, table.name
            uniques = inspector.get_unique_constraints("publications")
    finally:
        engine.dispose()
    assert [unique["name"] for unique in uniques] == ["uq_publications_key"]
    assert METADATA.tables["publications"].foreign_key_constraints  # not vacuous


def test_upgrading_twice_is_a_no_op(db_url: str) -> None:
    migrate.upgrade(db_url)
    seed(db_url)

    again = migrate.upgrade(db_url)

    assert (again.before, again.after, again.backup) == ("0002", "0002", None)
    assert not again.changed
    assert row_counts(db_url) == {"campaigns": 1, "accounts": 1, "publications": 1}


def test_check_lists_each_difference(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    execute(
        sqlite_url,
        "ALTER TABLE publications ADD COLUMN extra TEXT",
        "DROP INDEX ix_publications_state_due_at",
    )

    result = migrate.check(sqlite_url)

    assert result.at_head
    assert not result.ok
    assert sorted(result.differences) == [
        "column publications.extra: not in the models",
        "index ix_publications_state_due_at on publications(state, due_at): "
        "missing from the database",
    ]


@pytest.mark.postgres
def test_check_reports_a_type_difference(postgres_schema_url: str) -> None:
    migrate.upgrade(postgres_schema_url)
    execute(postgres_schema_url, "ALTER TABLE campaigns ALTER COLUMN timezone TYPE TEXT")

    result = migrate.check(postgres_schema_url)

    assert result.differences == (
        "column campaigns.timezone: type TEXT in the database, VARCHAR(64) in the models",
    )


def test_check_of_a_missing_file_creates_nothing(sqlite_url: str) -> None:
    result = migrate.check(sqlite_url)

    assert (result.revision, result.known, result.differences) == (None, True, ())
    assert not result.ok
    assert not file_of(sqlite_url).exists()


def test_env_py_opens_the_database_itself_without_a_connection(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alembic's own entry (no connection passed in): the URL is postscheduler's default."""
    monkeypatch.setenv(database.ENV_URL, sqlite_url)

    command.upgrade(migrate.alembic_config(), "head")

    assert migrate.check(sqlite_url).ok


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///{tmp}/never.sqlite3", ["CREATE TABLE campaigns", "DATETIME NOT NULL"]),
        (
            "postgresql://nobody@127.0.0.1:1/none",
            ["BEGIN;", "BIGSERIAL NOT NULL", "TIMESTAMP WITH TIME ZONE", "COMMIT;"],
        ),
    ],
    ids=["sqlite", "postgresql"],
)
def test_offline_mode_prints_the_sql_without_a_database(
    url: str, expected: list[str], tmp_path: Path
) -> None:
    config = migrate.alembic_config(url.format(tmp=tmp_path))
    config.output_buffer = io.StringIO()

    command.upgrade(config, "head", sql=True)

    sql = config.output_buffer.getvalue()
    for fragment in [
        *expected,
        "CONSTRAINT fk_publications_campaign_id_account_accounts FOREIGN KEY",
        "CREATE INDEX ix_publications_state_due_at ON publications (state, due_at)",
        "INSERT INTO alembic_version (version_num) VALUES ('0001')",
        "CREATE TABLE workers",
        "UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001'",
    ]:
        assert fragment in sql
    assert not (tmp_path / "never.sqlite3").exists()


# -- backups ---------------------------------------------------------------------------------


def test_a_sqlite_file_behind_is_backed_up_then_upgraded_with_its_rows(
    sqlite_url: str, add_revision: Callable[[str], None]
) -> None:
    """A file at 0002 with rows; the code's head is 0003, a batch migration of ``campaigns``.

    The backup is a consistent copy at 0002 with the rows; the upgraded file keeps every row
    (no cascade from copying the parent table) and no broken reference.
    """
    migrate.upgrade(sqlite_url)
    seed(sqlite_url)
    path = file_of(sqlite_url)
    os.chmod(path, 0o640)
    add_revision(BATCH_NOTES)

    result = migrate.upgrade(sqlite_url)

    assert (result.before, result.after) == ("0002", "0003")
    assert result.backup is not None
    assert backups(path) == [result.backup]
    match = BACKUP_NAME.match(result.backup.name)
    assert match is not None
    assert match["revision"] == "0002"
    assert (result.backup.stat().st_mode & 0o777) == 0o640
    copy = f"sqlite:///{result.backup}"
    assert version(copy) == "0002"
    assert row_counts(copy) == {"campaigns": 1, "accounts": 1, "publications": 1}

    assert version(sqlite_url) == "0003"
    assert row_counts(sqlite_url) == {"campaigns": 1, "accounts": 1, "publications": 1}
    assert execute(sqlite_url, "PRAGMA foreign_key_check") == []
    assert execute(sqlite_url, "SELECT notes FROM campaigns") == [(None,)]
    assert execute(sqlite_url, "PRAGMA foreign_keys") == [(1,)]  # on again for the store


def test_a_database_at_0001_with_rows_is_upgraded_to_0002(
    db_url: str, engine_for: Callable[[str], Engine]
) -> None:
    """The shipped 0002 on a database 0001 made, holding rows: the workers table is added,
    every row is kept, and the schema then matches the models."""
    command.upgrade(migrate.alembic_config(db_url), "0001")
    seed(db_url)
    assert "workers" not in tables(db_url)
    with pytest.raises(SchemaMismatch, match="is at revision 0001, this postscheduler needs 0002"):
        migrate.ensure_current(engine_for(db_url))

    result = migrate.upgrade(db_url)

    assert (result.before, result.after) == ("0001", "0002")
    assert (result.backup is not None) == (database.sqlite_path(db_url) is not None)
    assert version(db_url) == "0002"
    assert row_counts(db_url) == {"campaigns": 1, "accounts": 1, "publications": 1}
    assert execute(db_url, "SELECT count(*) FROM workers") == [(0,)]
    check = migrate.check(db_url)
    assert (check.differences, check.ok) == ((), True)
    migrate.ensure_current(engine_for(db_url))


def test_no_backup_when_asked_not_to(sqlite_url: str, add_revision: Callable[[str], None]) -> None:
    migrate.upgrade(sqlite_url)
    add_revision(ADD_NOTES)

    result = migrate.upgrade(sqlite_url, backup=False)

    assert (result.before, result.after, result.backup) == ("0002", "0003", None)
    assert backups(file_of(sqlite_url)) == []


def test_a_file_holding_another_tools_table_is_backed_up_before_the_schema_is_added(
    sqlite_url: str,
) -> None:
    """A file that already holds someone else's table (an APScheduler job store sharing it).

    It has tables but no postscheduler revision: upgrading changes an existing file, so it
    is copied first (``.bak-none-…``); the other table is kept, and ``check`` ignores it.
    """
    execute(sqlite_url, "CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY)")
    execute(sqlite_url, "INSERT INTO apscheduler_jobs VALUES ('tick')")

    result = migrate.upgrade(sqlite_url)

    assert result.backup is not None
    match = BACKUP_NAME.match(result.backup.name)
    assert match is not None
    assert match["revision"] == "none"
    assert tables(f"sqlite:///{result.backup}") == {"apscheduler_jobs"}
    assert tables(sqlite_url) == OUR_TABLES | {"alembic_version", "apscheduler_jobs"}
    assert execute(sqlite_url, "SELECT id FROM apscheduler_jobs") == [("tick",)]
    assert migrate.check(sqlite_url).ok


def test_an_empty_file_is_just_created_without_a_backup(sqlite_url: str) -> None:
    execute(sqlite_url, "SELECT 1")  # the file exists, with no table
    assert file_of(sqlite_url).exists()

    result = migrate.upgrade(sqlite_url)

    assert result.backup is None
    assert backups(file_of(sqlite_url)) == []


# -- refusals --------------------------------------------------------------------------------


def test_a_revision_unknown_to_this_code_is_refused_and_nothing_changes(
    db_url: str, engine_for: Callable[[str], Engine]
) -> None:
    """A newer postscheduler upgraded the database (to "9999"): never "fixed", only refused."""
    migrate.upgrade(db_url)
    seed(db_url)
    execute(db_url, "UPDATE alembic_version SET version_num = '9999'")
    path = database.sqlite_path(db_url)
    before = (tables(db_url), row_counts(db_url), digest(path) if path else None)

    with pytest.raises(SchemaMismatch) as refused:
        migrate.ensure_current(engine_for(db_url))
    message = one_line(refused)
    assert "upgraded by a newer postscheduler (revision 9999)" in message
    assert message.endswith("install that version or restore a backup")

    with pytest.raises(SchemaMismatch) as refused_upgrade:
        migrate.upgrade(db_url)
    assert one_line(refused_upgrade) == message

    result = migrate.check(db_url)
    assert (result.revision, result.known, result.ok) == ("9999", False, False)

    assert version(db_url) == "9999"
    assert (tables(db_url), row_counts(db_url), digest(path) if path else None) == before
    if path:
        assert backups(path) == []


def test_an_empty_database_is_refused_by_ensure_current(
    db_url: str, engine_for: Callable[[str], Engine]
) -> None:
    execute(db_url, "SELECT 1")

    with pytest.raises(SchemaMismatch) as refused:
        migrate.ensure_current(engine_for(db_url))

    assert one_line(refused).endswith(
        "has no postscheduler schema yet: run `postscheduler db upgrade`"
    )
    assert tables(db_url) == set()


def test_a_database_behind_the_code_is_refused_until_upgraded(
    db_url: str, engine_for: Callable[[str], Engine], add_revision: Callable[[str], None]
) -> None:
    migrate.upgrade(db_url)
    add_revision(ADD_NOTES)

    with pytest.raises(SchemaMismatch) as refused:
        migrate.ensure_current(engine_for(db_url))
    assert one_line(refused).endswith(
        "is at revision 0002, this postscheduler needs 0003: run `postscheduler db upgrade`"
    )
    check = migrate.check(db_url)
    assert (check.revision, check.head, check.known, check.ok) == ("0002", "0003", True, False)

    assert migrate.upgrade(db_url).after == "0003"
    migrate.ensure_current(engine_for(db_url))


def test_a_missing_sqlite_file_is_refused_and_not_created(
    sqlite_url: str, engine_for: Callable[[str], Engine]
) -> None:
    engine = engine_for(sqlite_url)

    with pytest.raises(SchemaMismatch) as refused:
        migrate.ensure_current(engine)

    assert one_line(refused) == (
        f"no database at {file_of(sqlite_url)} yet: run `postscheduler db upgrade`"
    )
    assert migrate.current_revision(engine) is None
    assert not file_of(sqlite_url).exists()


def test_postscheduler_tables_without_a_revision_are_refused(
    sqlite_url: str, engine_for: Callable[[str], Engine]
) -> None:
    """Tables made without the migrations (``create_all``): not ours to guess their revision."""
    engine = engine_for(sqlite_url)
    METADATA.create_all(engine)

    with pytest.raises(SchemaMismatch, match="no schema revision") as refused:
        migrate.upgrade(sqlite_url)
    one_line(refused)
    with pytest.raises(SchemaMismatch, match="no schema revision"):
        migrate.ensure_current(engine)

    assert tables(sqlite_url) == OUR_TABLES
    assert backups(file_of(sqlite_url)) == []


# -- all or nothing --------------------------------------------------------------------------


def test_a_failing_migration_leaves_no_table_behind(
    db_url: str, add_revision: Callable[[str], None]
) -> None:
    """0001, 0002 then a failing 0003 run in ONE transaction: even 0001's and 0002's tables
    are rolled back."""
    add_revision(FAILING)

    with pytest.raises(StoreError) as failed:
        migrate.upgrade(db_url)

    message = one_line(failed)
    assert not isinstance(failed.value, StoreUnavailable)
    assert "no_such_table" in message
    assert message.startswith("upgrade of ")
    assert message.endswith("; nothing was changed")
    assert tables(db_url) == set()


def test_a_failing_migration_leaves_the_database_at_its_revision(
    db_url: str, add_revision: Callable[[str], None]
) -> None:
    migrate.upgrade(db_url)
    seed(db_url)
    add_revision(FAILING)

    with pytest.raises(StoreError, match="nothing was changed"):
        migrate.upgrade(db_url)

    assert version(db_url) == "0002"
    assert "scratch" not in tables(db_url)
    assert row_counts(db_url) == {"campaigns": 1, "accounts": 1, "publications": 1}


def test_a_migration_that_breaks_references_is_rolled_back(
    sqlite_url: str, add_revision: Callable[[str], None]
) -> None:
    """Foreign keys are off during a SQLite upgrade; the final check catches what slipped."""
    migrate.upgrade(sqlite_url)
    add_revision(ORPHAN)

    with pytest.raises(StoreError) as failed:
        migrate.upgrade(sqlite_url, backup=False)

    assert one_line(failed) == (
        "the upgrade would leave 1 rows referring to missing rows (first: accounts row 1, "
        "referring to campaigns); nothing was changed"
    )
    assert version(sqlite_url) == "0002"
    assert execute(sqlite_url, "SELECT count(*) FROM accounts") == [(0,)]


# -- bad inputs ------------------------------------------------------------------------------


def test_a_missing_folder_is_refused_when_creation_is_off() -> None:
    url = "sqlite:////nonexistent-dir/x.db"
    assert not Path("/nonexistent-dir").exists()

    with pytest.raises(StoreUnavailable) as refused:
        migrate.check(url)

    assert one_line(refused) == "/nonexistent-dir: no such directory (create it, or pass --db)"
    with pytest.raises(StoreUnavailable, match="no such directory"):
        migrate.open_engine(url)
    assert not Path("/nonexistent-dir").exists()


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root writes into a 0555 directory anyway; the message is tested without chmod "
    "(test_a_folder_that_is_a_file_is_refused)",
)
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(StoreUnavailable) as refused:
            migrate.upgrade(f"sqlite:///{folder / 'x.db'}")
    finally:
        folder.chmod(0o755)
    assert "is read-only" in one_line(refused)
    assert list(folder.iterdir()) == []


def test_a_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n", encoding="utf-8")

    with pytest.raises(StoreUnavailable) as refused:
        migrate.upgrade(f"sqlite:///{blocker / 'x.db'}")

    assert one_line(refused) == f"{blocker} is not a directory: pass --db with another path"
    assert blocker.read_text(encoding="utf-8") == "not a folder\n"


def test_a_file_that_is_not_a_database_is_refused_untouched(
    sqlite_url: str, engine_for: Callable[[str], Engine]
) -> None:
    path = file_of(sqlite_url)
    path.write_bytes(b"campaign notes, not a database\n" * 64)
    before = digest(path)
    expected = (
        f"{path} is not a SQLite database: check --db or POSTSCHEDULER_DATABASE_URL, "
        "or move the file aside"
    )

    for attempt in (
        lambda: migrate.upgrade(sqlite_url),
        lambda: migrate.check(sqlite_url),
        lambda: migrate.ensure_current(engine_for(sqlite_url)),
        lambda: migrate.current_revision(engine_for(sqlite_url)),
    ):
        with pytest.raises(StoreUnavailable) as refused:
            attempt()
        assert one_line(refused) == expected

    assert digest(path) == before
    assert backups(path) == []


def test_a_database_locked_beyond_the_busy_timeout_is_unavailable(
    sqlite_url: str, engine_for: Callable[[str], Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 100)
    path = file_of(sqlite_url)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        for attempt in (
            lambda: migrate.upgrade(sqlite_url),
            lambda: migrate.ensure_current(engine_for(sqlite_url)),
        ):
            with pytest.raises(StoreUnavailable) as refused:
                attempt()
            assert one_line(refused).startswith(
                f"{path} is locked by another process (waited 0.1 s): stop the "
                "postscheduler daemon or the other command using it, then retry"
            )
    finally:
        holder.close()
    assert tables(sqlite_url) == set()


def test_unreachable_postgresql_is_one_line(engine_for: Callable[[str], Engine]) -> None:
    url = "postgresql://postgres@127.0.0.1:1/none"
    for attempt in (
        lambda: migrate.upgrade(url),
        lambda: migrate.check(url),
        lambda: migrate.ensure_current(engine_for(url)),
    ):
        with pytest.raises(StoreUnavailable) as refused:
            attempt()
        message = one_line(refused)
        assert message.startswith(
            "cannot connect to postgresql+psycopg://postgres@127.0.0.1:1/none"
        )
        assert message.endswith(
            "check that the server is running and the URL (--db or POSTSCHEDULER_DATABASE_URL)"
        )


@pytest.mark.parametrize("url", ["mysql://x", "not a url"])
def test_an_unsupported_url_is_refused(url: str) -> None:
    for attempt in (migrate.upgrade, migrate.check):
        with pytest.raises(StoreUnavailable) as refused:
            attempt(url)
        assert "sqlite:///" in one_line(refused)


def test_a_missing_postgresql_driver_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # "import psycopg" now fails

    with pytest.raises(StoreUnavailable) as refused:
        migrate.upgrade("postgresql://postgres@127.0.0.1:5432/test")

    assert one_line(refused).endswith("for PostgreSQL, pip install 'postscheduler[postgres]'")


# -- the db commands -------------------------------------------------------------------------


def run_db(*argv: str) -> int:
    """Parse ``argv`` as the command line does with the db commands, and run the handler."""
    parser = argparse.ArgumentParser(prog="postscheduler")
    add_db_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["db", *argv])
    status: int = args.handler(args)
    return status


def test_db_upgrade_current_and_check_print_one_line_each(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = sqlite_url  # no password: the URL is shown as given

    assert run_db("current", "--db", sqlite_url) == 0
    assert capsys.readouterr().out == (
        "current: none (no schema yet: run `postscheduler db upgrade`)\n"
    )
    assert run_db("upgrade", "--db", sqlite_url) == 0
    assert capsys.readouterr().out == f"upgraded {shown} (none → 0002)\n"
    assert run_db("upgrade", "--db", sqlite_url) == 0
    assert capsys.readouterr().out == f"{shown} is already at 0002 (head): nothing to do\n"
    assert run_db("current", "--db", sqlite_url) == 0
    assert capsys.readouterr().out == "current: 0002 (head)\n"
    assert run_db("check", "--db", sqlite_url) == 0
    assert capsys.readouterr().out == "check: ok, schema matches 0002\n"


def test_db_commands_default_to_the_resolved_url(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(database.ENV_URL, sqlite_url)

    assert run_db("upgrade") == 0

    assert capsys.readouterr().out.startswith(f"upgraded {sqlite_url} ")
    assert file_of(sqlite_url).exists()


def test_db_upgrade_names_the_backup(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    execute(sqlite_url, "CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY)")

    assert run_db("upgrade", "--db", sqlite_url) == 0

    (backup,) = backups(file_of(sqlite_url))
    assert capsys.readouterr().out == f"upgraded {sqlite_url} (none → 0002); backup: {backup}\n"


def test_db_upgrade_no_backup(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    execute(sqlite_url, "CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY)")

    assert run_db("upgrade", "--no-backup", "--db", sqlite_url) == 0

    assert backups(file_of(sqlite_url)) == []
    assert capsys.readouterr().out == f"upgraded {sqlite_url} (none → 0002)\n"


def test_db_check_lists_differences_and_exits_1(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(sqlite_url)
    execute(sqlite_url, "DROP INDEX ix_transitions_publication_id")

    assert run_db("check", "--db", sqlite_url) == 1

    assert capsys.readouterr().out == (
        "check: the database is at 0002 but differs from the models (1 difference):\n"
        "  - index ix_transitions_publication_id on transitions(publication_id): "
        "missing from the database\n"
    )


def test_db_check_and_current_of_a_database_behind_or_newer(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], add_revision: Callable[[str], None]
) -> None:
    migrate.upgrade(sqlite_url)
    add_revision(ADD_NOTES)

    assert run_db("check", "--db", sqlite_url) == 1
    assert capsys.readouterr().out == (
        "check: the database is at 0002, this postscheduler needs 0003: "
        "run `postscheduler db upgrade`\n"
    )
    assert run_db("current", "--db", sqlite_url) == 0
    assert capsys.readouterr().out == (
        "current: 0002 (behind head 0003: run `postscheduler db upgrade`)\n"
    )

    execute(sqlite_url, "UPDATE alembic_version SET version_num = '9999'")
    assert run_db("check", "--db", sqlite_url) == 1
    assert capsys.readouterr().out == (
        "check: the database is at 9999, which this postscheduler does not know "
        "(its head is 0003): a newer postscheduler upgraded it\n"
    )
    assert run_db("current", "--db", sqlite_url) == 0
    assert capsys.readouterr().out == (
        "current: 9999 (unknown to this postscheduler, whose head is 0003: "
        "a newer postscheduler upgraded it)\n"
    )


def test_db_commands_raise_one_line_errors_for_the_command_line_to_print() -> None:
    for argv in (
        ("upgrade", "--db", "mysql://x"),
        ("current", "--db", "sqlite:////nonexistent-dir/x.db"),
    ):
        with pytest.raises(StoreUnavailable) as refused:
            run_db(*argv)
        one_line(refused)


def test_db_needs_a_sub_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        run_db()
    assert usage.value.code == 2
    assert "upgrade" in capsys.readouterr().err


def test_importing_the_db_commands_loads_no_heavy_library() -> None:
    code = (
        "import argparse, sys; from postscheduler.cli_db import add_db_commands; "
        "add_db_commands(argparse.ArgumentParser().add_subparsers()); "
        "print(','.join(m for m in ('sqlalchemy', 'alembic', 'pydantic') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
