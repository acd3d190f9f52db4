"""The queue commands' renderers (pure): status, queue, show, CSV, JSON and ICS."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from postscheduler.domain.states import State
from postscheduler.ports import (
    CampaignRecord,
    PublicationRecord,
    StatusRow,
    TransitionRecord,
    WorkerInfo,
    WorkerRecord,
    WorkerState,
)
from postscheduler.queue_views import (
    CSV_COLUMNS,
    age,
    export_csv,
    export_ics,
    export_json,
    first_words,
    ics_escape,
    ics_fold,
    queue_json,
    queue_table,
    relative,
    show_json,
    show_text,
    span,
    status_json,
    status_table,
    worker_state,
    workers_json,
    workers_table,
)

NOW = datetime(2017, 10, 5, 10, 0, tzinfo=UTC)

CAMPAIGN = CampaignRecord(
    id="demo",
    name="Nous sommes tous le Venezuela",
    timezone="America/Caracas",
    window_start=datetime(2017, 10, 5, 4, 0, tzinfo=UTC),
    window_end=datetime(2017, 10, 9, 3, 59, tzinfo=UTC),
    misfire_policy="grace",
    misfire_grace=timedelta(minutes=15),
    path="/srv/campaign.toml",
)


def record(**changes: Any) -> PublicationRecord:
    base = PublicationRecord(
        key="demo/a/alba/1",
        campaign="demo",
        post="a",
        occurrence=None,
        account="alba",
        part=1,
        parts=1,
        scheduled_at=datetime(2017, 10, 5, 12, 0, tzinfo=UTC),
        text="Premier texte de la campagne, assez long pour être coupé dans un tableau.",
        spoiler_text="",
        visibility="public",
        language="fr",
        sensitive=False,
        media=(),
        reply_to=None,
        content_hash="ab" * 32,
        state=State.SCHEDULED,
        cause="added from the campaign file",
        updated_at=datetime(2017, 10, 1, 12, 0, tzinfo=UTC),
    )
    return replace(base, **changes)


# -- an independent reading of iCalendar, per RFC 5545 --------------------------------------


def unfold(text: str) -> str:
    """RFC 5545 §3.1: a CRLF followed by one space or tab is removed."""
    return re.sub(r"\r\n[ \t]", "", text)


def unescape(value: str) -> str:
    out, chars = [], iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars)
        out.append("\n" if following in "nN" else following)
    return "".join(out)


def content_lines(ics: str) -> list[tuple[str, str]]:
    assert ics.endswith("\r\n")
    lines = unfold(ics).split("\r\n")[:-1]
    return [(line.split(":", 1)[0], line.split(":", 1)[1]) for line in lines]


def events(ics: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for name, value in content_lines(ics):
        if (name, value) == ("BEGIN", "VEVENT"):
            current = {}
        elif (name, value) == ("END", "VEVENT"):
            assert current is not None
            found.append(current)
            current = None
        elif current is not None:
            current[name] = value
    return found


# -- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(hours=2, minutes=10), "in 2h 10m"),
        (timedelta(hours=2, minutes=10, seconds=59), "in 2h 10m"),
        (timedelta(minutes=-5), "5m late"),
        (timedelta(minutes=-5, seconds=-30), "5m late"),
        (timedelta(days=3, hours=4, minutes=30), "in 3d 4h"),
        (timedelta(days=-1), "1d late"),
        (timedelta(hours=3), "in 3h"),
        (timedelta(seconds=59), "now"),
        (timedelta(seconds=-59), "now"),
        (timedelta(minutes=1), "in 1m"),
    ],
)
def test_relative_times_read_as_words(delta: timedelta, expected: str) -> None:
    assert relative(NOW + delta, NOW) == expected


def test_a_span_keeps_its_two_largest_units() -> None:
    assert span(timedelta(days=2, minutes=5)) == "2d"
    assert span(timedelta(hours=-1, minutes=-1)) == "1h 1m"
    assert span(timedelta(seconds=10)) == "0m"


def test_first_words_flattens_and_cuts() -> None:
    assert first_words("un\n\ndeux   trois", 40) == "un deux trois"
    assert first_words("abcdefghij", 5) == "abcd…"
    assert first_words("\x1b[31mrouge", 40) == "\\x1b[31mrouge"


# -- status ---------------------------------------------------------------------------------


def rows() -> list[StatusRow]:
    return [
        StatusRow(
            "demo",
            "alba",
            {State.SCHEDULED: 12, State.PUBLISHED: 3, State.FAILED: 1},
            NOW + timedelta(hours=2, minutes=10),
            "422 Unprocessable:\nText too long",
        ),
        StatusRow(
            "demo",
            "peuples",
            {State.RETRYING: 2},
            NOW - timedelta(minutes=5),
            None,
            paused=True,
            held_reason="token refused (401)",
        ),
        StatusRow("demo", "vide", {}, None, None, paused=True),
    ]


def test_the_status_table_shows_counts_without_zeros_and_times_in_words() -> None:
    text = status_table(rows(), [CAMPAIGN], NOW)
    lines = text.splitlines()
    assert lines[0] == "Nous sommes tous le Venezuela (demo)"
    assert "2017-10-05T04:00:00Z to 2017-10-09T03:59:00Z (America/Caracas)" in lines[1]
    alba = next(line for line in lines if line.startswith("alba"))
    assert "12 scheduled, 3 published, 1 failed" in alba
    assert "0 " not in alba
    assert "2017-10-05T12:10:00Z (in 2h 10m)" in alba
    assert "422 Unprocessable: Text too long" in alba
    assert "active" in alba
    peuples = next(line for line in lines if line.startswith("peuples"))
    assert "2 retrying" in peuples
    assert "(5m late)" in peuples
    assert "held: token refused (401)" in peuples
    vide = next(line for line in lines if line.startswith("vide"))
    assert "paused" in vide
    assert "no publications" in vide


def test_the_status_table_marks_a_paused_campaign_and_says_when_there_is_none() -> None:
    paused = status_table(rows(), [replace(CAMPAIGN, paused=True)], NOW)
    assert paused.splitlines()[0].endswith("[paused]")
    assert "no campaign" in status_table([], [], NOW)


def test_status_json_counts_every_state_even_zero() -> None:
    document = status_json(rows(), [CAMPAIGN], NOW)
    assert document["now"] == "2017-10-05T10:00:00Z"
    (campaign,) = document["campaigns"]
    assert campaign["id"] == "demo"
    assert campaign["name"] == CAMPAIGN.name
    alba, peuples, vide = campaign["accounts"]
    assert list(alba["counts"]) == [s.value for s in State]
    assert alba["counts"]["scheduled"] == 12
    assert alba["counts"]["cancelled"] == 0
    assert alba["total"] == 16
    assert alba["next_due"] == "2017-10-05T12:10:00Z"
    assert alba["next_due_in_seconds"] == 130 * 60
    assert alba["next_due_relative"] == "in 2h 10m"
    assert alba["last_error"] == "422 Unprocessable:\nText too long"
    assert peuples["next_due_in_seconds"] == -300
    assert peuples["held_reason"] == "token refused (401)"
    assert peuples["paused"] is True
    assert vide["next_due"] is None
    assert vide["total"] == 0
    json.dumps(document)


# -- workers --------------------------------------------------------------------------------


def worker(owner: str, state: WorkerState, seen_ago: timedelta, **info: Any) -> WorkerRecord:
    host, _, pid = owner.rpartition(":")
    base = WorkerInfo(
        owner=owner,
        hostname=host,
        pid=int(pid),
        version="0.1.0",
        started_at=NOW - timedelta(hours=5),
        beat_every=timedelta(seconds=30),
        files=("/srv/campaign.toml",),
        campaigns=("demo",),
    )
    return WorkerRecord(replace(base, **info), state, NOW - seen_ago)


def workers() -> list[WorkerRecord]:
    return [
        worker("alba:1", WorkerState.RUNNING, timedelta(seconds=12)),
        # 3 beats exactly is not late yet; a second more is.
        worker("bord:2", WorkerState.RUNNING, timedelta(seconds=90)),
        worker("mort:3", WorkerState.RUNNING, timedelta(seconds=91), campaigns=()),
        worker("part:4", WorkerState.STOPPING, timedelta(minutes=10)),
        worker("fini:5", WorkerState.STOPPED, timedelta(days=2)),
    ]


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(seconds=60), "1m"),
        (timedelta(seconds=125), "2m 5s"),
        (timedelta(seconds=3599), "59m 59s"),
        (timedelta(hours=2, minutes=3, seconds=4), "2h 3m"),
        (timedelta(days=2), "2d"),
        (-timedelta(seconds=12), "12s"),
    ],
)
def test_an_age_is_told_to_the_second_while_short(delta: timedelta, expected: str) -> None:
    assert age(delta) == expected


def test_a_worker_is_stale_after_three_missed_beats_unless_stopped() -> None:
    states = [worker_state(w, NOW) for w in workers()]
    assert states == ["running", "running", "stale", "stale", "stopped"]
    slow = worker(
        "lent:6", WorkerState.RUNNING, timedelta(minutes=10), beat_every=timedelta(minutes=5)
    )
    assert worker_state(slow, NOW) == "running"


def test_the_workers_table_shows_state_age_start_version_and_campaigns() -> None:
    lines = workers_table(workers(), NOW).splitlines()
    assert lines[0] == "workers"
    assert lines[1].split() == ["owner", "state", "last", "seen", "started", "version", "campaigns"]
    alba = next(line for line in lines if line.startswith("alba:1"))
    assert alba.split() == [
        "alba:1",
        "running",
        "12s",
        "ago",
        "2017-10-05T05:00:00Z",
        "0.1.0",
        "demo",
    ]
    mort = next(line for line in lines if line.startswith("mort:3"))
    assert mort.split()[1:4] == ["stale", "1m", "31s"]
    assert mort.endswith("-")
    assert next(line for line in lines if line.startswith("part:4")).split()[1] == "stale"
    assert next(line for line in lines if line.startswith("fini:5")).split()[1:4] == [
        "stopped",
        "2d",
        "ago",
    ]
    assert lines[-1].startswith("stale: not seen for more than 3 heartbeats")


def test_the_workers_table_says_when_there_is_none_and_adds_no_note_when_none_is_stale() -> None:
    assert workers_table([], NOW) == (
        "workers: none has written a heartbeat (no `postscheduler run` yet)"
    )
    assert "stale" not in workers_table(workers()[:2], NOW)


def test_the_workers_table_shows_an_owner_s_control_characters_escaped() -> None:
    text = workers_table([worker("a\x1b[2J:7", WorkerState.RUNNING, timedelta(0))], NOW)
    assert "\x1b" not in text
    assert "a\\x1b[2J:7" in text


def test_workers_json_has_every_field_the_age_and_staleness() -> None:
    document = status_json(rows(), [CAMPAIGN], NOW, workers())
    assert document["workers"] == workers_json(workers(), NOW)
    alba, _bord, mort, _part, fini = document["workers"]
    assert alba == {
        "owner": "alba:1",
        "hostname": "alba",
        "pid": 1,
        "version": "0.1.0",
        "state": "running",
        "stale": False,
        "started_at": "2017-10-05T05:00:00Z",
        "last_seen_at": "2017-10-05T09:59:48Z",
        "seen_seconds_ago": 12,
        "beat_every_seconds": 30,
        "files": ["/srv/campaign.toml"],
        "campaigns": ["demo"],
    }
    assert (mort["state"], mort["stale"], mort["campaigns"]) == ("running", True, [])
    assert (fini["state"], fini["stale"]) == ("stopped", False)
    assert status_json(rows(), [CAMPAIGN], NOW)["workers"] == []
    json.dumps(document)


# -- queue ----------------------------------------------------------------------------------


def test_the_queue_table_lists_due_time_key_state_attempt_and_first_words() -> None:
    records = [
        record(),
        record(
            key="demo/b/alba/1",
            state=State.RETRYING,
            attempt=2,
            next_attempt_at=datetime(2017, 10, 5, 13, 7, tzinfo=UTC),
            text="Deuxième",
        ),
    ]
    lines = queue_table(records, width=80).splitlines()
    assert lines[0].split() == ["due", "(UTC)", "key", "state", "try", "text"]
    assert lines[1].startswith("2017-10-05 12:00Z")
    assert "demo/a/alba/1  scheduled  0" in lines[1]
    assert lines[1].endswith("…")
    assert len(lines[1]) <= 80
    assert lines[2].startswith("2017-10-05 13:07Z")
    assert "retrying   2" in lines[2]
    assert lines[2].endswith("Deuxième")


def test_the_queue_table_adds_local_time_and_when_asked() -> None:
    text = queue_table([record()], ZoneInfo("America/Caracas"), now=NOW)
    header, line = text.splitlines()
    assert "local (America/Caracas)" in header
    assert "2017-10-05 08:00 -0400" in line
    assert "in 2h" in line


def test_an_empty_queue_says_so() -> None:
    assert queue_table([]) == "no publication matches"
    assert queue_json([]) == []


def test_queue_json_gives_every_field() -> None:
    (item,) = queue_json([record(remote_url="https://a.example/@x/1", state=State.PUBLISHED)])
    assert item["key"] == "demo/a/alba/1"
    assert item["state"] == "published"
    assert item["scheduled_at"] == "2017-10-05T12:00:00Z"
    assert item["due_at"] == "2017-10-05T12:00:00Z"
    assert item["remote_url"] == "https://a.example/@x/1"
    assert set(CSV_COLUMNS) <= set(item)


# -- show -----------------------------------------------------------------------------------

HISTORY = [
    TransitionRecord(
        datetime(2017, 10, 1, 12, 0, tzinfo=UTC),
        None,
        State.SCHEDULED,
        "added from the campaign file",
        0,
        "sync",
    ),
    TransitionRecord(
        datetime(2017, 10, 5, 12, 0, 3, tzinfo=UTC),
        State.SCHEDULED,
        State.CANCELLED,
        "cancelled by hand",
        0,
        "cli",
        "asked by Ana",
    ),
]


def test_show_text_has_every_field_the_whole_text_cw_media_and_history() -> None:
    shown = record(
        text="Ligne un.\nLigne deux.",
        spoiler_text="Mort violente",
        media=(
            {"path": "media/drapeau.png", "alt": "Drapeau jaune, bleu, rouge", "mime": "image/png"},
        ),
        remote_url="https://a.example/@alba/1",
        last_error="timeout",
        state=State.CANCELLED,
    )
    text = show_text(shown, HISTORY)
    lines = text.splitlines()
    assert lines[0] == "demo/a/alba/1"
    for expected in (
        "campaign",
        "post",
        "account",
        "1 of 1",
        "cancelled",
        "2017-10-05T12:00:00Z",
        "public",
        "fr",
        "ab" * 32,
        "https://a.example/@alba/1",
        "timeout",
    ):
        assert expected in text
    assert "CW: Mort violente" in lines
    assert "  Ligne un." in lines
    assert "  Ligne deux." in lines
    assert "[image/png: media/drapeau.png] alt: Drapeau jaune, bleu, rouge" in lines
    assert "history:" in lines
    first, second = lines[lines.index("history:") + 1 :]
    assert first.strip().startswith("2017-10-01T12:00:00Z  (new) → scheduled")
    assert "sync" in first
    assert "scheduled → cancelled  cancelled by hand  attempt 0  cli  asked by Ana" in second


def test_show_json_has_the_record_and_its_history() -> None:
    document = show_json(record(), HISTORY)
    assert document["text"] == record().text
    assert [h["to"] for h in document["history"]] == ["scheduled", "cancelled"]
    assert document["history"][0]["from"] is None
    assert document["history"][1]["detail"] == "asked by Ana"
    json.dumps(document)


# -- CSV and JSON ---------------------------------------------------------------------------


def test_csv_round_trips_through_a_csv_reader() -> None:
    tricky = 'Virgule, "guillemets", point-virgule ;\r\nligne deux\nligne trois — ✊🏽'
    records = [
        record(text=tricky),
        record(
            key="demo/b/alba/1",
            text="=1+1",
            media=({"path": "m.png", "alt": "a, b"},),
            state=State.PUBLISHED,
            published_at=datetime(2017, 10, 5, 12, 0, 2, tzinfo=UTC),
        ),
    ]
    exported = export_csv(records)
    parsed = list(csv.reader(io.StringIO(exported, newline="")))
    assert parsed[0] == list(CSV_COLUMNS)
    assert len(parsed) == 3
    first = dict(zip(parsed[0], parsed[1], strict=True))
    assert first["text"] == tricky
    assert first["state"] == "scheduled"
    assert first["published_at"] == ""
    assert first["sensitive"] == "false"
    second = dict(zip(parsed[0], parsed[2], strict=True))
    assert second["text"] == "=1+1"
    assert json.loads(second["media"]) == [{"path": "m.png", "alt": "a, b"}]
    assert second["published_at"] == "2017-10-05T12:00:02Z"


def test_json_export_is_a_list_of_every_field() -> None:
    parsed = json.loads(export_json([record(), record(key="demo/b/alba/1")]))
    assert [p["key"] for p in parsed] == ["demo/a/alba/1", "demo/b/alba/1"]
    assert parsed[0]["text"] == record().text


# -- ICS ------------------------------------------------------------------------------------


def test_ics_escapes_backslash_semicolon_comma_and_newlines() -> None:
    assert ics_escape("a\\b;c,d\ne\r\nf\rg") == "a\\\\b\\;c\\,d\\ne\\nf\\ng"
    assert ics_escape("deux-points: gardés\ttab") == "deux-points: gardés\ttab"
    assert ics_escape("bip\x07\x1b[0m") == "bip[0m"


def test_a_short_line_is_not_folded_and_a_line_break_is_refused() -> None:
    assert ics_fold("SUMMARY:court") == "SUMMARY:court"
    assert ics_fold("X" * 75) == "X" * 75
    assert ics_fold("X" * 76) == "X" * 75 + "\r\n X"
    assert [len(p) for p in ics_fold("X" * 300).split("\r\n")] == [75, 75, 75, 75, 4]
    with pytest.raises(ValueError, match="line break"):
        ics_fold("a\nb")


def test_folding_never_splits_a_multibyte_character() -> None:
    folded = ics_fold("DESCRIPTION:" + "é" * 40 + "🇻🇪" * 20)
    for physical in folded.split("\r\n"):
        physical.encode("utf-8")
        assert len(physical.encode("utf-8")) <= 75
    assert unfold(folded) == "DESCRIPTION:" + "é" * 40 + "🇻🇪" * 20


CONTENT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=400,
)


@given(CONTENT)
@example("x" * 300)
@example("é" * 200)
@example("a" + "🇻🇪" * 60)
def test_folding_round_trips_and_keeps_every_line_within_75_octets(line: str) -> None:
    folded = ics_fold(line)
    assert unfold(folded) == line
    for physical in folded.encode("utf-8").split(b"\r\n"):
        assert len(physical) <= 75
        physical.decode("utf-8")  # each physical line is valid UTF-8 on its own
    assert all(p.startswith(" ") for p in folded.split("\r\n")[1:])


TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=600)


@given(TEXTS, TEXTS)
def test_an_exported_calendar_gives_back_each_text(text: str, spoiler: str) -> None:
    ics = export_ics([record(text=text, spoiler_text=spoiler)], [CAMPAIGN])
    assert "\n" not in ics.replace("\r\n", "")
    for physical in ics.encode("utf-8").split(b"\r\n"):
        assert len(physical) <= 75
        physical.decode("utf-8")
    (event,) = events(ics)
    description = unescape(event["DESCRIPTION"])
    expected = f"CW: {spoiler}\n\n{text}" if spoiler else text
    assert description.startswith(expected + "\n\nstate: scheduled")


def test_the_calendar_has_one_event_per_publication_as_subscribers_need() -> None:
    published = record(
        key="demo/b/alba/1",
        text="Publié, enfin; avec \\ et\nune seconde ligne",
        state=State.PUBLISHED,
        remote_url="https://alba.example/@alba/109",
        published_at=datetime(2017, 10, 5, 12, 0, 2, tzinfo=UTC),
    )
    cancelled = record(key="demo/c/alba/1", state=State.CANCELLED, text="Annulé")
    retrying = record(
        key="demo/d/alba/1",
        state=State.RETRYING,
        next_attempt_at=datetime(2017, 10, 5, 13, 7, 30, tzinfo=UTC),
        text="Encore",
    )
    ics = export_ics([record(), published, cancelled, retrying], [CAMPAIGN])
    assert ics.startswith("BEGIN:VCALENDAR\r\n")
    assert ics.endswith("END:VCALENDAR\r\n")
    header = dict(content_lines(ics)[:6])
    assert header["VERSION"] == "2.0"
    assert header["PRODID"].startswith("-//postscheduler//")
    assert unescape(header["X-WR-CALNAME"]) == "Nous sommes tous le Venezuela"
    first, second, third, fourth = events(ics)
    assert first["UID"] == "demo/a/alba/1@postscheduler"
    assert first["DTSTART"] == "20171005T120000Z"
    assert first["DTSTAMP"] == "20171001T120000Z"
    assert first["DURATION"] == "PT5M"
    assert unescape(first["SUMMARY"]).startswith("[scheduled] alba: Premier texte")
    assert "URL" not in first
    assert "STATUS" not in first
    assert second["URL"] == "https://alba.example/@alba/109"
    assert second["SUMMARY"].startswith("[published] alba: Publié\\, enfin\\; avec \\\\ et une")
    description = unescape(second["DESCRIPTION"])
    assert description.startswith(
        "Publié, enfin; avec \\ et\nune seconde ligne\n\nstate: published"
    )
    assert "https://alba.example/@alba/109" in description
    assert third["STATUS"] == "CANCELLED"
    assert fourth["DTSTART"] == "20171005T130730Z"


def test_a_calendar_of_several_campaigns_names_them_all() -> None:
    other = replace(CAMPAIGN, id="autre", name="Autre; campagne")
    ics = export_ics([], [CAMPAIGN, other])
    name = dict(content_lines(ics))["X-WR-CALNAME"]
    assert unescape(name) == "Autre; campagne, Nous sommes tous le Venezuela"
    assert events(ics) == []
