"""The states of a publication and the only transitions allowed between them (DESIGN §3).

::

    scheduled ──claim──▶ claimed ──ok──▶ published
         ▲                 │ retryable ──▶ retrying ──claim──▶ claimed
         │                 │ outcome unknown / lease expired ──▶ uncertain ──▶ claimed (reconcile)
         │                 │                                       └──▶ published | retrying
         │                 │ permanent ──▶ failed
         │                 └ released (shutdown, account held) ──▶ scheduled
         ├── window closed / grace passed ──▶ expired
         └── removed from the file / cancel ──▶ cancelled

``published`` is final. ``failed``, ``expired`` and ``cancelled`` go back to ``scheduled``
only by an explicit ``retry`` (or, for a post removed from the file, when it comes back).
``uncertain`` never ends without being checked on the server: it is claimed to reconcile.
Every store calls :func:`check_transition` before it writes a change of state.
"""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    """Where a publication stands."""

    SCHEDULED = "scheduled"
    CLAIMED = "claimed"
    RETRYING = "retrying"
    UNCERTAIN = "uncertain"
    PUBLISHED = "published"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class IllegalTransition(ValueError):
    """A change of state that the state machine does not allow."""

    def __init__(self, key: str, current: State, wanted: State):
        self.key, self.current, self.wanted = key, current, wanted
        super().__init__(
            f"{key} is {current.value}; it cannot become {wanted.value}"
            + (f" ({_HINTS[(current, wanted)]})" if (current, wanted) in _HINTS else "")
        )


ALLOWED: dict[State, frozenset[State]] = {
    State.SCHEDULED: frozenset({State.CLAIMED, State.CANCELLED, State.EXPIRED}),
    State.CLAIMED: frozenset(
        {
            State.PUBLISHED,
            State.RETRYING,
            State.UNCERTAIN,
            State.FAILED,
            State.SCHEDULED,
            State.EXPIRED,
        }
    ),
    State.RETRYING: frozenset({State.CLAIMED, State.CANCELLED, State.EXPIRED, State.SCHEDULED}),
    # Never straight to a final state: it may be on the server; it is checked (claimed
    # for reconciliation) first, so that no later retry can send it twice.
    State.UNCERTAIN: frozenset({State.CLAIMED, State.PUBLISHED, State.RETRYING}),
    State.PUBLISHED: frozenset(),
    State.FAILED: frozenset({State.SCHEDULED}),
    State.EXPIRED: frozenset({State.SCHEDULED}),
    State.CANCELLED: frozenset({State.SCHEDULED}),
}

#: Publications that may still be sent: sync may change or cancel the first two.
PENDING = frozenset({State.SCHEDULED, State.RETRYING})
#: Publications a worker holds, or whose fate the server alone knows: nobody else touches them.
IN_FLIGHT = frozenset({State.CLAIMED, State.UNCERTAIN})
#: States that end a publication (``retry`` and a returning post aside).
FINAL = frozenset({State.PUBLISHED, State.FAILED, State.EXPIRED, State.CANCELLED})
#: What ``retry`` accepts.
RETRYABLE_BY_HAND = frozenset({State.FAILED, State.EXPIRED, State.CANCELLED})

_HINTS = {
    (State.PUBLISHED, State.CANCELLED): "it is already on the server; delete it there",
    (State.CLAIMED, State.CANCELLED): "it is being sent right now",
    (State.UNCERTAIN, State.CANCELLED): "it may already be on the server; it is being checked",
    (State.PUBLISHED, State.SCHEDULED): "published history is never rewritten",
    (State.SCHEDULED, State.SCHEDULED): "it is already waiting to be sent",
}


def check_transition(key: str, current: State, wanted: State) -> None:
    """Raise :class:`IllegalTransition` unless ``current`` may become ``wanted``."""
    if wanted not in ALLOWED[current]:
        raise IllegalTransition(key, current, wanted)
