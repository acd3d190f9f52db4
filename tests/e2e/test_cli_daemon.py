"""The daemon and the rehearsal as an organiser runs them: subprocesses over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = [sys.executable, "-m", "postscheduler"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_rehearsing_the_example_publishes_everything_exactly_once() -> None:
    result = run("rehearse", "config/campaign.toml", "--speed", "40000", "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["ok"] is True
    checked = json.loads(run("check", "config/campaign.toml", "--json").stdout)
    assert document["counts"] == {"published": len(checked["publications"])}
    assert document["duplicates"] == []
    assert document["missing"] == []
    assert document["lateness_seconds"]["max"] == 0
    # Live progress: one line per publication, in campaign time, on stderr with --json.
    assert result.stderr.count(" published ") == len(checked["publications"])
    assert "Traceback" not in result.stderr


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "postscheduler.sandbox", "--accounts", "alba,peuples"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    info: dict[str, Any] = json.loads(line)
    try:
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)


def campaign(folder: Path, url: str, *, minutes_ago: int = 1) -> Path:
    now = datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None)
    due = now - timedelta(minutes=minutes_ago)
    text = f"""
[campaign]
id = "live"
name = "Live"
timezone = "UTC"
start = {(now - timedelta(hours=1)).isoformat()}
end = {(now + timedelta(hours=2)).isoformat()}
language = "fr"
hashtags = ["Essai"]
misfire = {{ policy = "grace", grace = "15m" }}
min_spacing = "0m"

[accounts.alba]
instance = "{url}"
token = {{ env = "ALBA_TOKEN" }}

[accounts.peuples]
instance = "{url}"
token = {{ file = "peuples.token" }}

[[posts]]
id = "bonjour"
at = {due.isoformat()}
text = "Bonjour depuis postscheduler"
accounts = ["alba"]

[[posts]]
id = "salut"
at = {due.isoformat()}
text = "Salut depuis postscheduler"
accounts = ["peuples"]

[[posts]]
id = "plus-tard"
at = {(now + timedelta(hours=1)).isoformat()}
text = "Plus tard"
accounts = ["alba"]
"""
    path = folder / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Live(NamedTuple):
    """A live campaign against the sandbox: alba's token in the environment, peuples' in
    a token file, a fresh SQLite store."""

    url: str
    tokens: dict[str, str]
    path: Path
    env: dict[str, str]
    db: str


def live(
    sandbox: dict[str, Any], tmp_path: Path, *, token_mode: int = 0o600, newline: bool = False
) -> Live:
    url, tokens = sandbox["url"], sandbox["tokens"]
    token_file = tmp_path / "peuples.token"
    token_file.write_text(tokens["peuples"] + ("\n" if newline else ""))
    token_file.chmod(token_mode)
    return Live(
        url=url,
        tokens=tokens,
        path=campaign(tmp_path, url),
        env={**os.environ, "ALBA_TOKEN": tokens["alba"]},
        db=f"sqlite:///{tmp_path / 'x.sqlite3'}",
    )


def stored(url: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = httpx.get(f"{url}/_sandbox/statuses").json()
    return answer


def test_run_once_publishes_what_is_due_and_never_twice(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    url, tokens, path, env, db = live(sandbox, tmp_path, newline=True)
    first = run("run", str(path), "--once", "--db", db, env=env)
    assert first.returncode == 0, first.stderr
    texts = sorted(s["text"] for s in stored(url))
    assert texts == [
        "Bonjour depuis postscheduler\n\n#Essai",
        "Salut depuis postscheduler\n\n#Essai",
    ]
    again = run("run", str(path), "--once", "--db", db, env=env)
    assert again.returncode == 0, again.stderr
    assert "nothing was due" in again.stderr
    assert len(stored(url)) == 2
    shown = json.loads(run("show", "live/bonjour/alba/1", "--json", "--db", db).stdout)
    assert shown["state"] == "published"
    assert shown["remote_url"].startswith(url)
    for output in (first.stdout, first.stderr, again.stdout, again.stderr):
        assert tokens["alba"] not in output
        assert tokens["peuples"] not in output
        assert "Traceback" not in output


def test_a_token_file_others_can_read_is_refused_and_nothing_is_sent(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    url, tokens, path, env, db = live(sandbox, tmp_path, token_mode=0o644)
    result = run("run", str(path), "--once", "--db", db, env=env)
    assert result.returncode == 0, result.stderr
    assert [s["text"].split("\n")[0] for s in stored(url)] == ["Bonjour depuis postscheduler"]
    shown = json.loads(run("show", "live/salut/peuples/1", "--json", "--db", db).stdout)
    assert shown["state"] == "retrying"
    assert "chmod 600" in shown["last_error"]
    assert tokens["peuples"] not in result.stderr


def test_the_daemon_publishes_then_stops_cleanly_on_sigterm(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    url, tokens, path, env, db = live(sandbox, tmp_path)
    daemon = subprocess.Popen(
        [*EXE, "run", str(path), "--db", db],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(stored(url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for the daemon to act, not for time to pass
        assert len(stored(url)) == 2
        (running,) = workers(db)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err[-2000:]
    assert "daemon stopped" in err
    assert "Traceback" not in err
    assert tokens["alba"] not in err + out
    # Its heartbeat row: running while it ran, stopped once it exited.
    assert running["owner"].startswith(f"{socket.gethostname()}:{daemon.pid}#")
    assert running["pid"] == daemon.pid
    assert (running["state"], running["stale"], running["campaigns"]) == (
        "running",
        False,
        ["live"],
    )
    assert running["files"] == [str(path)]
    (stopped,) = workers(db)
    assert (stopped["owner"], stopped["state"]) == (running["owner"], "stopped")


def test_a_stop_waits_no_longer_than_the_grace_for_an_unanswered_request(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    url, _, path, env, db = live(sandbox, tmp_path)
    # The server takes a minute to answer a post: the request stays in flight.
    httpx.post(
        f"{url}/_sandbox/faults",
        json=[{"pattern": "POST /api/v1/statuses", "kind": "delay", "seconds": 60}],
    ).raise_for_status()
    daemon = subprocess.Popen(
        [*EXE, "run", str(path), "--db", db, "--grace", "0.5", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The fault is used up when the first post reaches the server: it is in flight.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and httpx.get(f"{url}/_sandbox/faults").json()["faults"]:
            time.sleep(0.05)  # waiting for the daemon to act, not for time to pass
        assert httpx.get(f"{url}/_sandbox/faults").json() == {"faults": []}
    finally:
        daemon.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        _out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err[-2000:]
    assert time.monotonic() - stopping < 20, "the stop waited for the answer"
    assert "still unanswered" in err
    assert "Traceback" not in err
    # The request in flight keeps its lease (to be reconciled once it expires); the other
    # account's claim, never sent, went back to the queue.
    keys = {"live/bonjour/alba/1", "live/salut/peuples/1"}
    states = {key: json.loads(run("show", key, "--json", "--db", db).stdout) for key in keys}
    assert sorted(s["state"] for s in states.values()) == ["claimed", "retrying"]
    back = next(s for s in states.values() if s["state"] == "retrying")
    assert "stopped before it was sent" in back["cause"]
    assert stored(url) == []


def workers(db: str) -> list[dict[str, Any]]:
    result = run("status", "--json", "--db", db)
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)["workers"]
    return found
