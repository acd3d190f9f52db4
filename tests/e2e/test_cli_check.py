"""The command line as organisers run it: ``python -m postscheduler`` in a subprocess.

Each subprocess costs about 0.3 s, so the example's ``--json`` document is produced once per
module and checked by many tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "config/campaign.toml"

WINDOW_START = datetime(2017, 10, 5, 4, 0, tzinfo=UTC)
WINDOW_END = datetime(2017, 10, 9, 3, 59, tzinfo=UTC)

BROKEN = """\
[campaign]
id = "cassee"
name = "Campagne cassée"
timezone = "Europe/Lutece"
start = 2024-05-01T00:00:00
end = 2024-05-03T23:59:00
language = "fr"

[accounts.alba]
instance = "http://alba.example"
token = { env = "ALBA_TOKEN" }

[[posts]]
id = "bonjour"
text = "Bonjour"
hashtag = ["Essai"]
"""

# Two posts of one account 5 minutes apart, each at a time the organiser chose: a warning.
CLOSE_POSTS = """\
[campaign]
id = "serree"
name = "Campagne serrée"
timezone = "Europe/Paris"
start = 2024-05-01T00:00:00
end = 2024-05-03T23:59:00
language = "fr"
min_spacing = "30m"

[accounts.alba]
instance = "https://alba.example"
token = { env = "ALBA_TOKEN" }
software = "mastodon"

[[posts]]
id = "premier"
at = 2024-05-01T10:00:00
text = "Premier message de la journée."

