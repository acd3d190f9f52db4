"""``postscheduler sandbox`` through the command-line module (``cli.py`` wires it in)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import httpx

from postscheduler.cli_sandbox import add_sandbox_commands

RUN = (
    "import sys, argparse\n"
    "from postscheduler.cli_sandbox import add_sandbox_commands\n"
    "parser = argparse.ArgumentParser()\n"
    "add_sandbox_commands(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args))\n"
)


def test_the_sandbox_command_parses_the_sandbox_options() -> None:
    parser = argparse.ArgumentParser()
    add_sandbox_commands(parser.add_subparsers())
    args = parser.parse_args(
        ["sandbox", "--personality", "takahe", "--accounts", "alba, peuples", "--port", "0"]
    )
    assert args.personality == "takahe"
    assert args.accounts == ["alba", "peuples"]
    assert callable(args.handler)


def test_the_sandbox_command_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", RUN, "sandbox", "--personality", "gotosocial", "--accounts", "alba"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = json.loads(process.stdout.readline())
        instance = httpx.get(f"{line['url']}/api/v1/instance").json()
        assert instance["version"] == "0.20.0 git-abc"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        if process.stdout:
            process.stdout.close()


def test_importing_the_command_does_not_import_the_server() -> None:
    code = (
        "import sys; import postscheduler.cli_sandbox; "
        "print(','.join(m for m in ('postscheduler.sandbox.server', 'regex', 'httpx') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
