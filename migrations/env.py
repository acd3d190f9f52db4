"""Alembic's environment for postscheduler's migrations.

There is no ``alembic.ini``: :func:`postscheduler.store.migrate.alembic_config` builds the
configuration in code. ``postscheduler db upgrade`` (:func:`postscheduler.store.migrate.upgrade`)
opens the database itself and passes its connection in ``config.attributes["connection"]``,
already inside the one transaction of the whole upgrade; it is used as it is.

Without a connection, this file opens the database named by the ``sqlalchemy.url`` option,
else the one postscheduler resolves (``POSTSCHEDULER_DATABASE_URL``, else the state
directory's SQLite file), and runs the migrations in one transaction of its own. In offline
mode (``sql=True``) it prints the SQL instead of running it.

To write the next revision, generate it from the models against a database at the head, then
edit it until it reads well (explicit constraint names, no leftover comments)::

    .venv/bin/python -c 'from alembic import command; from postscheduler.store import migrate
    command.revision(migrate.alembic_config("sqlite:////tmp/dev.sqlite3"), "what changed",
                     autogenerate=True, rev_id="0002")'
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from postscheduler.store import database
from postscheduler.store.migrate import include_object, migration_transaction
from postscheduler.store.schema import METADATA

config = context.config
target_metadata = METADATA


def database_url() -> str:
    """The ``sqlalchemy.url`` option when our code set one, else postscheduler's default."""
    url = config.get_main_option("sqlalchemy.url")
    return database.normalise_url(url) if url else database.resolve_url(None)


def run_migrations_offline() -> None:
    """Print the SQL of the migrations for the URL's dialect, without a database."""
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=make_url(url).get_backend_name() == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_with(connection: Connection) -> None:
    """Run the migrations on ``connection`` (inside its transaction, if it has one)."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot alter most of a table: batch mode copies it instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on one opened here."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations_with(connection)
        return
    engine = database.create(database_url())
    try:
        with engine.connect() as own, migration_transaction(own):
            run_migrations_with(own)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
