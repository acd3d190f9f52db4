"""``postscheduler sync`` as organisers run it: ``python -m postscheduler`` in a subprocess,
on a copy of ``config/`` (so that edits never touch the repository) and a SQLite file of its
own; and the database errors any command may meet, each one line on stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "venezuela-2017"
#: Variables that choose the database: none leaks in from the developer's environment.
DATABASE_VARIABLES = ("POSTSCHEDULER_DATABASE_URL", "STATE_DIRECTORY", "XDG_STATE_HOME")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``postscheduler ARGS`` from the repository root; never a traceback, whatever happens."""
    environment = {k: v for k, v in os.environ.items() if k not in DATABASE_VARIABLES}
    environment.update(env or {})
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


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The summary line of a successful command (its last line on stdout)."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()[-1]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``postscheduler: …`` line a refused command prints, and nothing else."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("postscheduler: ")
    return lines[0]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the example's folder (campaign, statement, media); its campaign file."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config" / "campaign.toml"


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur exactly once) in the campaign file."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def remove_post(path: Path, post: str) -> None:
    text = path.read_text(encoding="utf-8")
    shorter, count = re.subn(
        rf'\[\[posts\]\]\nid = "{post}"\n.*?(?=\[\[posts\]\])', "", text, flags=re.S
    )
    assert count == 1
    path.write_text(shorter, encoding="utf-8")


def where_is(path: Path, needle: str) -> tuple[int, int]:
    """The line (1-based) of ``needle`` in the file, and the index of the post it is in."""
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if needle in text)
    return line, sum(1 for text in lines[: line - 1] if text.strip() == "[[posts]]") - 1


def test_sync_a_campaign_through_its_edits(config: Path, tmp_path: Path) -> None:
    """Dry run, first sync, the fingerprint's shortcut, --force, a changed text, a removed
    post and a broken edit, on one database (12 runs)."""
    file = str(config)
    database = tmp_path / "x.sqlite3"
    db = ["--db", f"sqlite:///{database}"]

    checked = run("check", file, "--json")
    assert checked.returncode == 0, checked.stderr
    publications = json.loads(checked.stdout)["publications"]
    total = len(publications)
    assert total > 2

    # A dry run on a fresh path compares with an empty store: all would be added, no file.
    preview = ok(run("sync", file, "--dry-run", *db))
    assert preview == f"{CAMPAIGN}: (dry run, nothing written) {total} added"
    assert not database.exists()
    assert list(tmp_path.iterdir()) == [config.parent]

    first = ok(run("sync", file, *db))
    assert first == f"{CAMPAIGN}: {total} added"
    assert database.is_file()

    again = ok(run("sync", file, *db))
    assert re.fullmatch(
        rf"{CAMPAIGN}: unchanged since the sync of \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC", again
    )
    forced = ok(run("sync", file, "--force", *db))
    assert forced == f"{CAMPAIGN}: unchanged ({total} publications)"

    # "merci" goes to both accounts: two publications change.
    edit(config, "Merci à toutes et à tous", "Un grand merci à toutes et à tous")
    changed = ok(run("sync", file, *db))
    assert changed == f"{CAMPAIGN}: 2 changed, {total - 2} unchanged"
    shown = json.loads(ok(run("show", f"{CAMPAIGN}/merci/peuples/1", "--json", *db)))
    assert shown["text"].startswith("Un grand merci à toutes et à tous")
    assert shown["state"] == "scheduled"
    assert shown["history"][-1]["cause"] == "changed in the campaign file"

    # "integration" goes to alba only: one changes; the JSON answer lists it.
    integration = f"{CAMPAIGN}/integration/alba/1"
    edit(config, "Pourquoi le Venezuela ?", "Pourquoi donc le Venezuela ?")
    answer: dict[str, Any] = json.loads(ok(run("sync", file, "--json", *db)))
    assert answer["ok"] is True
    assert answer["dry_run"] is False
    assert answer["changed"] == [integration]
    assert answer["counts"] == {
        "added": 0,
        "changed": 1,
        "revived": 0,
        "cancelled": 0,
        "refused": 0,
        "unchanged": total - 1,
    }

    remove_post(config, "integration")
    removed = ok(run("sync", file, *db))
    assert removed == f"{CAMPAIGN}: 1 cancelled, {total - 1} unchanged"

    queue = run("queue", "--json", "--limit", "1000", *db)
    before = ok(queue)
    items = {item["key"]: item for item in json.loads(queue.stdout)}
    assert len(items) == total
    assert items[integration]["state"] == "cancelled"
    assert items[integration]["cause"] == "removed from the campaign file"

    # A broken edit: two unknown keys. Each error is one line with file:line and place.
    edit(config, 'id = "merci"\n', 'id = "merci"\ncouleur = "rouge"\n')
    edit(config, 'id = "lancement"\n', 'id = "lancement"\nheure = "08:00"\n')
    broken = run("sync", file, *db)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert broken.stdout == ""
    *errors, last = broken.stderr.splitlines()
    assert last == f"{file}: refused, nothing changed"
    expected = []
    for key in ("heure", "couleur"):
        line, post = where_is(config, f"{key} = ")
        expected.append(f"{file}:{line}: posts[{post}]: unknown key '{key}'")
    assert len(errors) == 2, broken.stderr
    for error, start in zip(errors, expected, strict=True):
        assert error.startswith(start), (error, start)

    after = ok(run("queue", "--json", "--limit", "1000", *db))
    assert after == before


