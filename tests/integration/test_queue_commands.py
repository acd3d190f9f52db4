"""The queue commands against a SQLite store filled from the example campaign.

Each test parses a command line with the parser :func:`add_queue_commands` builds, then runs
the command on a :class:`Session` holding the store, a fixed "now" and string outputs.
Errors the tool raises on purpose are checked as exceptions (``cli.main`` turns each into
one line and exit 1); argparse's refusals as ``SystemExit(2)``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from postscheduler.check import check_file
from postscheduler.cli_queue import CommandError, Session, add_queue_commands, handle
from postscheduler.domain.states import State
from postscheduler.errors import TransitionRefused, UnknownPublication
from postscheduler.ports import FileVersion, WorkerInfo
from postscheduler.store.common import campaign_records
from postscheduler.store.database import create
from postscheduler.store.schema import METADATA, PUBLICATIONS
from postscheduler.store.sql import SqlStore
from postscheduler.syncing import sync_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "campaign.toml"
CAMPAIGN = "venezuela-2017"
SYNCED_AT = datetime(2017, 10, 1, 12, 0, tzinfo=UTC)
#: Two hours before the first publications (12:00 UTC, 08:00 in Caracas).
NOW = datetime(2017, 10, 5, 10, 0, tzinfo=UTC)

FIRST = f"{CAMPAIGN}/lancement/alba/1"
THREAD = [
    f"{CAMPAIGN}/bataille-historique/alba/1",
    f"{CAMPAIGN}/bataille-historique/alba/2",
    f"{CAMPAIGN}/bataille-historique/peuples/1",
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    """A SQLite store holding the example campaign, synced once."""
    engine = create(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    METADATA.create_all(engine)
    sql = SqlStore(engine)
    report = check_file(EXAMPLE)
    assert report.ok
    assert report.loaded is not None
    assert report.window is not None
    campaign, accounts = campaign_records(report.loaded.campaign, str(EXAMPLE), report.window)
    version = FileVersion(str(EXAMPLE), "ab" * 32, SYNCED_AT, campaign=campaign.id)
    sql.sync(campaign, accounts, report.publications, version)
    try:
        yield sql
    finally:
        engine.dispose()


def parser() -> argparse.ArgumentParser:
    built = argparse.ArgumentParser(prog="postscheduler")
    add_queue_commands(built.add_subparsers(dest="command", metavar="COMMAND"))
    return built


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(store: SqlStore, *argv: str, now: datetime = NOW) -> Outcome:
    args = parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = args.queue_run(args, Session(store, now, out, err))
    return Outcome(code, out.getvalue(), err.getvalue())


def move(store: SqlStore, key: str, *states: State) -> None:
    """Walk ``key`` through ``states`` as a worker would."""
    for state in states:
        store.transition(key, state, now=NOW, cause="test", actor="worker-1")


def set_fields(store: SqlStore, key: str, **values: Any) -> None:
    """What a worker records besides the state (remote URL, error, retry time)."""
    with store.engine.begin() as db:
        db.execute(update(PUBLICATIONS).where(PUBLICATIONS.c.key == key).values(**values))


# -- status ---------------------------------------------------------------------------------


def test_status_shows_each_account_with_its_counts_and_next_due(store: SqlStore) -> None:
    move(store, FIRST, State.CLAIMED, State.FAILED)
    set_fields(store, FIRST, last_error="422: text too long", updated_at=NOW)
    result = run(store, "status")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == f"Nous sommes tous le Venezuela ({CAMPAIGN})"
    alba = next(line for line in lines if line.startswith("alba"))
    peuples = next(line for line in lines if line.startswith("peuples"))
    assert "9 scheduled, 1 failed" in alba
    assert "422: text too long" in alba
    assert "2017-10-05T16:00:00Z (in 6h)" in alba
    assert "12 scheduled" in peuples
    assert "2017-10-05T12:00:00Z (in 2h)" in peuples


def test_status_json_counts_every_state(store: SqlStore) -> None:
    document = run(store, "status", "--json", "--campaign", CAMPAIGN).json()
    (campaign,) = document["campaigns"]
    assert campaign["id"] == CAMPAIGN
    assert [a["name"] for a in campaign["accounts"]] == ["alba", "peuples"]
    alba = campaign["accounts"][0]
    assert alba["counts"] == {s.value: (10 if s is State.SCHEDULED else 0) for s in State}
    assert alba["next_due_in_seconds"] == 2 * 3600
    assert alba["paused"] is False


def test_status_lists_the_workers_with_their_age_and_a_stale_one_as_stale(
    store: SqlStore,
) -> None:
    beat = timedelta(seconds=30)
    alive = WorkerInfo(
        "web:12", "web", 12, "0.1.0", NOW - timedelta(hours=1), beat, (), (CAMPAIGN,)
    )
    dead = WorkerInfo("web:13", "web", 13, "0.1.0", NOW - timedelta(hours=1), beat, (), (CAMPAIGN,))
    store.heartbeat(alive, now=NOW - timedelta(seconds=20))
    store.heartbeat(dead, now=NOW - timedelta(minutes=4))

    lines = run(store, "status").out.splitlines()
    assert lines[lines.index("workers") + 1].startswith("owner")
    assert next(line for line in lines if line.startswith("web:12")).split()[1:4] == [
        "running",
        "20s",
        "ago",
    ]
    assert next(line for line in lines if line.startswith("web:13")).split()[1:4] == [
        "stale",
        "4m",
        "ago",
    ]
    document = run(store, "status", "--json").json()
    assert [(w["owner"], w["stale"], w["seen_seconds_ago"]) for w in document["workers"]] == [
        ("web:12", False, 20),
        ("web:13", True, 240),
    ]


def test_status_says_when_no_worker_has_run(store: SqlStore) -> None:
    assert run(store, "status").out.splitlines()[-1] == (
        "workers: none has written a heartbeat (no `postscheduler run` yet)"
    )
    assert run(store, "status", "--json").json()["workers"] == []


def test_status_of_an_unknown_campaign_is_an_error(store: SqlStore) -> None:
    with pytest.raises(UnknownPublication, match=r"no campaign 'nope'.*venezuela-2017"):
        run(store, "status", "--campaign", "nope")


# -- queue ----------------------------------------------------------------------------------


def test_queue_lists_in_due_order_up_to_the_limit(store: SqlStore) -> None:
    result = run(store, "queue", "--limit", "5", "--json")
    items = result.json()
    assert len(items) == 5
    assert [i["key"] for i in items[:2]] == [FIRST, f"{CAMPAIGN}/lancement/peuples/1"]
    assert [i["due_at"] for i in items] == sorted(i["due_at"] for i in items)
    assert "showing the first 5" in result.err
    everything = run(store, "queue", "--limit", "100", "--json")
    assert len(everything.json()) == 22
    assert everything.err == ""


def test_queue_filters_by_state_account_and_campaign(store: SqlStore) -> None:
    move(store, FIRST, State.EXPIRED)
    expired = run(store, "queue", "--state", "expired", "--json").json()
    assert [i["key"] for i in expired] == [FIRST]
    peuples = run(
        store, "queue", "--account", "peuples", "--campaign", CAMPAIGN, "--limit", "100", "--json"
    ).json()
    assert len(peuples) == 12
    assert {i["account"] for i in peuples} == {"peuples"}


def test_the_queue_table_shows_utc_local_time_and_first_words(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    lines = run(store, "queue", "--limit", "2").out.splitlines()
    assert "due (UTC)" in lines[0]
    assert "local (America/Caracas)" in lines[0]
    assert lines[1].startswith("2017-10-05 12:00Z")
    assert "2017-10-05 08:00 -0400" in lines[1]
    assert FIRST in lines[1]
    assert "scheduled" in lines[1]
    assert "in 2h" in lines[1]
    assert "Aujourd'hui commence la campagne « Nous sommes tous le" in lines[1]
    assert all(len(line) <= 160 for line in lines)


def test_queue_refuses_an_unknown_account(store: SqlStore) -> None:
    with pytest.raises(UnknownPublication, match="no account 'personne'"):
        run(store, "queue", "--account", "personne")


@pytest.mark.parametrize("limit", ["0", "-3", "beaucoup"])
def test_queue_limit_must_be_a_positive_integer(
    store: SqlStore, limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(store, "queue", "--limit", limit)
    assert stopped.value.code == 2
    assert f"argument --limit: must be a positive integer, not '{limit}'" in capsys.readouterr().err


def test_queue_state_must_be_a_state(store: SqlStore, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(store, "queue", "--state", "sent")
    assert "invalid choice: 'sent'" in capsys.readouterr().err


# -- show -----------------------------------------------------------------------------------


def test_show_prints_the_whole_publication_and_its_history(store: SqlStore) -> None:
    key = f"{CAMPAIGN}/drapeau/peuples/1"
    text = run(store, "show", key).out
    lines = text.splitlines()
    assert lines[0] == key
    assert "Solidarité avec le peuple vénézuélien" in text
    assert "[image/png: " in text
    assert "alt: Drapeau aux trois bandes horizontales égales" in text
    history = lines[lines.index("history:") + 1 :]
    assert len(history) == 1
    assert "(new) → scheduled  added from the campaign file  attempt 0  sync" in history[0]

    higuera = run(store, "show", f"{CAMPAIGN}/higuera/alba/1").out
    assert "CW: Mort violente, assassinat" in higuera


def test_show_json_has_every_field_and_the_history(store: SqlStore) -> None:
    document = run(store, "show", FIRST, "--json").json()
    assert document["key"] == FIRST
    assert document["state"] == "scheduled"
    assert document["scheduled_at"] == "2017-10-05T12:00:00Z"
    assert document["text"] == store.get(FIRST).text
    assert [h["to"] for h in document["history"]] == ["scheduled"]


def test_show_an_unknown_key_is_an_error(store: SqlStore) -> None:
    with pytest.raises(UnknownPublication, match="no publication 'nope/x/alba/1'"):
        run(store, "show", "nope/x/alba/1")


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_a_key_records_who_and_why(store: SqlStore) -> None:
    result = run(store, "cancel", FIRST)
    assert result.code == 0
    assert result.out == f"cancelled {FIRST} (was scheduled)\n"
    assert store.get(FIRST).state is State.CANCELLED
    last = store.history(FIRST)[-1]
    assert (last.from_state, last.to_state, last.cause, last.actor, last.at) == (
        State.SCHEDULED,
        State.CANCELLED,
        "cancelled by hand",
        "cli",
        NOW,
    )
    with pytest.raises(TransitionRefused, match="is already cancelled"):
        run(store, "cancel", FIRST)


def test_cancel_a_published_key_is_refused_with_the_state_machines_reason(
    store: SqlStore,
) -> None:
    move(store, FIRST, State.CLAIMED, State.PUBLISHED)
    with pytest.raises(TransitionRefused, match="already on the server; delete it there"):
        run(store, "cancel", FIRST)
    assert store.get(FIRST).state is State.PUBLISHED
    assert len(store.history(FIRST)) == 3


def test_cancel_a_post_cancels_what_waits_and_reports_the_rest(store: SqlStore) -> None:
    move(store, THREAD[0], State.CLAIMED)
    move(store, THREAD[2], State.CLAIMED, State.PUBLISHED)
    result = run(store, "cancel", "--post", "bataille-historique", "--campaign", CAMPAIGN)
    assert result.code == 0
    assert result.out == f"cancelled {THREAD[1]} (was scheduled)\n"
    assert "not cancelled: " + THREAD[0] + " is claimed" in result.err
    assert "being sent right now" in result.err
    assert "already on the server" in result.err
    assert [store.get(k).state for k in THREAD] == [
        State.CLAIMED,
        State.CANCELLED,
        State.PUBLISHED,
    ]

    again = run(store, "cancel", "--post", "bataille-historique", "--campaign", CAMPAIGN, "--json")
    assert again.code == 1
    document = again.json()
    assert document["cancelled"] == []
    reasons = {item["key"]: item for item in document["not_cancelled"]}
    assert set(reasons) == set(THREAD)
    assert reasons[THREAD[1]]["reason"].endswith("is already cancelled")
    assert reasons[THREAD[2]]["state"] == "published"


def test_cancel_a_post_also_cancels_a_retrying_publication(store: SqlStore) -> None:
    move(store, THREAD[0], State.CLAIMED, State.RETRYING)
    result = run(store, "cancel", "--post", "bataille-historique", "--campaign", CAMPAIGN)
    assert result.code == 0
    assert f"cancelled {THREAD[0]} (was retrying)" in result.out
    assert all(store.get(k).state is State.CANCELLED for k in THREAD)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cancel"], "cancel needs a KEY"),
        (["cancel", "--post", "merci"], "cancel needs a KEY"),
        (["cancel", FIRST, "--post", "merci", "--campaign", CAMPAIGN], "not both"),
        (["cancel", FIRST, "--campaign", CAMPAIGN], "not both"),
    ],
)
def test_cancel_refuses_arguments_that_do_not_go_together(
    store: SqlStore, argv: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run(store, *argv)


def test_cancel_an_unknown_post_or_campaign_is_an_error(store: SqlStore) -> None:
    with pytest.raises(UnknownPublication, match="no post 'absent'"):
        run(store, "cancel", "--post", "absent", "--campaign", CAMPAIGN)
    with pytest.raises(UnknownPublication, match="no campaign 'autre'"):
        run(store, "cancel", "--post", "merci", "--campaign", "autre")


# -- retry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [(State.CLAIMED, State.FAILED), (State.EXPIRED,), (State.CANCELLED,)]
)
def test_retry_puts_a_failed_expired_or_cancelled_publication_back(
    store: SqlStore, path: tuple[State, ...]
) -> None:
    move(store, FIRST, *path)
    result = run(store, "retry", FIRST)
    assert result.code == 0
    assert result.out == (
        f"{FIRST}: {path[-1].value} → scheduled, due 2017-10-05T12:00:00Z (in 2h)\n"
    )
    record = store.get(FIRST)
    assert record.state is State.SCHEDULED
    assert record.cause == "retry by hand"
    last = store.history(FIRST)[-1]
    assert (last.cause, last.actor) == ("retry by hand", "cli")
    assert run(store, "queue", "--limit", "1", "--json").json()[0]["key"] == FIRST


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ((), "is scheduled; it cannot become scheduled (it is already waiting to be sent)"),
        ((State.CLAIMED, State.PUBLISHED), "published history is never rewritten"),
        ((State.CLAIMED,), "is claimed; retry takes only failed, expired or cancelled"),
        ((State.CLAIMED, State.RETRYING), "will be tried again at"),
        ((State.CLAIMED, State.UNCERTAIN), "is uncertain; it cannot become scheduled"),
    ],
)
def test_retry_refuses_every_other_state_and_changes_nothing(
    store: SqlStore, path: tuple[State, ...], message: str
) -> None:
    move(store, FIRST, *path)
    before = store.history(FIRST)
    with pytest.raises(TransitionRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(store, "retry", FIRST)
    assert store.history(FIRST) == before


def test_retry_of_a_later_part_behind_a_failed_part_points_at_that_part(
    store: SqlStore,
) -> None:
    first, second = THREAD[0], THREAD[1]
    move(store, first, State.CLAIMED, State.FAILED)
    assert store.get(second).state is State.FAILED  # ended with the part it replies to
    before = store.history(second)
    with pytest.raises(TransitionRefused, match=f"retry that part instead .*retry {first}"):
        run(store, "retry", second)
    assert store.history(second) == before
    assert run(store, "retry", first).code == 0
    assert [store.get(key).state for key in (first, second)] == [State.SCHEDULED] * 2


def test_retry_after_the_time_sends_at_once_with_the_files_current_text(
    tmp_path: Path,
) -> None:
    # The organiser's own copy of the campaign, synced; the first post fails (422).
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    path = folder / "campaign.toml"
    engine = create(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    METADATA.create_all(engine)
    store = SqlStore(engine)
    try:
        sync_file(store, path, SYNCED_AT)
        move(store, FIRST, State.CLAIMED, State.FAILED)
        # The text is shortened in the file; the sync refuses to touch a failed publication.
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace("Aujourd'hui commence la campagne", "Ça commence :"), encoding="utf-8"
        )
        refused = sync_file(store, path, SYNCED_AT + timedelta(days=5))
        assert [r.key for r in refused.plan.refused] == [FIRST]
        # Retried hours after its time: due at once (not expired for its old time), and
        # with the text the file holds now.
        later = datetime(2017, 10, 5, 15, 0, tzinfo=UTC)
        result = run(store, "retry", FIRST, now=later)
        assert result.code == 0, result.err
        record = store.get(FIRST)
        assert record.state is State.SCHEDULED
        assert record.due_at == later
        assert record.text.startswith("Ça commence :")
        assert "1 changed" in result.err
    finally:
        engine.dispose()


def test_retry_with_a_broken_file_keeps_the_text_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    path = folder / "campaign.toml"
    engine = create(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    METADATA.create_all(engine)
    store = SqlStore(engine)
    try:
        sync_file(store, path, SYNCED_AT)
        before = store.get(FIRST).text
        move(store, FIRST, State.CLAIMED, State.FAILED)
        path.write_text(path.read_text(encoding="utf-8") + "\n[oops\n", encoding="utf-8")
        result = run(store, "retry", FIRST)
        assert result.code == 0
        assert store.get(FIRST).state is State.SCHEDULED
        assert store.get(FIRST).text == before
        assert f"{path}: has errors; {FIRST} keeps the text it had" in result.err
    finally:
        engine.dispose()


def test_retry_an_unknown_key_is_an_error(store: SqlStore) -> None:
    with pytest.raises(UnknownPublication):
        run(store, "retry", "nope")


# -- pause, resume --------------------------------------------------------------------------


def test_pause_and_resume_a_campaign(store: SqlStore) -> None:
    assert run(store, "pause", "--campaign", CAMPAIGN).out == f"paused campaign {CAMPAIGN}\n"
    assert store.campaigns()[0].paused
    status = run(store, "status").out
    assert status.splitlines()[0].endswith("[paused]")
    again = run(store, "pause", "--campaign", CAMPAIGN, "--json").json()
    assert again == {"campaign": CAMPAIGN, "account": None, "paused": True, "changed": False}
    assert run(store, "resume", "--campaign", CAMPAIGN).out == f"resumed campaign {CAMPAIGN}\n"
    assert not store.campaigns()[0].paused


def test_pause_and_resume_one_account(store: SqlStore) -> None:
    result = run(store, "pause", "--campaign", CAMPAIGN, "--account", "peuples")
    assert result.out == f"paused account peuples of campaign {CAMPAIGN}\n"
    rows = {r.account: r for r in store.status(CAMPAIGN)}
    assert rows["peuples"].paused
    assert not rows["alba"].paused
    resumed = run(store, "resume", "--campaign", CAMPAIGN, "--account", "peuples", "--json")
    assert resumed.json()["changed"] is True
    assert not {r.account: r for r in store.status(CAMPAIGN)}["peuples"].paused
    assert "was not paused" in run(store, "resume", "--campaign", CAMPAIGN).out


def test_pause_names_must_exist(store: SqlStore, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UnknownPublication, match="no account 'personne'"):
        run(store, "pause", "--campaign", CAMPAIGN, "--account", "personne")
    with pytest.raises(UnknownPublication, match="no campaign 'autre'"):
        run(store, "resume", "--campaign", "autre")
    with pytest.raises(SystemExit):
        run(store, "pause")
    assert "--campaign" in capsys.readouterr().err


# -- export ---------------------------------------------------------------------------------


def test_export_csv_json_and_ics_to_standard_output(store: SqlStore) -> None:
    rows = list(csv.reader(io.StringIO(run(store, "export", "--format", "csv").out, newline="")))
    assert len(rows) == 23
    assert rows[1][0] == FIRST
    items = json.loads(run(store, "export", "--format", "json", "--campaign", CAMPAIGN).out)
    assert len(items) == 22
    ics = run(store, "export", "--format", "ics").out
    assert ics.startswith("BEGIN:VCALENDAR\r\n")
    assert ics.endswith("END:VCALENDAR\r\n")
    assert ics.count("BEGIN:VEVENT\r\n") == 22
    assert "X-WR-CALNAME:Nous sommes tous le Venezuela\r\n" in ics
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))


def test_export_to_a_file_replaces_it_whole_and_keeps_its_mode(
    store: SqlStore, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "agenda.ics"
    target.parent.mkdir()
    target.write_text("ancien contenu")
    target.chmod(0o644)
    result = run(store, "export", "--format", "ics", "--output", str(target))
    assert result.code == 0
    assert result.out == ""
    assert f"wrote 22 publications to {target} (ics)" in result.err
    assert target.read_bytes().decode() == run(store, "export", "--format", "ics").out
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(target.parent) == ["agenda.ics"]

    summary = run(store, "export", "--format", "csv", "--output", str(target), "--json").json()
    assert summary == {"output": str(target), "format": "csv", "publications": 22}


def test_export_into_a_missing_folder_is_one_clear_error(store: SqlStore, tmp_path: Path) -> None:
    target = tmp_path / "absent" / "agenda.ics"
    with pytest.raises(CommandError, match=r"cannot write .*agenda\.ics: No such file"):
        run(store, "export", "--format", "ics", "--output", str(target))
    assert not target.parent.exists()


def test_export_a_published_publication_links_to_it(store: SqlStore) -> None:
    move(store, FIRST, State.CLAIMED, State.PUBLISHED)
    set_fields(
        store,
        FIRST,
        remote_url="https://alba.example/@alba/1",
        published_at=NOW + timedelta(hours=2),
    )
    ics = run(store, "export", "--format", "ics").out
    assert "URL:https://alba.example/@alba/1\r\n" in ics
    assert "SUMMARY:[published] alba: " in ics


# -- the handler cli.main calls -------------------------------------------------------------


def test_the_handler_opens_the_store_without_upgrading_and_runs_the_command(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from postscheduler.store import opening  # noqa: PLC0415

    calls: list[tuple[str | None, bool]] = []

    def fake_open(url: str | None, *, upgrade: bool) -> SqlStore:
        calls.append((url, upgrade))
        return store

    monkeypatch.setattr(opening, "open_store", fake_open)
    args = parser().parse_args(["queue", "--db", "sqlite:///x.sqlite3", "--json", "--limit", "1"])
    assert handle(args) == 0
    assert calls == [("sqlite:///x.sqlite3", False)]
    (item,) = json.loads(capsys.readouterr().out)
    assert item["key"] == FIRST
