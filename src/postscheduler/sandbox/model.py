"""What the sandbox stores: accounts, apps, tokens, media, statuses, and their identifiers.

Plain mutable records; :class:`postscheduler.sandbox.core.Sandbox` owns them and changes
them only under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from postscheduler.sandbox.personalities import IdStyle

__all__ = [
    "Account",
    "App",
    "Grant",
    "IdMaker",
    "Media",
    "Status",
    "Token",
    "id_order",
    "iso_time",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _encode(number: int, alphabet: str, width: int) -> str:
    digits = []
    base = len(alphabet)
    while number:
        number, digit = divmod(number, base)
        digits.append(alphabet[digit])
    return "".join(reversed(digits)).rjust(width, alphabet[0])


class IdMaker:
    """Identifiers that increase with time, spelled as the personality's server spells them.

    Each identifier comes from ``max(previous + 1, milliseconds << 16)``, so identifiers
    strictly increase even when the clock stands still or goes back. Not thread-safe: the
    sandbox calls it under its lock.
    """

    def __init__(self, style: IdStyle) -> None:
        self._style = style
        self._last = 0

    def next(self, now: float) -> str:
        """A new identifier for something created at ``now`` (seconds since the epoch)."""
        number = max(self._last + 1, max(int(now * 1000), 0) << 16)
        self._last = number
        if self._style is IdStyle.SNOWFLAKE:
            return str(number)
        if self._style is IdStyle.ULID:
            milliseconds, sequence = number >> 16, number & 0xFFFF
            return _encode((milliseconds << 80) | sequence, _CROCKFORD, 26)
        return _encode(number, _BASE62, 18)


def id_order(identifier: str) -> tuple[int, str]:
    """A sort key under which identifiers of one style sort in creation order."""
    return (len(identifier), identifier)


def iso_time(timestamp: float) -> str:
    """``timestamp`` as Mastodon writes times: ISO 8601, UTC, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Account:
    """A local account."""

    id: str
    username: str
    created_at: float
    statuses_count: int = 0
    last_status_at: float | None = None


@dataclass
class App:
    """An OAuth application registered through ``POST /api/v1/apps``."""

    id: str
    name: str
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    scopes: list[str]
    website: str | None


@dataclass
class Token:
    """A bearer token: of a user (``account``) or of the app alone (``account`` is None)."""

    value: str
    app: App
    account: Account | None
    scopes: frozenset[str]
    created_at: float
    revoked: bool = False


@dataclass
class Grant:
    """An authorization code waiting to be exchanged at ``POST /oauth/token`` (once)."""

    code: str
    app: App
    account: Account
    redirect_uri: str
    scopes: list[str]


@dataclass
class Media:
    """An uploaded attachment; ``polls_left`` GETs answer 206 before it is processed."""

    id: str
    account: Account
    kind: str
    mime_type: str
    filename: str
    data: bytes
    description: str
    focus: tuple[float, float]
    created_at: float
    polls_left: int = 0
    status_id: str | None = None

    @property
    def processed(self) -> bool:
        """Whether processing is over (it can be attached and has a URL)."""
        return self.polls_left <= 0


@dataclass
class Status:
    """A stored status, with what it was posted with and what the server made of it."""

    id: str
    account: Account
    created_at: float
    text: str
    spoiler_text: str
    visibility: str
    language: str | None
    sensitive: bool
    in_reply_to: Status | None
    media: list[Media]
    idempotency_key: str | None
    application: str
    content: str
    mentions: list[Account]
    tags: list[str]
    replies_count: int = 0
