"""SQLite under another writer: the store waits ``busy_timeout``, then gives up with one clear
line and no partial write; once the other writer commits, the same operation succeeds. And the
pragmas every connection from ``database.create`` gets."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postscheduler.cron import expand_cron
from postscheduler.domain.campaign import CampaignFile
from postscheduler.domain.plan import plan_campaign
from postscheduler.domain.states import State
from postscheduler.errors import StoreUnavailable
from postscheduler.ports import FileVersion
from postscheduler.store.common import campaign_records
from postscheduler.store.database import BUSY_TIMEOUT_MS, create
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore

NOW = datetime(2017, 10, 1, 12, 0, tzinfo=UTC)
#: Short, so that the test is quick; long enough to measure that the store did wait.
WAIT_MS = 300
KEY = "demo/a/alba/1"


def sync(store: SqlStore, posts: list[tuple[str, str, int]], at: datetime) -> Any:
    """Sync a small campaign of ``(post id, text, hour)`` posts for one account."""
    file = CampaignFile.model_validate(
        {
            "campaign": {
                "id": "demo",
                "name": "Demo",
                "timezone": "America/Caracas",
                "start": datetime(2017, 10, 5, 0, 0),
                "end": datetime(2017, 10, 8, 23, 59),
                "language": "fr",
            },
            "accounts": {"alba": {"instance": "https://a.example", "token": {"env": "A"}}},
            "posts": [
                {"id": ident, "accounts": ["alba"], "text": text, "at": datetime(2017, 10, 5, h)}
                for ident, text, h in posts
            ],
        }
    )
    plan = plan_campaign(file, None, {}, expand_cron)
    assert plan.ok, plan.problems
    assert plan.window_start is not None
    assert plan.window_end is not None
    campaign, accounts = campaign_records(
        file, "campaign.toml", (plan.window_start, plan.window_end)
    )
    version = FileVersion("campaign.toml", at.isoformat().ljust(64, "0"), at, campaign="demo")
    return store.sync(campaign, accounts, plan.publications, version)


FIRST = [("a", "Premier", 9), ("b", "Deuxième", 10)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "locked.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[SqlStore]:
    """A synced store whose engine gives up after WAIT_MS."""
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = create(url, busy_timeout_ms=WAIT_MS)
    store = SqlStore(engine)
    sync(store, FIRST, NOW)
    try:
        yield store
    finally:
        engine.dispose()


def snapshot(path: Path) -> list[str]:
    """Everything committed in the file, read by a connection of its own (WAL lets a reader
    in while another connection holds the write lock)."""
    reader = sqlite3.connect(path)
    try:
        return list(reader.iterdump())
    finally:
        reader.close()


def cancel(store: SqlStore) -> None:
    store.transition(KEY, State.CANCELLED, now=NOW, cause="cancelled by hand", actor="cli")


def resync(store: SqlStore) -> None:
    sync(store, [("a", "Premier, corrigé", 9), ("c", "Troisième", 11)], NOW + timedelta(hours=1))


def check_cancelled(store: SqlStore) -> None:
    assert store.get(KEY).state is State.CANCELLED
    assert [h.to_state for h in store.history(KEY)] == [State.SCHEDULED, State.CANCELLED]


def check_resynced(store: SqlStore) -> None:
    assert store.get(KEY).text.startswith("Premier, corrigé")
    assert store.get("demo/b/alba/1").state is State.CANCELLED
    assert store.get("demo/c/alba/1").state is State.SCHEDULED
    assert len(store.file_versions("demo")) == 2


OPERATIONS: list[tuple[Callable[[SqlStore], None], Callable[[SqlStore], None]]] = [
    (cancel, check_cancelled),
    (resync, check_resynced),
]


@pytest.mark.parametrize(
    ("operation", "check"), OPERATIONS, ids=[op.__name__ for op, _ in OPERATIONS]
)
def test_a_writer_held_up_beyond_busy_timeout_gives_up_then_succeeds_after_the_commit(
    store: SqlStore,
    path: Path,
    operation: Callable[[SqlStore], None],
    check: Callable[[SqlStore], None],
) -> None:
    before = snapshot(path)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer takes the lock and keeps it
        holder.execute(  # the other writer's own change, which neither operation touches
            "INSERT INTO file_versions (campaign_id, path, sha256, accepted, error, at) "
            "VALUES (NULL, 'other.toml', ?, 0, 'refused elsewhere', '2017-10-01 12:00:00')",
            ("0" * 64,),
        )

        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as refused:
            operation(store)
        waited = time.monotonic() - started

        message = str(refused.value)
        assert "\n" not in message
        assert "database is locked" in message
        assert "try again" in message
        assert waited >= WAIT_MS / 1000 * 0.9  # it waited busy_timeout…
        assert waited < BUSY_TIMEOUT_MS / 1000  # …the engine's, not the default
        assert snapshot(path) == before  # no partial write

        holder.execute("COMMIT")
    finally:
        holder.close()

    operation(store)  # the same operation, now that the other writer is done
    check(store)
    assert [v.path for v in store.file_versions() if v.campaign is None] == ["other.toml"]


def test_every_connection_from_create_has_the_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"  # never opened: WAL must come from create()
    engine = create(f"sqlite:///{path}", busy_timeout_ms=1234)
    try:
        first, second = engine.raw_connection(), engine.raw_connection()  # two, both open
        try:
            for connection in (first, second):
                cursor = connection.cursor()
                pragmas = {
                    name: cursor.execute(f"PRAGMA {name}").fetchone()[0]
                    for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
                }
                cursor.close()
                assert pragmas == {
                    "journal_mode": "wal",
                    "foreign_keys": 1,
                    "synchronous": 2,  # FULL
                    "busy_timeout": 1234,
                }
        finally:
            first.close()
            second.close()
    finally:
        engine.dispose()


def test_the_default_busy_timeout_is_five_seconds(tmp_path: Path) -> None:
    engine = create(f"sqlite:///{tmp_path / 'default.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
            connection.rollback()
    finally:
        engine.dispose()
    assert BUSY_TIMEOUT_MS == 5_000
