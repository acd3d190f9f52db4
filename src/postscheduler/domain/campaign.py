"""The campaign file's schema: frozen, validated value objects (pydantic 2).

This module checks what can be checked on the file alone (types, shapes, names, hashtags,
durations, time zones). What needs other files (the statement, media) is checked by the
loader; what needs the whole plan (times, lengths) by the planner. Every model forbids
unknown keys, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from postscheduler.domain.durations import parse_duration
from postscheduler.domain.hashtags import normalize_hashtag
from postscheduler.domain.software import Software

#: Identifiers (campaign, posts, series, accounts) become part of every publication key.
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: Mastodon's limit on a media description.
MAX_ALT_TEXT = 1500
#: Placeholders a post's ``text`` template may use.
PLACEHOLDERS = frozenset({"excerpt"})
_PLACEHOLDER = re.compile(r"\{([^{}\s]*)\}")
_LANGUAGE = re.compile(r"[a-z]{2,3}")

DEFAULT_MIN_SPACING = timedelta(minutes=30)
DEFAULT_GRACE = timedelta(minutes=15)
DEFAULT_POSTING_HOURS = (time(8, 0), time(22, 0))


def _check_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid id: use lowercase letters, digits, '-' and '_' "
            "(at most 64, starting with a letter or digit)"
        )
    return value


def _check_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("write a duration as text with a unit, e.g. '30m', '1h30m', '2d'")
    return parse_duration(value)


def _check_language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a language code: use ISO 639 in lowercase, e.g. 'fr', 'es', 'en'"
        )
    return value


def _check_hashtag(value: str) -> str:
    return normalize_hashtag(value)


def _check_local_datetime(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError(
            f"{value.isoformat()} is a date without a time: write e.g. {value.isoformat()}T09:00:00"
        )
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is None:
        raise ValueError("the time zone of this date-time is not usable")
    return value


def _check_clock_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(x) for x in value.strip().split(":"))
        if hours == 24 and minutes == 0:
            return time(23, 59, 59)
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise ValueError(f"{value!r} is not a time of day: write 'HH:MM', e.g. '08:00'")


Id = Annotated[str, AfterValidator(_check_id)]
Duration = Annotated[timedelta, BeforeValidator(_check_duration)]
Language = Annotated[str, AfterValidator(_check_language)]
Hashtag = Annotated[str, AfterValidator(_check_hashtag)]
LocalDateTime = Annotated[datetime, BeforeValidator(_check_local_datetime)]
ClockTime = Annotated[time, BeforeValidator(_check_clock_time)]


class Visibility(enum.StrEnum):
    """Who sees a post (Mastodon's four levels)."""

    PUBLIC = "public"
    UNLISTED = "unlisted"
    PRIVATE = "private"
    DIRECT = "direct"

    @property
    def rank(self) -> int:
        """0 for the widest audience (public) to 3 for the narrowest (direct)."""
        return _VISIBILITY_RANK[self]


_VISIBILITY_RANK = {v: rank for rank, v in enumerate(Visibility)}


class MisfirePolicy(enum.StrEnum):
    """What happens to a publication that was due while the daemon was not running."""

    GRACE = "grace"
    SKIP = "skip"
    UNTIL_END = "until_end"


class OnTooLong(enum.StrEnum):
    """What to do with a post longer than its server allows."""

    THREAD = "thread"
    ERROR = "error"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Misfire(_Frozen):
    """The campaign's misfire policy (``grace`` publishes at most ``grace`` late)."""

    policy: MisfirePolicy = MisfirePolicy.GRACE
    grace: Duration = DEFAULT_GRACE

    @model_validator(mode="before")
    @classmethod
    def _grace_only_with_grace(cls, data: Any) -> Any:
        if isinstance(data, dict) and "grace" in data and data.get("policy", "grace") != "grace":
            raise ValueError("'grace' only applies with policy = \"grace\"")
        return data


class CampaignSettings(_Frozen):
    """The ``[campaign]`` table: identity, window, statement and defaults for every post."""

    id: Id
    name: str = Field(min_length=1)
    timezone: str
    start: LocalDateTime
    end: LocalDateTime
    statement: str | None = None
    language: Language
    visibility: Visibility = Visibility.PUBLIC
    hashtags: tuple[Hashtag, ...] = ()
    posting_hours: tuple[ClockTime, ClockTime] = DEFAULT_POSTING_HOURS
    min_spacing: Duration = DEFAULT_MIN_SPACING
    misfire: Misfire = Misfire()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone: write e.g. 'America/Caracas', 'Europe/Paris'"
            ) from None
        return value

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Self:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError("write start and end the same way: both with an offset or neither")
        if self.end <= self.start:
            raise ValueError(
                f"the window ends ({self.end.isoformat()}) "
                f"before it starts ({self.start.isoformat()})"
            )
        if self.posting_hours[0] == self.posting_hours[1]:
            raise ValueError("posting_hours opens and closes at the same time")
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The campaign's time zone."""
        return ZoneInfo(self.timezone)


