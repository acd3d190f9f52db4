"""The sandbox as a process: one JSON line on stdout, real HTTP, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest


def start(*arguments: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "postscheduler.sandbox", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        error = process.stderr.read() if process.stderr else ""
        pytest.fail(f"the sandbox printed nothing; stderr: {error}")
    return process, json.loads(line)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_process_prints_its_url_and_tokens_serves_and_stops(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    record = tmp_path / "record.jsonl"
    process, line = start(
        "--personality", "akkoma", "--record", str(record), "--accounts", "alba,peuples"
    )
    try:
        assert line["personality"] == "akkoma"
        assert line["pid"] == process.pid
        url = str(line["url"])
        assert url.startswith("http://127.0.0.1:")
        tokens = line["tokens"]
        assert isinstance(tokens, dict)
        assert set(tokens) == {"alba", "peuples"}
        answer = httpx.post(
            f"{url}/api/v1/statuses",
            data={"status": "depuis un autre processus"},
            headers={"Authorization": f"Bearer {tokens['alba']}"},
        )
        assert answer.status_code == 200
        assert httpx.get(f"{url}/nodeinfo/2.0").json()["software"]["name"] == "akkoma"
    finally:
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()
    assert json.loads(record.read_text(encoding="utf-8"))["text"] == "depuis un autre processus"


def test_a_bad_account_name_fails_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "postscheduler.sandbox", "--accounts", "pas valide"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "not a valid username" in result.stderr
    assert result.stdout == ""


def test_an_unknown_personality_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "postscheduler.sandbox", "--personality", "misskey"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
