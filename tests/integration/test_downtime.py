"""Downtime: the daemon stopped across due times — minutes to days, on a fake clock — and
started again. Each misfire policy must do what docs/campaign-file.md says: ``grace``
publishes what is at most that late and expires the rest, ``skip`` expires everything
missed, ``until_end`` publishes everything missed (in order) until the window ends; never
a publication after the window's end, never one silently dropped (each expired one says
why).

The real wiring: the campaign file synced into a SQLite store, the dispatcher with the live
publishers (discovery, token from the environment, Mastodon.py) against a sandbox server on
loopback whose clock is the test's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postscheduler.dispatcher import Dispatcher, DispatchSettings
from postscheduler.domain.states import State
from postscheduler.publishers.factory import LivePublishers
from postscheduler.sandbox import SandboxServer
from postscheduler.store.database import create
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore
from postscheduler.syncing import sync_file
from postscheduler.testing import FakeClock

#: The window: 1 March 2030, 08:00 to 3 March 2030, 20:00 UTC.
START = datetime(2030, 3, 1, 8, 0, tzinfo=UTC)
END = datetime(2030, 3, 3, 20, 0, tzinfo=UTC)
#: One post an hour on the first day, 09:00 to 18:00, then one each on the next two days.
DUE = [START.replace(hour=h) for h in range(9, 19)] + [
    datetime(2030, 3, 2, 12, 0, tzinfo=UTC),
    datetime(2030, 3, 3, 12, 0, tzinfo=UTC),
]
#: The daemon runs until just after the first post, then is down; GRACE is 15 minutes.
DOWN_AT = DUE[0] + timedelta(minutes=1)


def campaign(folder: Path, url: str, policy: str) -> Path:
    posts = "".join(
        f'[[posts]]\nid = "p{n:02}"\nat = {due.replace(tzinfo=None).isoformat()}\n'
        f'text = "Publication {n}"\n\n'
        for n, due in enumerate(DUE)
    )
    grace = ', grace = "15m"' if policy == "grace" else ""
    path = folder / "campaign.toml"
    path.write_text(
        f"""[campaign]
id = "down"
name = "Downtime"
timezone = "UTC"
start = {START.replace(tzinfo=None).isoformat()}
end = {END.replace(tzinfo=None).isoformat()}
language = "en"
min_spacing = "0m"
misfire = {{ policy = "{policy}"{grace} }}

[accounts.alba]
instance = "{url}"
token = {{ env = "DOWNTIME_TOKEN" }}
software = "mastodon"

{posts}""",
        encoding="utf-8",
    )
    return path


class Rig:
    def __init__(self, folder: Path, policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = FakeClock(START - timedelta(days=1))
        self.server = SandboxServer("mastodon", clock=self.clock.epoch)
        self.server.start()
        monkeypatch.setenv("DOWNTIME_TOKEN", self.server.add_account("alba"))
        url = f"sqlite:///{folder / 'store.sqlite3'}"
        upgrade(url, backup=False)
        self.store = SqlStore(create(url))
        sync_file(self.store, campaign(folder, self.server.url, policy), self.clock.now())
        self.publishers = LivePublishers(self.store, self.clock)
        self.dispatcher = Dispatcher(
            self.store, self.publishers, self.clock, DispatchSettings(owner="down", workers=1)
        )
        #: When each status reached the server (campaign time), by text.
        self.sent_at: dict[str, datetime] = {}

    def run_until(self, stop: datetime | None) -> None:
        """Tick and jump the clock to each next due instant, up to ``stop`` (None: until
        nothing is left), as the daemon's timer would."""
        for _ in range(500):
            report = self.dispatcher.tick()
            for status in self.server.statuses("alba"):
                self.sent_at.setdefault(status["text"], self.clock.now())
            due = report.next_due
            if due is None or (stop is not None and due > stop):
                if stop is not None:
                    self.clock.set(stop)
                return
            if due > self.clock.now():
                self.clock.set(due)
        raise AssertionError("the campaign did not settle")

    def states(self) -> dict[str, tuple[State, str | None]]:
        return {r.key.split("/")[1]: (r.state, r.cause) for r in self.store.publications()}

    def close(self) -> None:
        self.dispatcher.close()
        self.publishers.close()
        self.store.engine.dispose()
        self.server.stop()


@pytest.fixture
def make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Rig]]:
    made: list[Rig] = []

    def build(policy: str) -> Rig:
        rig = Rig(tmp_path / policy, policy, monkeypatch)
        made.append(rig)
        return rig

    (tmp_path / "grace").mkdir()
    (tmp_path / "skip").mkdir()
    (tmp_path / "until_end").mkdir()
    try:
        yield build  # type: ignore[misc]
    finally:
        for rig in made:
            rig.close()


