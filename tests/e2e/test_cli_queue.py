"""The queue commands as organisers run them: ``python -m postscheduler`` in a subprocess,
on a SQLite database filled by ``postscheduler sync config/campaign.toml``.

The real clock is used: the example campaign (October 2017) is long past, so due times read
as "late". Read-only commands share one database per module; commands that change states
get a database of their own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "config/campaign.toml"
CAMPAIGN = "venezuela-2017"
FIRST = f"{CAMPAIGN}/lancement/alba/1"
THREAD = [
    f"{CAMPAIGN}/bataille-historique/alba/1",
    f"{CAMPAIGN}/bataille-historique/alba/2",
    f"{CAMPAIGN}/bataille-historique/peuples/1",
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``postscheduler ARGS`` from the repository root; never a traceback, whatever happens."""
    environment = {k: v for k, v in os.environ.items() if k != "POSTSCHEDULER_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "postscheduler", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
        env=environment,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``postscheduler: …`` line a refused command prints."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("postscheduler: ")
    return lines[0]


def synced_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'x.sqlite3'}"
    result = run("sync", EXAMPLE, "--db", url)
    assert result.returncode == 0, result.stderr
    return url


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database synced once, for commands that only read."""
    return synced_database(tmp_path_factory.mktemp("queue-e2e"))


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database of its own, for commands that change states."""
    return synced_database(tmp_path)


# -- reading --------------------------------------------------------------------------------


def test_status_shows_the_campaign_and_its_accounts(shared_db: str) -> None:
    result = run("status", "--db", shared_db)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Nous sommes tous le Venezuela ({CAMPAIGN})"
    alba = next(line for line in lines if line.startswith("alba"))
    peuples = next(line for line in lines if line.startswith("peuples"))
    assert "10 scheduled" in alba
    assert "12 scheduled" in peuples
    assert re.search(r"2017-10-05T12:00:00Z \(\d+d( \d+h)? late\)", alba)


def test_status_json(shared_db: str) -> None:
    result = run("status", "--db", shared_db, "--json", "--campaign", CAMPAIGN)
    assert result.returncode == 0, result.stderr
    (campaign,) = json.loads(result.stdout)["campaigns"]
    totals = {a["name"]: a["total"] for a in campaign["accounts"]}
    assert totals == {"alba": 10, "peuples": 12}
    assert set(campaign["accounts"][0]["counts"]) == {
        "scheduled",
        "claimed",
        "retrying",
        "uncertain",
        "published",
        "failed",
        "expired",
        "cancelled",
    }


def test_queue_with_a_limit_as_json(shared_db: str) -> None:
    result = run("queue", "--limit", "5", "--json", "--db", shared_db)
    assert result.returncode == 0, result.stderr
    items: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(items) == 5
    assert items[0]["key"] == FIRST
    assert [i["due_at"] for i in items] == sorted(i["due_at"] for i in items)
    assert "showing the first 5" in result.stderr


def test_queue_refuses_a_bad_limit_and_a_bad_state(shared_db: str) -> None:
    zero = run("queue", "--limit", "0", "--db", shared_db)
    assert zero.returncode == 2
    assert "must be a positive integer, not '0'" in zero.stderr
    state = run("queue", "--state", "sent", "--db", shared_db)
    assert state.returncode == 2
    assert "invalid choice: 'sent'" in state.stderr