[[posts]]
id = "second"
at = 2024-05-01T10:05:00
text = "Second message, bien trop tôt après le premier."
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``postscheduler ARGS`` from the repository root; never a traceback, whatever happens."""
    result = subprocess.run(
        [sys.executable, "-m", "postscheduler", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.fixture(scope="module")
def example_json() -> dict[str, Any]:
    result = run("check", EXAMPLE, "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module")
def publications(example_json: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = example_json["publications"]
    return found


def by_post(publications: list[dict[str, Any]], post: str) -> list[dict[str, Any]]:
    return [p for p in publications if p["post"] == post]


# -- the example, as a table ----------------------------------------------------------------


def test_check_prints_the_table_and_a_summary() -> None:
    result = run("check", EXAMPLE)

    assert result.returncode == 0, result.stderr
    assert "Nous sommes tous le Venezuela (venezuela-2017)" in result.stdout
    assert "window: 2017-10-05 00:00 to 2017-10-08 23:59 America/Caracas" in result.stdout
    for expected in ("lancement", "bataille-historique", "1/2", "2/2", "drapeau"):
        assert expected in result.stdout
    rows = [line for line in result.stdout.splitlines() if "bataille-historique" in line]
    # local date, time, offset, UTC date, time, account, post, part, …
    assert [tuple(row.split()[5:8]) for row in rows] == [
        ("alba", "bataille-historique", "1/2"),
        ("alba", "bataille-historique", "2/2"),
        ("peuples", "bataille-historique", "1/1"),
    ]
    assert re.search(r"^\d+ publications \(\d+ posts, 2 accounts\)$", result.stdout, re.M)
    assert result.stderr == f"{EXAMPLE}: ok, 0 warnings\n"


# -- the example, as JSON -------------------------------------------------------------------


def test_json_document_is_ok(example_json: dict[str, Any]) -> None:
    assert example_json["ok"] is True
    assert example_json["file"] == EXAMPLE
    assert example_json["errors"] == []
    assert example_json["warnings"] == []
    assert [(a["name"], a["software"], a["limit"]) for a in example_json["accounts"]] == [
        ("alba", "Mastodon", 500),
        ("peuples", "GoToSocial", 5000),
    ]


def test_json_publications_cover_the_campaign(publications: list[dict[str, Any]]) -> None:
    posts = {p["post"] for p in publications}
    assert len(posts) >= 12
    assert {p["account"] for p in publications} == {"alba", "peuples"}
    expected_keys = {
        "key", "post", "occurrence", "account", "instance", "part", "parts", "at",
        "local_at", "text", "spoiler_text", "visibility", "language", "sensitive",
        "hashtags", "media", "in_reply_to", "characters", "limit", "counting",
        "content_hash",
    }  # fmt: skip
    assert all(set(p) == expected_keys for p in publications)
    assert all(p["language"] == "fr" for p in publications)
    assert all(p["characters"] <= p["limit"] for p in publications)
    assert all(re.fullmatch(r"[0-9a-f]{64}", p["content_hash"]) for p in publications)


def test_json_keys_are_unique_and_stable(publications: list[dict[str, Any]]) -> None:
    keys = [p["key"] for p in publications]
    assert len(keys) == len(set(keys))
    assert "venezuela-2017/lancement/alba/1" in keys

    again = json.loads(run("check", EXAMPLE, "--json").stdout)["publications"]

    assert [p["key"] for p in again] == keys
    assert [p["content_hash"] for p in again] == [p["content_hash"] for p in publications]


def test_json_times_are_utc_and_inside_the_window(publications: list[dict[str, Any]]) -> None:
    for publication in publications:
        assert publication["at"].endswith("Z")
        at = datetime.fromisoformat(publication["at"])
        assert WINDOW_START <= at <= WINDOW_END
        assert datetime.fromisoformat(publication["local_at"]) == at
    times = [p["at"] for p in publications]
    assert times == sorted(times)
    lancement = by_post(publications, "lancement")
    assert {p["at"] for p in lancement} == {"2017-10-05T12:00:00Z"}
    assert {p["local_at"] for p in lancement} == {"2017-10-05T08:00:00-04:00"}


def test_a_long_excerpt_is_a_thread_on_mastodon_only(publications: list[dict[str, Any]]) -> None:
    alba = [p for p in by_post(publications, "bataille-historique") if p["account"] == "alba"]
    peuples = [p for p in by_post(publications, "bataille-historique") if p["account"] == "peuples"]

    assert [(p["part"], p["parts"]) for p in alba] == [(1, 2), (2, 2)]
    first, second = alba
    assert first["in_reply_to"] is None
    assert first["visibility"] == "public"
    assert second["in_reply_to"] == first["key"]
    assert second["visibility"] == "unlisted"
    assert second["at"] == first["at"]
    assert first["hashtags"] == ["NousSommesTousLeVenezuela", "ALBA"]
    assert second["hashtags"] == []
    assert [(p["part"], p["parts"], p["in_reply_to"]) for p in peuples] == [(1, 1, None)]


def test_media_spoiler_and_series(publications: list[dict[str, Any]]) -> None:
    (drapeau,) = by_post(publications, "drapeau")
    (media,) = drapeau["media"]
    assert media["path"] == "media/drapeau.png"
    assert media["mime"] == "image/png"
    assert media["size"] == (ROOT / "config/media/drapeau.png").stat().st_size
    assert media["alt"].startswith("Drapeau aux trois bandes horizontales")

    (higuera,) = by_post(publications, "higuera")
    assert higuera["spoiler_text"] == "Mort violente, assassinat"
    assert all(p["spoiler_text"] == "" for p in publications if p["post"] != "higuera")

    rappels = by_post(publications, "rappel-quotidien")
    assert len(rappels) == 4  # 13:00 Caracas on each of the four days
    assert len({p["occurrence"] for p in rappels}) == 4
    assert {p["visibility"] for p in rappels} == {"unlisted"}
    assert {p["account"] for p in rappels} == {"peuples"}


# -- broken campaigns -----------------------------------------------------------------------


@pytest.fixture
def broken(write_campaign: Callable[..., Path]) -> Path:
    return write_campaign(BROKEN)


def test_a_broken_campaign_lists_every_error_on_stderr(broken: Path) -> None:
    result = run("check", str(broken))

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        f"{broken}:{line_of(BROKEN, 'timezone =')}: campaign.timezone: 'Europe/Lutece' is not "
        "an IANA time zone: write e.g. 'America/Caracas', 'Europe/Paris'",
        f"{broken}:{line_of(BROKEN, 'instance =')}: accounts.alba.instance: use https:// "
        "(plain http:// is only allowed on 127.0.0.1 / localhost)",
        f"{broken}:{line_of(BROKEN, 'hashtag =')}: posts[0]: unknown key 'hashtag' "
        "(did you mean 'hashtags'?)",
        f"{broken}: 3 errors, 0 warnings",
    ]


def test_a_broken_campaign_in_json(broken: Path) -> None:
    result = run("check", str(broken), "--json")

    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["publications"] == []
    assert [(e["file"], e["line"], e["where"]) for e in document["errors"]] == [
        (str(broken), line_of(BROKEN, "timezone ="), "campaign.timezone"),
        (str(broken), line_of(BROKEN, "instance ="), "accounts.alba.instance"),
        (str(broken), line_of(BROKEN, "hashtag ="), "posts[0]"),
    ]
    assert document["errors"][2]["message"] == "unknown key 'hashtag' (did you mean 'hashtags'?)"


def test_warnings_pass_unless_strict(write_campaign: Callable[..., Path]) -> None:
    path = write_campaign(CLOSE_POSTS)
    warning = "'premier' and 'second' of account alba are 5m apart (min_spacing is 30m)"
    header = line_of(CLOSE_POSTS, 'id = "second"') - 1  # the second [[posts]]

    lenient = run("check", str(path), "--json")
    strict = run("check", str(path), "--strict")

    assert lenient.returncode == 0
    document = json.loads(lenient.stdout)
    assert document["ok"] is True
    assert [(w["where"], w["line"], w["message"]) for w in document["warnings"]] == [
        ("posts[1]", header, warning)
    ]
    assert len(document["publications"]) == 2

    assert strict.returncode == 1
    assert "premier" in strict.stdout  # the plan is still shown
    assert strict.stderr.splitlines() == [
        f"{path}:{header}: posts[1]: warning: {warning}",
        f"{path}: ok, 1 warning",
    ]


# -- help, usage and the statement command --------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "stdout", "stderr"),
    [
        (("--help",), 0, "usage: postscheduler", ""),
        (("check", "--help"), 0, "--strict", ""),
        ((), 2, "", "usage: postscheduler"),
    ],
)
def test_help_and_usage(args: tuple[str, ...], status: int, stdout: str, stderr: str) -> None:
    result = run(*args)

    assert result.returncode == status
    assert stdout in result.stdout
    assert stderr in result.stderr
    if status == 0:
        assert "check" in result.stdout
        assert result.stderr == ""
    else:
        assert result.stdout == ""


def test_statement_prints_numbered_paragraphs() -> None:
    result = run("statement", "config/statement.txt")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    paragraphs = [line for line in lines if line.startswith("Paragraph ")]
    assert [line.split(" (")[0] for line in paragraphs] == [f"Paragraph {n}" for n in range(1, 9)]
    assert "Paragraph 2 (3 sentences):" in lines
    assert "  1. « Souvenez-vous que la Révolution est ce qui est important et que chacun de…" in (
        lines
    )


def test_statement_of_a_missing_file_is_one_line() -> None:
    result = run("statement", "missing.txt")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "postscheduler: missing.txt: no such file\n"
