"""One fixture, every store: the contract tests run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postscheduler.ports import Store
from postscheduler.store.database import create
from postscheduler.store.memory import MemoryStore
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each kind."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    upgrade(url)  # the schema as the migrations build it, not as the models describe it
    engine = create(url)
    try:
        yield SqlStore(engine)
    finally:
        engine.dispose()
