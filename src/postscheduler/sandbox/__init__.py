"""The bundled Mastodon-compatible server ("the sandbox") that tests and rehearsals talk to.

It plays the servers' side over real HTTP on loopback — Mastodon, GoToSocial, Pleroma,
Akkoma or Takahē, each with its own counting, refusals, idempotency and rate limits (see
:mod:`postscheduler.sandbox.personalities`) — and can inject faults (see
:mod:`postscheduler.sandbox.faults`). It stands apart: nothing here imports the rest of
postscheduler, so when the client and the sandbox agree, it proves something.

- Python: :class:`SandboxServer` (``start``/``stop`` or a ``with`` block).
- Process: ``python -m postscheduler.sandbox --personality gotosocial --accounts alba``
  prints one JSON line (URL and tokens) and serves until SIGTERM or SIGINT.

The names are imported on first use, so that importing :mod:`postscheduler.sandbox.process`
(for the command line's options) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from postscheduler.sandbox.faults import Faults
    from postscheduler.sandbox.personalities import PERSONALITIES, Personality
    from postscheduler.sandbox.server import SandboxServer

__all__ = ["PERSONALITIES", "Faults", "Personality", "SandboxServer"]

_HOMES = {
    "SandboxServer": "postscheduler.sandbox.server",
    "Faults": "postscheduler.sandbox.faults",
    "Personality": "postscheduler.sandbox.personalities",
    "PERSONALITIES": "postscheduler.sandbox.personalities",
}


def __getattr__(name: str) -> Any:
    """Import ``SandboxServer``, ``Faults``, ``Personality``, ``PERSONALITIES`` lazily."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
