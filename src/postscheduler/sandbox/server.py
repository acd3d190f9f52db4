""":class:`SandboxServer`: a Mastodon-compatible server on loopback, for tests and rehearsals.

Example::

    with SandboxServer("gotosocial", record_path=tmp / "record.jsonl") as server:
        token = server.add_account("alba")
        ...  # talk to server.url over real HTTP
        assert [s["text"] for s in server.statuses("alba")] == [...]
        server.faults.add("POST /api/v1/statuses", "reset_after")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from postscheduler.sandbox.core import Sandbox
from postscheduler.sandbox.faults import Faults
from postscheduler.sandbox.handler import SandboxHTTPServer
from postscheduler.sandbox.personalities import Personality
from postscheduler.sandbox.personalities import personality as personality_named

__all__ = ["SandboxServer"]

#: How often the serving thread checks whether to stop (seconds): :meth:`stop` waits this.
POLL_INTERVAL = 0.02


class SandboxServer:
    """A sandbox server: one personality, served over HTTP from a daemon thread.

    ``personality`` is ``mastodon``, ``gotosocial``, ``pleroma``, ``akkoma`` or ``takahe``.
    ``port`` 0 picks a free port (see :attr:`url` once started). ``record_path`` receives
    every stored status as one JSON line. ``clock`` gives the time (seconds since the epoch)
    that idempotency lifetimes, rate-limit windows and ``created_at`` follow; the server adds
    an offset that :meth:`advance_clock` (or ``POST /_sandbox/clock``) moves. Posting is
    limited to ``statuses_per_window`` statuses per ``window_seconds`` (per account, or per
    client IP on GoToSocial; Takahē has no limit). ``max_characters`` overrides the
    personality's limit; ``media_processing_polls`` is how many polls of an asynchronous
    upload answer 206 before 200; ``default_username`` is the user ``/oauth/authorize``
    approves for when no ``username`` is given.

    Thread-safe. Raises ``ValueError`` for an unknown personality or a limit below 1.
    """

    def __init__(
        self,
        personality: str = "mastodon",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record_path: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        statuses_per_window: int = 300,
        window_seconds: float = 3 * 3600,
        max_characters: int | None = None,
        domain: str = "sandbox.test",
        media_processing_polls: int = 2,
        default_username: str = "sandbox",
        verbose: bool = False,
    ) -> None:
        self._personality = personality_named(personality)
        self._host = host
        self._port = port
        self._verbose = verbose
        self.sandbox = Sandbox(
            self._personality,
            clock=clock,
            statuses_per_window=statuses_per_window,
            window_seconds=window_seconds,
            max_characters=max_characters,
            domain=domain,
            media_processing_polls=media_processing_polls,
            default_username=default_username,
            record_path=Path(record_path) if record_path is not None else None,
        )
        #: The faults to inject (see :mod:`postscheduler.sandbox.faults`).
        self.faults = Faults(self.sandbox.now)
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def personality(self) -> Personality:
        """The personality this server plays."""
        return self._personality

    @property
    def url(self) -> str:
        """``http://HOST:PORT``; raises ``RuntimeError`` before :meth:`start`."""
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not started")
        return self.sandbox.base_url

    def start(self) -> SandboxServer:
        """Bind and serve from a daemon thread; return self. Starting twice is an error."""
        if self._httpd is not None:
            raise RuntimeError("the sandbox server is already started")
        httpd = SandboxHTTPServer(
            (self._host, self._port), self.sandbox, self.faults, verbose=self._verbose
        )
        host, port = httpd.server_address[:2]
        self.sandbox.base_url = f"http://{host!s}:{port}"
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"sandbox-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the record file. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.sandbox.close()

    def __enter__(self) -> SandboxServer:
        return self.start() if self._httpd is None else self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def add_account(self, username: str) -> str:
        """Create ``username`` if needed; return a new bearer token for it (all scopes)."""
        return self.sandbox.add_account(username)

    def revoke(self, token: str) -> bool:
        """Make ``token`` invalid from now on; False if there is no such token."""
        return self.sandbox.revoke(token)

    def statuses(self, username: str | None = None) -> list[dict[str, Any]]:
        """Every stored status (of ``username`` only, if given), oldest first.

        Each is the record written to ``record_path``: personality, account, id,
        created_at, text (as posted), spoiler_text, visibility, language, sensitive,
        in_reply_to_id, media_ids, media_descriptions, idempotency_key, url.
        """
        return self.sandbox.stored_statuses(username)

    def now(self) -> float:
        """The sandbox's current time (seconds since the epoch)."""
        return self.sandbox.now()

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's time forward by ``seconds``; return the total offset."""
        return self.sandbox.advance_clock(seconds)
