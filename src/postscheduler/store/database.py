"""Where the database is and how to open it.

The URL comes from ``--db``, else ``POSTSCHEDULER_DATABASE_URL``, else a SQLite file in the
state directory: ``$STATE_DIRECTORY`` (systemd's ``StateDirectory=``), else
``$XDG_STATE_HOME/postscheduler``, else ``~/.local/state/postscheduler``.

SQLite is opened in WAL mode with foreign keys on and a ``busy_timeout``; ``synchronous``
is FULL, so that a recorded "published" survives a crash of the process *and* a power
loss (WAL with NORMAL would survive the first only). PostgreSQL uses psycopg 3.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from postscheduler.errors import StoreUnavailable

ENV_URL = "POSTSCHEDULER_DATABASE_URL"
DB_FILENAME = "postscheduler.sqlite3"
#: How long a writer waits for another one before giving up (SQLite).
BUSY_TIMEOUT_MS = 5_000
SUPPORTED = ("sqlite", "postgresql")


def state_directory(environ: Mapping[str, str] | None = None) -> Path:
    """The folder for the default database (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("STATE_DIRECTORY"):
        # systemd may list several directories, separated by colons: the first is ours.
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "postscheduler"
    return Path(env.get("HOME", "~")).expanduser() / ".local" / "state" / "postscheduler"


def resolve_url(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The database URL to use: ``explicit``, the environment, or the default SQLite file."""
    env = os.environ if environ is None else environ
    url = explicit or env.get(ENV_URL)
    if url:
        return normalise_url(url)
    return f"sqlite:///{state_directory(env) / DB_FILENAME}"


def normalise_url(url: str) -> str:
    """Check the scheme and pick psycopg 3 for PostgreSQL; raise StoreUnavailable if wrong."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(
            f"{_redact(url)} is not a database URL: use sqlite:///path/to/file.sqlite3 "
            "or postgresql://user@host/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StoreUnavailable(
            f"unsupported database {backend!r} in {_redact(url)}: use sqlite:///… or postgresql://…"
        )
    if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "the given URL"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database)


def create(
    url: str,
    *,
    create_directory: bool = True,
    busy_timeout_ms: int | None = None,
    **options: Any,
) -> Engine:
    """An engine for ``url``, with SQLite's pragmas set on every connection.

    For a SQLite file, its folder is created when ``create_directory`` (the default state
    directory need not exist yet); a folder that cannot be written is a clear error.
    ``busy_timeout_ms`` is how long a SQLite writer waits for another before it gives up
    (default: :data:`BUSY_TIMEOUT_MS`, read when each connection opens; unused for PostgreSQL).
    """
    url = normalise_url(url)
    path = sqlite_path(url)
    if path is not None:
        _prepare_sqlite_folder(path, create_directory)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_timeout_ms))
        # pysqlite's own transaction handling is replaced by explicit BEGINs (see below).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **options)


def _prepare_sqlite_folder(path: Path, create_directory: bool) -> None:
    folder = path.parent
    if not folder.exists():
        if not create_directory:
            raise StoreUnavailable(f"{folder}: no such directory (create it, or pass --db)")
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise StoreUnavailable(
                f"cannot create {folder} for the database ({error.strerror}): "
                "create it, or pass --db"
            ) from None
    if not folder.is_dir():
        raise StoreUnavailable(f"{folder} is not a directory: pass --db with another path")
    if not os.access(folder, os.W_OK) and not (path.exists() and os.access(path, os.W_OK)):
        raise StoreUnavailable(
            f"{folder} is read-only: SQLite needs to write the database and its journal there; "
            "fix the permissions or pass --db"
        )


def _sqlite_pragmas(busy_timeout_ms: int | None, dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: transactions are begun explicitly in _sqlite_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    timeout = BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
    cursor.execute(f"PRAGMA busy_timeout={int(timeout)}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock at once: a claim or a state change never finds
    # the database changed under it between its read and its write.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
