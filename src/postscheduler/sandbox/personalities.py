"""The servers the sandbox can play, each as the facts that set it apart.

A :class:`Personality` is plain data: version strings, limits, the order in which a server
checks a new status, and the exact answers (status code and message) it gives when it refuses
one. The rules that use these facts live in :mod:`postscheduler.sandbox.core`; nothing here
does anything.

Where a message was read in the server's source it is marked *source*; where the sandbox had
to choose wording (the server's own could not be found) it is marked *sandbox wording*, so a
client must not match on it.

Sources (read through public copies of each repository):

- Mastodon: ``app/validators/status_length_validator.rb`` (graphemes of CW + text, URL = 23,
  ``@user@domain`` counted as ``@user``), ``app/services/post_status_service.rb`` (idempotency
  key per account in Redis for 3 600 s, set only after a successful post; media checks),
  ``app/controllers/api/v1/statuses_controller.rb`` (``set_thread``: 404
  ``statuses.errors.in_reply_not_found``), ``app/controllers/concerns/api/error_handling.rb``
  (422 ``Validation failed: …``, 404 ``Record not found``, 429 ``Too many requests``),
  ``app/lib/rate_limiter.rb`` (300 statuses per 3 h per account, epoch-aligned windows,
  ``X-RateLimit-Reset`` as ISO 8601 with microseconds).
- GoToSocial: ``internal/processing/status/common.go`` (``len([]rune(status)) +
  len([]rune(spoiler))``, 400 ``text with spoiler exceed max chars (N)``, ``status contains no
  text, media or poll``, ``media files exceed max count (N)``, ``media not found: ID``),
  ``docs/api/ratelimiting.md`` (per IP, ``X-Ratelimit-*``, reset as a unix timestamp).
- Pleroma / Akkoma: ``lib/pleroma/web/common_api/activity_draft.ex`` and ``utils.ex``
  (``String.length`` — graphemes — of ``trim(trim(status) <> spoiler)``, 422 ``The status is
  over the character limit``, ``Cannot post an empty status without attachments``, missing
  reply target 422), ``lib/pleroma/web/plugs/idempotency_plug.ex`` (caches the whole response
  — status code and body, errors included — for 6 h; Pleroma keys it by user, Akkoma's older
  plug by the key alone), ``ensure_authenticated_plug.ex`` (403 ``Invalid credentials.``),
  ``rate_limiter.ex`` (429 ``Throttled``, no rate-limit headers), media controller (v2
  answers 202 with the URL already set).
- Takahē: ``api/views/statuses.py`` (``len(details.status)``: code points of the text only,
  400 ``Status is too long`` / ``Status is empty``, a missing reply target is ignored, no
  ``language``), ``api/views/media.py`` (synchronous, images only); the live observations of
  ``DESIGN.md`` §6 (400 text/html ``Invalid Bearer token``, v2 instance and
  ``/api/v1/instance/`` answer 404, version ``takahe/0.11.0``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

__all__ = [
    "PERSONALITIES",
    "Answer",
    "Family",
    "IdStyle",
    "Idempotency",
    "MediaStyle",
    "Personality",
    "RateLimitStyle",
    "personality",
]


class Family(Enum):
    """Servers that share their code share their behaviour: Pleroma and Akkoma are one."""

    MASTODON = "mastodon"
    GOTOSOCIAL = "gotosocial"
    PLEROMA = "pleroma"
    TAKAHE = "takahe"


class Idempotency(Enum):
    """What a server does with an ``Idempotency-Key`` header on ``POST /api/v1/statuses``."""

    IGNORED = "ignored"
    #: Mastodon: the key maps, per account, to the status it created (successes only).
    STATUS_PER_ACCOUNT = "status per account"
    #: Pleroma: the whole response (errors included) is replayed, per user.
    RESPONSE_PER_ACCOUNT = "response per account"
    #: Akkoma: the whole response is replayed to whoever sends the same key.
    RESPONSE_GLOBAL = "response global"


class RateLimitStyle(Enum):
    """How a server limits posting, and what it tells the client about it."""

    NONE = "none"
    #: Mastodon: per account, ``X-RateLimit-*`` headers, reset in ISO 8601.
    ACCOUNT_WITH_HEADERS = "account, headers"
    #: Pleroma/Akkoma: per user, no headers at all.
    ACCOUNT_NO_HEADERS = "account, no headers"
    #: GoToSocial: per client IP, ``X-Ratelimit-*`` headers, reset as a unix timestamp.
    IP_WITH_HEADERS = "ip, headers"


class MediaStyle(Enum):
    """How ``POST /api/v2/media`` answers."""

    #: Mastodon: images 200; video, audio and GIF 202 with ``url`` null, then polls 206 → 200.
    ASYNC_VIDEO = "async video"
    #: Pleroma/Akkoma: always 202, but already processed (``url`` set, GET answers 200).
    ACCEPTED_DONE = "202, done"
    #: GoToSocial, Takahē: 200 with everything, at once.
    SYNC = "sync"


class IdStyle(Enum):
    """How a server spells identifiers; every style sorts as (length, text) in time order."""

    SNOWFLAKE = "snowflake"  # Mastodon, Takahē: decimal integers
    ULID = "ulid"  # GoToSocial: 26 Crockford base-32 characters
    FLAKE = "flake"  # Pleroma, Akkoma: 18 base-62 characters


@dataclass(frozen=True)
class Answer:
    """A refusal as a server words it: HTTP status and message (``{placeholders}`` allowed).

    ``html`` answers are sent as ``text/html`` with the bare message as body (Takahē's bad
    token); the others as ``{"error": message}`` JSON.
    """

    status: int
    message: str
    html: bool = False

    def format(self, **values: object) -> Answer:
        """The same answer with ``{name}`` placeholders filled in."""
        return Answer(self.status, self.message.format(**values), self.html)


@dataclass(frozen=True)
class Personality:
    """Everything that distinguishes one server from another, as the sandbox plays it."""

    name: str
    family: Family
    title: str
    #: ``version`` of ``/api/v1/instance`` and ``/api/v2/instance``.
    version: str
    #: ``software.name`` and ``software.version`` of NodeInfo.
    software: str
    software_version: str
    max_characters: int
    #: What the instance advertises (GoToSocial advertises 25 but counts URLs in full).
    characters_reserved_per_url: int
    max_media_attachments: int
    #: Order of the checks on a new status: ``text``, ``media``, ``reply``, ``idempotency``.
    checks: tuple[str, ...]
    idempotency: Idempotency
    idempotency_ttl: float
    rate_limit: RateLimitStyle
    media: MediaStyle
    id_style: IdStyle
    visibilities: frozenset[str]
    #: The account's default when ``visibility`` / ``language`` is omitted.
    default_visibility: str
    default_language: str | None
    stores_language: bool
    #: ``spoiler_text`` makes a status sensitive even without ``sensitive=true``.
    spoiler_implies_sensitive: bool
    serves_instance_v2: bool
    #: ``/api/v1/instance/`` (trailing slash) is a different, missing route.
    strict_slashes: bool
    #: Serves ``/.well-known/oauth-authorization-server`` (Mastodon ≥ 4.3).
    oauth_metadata: bool
    checks_scopes: bool
    image_size_limit: int
    video_size_limit: int
    supported_mime_types: tuple[str, ...]
    #: The status code of the sandbox-worded refusals (bad visibility, language, file…).
    validation_status: int
    too_long: Answer
    empty: Answer
    #: ``None``: a reply to a missing status is posted top-level (Takahē).
    reply_missing: Answer | None
    #: ``None``: unknown media ids are dropped silently (Pleroma/Akkoma).
    unknown_media: Answer | None
    #: ``None``: the number of attachments is not checked (Takahē).
    too_many_media: Answer | None
    media_not_ready: Answer
    rate_limited: Answer
    token_missing: Answer
    token_invalid: Answer
    token_revoked: Answer
    not_found: Answer
    scope_missing: Answer
    app_token_only: Answer


_MASTODON_IMAGE_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/webp",
    "image/avif",
)
_VIDEO_AUDIO_TYPES = (
    "video/webm",
    "video/mp4",
    "video/quicktime",
    "video/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp3",
    "audio/webm",
    "audio/flac",
    "audio/aac",
    "audio/mp4",
)

_MASTODON = Personality(
    name="mastodon",
    family=Family.MASTODON,
    title="Mastodon",
    version="4.3.2",
    software="mastodon",
    software_version="4.3.2",
    max_characters=500,
    characters_reserved_per_url=23,
    max_media_attachments=4,
    checks=("reply", "idempotency", "media", "text"),
    idempotency=Idempotency.STATUS_PER_ACCOUNT,
    idempotency_ttl=3600.0,
    rate_limit=RateLimitStyle.ACCOUNT_WITH_HEADERS,
    media=MediaStyle.ASYNC_VIDEO,
    id_style=IdStyle.SNOWFLAKE,
    visibilities=frozenset({"public", "unlisted", "private", "direct"}),
    default_visibility="public",
    default_language="en",
    stores_language=True,
    spoiler_implies_sensitive=True,
    serves_instance_v2=True,
    strict_slashes=False,
    oauth_metadata=True,
    checks_scopes=True,
    image_size_limit=16 * 1024 * 1024,
    video_size_limit=99 * 1024 * 1024,
    supported_mime_types=_MASTODON_IMAGE_TYPES + _VIDEO_AUDIO_TYPES,
    validation_status=422,
    # source: statuses.over_character_limit, raised as ActiveRecord::RecordInvalid
    too_long=Answer(422, "Validation failed: Text character limit of {limit} exceeded"),
    # source: presence validation of Status#text when there is no media
    empty=Answer(422, "Validation failed: Text can't be blank"),
    # source: statuses.errors.in_reply_not_found
    reply_missing=Answer(404, "The post you are trying to reply to does not appear to exist."),
    # source: media_attachments.validations.not_found / too_many / not_ready
    unknown_media=Answer(422, "Media {ids} not found or already attached to another post"),
    too_many_media=Answer(422, "Cannot attach more than {limit} files"),
    media_not_ready=Answer(
        422, "Cannot attach files that have not finished processing. Try again in a moment!"
    ),
    rate_limited=Answer(429, "Too many requests"),  # source: errors.429
    # source: Doorkeeper's invalid_token descriptions, rendered as {"error": …}
    token_missing=Answer(401, "The access token is invalid"),
    token_invalid=Answer(401, "The access token is invalid"),
    token_revoked=Answer(401, "The access token was revoked"),
    not_found=Answer(404, "Record not found"),
    scope_missing=Answer(403, "This action is outside the authorized scopes"),
    app_token_only=Answer(422, "This method requires an authenticated user"),
)

_GOTOSOCIAL = Personality(
    name="gotosocial",
    family=Family.GOTOSOCIAL,
    title="GoToSocial",
    version="0.20.0 git-abc",
    software="gotosocial",
    software_version="0.20.0 git-abc",
    max_characters=5000,
    characters_reserved_per_url=25,
    max_media_attachments=6,
    checks=("text", "reply", "media"),
    idempotency=Idempotency.IGNORED,
    idempotency_ttl=0.0,
    rate_limit=RateLimitStyle.IP_WITH_HEADERS,
    media=MediaStyle.SYNC,
    id_style=IdStyle.ULID,
    visibilities=frozenset({"public", "unlisted", "private", "mutuals_only", "direct"}),
    default_visibility="unlisted",
    default_language="en",
    stores_language=True,
    spoiler_implies_sensitive=True,
    serves_instance_v2=True,
    strict_slashes=False,
    oauth_metadata=False,
    checks_scopes=False,
    image_size_limit=40 * 1024 * 1024,
    video_size_limit=40 * 1024 * 1024,
    supported_mime_types=(
        "image/jpeg",
        "image/gif",
        "image/png",
        "image/webp",
        "video/mp4",
        "audio/mpeg",
        "audio/ogg",
    ),
    validation_status=400,
    too_long=Answer(400, "Bad Request: text with spoiler exceed max chars ({limit})"),  # source
    empty=Answer(400, "Bad Request: status contains no text, media or poll"),  # source
    reply_missing=Answer(404, "Not Found: target status not found"),  # sandbox wording
    unknown_media=Answer(400, "Bad Request: media not found: {ids}"),  # source
    too_many_media=Answer(400, "Bad Request: media files exceed max count ({limit})"),  # source
    media_not_ready=Answer(400, "Bad Request: media not processed"),  # never used: sync
    rate_limited=Answer(429, "rate limit reached"),  # source (middleware/ratelimit.go)
    token_missing=Answer(401, "Unauthorized: token not supplied"),  # source (oauth Authed)
    token_invalid=Answer(401, "Unauthorized: token not supplied"),
    token_revoked=Answer(401, "Unauthorized: token not supplied"),
    not_found=Answer(404, "Not Found"),
    scope_missing=Answer(403, "Forbidden"),
    app_token_only=Answer(401, "Unauthorized: user not supplied or not authorized"),  # source
)

_PLEROMA = Personality(
    name="pleroma",
    family=Family.PLEROMA,
    title="Pleroma",
    version="2.7.2 (compatible; Pleroma 2.7.2)",
    software="pleroma",
    software_version="2.7.2",
    max_characters=5000,
    characters_reserved_per_url=23,
    max_media_attachments=1000,  # Pleroma's :instance, :max_media_attachments default
    checks=("media", "text", "reply"),
    idempotency=Idempotency.RESPONSE_PER_ACCOUNT,
    idempotency_ttl=6 * 3600.0,
    rate_limit=RateLimitStyle.ACCOUNT_NO_HEADERS,
    media=MediaStyle.ACCEPTED_DONE,
    id_style=IdStyle.FLAKE,
    visibilities=frozenset({"public", "unlisted", "private", "direct", "local", "list"}),
    default_visibility="public",
    default_language=None,
    stores_language=True,
    spoiler_implies_sensitive=False,
    serves_instance_v2=True,
    strict_slashes=False,
    oauth_metadata=False,
    checks_scopes=True,
    image_size_limit=16_000_000,
    video_size_limit=16_000_000,
    supported_mime_types=_MASTODON_IMAGE_TYPES + _VIDEO_AUDIO_TYPES,
    validation_status=422,
    too_long=Answer(422, "The status is over the character limit"),  # source
    empty=Answer(422, "Cannot post an empty status without attachments"),  # source
    reply_missing=Answer(422, "The post being replied to was deleted"),  # source
    unknown_media=None,  # source: attachments_from_ids drops what it cannot find
    too_many_media=Answer(422, "Too many attachments"),  # source
    media_not_ready=Answer(422, "media not processed"),  # never used: processed at upload
    rate_limited=Answer(429, "Throttled"),  # source
    token_missing=Answer(403, "Invalid credentials."),  # source: EnsureAuthenticatedPlug
    token_invalid=Answer(403, "Invalid credentials."),
    token_revoked=Answer(403, "Invalid credentials."),
    not_found=Answer(404, "Record not found"),
    scope_missing=Answer(403, "Insufficient permissions: {scopes}."),  # source
    app_token_only=Answer(403, "Invalid credentials."),
)

_AKKOMA = replace(
    _PLEROMA,
    name="akkoma",
    title="Akkoma",
    version="2.7.2 (compatible; Akkoma 3.15.2)",
    software="akkoma",
    software_version="3.15.2",
    idempotency=Idempotency.RESPONSE_GLOBAL,
    reply_missing=Answer(422, "Parent post does not exist or was deleted"),  # source
)

_TAKAHE = Personality(
    name="takahe",
    family=Family.TAKAHE,
    title="Takahē",
    version="takahe/0.11.0",
    software="takahe",
    software_version="0.11.0",
    max_characters=500,
    characters_reserved_per_url=23,
    max_media_attachments=4,  # advertised, not enforced
    checks=("text", "media", "reply"),
    idempotency=Idempotency.IGNORED,
    idempotency_ttl=0.0,
    rate_limit=RateLimitStyle.NONE,
    media=MediaStyle.SYNC,
    id_style=IdStyle.SNOWFLAKE,
    visibilities=frozenset({"public", "unlisted", "private", "direct"}),
    default_visibility="public",
    default_language=None,
    stores_language=False,
    spoiler_implies_sensitive=False,
    serves_instance_v2=False,
    strict_slashes=True,
    oauth_metadata=False,
    checks_scopes=False,
    image_size_limit=10 * 1024 * 1024,
    video_size_limit=0,
    supported_mime_types=(
        "image/apng",
        "image/avif",
        "image/gif",
        "image/jpeg",
        "image/png",
        "image/webp",
    ),
    validation_status=400,
    too_long=Answer(400, "Status is too long"),  # source
    empty=Answer(400, "Status is empty"),  # source
    reply_missing=None,  # source: a missing reply target is ignored
    unknown_media=Answer(404, "not_found"),  # get_object_or_404
    too_many_media=None,
    media_not_ready=Answer(400, "media not processed"),  # never used: sync
    rate_limited=Answer(429, "Too many requests"),  # never used: no rate limit
    token_missing=Answer(401, "identity_token_required"),
    token_invalid=Answer(400, "Invalid Bearer token", html=True),  # seen live (DESIGN §6)
    token_revoked=Answer(400, "Invalid Bearer token", html=True),
    not_found=Answer(404, "<h1>Not Found</h1>", html=True),
    scope_missing=Answer(403, "Forbidden"),
    app_token_only=Answer(401, "identity_token_required"),
)

#: Every personality by name.
PERSONALITIES: dict[str, Personality] = {
    p.name: p for p in (_MASTODON, _GOTOSOCIAL, _PLEROMA, _AKKOMA, _TAKAHE)
}


def personality(name: str) -> Personality:
    """The personality called ``name`` (case-insensitive; ``takahē`` is ``takahe``).

    Raises ``ValueError`` naming the known ones when there is none by that name.
    """
    key = name.strip().lower().replace("ē", "e")
    try:
        return PERSONALITIES[key]
    except KeyError:
        known = ", ".join(PERSONALITIES)
        raise ValueError(f"unknown personality {name!r}: choose one of {known}") from None
