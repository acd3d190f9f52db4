"""SQLite's group commit: outcomes recorded together share one transaction (one fsync),
and each caller still gets its own result — or its own refusal, which changes nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from postscheduler.domain.states import State
from postscheduler.errors import LeaseLost
from postscheduler.store.database import create
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore
from postscheduler.syncing import sync_file

AT = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
ACCOUNTS = ("ana", "ben", "cy", "dee")


def store_with_claims(tmp_path: Path) -> tuple[SqlStore, list[str]]:
    """A SQLite store holding one claimed publication per account."""
    accounts = "".join(
        f'[accounts.{name}]\ninstance = "https://example.social"\ntoken = {{ env = "T" }}\n\n'
        for name in ACCOUNTS
    )
    path = tmp_path / "gc.toml"
    path.write_text(
        f"""[campaign]
id = "gc"
name = "Group commit"
timezone = "UTC"
start = {(AT - timedelta(hours=1)).replace(tzinfo=None).isoformat()}
end = {(AT + timedelta(hours=1)).replace(tzinfo=None).isoformat()}
language = "en"

{accounts}[[posts]]
id = "p"
at = {AT.replace(tzinfo=None).isoformat()}
text = "Hello"
accounts = {list(ACCOUNTS)!r}
""".replace("'", '"'),
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'gc.sqlite3'}"
    upgrade(url)
    store = SqlStore(create(url))
    sync_file(store, str(path), AT - timedelta(hours=2))
    claimed = store.claim_due(owner="w", now=AT, lease=timedelta(minutes=5), limit=10)
    return store, [r.key for r in claimed]


def test_outcomes_waiting_together_are_committed_together(tmp_path: Path) -> None:
    store, keys = store_with_claims(tmp_path)
    assert len(keys) == len(ACCOUNTS)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda connection: commits.append(1))
    results: dict[str, Any] = {}

    def record(key: str, owner: str) -> None:
        try:
            results[f"{key} {owner}"] = store.record(
                key, owner=owner, to=State.PUBLISHED, now=AT, cause="ok", remote_id=key
            )
        except LeaseLost as error:
            results[f"{key} {owner}"] = error

    calls = [(key, "w") for key in keys] + [(keys[0], "intruder")]
    writer = store._writer
    assert writer is not None
    with writer:
        threads = [threading.Thread(target=record, args=call) for call in calls]
        for thread in threads:
            thread.start()
        # The first caller leads and waits for the writer lock; the others queue behind it.
        deadline = time.monotonic() + 10
        while len(store._group._queue) < len(calls) - 1:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the callers did not queue up"
            time.sleep(0.01)  # waiting for the threads to arrive, not for time to pass
    for thread in threads:
        thread.join(30)
    # The leader alone (it took the queue before waiting), then everyone else at once.
    assert len(commits) == 2
    refused = results.pop(f"{keys[0]} intruder")
    assert isinstance(refused, LeaseLost)
    for key in keys:
        assert results[f"{key} w"].remote_id == key
        assert store.get(key).state is State.PUBLISHED
        assert [h.to_state for h in store.history(key)][-1] is State.PUBLISHED
    store.engine.dispose()


def test_a_failed_commit_is_every_callers_error_and_writes_nothing(tmp_path: Path) -> None:
    store, keys = store_with_claims(tmp_path)
    fail = threading.Event()
    fail.set()

    def refuse_commit(connection: Any) -> None:
        if fail.is_set():
            fail.clear()
            raise RuntimeError("disk full")

    event.listen(store.engine, "commit", refuse_commit)
    errors: list[BaseException] = []
    try:
        store.record(keys[0], owner="w", to=State.PUBLISHED, now=AT, cause="ok", remote_id="1")
    except RuntimeError as error:
        errors.append(error)
    assert [str(e) for e in errors] == ["disk full"]
    assert store.get(keys[0]).state is State.CLAIMED
    # The next outcome goes through: the lead was passed on, nothing is stuck.
    done = store.record(keys[0], owner="w", to=State.PUBLISHED, now=AT, cause="ok", remote_id="1")
    assert done.state is State.PUBLISHED
    store.engine.dispose()