def test_bad_database_urls_are_one_line(config: Path) -> None:
    wrong = one_error_line(run("sync", str(config), "--db", "mysql://x/y"))
    assert "unsupported database 'mysql'" in wrong
    assert "sqlite:///" in wrong
    assert "postgresql://" in wrong

    url = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"
    unreachable = one_error_line(run("sync", str(config), "--db", url))
    assert "cannot connect to postgresql+psycopg://postgres@127.0.0.1:1/none" in unreachable
    assert "check that the server is running" in unreachable


def test_a_command_that_reads_needs_a_database_already_synced(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite3"
    error = one_error_line(run("status", "--db", f"sqlite:///{missing}"))
    assert f"no database at {missing}" in error
    assert "run 'postscheduler sync CAMPAIGN.toml' first" in error
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_database_path_under_a_regular_file_is_refused(config: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file, not a folder\n", encoding="utf-8")
    url = f"sqlite:///{blocker / 'x.sqlite3'}"
    error = one_error_line(run("sync", str(config), "--db", url))
    assert f"{blocker} is not a directory" in error
    assert blocker.read_text(encoding="utf-8") == "a file, not a folder\n"


def test_a_database_from_a_newer_postscheduler_is_refused(config: Path, tmp_path: Path) -> None:
    database = tmp_path / "newer.sqlite3"
    url = f"sqlite:///{database}"
    created = run("db", "upgrade", "--db", url)
    assert created.returncode == 0, created.stderr
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()

    for command in (["status"], ["sync", str(config)]):
        error = one_error_line(run(*command, "--db", url))
        assert "was upgraded by a newer postscheduler (revision 9999)" in error, command
        assert "install that version or restore a backup" in error

    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("9999",)
        ]
        assert connection.execute("SELECT count(*) FROM publications").fetchone() == (0,)
    connection.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "newer.sqlite3"]


def test_the_database_comes_from_the_environment_without_db(config: Path, tmp_path: Path) -> None:
    state, xdg, home = tmp_path / "state", tmp_path / "xdg", tmp_path / "home"
    by_url = tmp_path / "from-env.sqlite3"
    result = run(
        "sync",
        str(config),
        env={
            "POSTSCHEDULER_DATABASE_URL": f"sqlite:///{by_url}",
            "STATE_DIRECTORY": str(state),
            "XDG_STATE_HOME": str(xdg),
            "HOME": str(home),
        },
    )
    assert ok(result).endswith(" added")
    assert by_url.is_file()
    assert not state.exists()
    assert not xdg.exists()
    assert not home.exists()

    # No URL: systemd's STATE_DIRECTORY (its first entry) wins over XDG_STATE_HOME.
    other = tmp_path / "second"
    result = run(
        "sync",
        str(config),
        env={"STATE_DIRECTORY": f"{state}:{other}", "XDG_STATE_HOME": str(xdg), "HOME": str(home)},
    )
    assert ok(result).endswith(" added")
    assert (state / "postscheduler.sqlite3").is_file()
    assert not other.exists()
    assert not xdg.exists()
    assert not home.exists()
