"""Syncing in a child process (:mod:`postscheduler.sync_process`): what the daemon sees is
what an in-process sync shows — the summary, every problem of a refused file, a store
error — and a child that dies is one line while the last good plan keeps running."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postscheduler import sync_process
from postscheduler.daemon import Daemon, Timeline
from postscheduler.dispatcher import Dispatcher, DispatchSettings
from postscheduler.domain.states import State
from postscheduler.errors import CampaignInvalid, StoreUnavailable, SyncFailed
from postscheduler.ports import AccountRecord, CampaignRecord, Publisher
from postscheduler.store.database import create
from postscheduler.store.memory import MemoryStore
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore
from postscheduler.syncing import sync_file
from postscheduler.testing import FakeClock

NOW = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)

CAMPAIGN = """\
[campaign]
id = "child"
name = "Child"
timezone = "UTC"
start = 2030-07-01T09:00:00
end = 2030-07-02T09:00:00
language = "fr"

[accounts.alba]
instance = "https://alba.example"
token = { env = "CHILD_ALBA_TOKEN" }
software = "mastodon"

[[posts]]
id = "bonjour"
at = 2030-07-01T10:00:00
text = "Bonjour."
"""

#: Two errors, on two lines.
BROKEN = CAMPAIGN.replace('text = "Bonjour."', 'text = "Bonjour."\ncolour = "red"').replace(
    'language = "fr"', 'language = "fr"\nshade = 3'
)


def sqlite_store(folder: Path) -> SqlStore:
    url = f"sqlite:///{folder / 'store.sqlite3'}"
    upgrade(url, backup=False)
    return SqlStore(create(url))


def write(folder: Path, text: str, name: str = "campaign.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_sql_store_is_synced_in_a_child_and_its_writes_are_seen_here(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    path = write(tmp_path, CAMPAIGN)
    assert sync_process.shared_url(store) is not None
    try:
        report = sync_process.sync_campaign(store, path, NOW)
        assert report == sync_process.SyncReport("child", "child: 1 added", (), planned=True)
        assert [(p.post, p.state) for p in store.publications()] == [("bonjour", State.SCHEDULED)]
        again = sync_process.sync_campaign(store, path, NOW + timedelta(minutes=1))
        assert not again.planned
        assert again.summary.startswith("child: unchanged since the sync of 2030-06-01 10:00:00")
        assert sync_process.sync_campaign(store, path, NOW, force=True).planned
    finally:
        store.engine.dispose()


def test_a_refused_file_shows_every_problem_as_the_in_process_sync_does(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    path = write(tmp_path, BROKEN)
    try:
        with pytest.raises(CampaignInvalid) as in_child:
            sync_process.sync_campaign(store, path, NOW)
        with pytest.raises(CampaignInvalid) as here:
            sync_file(MemoryStore(), path, NOW)
        assert in_child.value.lines() == here.value.lines()
        assert len(in_child.value.lines()) == 2
        assert str(in_child.value) == str(here.value)
        refused = store.file_versions("child")[0]  # recorded by the child
        assert not refused.accepted
        assert refused.error is not None
        assert "colour" in refused.error
    finally:
        store.engine.dispose()


def test_a_store_error_in_the_child_is_raised_here_as_it_was() -> None:
    store = SqlStore(create("postgresql://postgres@127.0.0.1:1/nothing"))  # nobody listens
    with pytest.raises(StoreUnavailable, match=r"Connection refused|connection failed"):
        sync_process.sync_campaign(store, Path("config/campaign.toml").resolve(), NOW)


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("import os; os._exit(3)", "ended without an answer (exit status 3)"),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            "ended without an answer (killed by SIGKILL (out of memory?))",
        ),
        ("import sys; sys.stdout.buffer.write(b'half')", "ended without an answer (exit status 0)"),
    ],
)
def test_a_child_that_dies_is_a_sync_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, said: str
) -> None:
    store = sqlite_store(tmp_path)
    monkeypatch.setattr(sync_process, "CHILD_CODE", code)
    try:
        with pytest.raises(SyncFailed) as failed:
            sync_process.sync_campaign(store, write(tmp_path, CAMPAIGN), NOW)
        assert str(failed.value) == f"the sync process {said}"
    finally:
        store.engine.dispose()


def test_an_unexpected_error_in_the_child_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store(tmp_path)
    failing = (
        "import postscheduler.syncing as s\n"
        "def broken(*args, **kwargs): raise ValueError('a bug')\n"
        "s.sync_file = broken\n"
        f"{sync_process.CHILD_CODE}"
    )
    monkeypatch.setattr(sync_process, "CHILD_CODE", failing)
    try:
        with pytest.raises(SyncFailed) as failed:
            sync_process.sync_campaign(store, write(tmp_path, CAMPAIGN), NOW)
        assert str(failed.value) == "the sync process failed: ValueError: a bug"
    finally:
        store.engine.dispose()


def test_stores_no_other_process_can_open_are_synced_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_process, "CHILD_CODE", "import os; os._exit(3)")
    path = write(tmp_path, CAMPAIGN)
    memory = SqlStore(create("sqlite://"))
    try:
        assert sync_process.shared_url(memory) is None
        assert sync_process.shared_url(MemoryStore()) is None
        assert sync_process.sync_campaign(MemoryStore(), path, NOW).planned
        store = sqlite_store(tmp_path)
        try:
            assert sync_process.sync_campaign(store, path, NOW, here=True).planned
        finally:
            store.engine.dispose()
    finally:
        memory.engine.dispose()


def no_publisher(campaign: CampaignRecord, account: AccountRecord) -> Publisher:
    raise AssertionError("nothing is due: no publisher is needed")


def test_the_daemon_logs_a_failed_sync_process_and_keeps_the_last_good_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postscheduler.daemon")
    store = sqlite_store(tmp_path)
    path = write(tmp_path, CAMPAIGN)
    clock = FakeClock(NOW)
    dispatcher = Dispatcher(store, no_publisher, clock, DispatchSettings(owner="child"))
    daemon = Daemon(store, dispatcher, [path], timeline=Timeline(clock))
    try:
        assert daemon.sync(path)
        write(tmp_path, CAMPAIGN.replace("Bonjour.", "Bonsoir."))
        monkeypatch.setattr(
            sync_process, "CHILD_CODE", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
        )
        caplog.clear()
        assert not daemon.sync(path, force=True)
        assert [
            (r.levelname, getattr(r, "event", None), r.getMessage()) for r in caplog.records
        ] == [
            (
                "ERROR",
                "sync_failed",
                f"{path}: the sync process ended without an answer (killed by SIGKILL "
                "(out of memory?)); the last good plan keeps running",
            )
        ]
        assert [p.text for p in store.publications()] == ["Bonjour."]
        monkeypatch.undo()
        assert daemon.sync(path)  # the next sync works again
        assert [p.text for p in store.publications()] == ["Bonsoir."]
    finally:
        dispatcher.close()
        store.engine.dispose()
