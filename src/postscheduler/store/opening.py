"""Opening the store for a command: resolve the URL, check (or bring) the schema up to date."""

from __future__ import annotations

from postscheduler.errors import StoreUnavailable
from postscheduler.store import migrate
from postscheduler.store.database import create, resolve_url, sqlite_path
from postscheduler.store.sql import SqlStore


def open_store(url: str | None, *, upgrade: bool) -> SqlStore:
    """The SQL store at ``url`` (resolved as ``--db`` is; see :mod:`.database`).

    Commands that write a campaign (``sync``, ``run``) pass ``upgrade=True``: a new database
    is created and an older one upgraded (a SQLite file is first copied aside). Commands
    that only read or change states refuse a database that does not exist yet or whose
    schema does not match, with the command to run.
    """
    resolved = resolve_url(url)
    path = sqlite_path(resolved)
    if not upgrade and path is not None and not path.exists():
        raise StoreUnavailable(
            f"no database at {path}: run 'postscheduler sync CAMPAIGN.toml' first "
            "(or pass --db / set POSTSCHEDULER_DATABASE_URL)"
        )
    if upgrade:
        migrate.upgrade(resolved)
    engine = create(resolved, create_directory=upgrade)
    if not upgrade:
        migrate.ensure_current(engine)
    return SqlStore(engine)
