"""What an idle daemon keeps in memory: the libraries it imports, what a sync leaves.

Each library costs megabytes of resident memory for as long as the daemon runs (see
``bench/bench_daemon_idle.py``). The import tests run in a fresh interpreter, so that what
other tests imported does not hide an import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postscheduler import daemon as daemon_module
from postscheduler.daemon import Daemon, Timeline
from postscheduler.dispatcher import Dispatcher, DispatchSettings
from postscheduler.ports import AccountRecord, CampaignRecord, Publisher
from postscheduler.store import migrate
from postscheduler.store.memory import MemoryStore
from postscheduler.testing import FakeClock

#: Imported by an idle daemon only when it needs them (Mastodon.py, requests and httpx
#: when the first publisher is built; Alembic when the schema must be upgraded).
NOT_WHEN_IDLE = ("sqlalchemy.orm", "alembic", "mastodon", "requests", "httpx")
#: Never imported by the daemon with a SQL store: its syncs (the one at start included)
#: run in a child process.
CAMPAIGN_FILE_CODE = (
    "pydantic",
    "tomli",
    "postscheduler.campaign_file",
    "postscheduler.syncing",
    "postscheduler.check",
    "postscheduler.domain.plan",
)

#: Stops the daemon as soon as it has started, and prints which of WATCHED it imported.
STARTED_THEN_STOP = """
import logging, os, signal, sys
from postscheduler.cli import main

class Started(logging.Handler):
    def emit(self, record):
        if record.getMessage() == "daemon started":
            print(",".join(m for m in WATCHED if m in sys.modules), flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

logging.getLogger("postscheduler.daemon").addHandler(Started())
sys.exit(main(["run", CAMPAIGN, "--db", URL]))
"""


def write_campaign_due_in_a_month(folder: Path, now: datetime) -> Path:
    """One post to one account, a month after ``now``."""
    opens = (now + timedelta(days=30)).replace(microsecond=0, tzinfo=None)
    path = folder / "campaign.toml"
    path.write_text(
        f"""\
[campaign]
id = "later"
name = "Later"
timezone = "UTC"
start = {opens.isoformat()}
end = {(opens + timedelta(days=1)).isoformat()}
language = "fr"

[accounts.alba]
instance = "https://alba.example"
token = {{ env = "FOOTPRINT_ALBA_TOKEN" }}
software = "mastodon"

[[posts]]
id = "bonjour"
at = {(opens + timedelta(hours=1)).isoformat()}
text = "Bonjour, dans un mois."
""",
        encoding="utf-8",
    )
    return path


def loaded_after(code: str, watched: tuple[str, ...]) -> list[str]:
    """Run ``code`` in a fresh interpreter; the modules of ``watched`` it left imported."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {watched!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [name for name in result.stdout.strip().split(",") if name]


def test_the_store_uses_sqlalchemy_core_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    migrate.upgrade(url)
    code = (
        "from postscheduler.store.opening import open_store\n"
        f"store = open_store({url!r}, upgrade=True)\n"
        "store.next_due(); store.campaigns(); store.file_versions('none')\n"
        "store.engine.dispose()"
    )
    assert loaded_after(code, ("sqlalchemy", "sqlalchemy.orm", "alembic")) == ["sqlalchemy"]


def test_an_idle_daemon_imports_no_publishing_library_nor_the_campaign_file_code(
    tmp_path: Path,
) -> None:
    """`run` with nothing due soon, its campaign planned at start: started and stopped
    with none of them imported."""
    campaign = write_campaign_due_in_a_month(tmp_path, datetime.now(UTC))
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    migrate.upgrade(url)
    watched = ("sqlalchemy", *NOT_WHEN_IDLE, *CAMPAIGN_FILE_CODE)
    code = STARTED_THEN_STOP.replace("WATCHED", repr(watched))
    code = code.replace("CAMPAIGN", repr(str(campaign))).replace("URL", repr(url))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "FOOTPRINT_ALBA_TOKEN": "not-a-real-token"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "later: 1 added" in result.stderr
    assert result.stdout.strip() == "sqlalchemy"


def no_publisher(campaign: CampaignRecord, account: AccountRecord) -> Publisher:
    raise AssertionError("nothing is due: no publisher is needed")


def test_a_sync_that_planned_releases_memory_an_unchanged_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
    campaign = write_campaign_due_in_a_month(tmp_path, now)
    clock = FakeClock(now)
    store = MemoryStore()
    dispatcher = Dispatcher(store, no_publisher, clock, DispatchSettings(owner="footprint"))
    daemon = Daemon(store, dispatcher, [campaign], timeline=Timeline(clock))
    released: list[datetime] = []
    monkeypatch.setattr(daemon_module, "release_memory", lambda: released.append(clock.now()))
    try:
        assert daemon.sync(campaign)
        assert released == [now]
        clock.advance(timedelta(minutes=1))
        assert daemon.sync(campaign)  # unchanged: nothing was planned, nothing to release
        assert released == [now]
        assert daemon.sync(campaign, force=True)
        assert len(released) == 2
    finally:
        dispatcher.close()
    monkeypatch.undo()
    daemon_module.release_memory()  # and the real one runs here (glibc or not)