class TokenSource(_Frozen):
    """Where an account's access token comes from; the token itself is never in the file."""

    env: str | None = None
    file: str | None = None
    credential: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_a_literal(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise ValueError(
                "a token does not belong in the campaign file: write "
                '{ env = "NAME" }, { file = "path" } or { credential = "name" }'
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("env", "file", "credential") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or credential")
        return self

    def describe(self) -> str:
        """Where the token is read from, for messages (never the token itself)."""
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"file {self.file}"
        return f"systemd credential {self.credential}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Account(_Frozen):
    """An ``[accounts.NAME]`` table: one account on one Mastodon-compatible server."""

    instance: str
    token: TokenSource
    software: Software = Software.AUTO
    max_characters: int | None = Field(default=None, gt=0, le=1_000_000)
    characters_per_url: int | None = Field(default=None, ge=0, le=10_000)

    @field_validator("instance")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
        if parts.scheme not in ("https", "http") or not host:
            raise ValueError(
                f"{value!r} is not a server address: write e.g. 'https://example.social'"
            )
        if parts.scheme == "http" and not _is_loopback(host):
            raise ValueError(
                "use https:// (plain http:// is only allowed on 127.0.0.1 / localhost)"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("write only the server's address, without a path")
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def host(self) -> str:
        """The server's host name, e.g. ``example.social``."""
        return urlsplit(self.instance).hostname or self.instance


class Excerpt(_Frozen):
    """A passage of the statement: a paragraph (maybe some of its sentences) or a quote."""

    paragraph: int | None = Field(default=None, ge=1)
    sentences: str | None = None
    quote: str | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> Self:
        if (self.paragraph is None) == (self.quote is None):
            raise ValueError("give either paragraph (with optional sentences) or quote")
        if self.sentences is not None and self.paragraph is None:
            raise ValueError("sentences needs a paragraph")
        return self


class Media(_Frozen):
    """One attachment: a file beside the campaign file, with its description (alt text)."""

    path: str = Field(min_length=1)
    alt: str
    focus: tuple[float, float] | None = None

    @field_validator("alt")
    @classmethod
    def _alt_present(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "alt text is required: describe the image for people who cannot see it"
            )
        if len(value) > MAX_ALT_TEXT:
            raise ValueError(f"alt text is {len(value)} characters; servers accept {MAX_ALT_TEXT}")
        return value

    @field_validator("focus")
    @classmethod
    def _focus_in_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not all(-1.0 <= v <= 1.0 for v in value):
            raise ValueError("focus is two numbers from -1.0 to 1.0: [x, y]")
        return value


class _Content(_Frozen):
    """What posts and series share: the words, the audience and the attachments."""

    id: Id
    accounts: tuple[str, ...] | None = None
    excerpt: Excerpt | None = None
    text: str | None = None
    hashtags: tuple[Hashtag, ...] = ()
    spoiler_text: str = ""
    visibility: Visibility | None = None
    thread_visibility: Visibility | None = None
    language: Language | None = None
    sensitive: bool = False
    media: tuple[Media, ...] = Field(default=(), max_length=4)
    on_too_long: OnTooLong = OnTooLong.THREAD

    @field_validator("text")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return value
        for name in _PLACEHOLDER.findall(value):
            if name not in PLACEHOLDERS:
                known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                raise ValueError(f"unknown placeholder {{{name}}}: the text may use {known}")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> Self:
        uses_excerpt = self.text is not None and "{excerpt}" in self.text
        if uses_excerpt and self.excerpt is None:
            raise ValueError("text uses {excerpt} but no excerpt is given")
        if self.excerpt is not None and self.text is not None and not uses_excerpt:
            raise ValueError("an excerpt is given but text does not place it: add {excerpt}")
        if self.excerpt is None and not (self.text or "").strip() and not self.media:
            raise ValueError("the post is empty: give text, an excerpt or media")
        return self

    @property
    def template(self) -> str:
        """The text template; an excerpt alone is shown as it is."""
        if self.text is not None:
            return self.text
        return "{excerpt}" if self.excerpt is not None else ""


class Post(_Content):
    """A ``[[posts]]`` entry: one post, at a given local time or in a planned slot."""

    at: LocalDateTime | None = None


class Series(_Content):
    """A ``[[series]]`` entry: a post repeated by a cron expression inside the window."""

    cron: str = Field(min_length=1)


class CampaignFile(_Frozen):
    """The whole campaign file."""

    campaign: CampaignSettings
    accounts: dict[str, Account] = Field(min_length=1)
    posts: tuple[Post, ...] = ()
    series: tuple[Series, ...] = ()

    @field_validator("accounts")
    @classmethod
    def _account_names(cls, value: dict[str, Account]) -> dict[str, Account]:
        for name in value:
            _check_id(name)
        return value

    @model_validator(mode="after")
    def _something_to_post(self) -> Self:
        if not self.posts and not self.series:
            raise ValueError("the campaign has no [[posts]] and no [[series]]")
        return self
