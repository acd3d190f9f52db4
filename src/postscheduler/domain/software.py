"""What we know of each Mastodon-compatible server software (DESIGN §6).

These are the facts the planner needs before any server has been asked: how it counts
characters, its default limit, whether it honours ``Idempotency-Key``. Discovery of a live
server (``/.well-known/nodeinfo``, ``/api/v2/instance``) refines them per account.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from postscheduler.domain.text import Counting


class Software(enum.StrEnum):
    """Server software an account lives on, as written in the campaign file."""

    AUTO = "auto"
    MASTODON = "mastodon"
    GOTOSOCIAL = "gotosocial"
    PLEROMA = "pleroma"
    AKKOMA = "akkoma"
    TAKAHE = "takahe"


@dataclass(frozen=True)
class SoftwareFacts:
    """Defaults of one server software; ``idempotency_ttl`` is None where the key is ignored."""

    label: str
    counting: Counting
    max_characters: int
    characters_per_url: int
    idempotency_ttl: timedelta | None
    max_media: int = 4


FACTS: dict[Software, SoftwareFacts] = {
    Software.MASTODON: SoftwareFacts(
        "Mastodon", Counting.MASTODON, 500, 23, idempotency_ttl=timedelta(hours=1)
    ),
    Software.GOTOSOCIAL: SoftwareFacts(
        "GoToSocial", Counting.GOTOSOCIAL, 5000, 25, idempotency_ttl=None, max_media=6
    ),
    Software.PLEROMA: SoftwareFacts(
        "Pleroma", Counting.PLEROMA, 5000, 0, idempotency_ttl=timedelta(hours=6)
    ),
    Software.AKKOMA: SoftwareFacts(
        "Akkoma", Counting.PLEROMA, 5000, 0, idempotency_ttl=timedelta(hours=6)
    ),
    Software.TAKAHE: SoftwareFacts("Takahē", Counting.TAKAHE, 500, 0, idempotency_ttl=None),
}

#: Until a server has been discovered, ``software = "auto"`` is planned with Mastodon's rules:
#: they are the strictest common case (500 characters, CW counted).
ASSUMED_FOR_AUTO = Software.MASTODON


def facts_for(software: Software) -> SoftwareFacts:
    """The facts used to plan for ``software`` (``auto`` plans as Mastodon until discovered)."""
    return FACTS[ASSUMED_FOR_AUTO if software is Software.AUTO else software]