def down_then_up(rig: Rig, downtime: timedelta) -> datetime:
    """Run to DOWN_AT, stop for ``downtime``, start again and run to the end; returns the
    restart instant."""
    rig.run_until(DOWN_AT)
    assert rig.states()["p00"][0] is State.PUBLISHED
    back = DOWN_AT + downtime
    rig.clock.set(back)
    rig.run_until(None)
    return back


def missed(back: datetime) -> list[int]:
    """The posts due while the daemon was down (after the first)."""
    return [n for n, due in enumerate(DUE) if DOWN_AT < due < back]


@pytest.mark.parametrize("downtime", [timedelta(minutes=50), timedelta(hours=4)])
def test_grace_publishes_what_is_at_most_that_late_and_expires_the_rest(
    make: type[Rig], downtime: timedelta
) -> None:
    rig = make("grace")  # type: ignore[call-arg]
    back = down_then_up(rig, downtime)
    states = rig.states()
    for n in missed(back):
        state, cause = states[f"p{n:02}"]
        if back - DUE[n] <= timedelta(minutes=15):
            assert state is State.PUBLISHED, n
            assert rig.sent_at[f"Publication {n}"] == back
        else:
            assert state is State.EXPIRED, n
            assert cause is not None
            assert "missed by" in cause
            assert "misfire policy grace: at most 15m late" in cause
    # Everything not missed went out on time; nothing is left waiting.
    for n, due in enumerate(DUE):
        if n == 0 or due > back:
            assert states[f"p{n:02}"][0] is State.PUBLISHED
            assert rig.sent_at[f"Publication {n}"] == due
    assert {state for state, _ in states.values()} <= {State.PUBLISHED, State.EXPIRED}


def test_grace_at_the_edge_publishes_the_one_just_inside(make: type[Rig]) -> None:
    rig = make("grace")  # type: ignore[call-arg]
    # Back 15 minutes after 10:00 exactly: 10:00 is inside the grace; 09:00 was published.
    back = down_then_up(rig, DUE[1] + timedelta(minutes=15) - DOWN_AT)
    assert back == DUE[1] + timedelta(minutes=15)
    assert rig.states()["p01"][0] is State.PUBLISHED
    assert rig.sent_at["Publication 1"] == back


@pytest.mark.parametrize(
    "downtime",
    # Back at 10:00:30 (30 s late: on time), at 10:06, and the next day.
    [timedelta(minutes=59, seconds=30), timedelta(minutes=65), timedelta(hours=30)],
)
def test_skip_expires_everything_missed(make: type[Rig], downtime: timedelta) -> None:
    rig = make("skip")  # type: ignore[call-arg]
    back = down_then_up(rig, downtime)
    states = rig.states()
    assert missed(back), "the downtime must cover due times"
    for n in missed(back):
        state, cause = states[f"p{n:02}"]
        if back - DUE[n] <= timedelta(seconds=60):  # on time, give or take a minute
            assert state is State.PUBLISHED
        else:
            assert state is State.EXPIRED
            assert cause is not None
            assert "misfire policy skip: on time" in cause
    for n, due in enumerate(DUE):
        if due > back:
            assert rig.sent_at[f"Publication {n}"] == due


def test_until_end_publishes_everything_missed_in_order_at_restart(make: type[Rig]) -> None:
    rig = make("until_end")  # type: ignore[call-arg]
    back = down_then_up(rig, timedelta(hours=30))  # 2 March 15:01: the 2 March noon post too
    states = rig.states()
    late = missed(back)
    assert len(late) == 10
    assert all(states[f"p{n:02}"][0] is State.PUBLISHED for n in range(len(DUE)))
    texts = [s["text"] for s in rig.server.statuses("alba")]
    assert texts == [f"Publication {n}" for n in range(len(DUE))]  # in order, once each
    assert all(rig.sent_at[f"Publication {n}"] == back for n in late)
    assert rig.sent_at[f"Publication {len(DUE) - 1}"] == DUE[-1]


@pytest.mark.parametrize("policy", ["grace", "skip", "until_end"])
def test_down_past_the_windows_end_expires_everything_left_with_the_reason(
    make: type[Rig], policy: str
) -> None:
    rig = make(policy)  # type: ignore[call-arg]
    down_then_up(rig, timedelta(days=3))  # back on 4 March: the window ended on the 3rd
    states = rig.states()
    assert states["p00"][0] is State.PUBLISHED
    for n in range(1, len(DUE)):
        state, cause = states[f"p{n:02}"]
        assert state is State.EXPIRED
        assert cause is not None
        assert "the campaign window ended at 2030-03-03 20:00 UTC" in cause
    assert [s["text"] for s in rig.server.statuses("alba")] == ["Publication 0"]
