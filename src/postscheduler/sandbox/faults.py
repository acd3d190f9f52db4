"""Faults to inject into the sandbox's answers, per request pattern.

A fault matches requests by a pattern ``"METHOD /path-prefix"`` (``*`` for any method; a
pattern without a method matches every method) and applies to the next ``times`` matching
requests, the oldest fault first. The kinds:

``delay``
    wait ``seconds`` (real time) before handling the request normally.
``status``
    answer ``status`` (e.g. 500, 502, 503, 429) with ``body`` (JSON; default
    ``{"error": <reason phrase>}``) and ``headers``; nothing is stored.
``reset_before``
    read the request, then close the connection without answering; nothing is stored.
``reset_after``
    handle the request (a status is stored, an idempotency key remembered), then close the
    connection without answering: the client's "timeout after send".
``revoke``
    the request's bearer token becomes invalid from then on (this request included).
``down``
    close the connection at once, without reading the body. With ``seconds``, every matching
    request is refused until that much sandbox time has passed since the fault was added
    (``times`` is then ignored).

Administration requests (``/_sandbox/…``) are never faulted, so a test can always clear.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

__all__ = ["KINDS", "Fault", "Faults"]

KINDS = ("delay", "status", "reset_before", "reset_after", "revoke", "down")
_PARAMETERS: dict[str, set[str]] = {
    "delay": {"seconds"},
    "status": {"status", "body", "headers"},
    "reset_before": set(),
    "reset_after": set(),
    "revoke": set(),
    "down": {"seconds"},
}


@dataclass
class Fault:
    """One injected fault (see the module's docstring for the kinds and parameters)."""

    method: str
    path_prefix: str
    kind: str
    remaining: int
    params: dict[str, Any] = field(default_factory=dict)
    added_at: float = 0.0

    @property
    def seconds(self) -> float:
        """The ``seconds`` parameter (0 when absent)."""
        return float(self.params.get("seconds", 0.0))

    @property
    def status(self) -> int:
        """The ``status`` parameter of a ``status`` fault."""
        return int(self.params["status"])

    @property
    def body(self) -> object:
        """The JSON body of a ``status`` fault (default ``{"error": reason phrase}``)."""
        if "body" in self.params:
            return self.params["body"]
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        return {"error": phrase}

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The extra headers of a ``status`` fault."""
        given: Mapping[str, object] = self.params.get("headers") or {}
        return [(str(name), str(value)) for name, value in given.items()]

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault is for a request ``method path``."""
        return self.method in ("*", method.upper()) and path.startswith(self.path_prefix)

    def describe(self) -> dict[str, Any]:
        """The fault as JSON (for ``GET /_sandbox/faults``)."""
        pattern = f"{self.method} {self.path_prefix}"
        return {"pattern": pattern, "kind": self.kind, "times": self.remaining, **self.params}


def _parse_pattern(pattern: str) -> tuple[str, str]:
    parts = pattern.split()
    if len(parts) == 1 and parts[0].startswith("/"):
        return "*", parts[0]
    if len(parts) != 2 or not parts[1].startswith("/"):
        raise ValueError(f"a fault pattern is 'METHOD /path-prefix', not {pattern!r}")
    return parts[0].upper(), parts[1]


class Faults:
    """The faults waiting to be applied; thread-safe.

    ``clock`` is the sandbox's clock (for the duration of ``down`` faults).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, pattern: str, kind: str, times: int = 1, **params: Any) -> Fault:
        """Add a fault for the next ``times`` requests matching ``pattern``; return it.

        Raises ``ValueError`` for an unknown kind, a malformed pattern, a parameter the
        kind does not take or a missing one (``delay`` needs ``seconds``, ``status`` needs
        ``status``).
        """
        method, prefix = _parse_pattern(pattern)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: choose one of {', '.join(KINDS)}")
        unknown = set(params) - _PARAMETERS[kind]
        if unknown:
            raise ValueError(f"a {kind} fault does not take {', '.join(sorted(unknown))}")
        if kind == "delay" and "seconds" not in params:
            raise ValueError("a delay fault needs seconds")
        if kind == "status":
            if "status" not in params:
                raise ValueError("a status fault needs status (the HTTP status to answer)")
            if not 100 <= int(params["status"]) <= 599:
                raise ValueError(f"not an HTTP status: {params['status']!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = Fault(method, prefix, kind, int(times), dict(params), self._clock())
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The faults still waiting, described as JSON."""
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault for ``method path``, one of its uses consumed; None if none."""
        with self._lock:
            now = self._clock()
            for fault in list(self._faults):
                timed = fault.kind == "down" and "seconds" in fault.params
                if timed and now >= fault.added_at + fault.seconds:
                    self._faults.remove(fault)
                    continue
                if not fault.matches(method, path):
                    continue
                if not timed:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
            return None
