"""The ``postscheduler sandbox`` command: serve the bundled Mastodon-compatible sandbox.

:func:`add_sandbox_commands` adds it to the command line's sub-parsers (``cli.py`` calls
it next to ``add_db_commands``). The options are those of ``python -m
postscheduler.sandbox`` (:mod:`postscheduler.sandbox.process`, which imports only the
standard library until the server starts, so ``postscheduler --help`` stays fast). The
command prints one JSON line — the URL and each account's token — then serves on loopback
until SIGTERM or Ctrl-C, and exits 0; 1 when it cannot start (port taken, bad username).
"""

from __future__ import annotations

import argparse

from postscheduler.sandbox.process import add_arguments, serve


def add_sandbox_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``sandbox`` to ``subparsers``; its ``handler`` returns the exit status."""
    sandbox = subparsers.add_parser(
        "sandbox",
        help="serve a Mastodon-compatible sandbox on loopback, for rehearsals and tests",
        description=(
            "Play a Mastodon, GoToSocial, Pleroma, Akkoma or Takahē server on loopback: it "
            "counts, refuses, rate-limits and honours idempotency keys as that server does, "
            "and shows what was published at its URL. Prints one JSON line (URL, tokens), "
            "then serves until SIGTERM or Ctrl-C."
        ),
    )
    add_arguments(sandbox)
    sandbox.set_defaults(handler=_sandbox)


def _sandbox(args: argparse.Namespace) -> int:
    return serve(args)
