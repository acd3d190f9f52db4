"""The sandbox as a process: ``python -m postscheduler.sandbox``.

It starts a :class:`~postscheduler.sandbox.server.SandboxServer`, creates the accounts
asked for, prints **one line** of JSON to stdout::

    {"url": "http://127.0.0.1:PORT", "personality": "mastodon", "pid": 1234,
     "tokens": {"alba": "…", "peuples": "…"}}

and serves until SIGTERM or SIGINT, then stops cleanly (exit status 0). A test or
``rehearse`` reads that line to know where to connect; tokens are for the sandbox only.
Only :mod:`argparse` and the standard library are imported until the server starts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

__all__ = ["PERSONALITY_NAMES", "add_arguments", "build_parser", "main", "serve"]

PERSONALITY_NAMES = ("mastodon", "gotosocial", "pleroma", "akkoma", "takahe")


def _usernames(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's options to ``parser`` (shared by ``python -m`` and the CLI)."""
    parser.add_argument(
        "--personality",
        choices=PERSONALITY_NAMES,
        default="mastodon",
        help="the server to play (default: mastodon)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: 0, any free port)")
    parser.add_argument(
        "--record", type=Path, metavar="FILE", help="append every stored status to FILE (JSONL)"
    )
    parser.add_argument(
        "--accounts",
        type=_usernames,
        default=[],
        metavar="NAME,NAME",
        help="accounts to create; their tokens are printed",
    )
    parser.add_argument(
        "--max-characters", type=int, metavar="N", help="override the personality's limit"
    )
    parser.add_argument(
        "--statuses-per-window",
        type=int,
        default=300,
        metavar="N",
        help="statuses allowed per rate-limit window (default: 300)",
    )
    parser.add_argument(
        "--window-seconds",
        type=float,
        default=3 * 3600,
        metavar="S",
        help="length of the rate-limit window (default: 10800)",
    )
    parser.add_argument(
        "--media-polls",
        type=int,
        default=2,
        metavar="N",
        help="polls answered 206 before an asynchronous upload is processed (default: 2)",
    )
    parser.add_argument("--domain", default="sandbox.test", help="the instance's domain")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m postscheduler.sandbox``."""
    parser = argparse.ArgumentParser(
        prog="python -m postscheduler.sandbox",
        description=(
            "Serve a Mastodon-compatible sandbox on loopback until SIGTERM or SIGINT; print "
            "one JSON line with its URL and the accounts' tokens."
        ),
    )
    add_arguments(parser)
    return parser


def serve(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the sandbox described by ``args`` until SIGTERM or SIGINT; return the exit status.

    Must be called from the main thread (it installs signal handlers, restored on return).
    Prints the JSON line to ``out`` (default stdout) and errors to stderr (status 1).
    """
    from postscheduler.sandbox.server import SandboxServer  # noqa: PLC0415 (lazy by design)

    out = out or sys.stdout
    try:
        server = SandboxServer(
            args.personality,
            host=args.host,
            port=args.port,
            record_path=args.record,
            statuses_per_window=args.statuses_per_window,
            window_seconds=args.window_seconds,
            max_characters=args.max_characters,
            domain=args.domain,
            media_processing_polls=args.media_polls,
            verbose=args.verbose,
        )
        tokens = {name: server.add_account(name) for name in args.accounts}
        server.start()
    except (OSError, ValueError) as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        line = {
            "url": server.url,
            "personality": server.personality.name,
            "pid": os.getpid(),
            "tokens": tokens,
        }
        print(json.dumps(line), file=out, flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m postscheduler.sandbox [options]``."""
    return serve(build_parser().parse_args(argv))