def test_show_a_publication_and_an_unknown_key(shared_db: str) -> None:
    result = run("show", FIRST, "--db", shared_db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == FIRST
    assert "Aujourd'hui commence la campagne" in result.stdout
    assert "(new) → scheduled  added from the campaign file  attempt 0  sync" in result.stdout
    shown = json.loads(run("show", FIRST, "--db", shared_db, "--json").stdout)
    assert shown["key"] == FIRST
    assert len(shown["history"]) == 1
    error = one_error_line(run("show", "nope/x/alba/1", "--db", shared_db))
    assert "no publication 'nope/x/alba/1'" in error


def test_export_ics_is_a_calendar_subscribers_can_read(shared_db: str, tmp_path: Path) -> None:
    target = tmp_path / "agenda.ics"
    result = run("export", "--format", "ics", "--output", str(target), "--db", shared_db)
    assert result.returncode == 0, result.stderr
    data = target.read_bytes()
    assert data.startswith(b"BEGIN:VCALENDAR\r\n")
    assert data.endswith(b"END:VCALENDAR\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    physical = data.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    for line in physical:
        line.decode("utf-8")
    unfolded = re.sub(rb"\r\n[ \t]", b"", data).decode("utf-8").split("\r\n")
    assert "VERSION:2.0" in unfolded
    assert "X-WR-CALNAME:Nous sommes tous le Venezuela" in unfolded
    assert unfolded.count("BEGIN:VEVENT") == 22
    assert f"UID:{FIRST}@postscheduler" in unfolded
    assert "DTSTART:20171005T120000Z" in unfolded
    assert list(tmp_path.iterdir()) == [target]

    raw = subprocess.run(
        [sys.executable, "-m", "postscheduler", "export", "--format", "ics", "--db", shared_db],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == data


def test_export_csv_and_json_to_standard_output(shared_db: str) -> None:
    csv_text = run("export", "--format", "csv", "--db", shared_db).stdout
    assert csv_text.startswith("key,campaign,post,")
    items = json.loads(run("export", "--format", "json", "--db", shared_db).stdout)
    assert len(items) == 22


def test_a_missing_database_is_one_clear_line(tmp_path: Path) -> None:
    error = one_error_line(run("status", "--db", f"sqlite:///{tmp_path / 'absent.sqlite3'}"))
    assert "no database at" in error
    assert "postscheduler sync" in error
    assert not (tmp_path / "absent.sqlite3").exists()


# -- changing -------------------------------------------------------------------------------


def test_cancel_then_retry_brings_the_cancelled_one_back(db: str) -> None:
    cancelled = run("cancel", FIRST, "--db", db)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"cancelled {FIRST} (was scheduled)\n"
    again = one_error_line(run("cancel", FIRST, "--db", db))
    assert "already cancelled" in again
    queue = json.loads(run("queue", "--state", "cancelled", "--json", "--db", db).stdout)
    assert [i["key"] for i in queue] == [FIRST]
    retried = run("retry", FIRST, "--db", db)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.startswith(f"{FIRST}: cancelled → scheduled")
    shown = json.loads(run("show", FIRST, "--db", db, "--json").stdout)
    assert shown["state"] == "scheduled"
    assert [(h["to"], h["actor"]) for h in shown["history"]] == [
        ("scheduled", "sync"),
        ("cancelled", "cli"),
        ("scheduled", "cli"),
    ]


def test_cancel_every_pending_publication_of_a_post(db: str) -> None:
    result = run("cancel", "--post", "bataille-historique", "--campaign", CAMPAIGN, "--db", db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"cancelled {key} (was scheduled)" for key in THREAD]
    again = run(
        "cancel", "--post", "bataille-historique", "--campaign", CAMPAIGN, "--db", db, "--json"
    )
    assert again.returncode == 1
    document = json.loads(again.stdout)
    assert document["cancelled"] == []
    assert {i["key"] for i in document["not_cancelled"]} == set(THREAD)


def test_retry_of_a_scheduled_publication_is_refused(db: str) -> None:
    error = one_error_line(run("retry", FIRST, "--db", db))
    assert "is scheduled; it cannot become scheduled (it is already waiting to be sent)" in error


def test_pause_and_resume(db: str) -> None:
    paused = run("pause", "--campaign", CAMPAIGN, "--db", db)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == f"paused campaign {CAMPAIGN}\n"
    assert run("status", "--db", db).stdout.splitlines()[0].endswith("[paused]")
    account = run("pause", "--campaign", CAMPAIGN, "--account", "peuples", "--db", db, "--json")
    assert json.loads(account.stdout)["changed"] is True
    resumed = run("resume", "--campaign", CAMPAIGN, "--db", db)
    assert resumed.stdout == f"resumed campaign {CAMPAIGN}\n"
    status = json.loads(run("status", "--json", "--db", db).stdout)
    paused_by_account = {a["name"]: a["paused"] for a in status["campaigns"][0]["accounts"]}
    assert paused_by_account == {"alba": False, "peuples": True}
    error = one_error_line(run("pause", "--campaign", "autre", "--db", db))
    assert "no campaign 'autre'" in error
