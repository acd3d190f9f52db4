"""The sandbox's state and the servers' rules, without HTTP.

:class:`Sandbox` holds accounts, apps, tokens, media and statuses, and answers each API
operation with a :class:`~postscheduler.sandbox.protocol.Reply`, applying the rules of its
:class:`~postscheduler.sandbox.personalities.Personality`. Every public method takes the
lock, so the HTTP server's threads may call it concurrently; stored statuses are appended to
the record file (one JSON line each, flushed) under the same lock, so the file's order is
the order of the ids.

Time is ``clock() + offset``: tests inject ``clock`` or advance the offset, so idempotency
lifetimes and rate-limit windows pass without sleeping.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from postscheduler.sandbox.markup import (
    authorize_page,
    content_html,
    message_page,
    status_page,
    timeline_page,
)
from postscheduler.sandbox.model import (
    Account,
    App,
    Grant,
    IdMaker,
    Media,
    Status,
    Token,
    id_order,
    iso_time,
)
from postscheduler.sandbox.personalities import (
    Answer,
    Family,
    Idempotency,
    MediaStyle,
    Personality,
    RateLimitStyle,
)
from postscheduler.sandbox.protocol import Params, Reply
from postscheduler.sandbox.text import (
    gotosocial_length,
    mastodon_length,
    pleroma_length,
    takahe_length,
)
from postscheduler.sandbox.views import (
    account_json,
    app_json,
    instance_v1,
    instance_v2,
    media_json,
    nodeinfo,
    nodeinfo_links,
    oauth_metadata,
    status_json,
)

__all__ = ["Sandbox"]

OOB = "urn:ietf:wg:oauth:2.0:oob"
#: The scopes of tokens made by :meth:`Sandbox.add_account`.
FULL_SCOPES = frozenset({"read", "write", "follow", "push"})
SANDBOX_APP = "postscheduler sandbox"
DESCRIPTION_LIMIT = 1500
SCHEDULE_MINIMUM = 300.0
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_IMAGES_AND_VIDEO = Answer(422, "Cannot attach a video to a post that already contains images")

_LENGTHS: dict[Family, Callable[[str, str], int]] = {
    Family.MASTODON: mastodon_length,
    Family.GOTOSOCIAL: gotosocial_length,
    Family.PLEROMA: pleroma_length,
    Family.TAKAHE: takahe_length,
}


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply.json(status, {"error": error, "error_description": description})


_INVALID_CLIENT = (
    401,
    "invalid_client",
    "Client authentication failed due to unknown client, no client authentication "
    "included, or unsupported authentication method.",
)
_INVALID_GRANT = (
    400,
    "invalid_grant",
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client.",
)


@dataclass
class _Draft:
    """A status being checked: parameters as posted, then what the checks resolved."""

    text: str
    spoiler_text: str
    visibility: str
    language: str | None
    sensitive: bool
    in_reply_to_id: str | None
    media_ids: list[str]
    in_reply_to: Status | None = None
    media: list[Media] = field(default_factory=list)


@dataclass
class _Window:
    """One fixed rate-limit window: its index (time // length) and what it has counted."""

    index: int
    count: int


@dataclass
class _CachedReply:
    """A response kept by Pleroma's idempotency plug."""

    reply: Reply
    request_id: str
    expires_at: float


class Sandbox:
    """A Mastodon-compatible server's state and rules (see the module's docstring).

    ``base_url`` must be set (by the server, once it has a port) before anything that
    builds URLs is called.
    """

    def __init__(
        self,
        personality: Personality,
        *,
        clock: Callable[[], float],
        statuses_per_window: int,
        window_seconds: float,
        max_characters: int | None,
        domain: str,
        media_processing_polls: int,
        default_username: str,
        record_path: Path | None,
    ) -> None:
        if statuses_per_window < 1 or window_seconds <= 0:
            raise ValueError("the rate limit needs at least 1 status per positive window")
        self.personality = personality
        self.base_url = ""
        self.domain = domain
        self.max_characters = max_characters or personality.max_characters
        self.lock = threading.RLock()
        self._clock = clock
        self._offset = 0.0
        self._limit = statuses_per_window
        self._window = float(window_seconds)
        self._media_polls = media_processing_polls
        self._default_username = default_username
        self._ids = IdMaker(personality.id_style)
        self._accounts: dict[str, Account] = {}  # by lower-case username
        self._accounts_by_id: dict[str, Account] = {}
        self._apps: dict[str, App] = {}  # by client_id
        self._tokens: dict[str, Token] = {}
        self._grants: dict[str, Grant] = {}
        self._media: dict[str, Media] = {}
        self._statuses: list[Status] = []
        self._statuses_by_id: dict[str, Status] = {}
        self._status_keys: dict[tuple[str, str], tuple[str, float]] = {}
        self._replies: dict[tuple[str, ...], _CachedReply] = {}
        self._windows: dict[str, _Window] = {}
        self._record: IO[str] | None = None
        if record_path is not None:
            record_path.parent.mkdir(parents=True, exist_ok=True)
            self._record = record_path.open("a", encoding="utf-8")
        self._sandbox_app = self._new_app(SANDBOX_APP, [OOB], sorted(FULL_SCOPES), None)

    # -- time ---------------------------------------------------------------------------

    def now(self) -> float:
        """The sandbox's time: the clock plus the offset, in seconds since the epoch."""
        return self._clock() + self._offset

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's time forward by ``seconds``; return the new offset."""
        with self.lock:
            self._offset += seconds
            return self._offset

    def set_clock_offset(self, seconds: float) -> float:
        """Set the offset added to the clock; return it."""
        with self.lock:
            self._offset = float(seconds)
            return self._offset

    # -- accounts, tokens, records (the Python API) --------------------------------------

    def ensure_account(self, username: str) -> Account:
        """The account called ``username`` (case-insensitive), created if needed.

        Raises ``ValueError`` for a name Mastodon would refuse (letters, digits, ``_``).
        """
        if not re.fullmatch(r"[A-Za-z0-9_]{1,30}", username):
            raise ValueError(f"not a valid username: {username!r}")
        with self.lock:
            account = self._accounts.get(username.lower())
            if account is None:
                now = self.now()
                account = Account(self._ids.next(now), username, now)
                self._accounts[username.lower()] = account
                self._accounts_by_id[account.id] = account
            return account

    def add_account(self, username: str) -> str:
        """Create ``username`` if needed and return a new token for it (all scopes)."""
        with self.lock:
            account = self.ensure_account(username)
            return self._new_token(self._sandbox_app, account, FULL_SCOPES).value

    def revoke(self, token: str) -> bool:
        """Make ``token`` invalid from now on; False if there is no such token."""
        with self.lock:
            found = self._tokens.get(token)
            if found is None:
                return False
            found.revoked = True
            return True

    def stored_statuses(self, username: str | None = None) -> list[dict[str, Any]]:
        """Every stored status (of ``username`` only, if given), oldest first, as records."""
        with self.lock:
            return [
                self._record_of(s)
                for s in self._statuses
                if username is None or s.account.username.lower() == username.lower()
            ]

    def close(self) -> None:
        """Close the record file."""
        with self.lock:
            if self._record is not None:
                self._record.close()
                self._record = None

    def _record_of(self, status: Status) -> dict[str, Any]:
        return {
            "personality": self.personality.name,
            "account": status.account.username,
            "id": status.id,
            "created_at": iso_time(status.created_at),
            "text": status.text,
            "spoiler_text": status.spoiler_text,
            "visibility": status.visibility,
            "language": status.language,
            "sensitive": status.sensitive,
            "in_reply_to_id": status.in_reply_to.id if status.in_reply_to else None,
            "media_ids": [m.id for m in status.media],
            "media_descriptions": [m.description for m in status.media],
            "idempotency_key": status.idempotency_key,
            "url": f"{self.base_url}/@{status.account.username}/{status.id}",
        }

    def _new_app(
        self, name: str, redirect_uris: list[str], scopes: list[str], website: str | None
    ) -> App:
        app = App(
            id=self._ids.next(self.now()),
            name=name,
            client_id=secrets.token_urlsafe(32),
            client_secret=secrets.token_urlsafe(32),
            redirect_uris=redirect_uris,
            scopes=scopes,
            website=website,
        )
        self._apps[app.client_id] = app
        return app

    def _new_token(self, app: App, account: Account | None, scopes: frozenset[str]) -> Token:
        token = Token(secrets.token_urlsafe(32), app, account, scopes, self.now())
        self._tokens[token.value] = token
        return token

    # -- authentication ------------------------------------------------------------------

    def _auth_refusal(self, answer: Answer) -> Reply:
        headers = []
        if self.personality.family is Family.MASTODON:
            headers.append(
                (
                    "WWW-Authenticate",
                    f'Bearer realm="Doorkeeper", error="invalid_token", '
                    f'error_description="{answer.message}"',
                )
            )
        return Reply.refusal(answer, headers)

    def _authenticate(self, bearer: str | None) -> Token | Reply:
        p = self.personality
        if not bearer:
            return self._auth_refusal(p.token_missing)
        token = self._tokens.get(bearer)
        if token is None:
            return self._auth_refusal(p.token_invalid)
        if token.revoked:
            return self._auth_refusal(p.token_revoked)
        return token

    def _optional_auth(self, bearer: str | None) -> Token | Reply | None:
        return self._authenticate(bearer) if bearer else None

    def _user(self, bearer: str | None, *scopes: str) -> tuple[Token, Account] | Reply:
        """The token's user if it has one of ``scopes``; else the server's refusal."""
        token = self._authenticate(bearer)
        if isinstance(token, Reply):
            return token
        p = self.personality
        if p.checks_scopes and not any(self._grants_scope(token, s) for s in scopes):
            return Reply.refusal(p.scope_missing.format(scopes=" | ".join(scopes)))
        if token.account is None:
            return Reply.refusal(p.app_token_only)
        return token, token.account

    @staticmethod
    def _grants_scope(token: Token, scope: str) -> bool:
        return scope in token.scopes or scope.split(":", maxsplit=1)[0] in token.scopes

    # -- OAuth ---------------------------------------------------------------------------

    def create_app(self, params: Params) -> Reply:
        """``POST /api/v1/apps``: register an app; its credentials are in the answer."""
        name = (params.text("client_name") or "").strip()
        uris = " ".join(params.values("redirect_uris")).split()
        if not name:
            return Reply.json(422, {"error": "Validation failed: Application name can't be blank"})
        if not uris:
            return Reply.json(422, {"error": "Validation failed: Redirect URI can't be blank"})
        scopes = (params.text("scopes") or "read").split()
        with self.lock:
            app = self._new_app(name, uris, scopes, params.text("website"))
            return Reply.json(200, app_json(app, with_secret=True))

    def _scopes_allowed(self, app: App, requested: list[str]) -> bool:
        return all(s in app.scopes or s.split(":", maxsplit=1)[0] in app.scopes for s in requested)

    def _authorization_problem(self, app: App | None, params: Params) -> Reply | None:
        """The error page ``/oauth/authorize`` shows for a bad request, or None."""
        problem = None
        if app is None:
            problem = ("invalid_client", _INVALID_CLIENT[2])
        elif (params.text("redirect_uri") or "") not in app.redirect_uris:
            problem = (
                "invalid_redirect_uri",
                "The requested redirect uri is malformed or doesn't match client redirect URI.",
            )
        elif params.text("response_type") != "code":
            problem = (
                "unsupported_response_type",
                "The authorization server does not support this response type.",
            )
        elif not self._scopes_allowed(app, (params.text("scope") or app.scopes[0]).split()):
            problem = ("invalid_scope", "The requested scope is invalid or unknown.")
        return None if problem is None else Reply.html(400, message_page(*problem))

    def authorize(self, params: Params) -> Reply:
        """``GET /oauth/authorize``: auto-approve for ``username`` (or the default user).

        Answers the out-of-band page showing the code, or a redirect to ``redirect_uri``
        with ``code`` and ``state``. Unknown client, unregistered redirect URI, scopes the
        app did not register or a response type other than ``code`` get an error page.
        """
        with self.lock:
            app = self._apps.get(params.text("client_id") or "")
            problem = self._authorization_problem(app, params)
            if problem is not None or app is None:
                return problem or Reply.html(400, message_page("invalid_client", ""))
            try:
                account = self.ensure_account(params.text("username") or self._default_username)
            except ValueError as error:
                return Reply.html(400, message_page("invalid_request", str(error)))
            redirect_uri = params.text("redirect_uri") or ""
            scopes = (params.text("scope") or app.scopes[0]).split()
            grant = Grant(secrets.token_urlsafe(24), app, account, redirect_uri, scopes)
            self._grants[grant.code] = grant
            if redirect_uri == OOB:
                return Reply.html(200, authorize_page(grant.code, app.name, account.username))
            query = {"code": grant.code}
            state = params.text("state")
            if state is not None:
                query["state"] = state
            separator = "&" if "?" in redirect_uri else "?"
            location = f"{redirect_uri}{separator}{urlencode(query)}"
            return Reply(302, b"", "text/html; charset=utf-8", [("Location", location)])

    def issue_token(self, params: Params) -> Reply:
        """``POST /oauth/token``: ``authorization_code`` or ``client_credentials``."""
        grant_type = params.text("grant_type")
        with self.lock:
            app = self._apps.get(params.text("client_id") or "")
            if app is None or params.text("client_secret") != app.client_secret:
                return _oauth_error(*_INVALID_CLIENT)
            if grant_type == "authorization_code":
                grant = self._grants.pop(params.text("code") or "", None)
                if (
                    grant is None
                    or grant.app is not app
                    or grant.redirect_uri != (params.text("redirect_uri") or "")
                ):
                    return _oauth_error(*_INVALID_GRANT)
                token = self._new_token(app, grant.account, frozenset(grant.scopes))
                scope = " ".join(grant.scopes)
            elif grant_type == "client_credentials":
                scopes = (params.text("scope") or app.scopes[0]).split()
                if not self._scopes_allowed(app, scopes):
                    return _oauth_error(
                        400, "invalid_scope", "The requested scope is invalid or unknown."
                    )
                token = self._new_token(app, None, frozenset(scopes))
                scope = " ".join(scopes)
            else:
                return _oauth_error(
                    400,
                    "unsupported_grant_type",
                    "The authorization grant type is not supported by the authorization server.",
                )
            return Reply.json(
                200,
                {
                    "access_token": token.value,
                    "token_type": "Bearer",
                    "scope": scope,
                    "created_at": int(token.created_at),
                },
            )

    def revoke_token(self, params: Params) -> Reply:
        """``POST /oauth/revoke``: revoke the token; always 200 (RFC 7009)."""
        with self.lock:
            token = self._tokens.get(params.text("token") or "")
            if token is not None and token.app.client_id == params.text("client_id"):
                token.revoked = True
            return Reply.json(200, {})

    # -- accounts ------------------------------------------------------------------------

    def verify_credentials(self, bearer: str | None) -> Reply:
        """``GET /api/v1/accounts/verify_credentials``: the token's account, with ``source``."""
        with self.lock:
            user = self._user(bearer, "read:accounts", "profile")
            if isinstance(user, Reply):
                return user
            _, account = user
            p = self.personality
            language = p.default_language if p.family is Family.GOTOSOCIAL else None
            document = account_json(account, self.base_url, source=(p.default_visibility, language))
            return Reply.json(200, document)

    def get_account(self, account_id: str) -> Reply:
        """``GET /api/v1/accounts/:id``."""
        with self.lock:
            account = self._accounts_by_id.get(account_id)
            if account is None:
                return Reply.refusal(self.personality.not_found)
            return Reply.json(200, account_json(account, self.base_url))

    def account_statuses(
        self, bearer: str | None, account_id: str, params: Params, path: str
    ) -> Reply:
        """``GET /api/v1/accounts/:id/statuses``: newest first, Mastodon's paging.

        ``limit`` (default 20, at most 40), ``max_id`` (older than), ``since_id`` (newer
        than), ``min_id`` (the page just newer than), ``exclude_replies``; a ``Link`` header
        gives the next (older) and previous (newer) pages. Private and direct statuses are
        shown to their author only.
        """
        with self.lock:
            token = self._optional_auth(bearer)
            if isinstance(token, Reply):
                return token
            account = self._accounts_by_id.get(account_id)
            if account is None:
                return Reply.refusal(self.personality.not_found)
            viewer = token.account if token else None
            try:
                limit = min(max(int(params.text("limit") or 20), 1), 40)
                exclude_replies = bool(params.flag("exclude_replies"))
            except ValueError as error:
                return Reply.json(400, {"error": str(error)})
            chosen = [
                s
                for s in self._statuses
                if s.account is account
                and self._visible(s, viewer)
                and not (exclude_replies and s.in_reply_to is not None)
            ]
            max_id, since_id, min_id = (params.text(n) for n in ("max_id", "since_id", "min_id"))
            if max_id:
                chosen = [s for s in chosen if id_order(s.id) < id_order(max_id)]
            if since_id:
                chosen = [s for s in chosen if id_order(s.id) > id_order(since_id)]
            if min_id:
                chosen = [s for s in chosen if id_order(s.id) > id_order(min_id)]
                page = list(reversed(chosen[:limit]))
            else:
                page = list(reversed(chosen[-limit:]))
            headers = []
            if page:
                url = f"{self.base_url}{path}"
                headers.append(
                    (
                        "Link",
                        f'<{url}?limit={limit}&max_id={page[-1].id}>; rel="next", '
                        f'<{url}?limit={limit}&min_id={page[0].id}>; rel="prev"',
                    )
                )
            return Reply.json(200, [status_json(s, self.base_url) for s in page], headers)

    @staticmethod
    def _visible(status: Status, viewer: Account | None) -> bool:
        return status.visibility in ("public", "unlisted") or status.account is viewer

    # -- instance, NodeInfo --------------------------------------------------------------

    def _counts(self) -> tuple[int, int]:
        return len(self._accounts), len(self._statuses)

    def instance(self, version: int) -> Reply:
        """``GET /api/v1/instance`` or ``/api/v2/instance``."""
        with self.lock:
            p = self.personality
            if version == 1:
                document = instance_v1(
                    p, self.base_url, self.domain, self.max_characters, self._counts()
                )
            else:
                document = instance_v2(
                    p, self.base_url, self.domain, self.max_characters, len(self._accounts)
                )
            return Reply.json(200, document)

    def nodeinfo_links(self) -> Reply:
        """``GET /.well-known/nodeinfo``."""
        return Reply.json(200, nodeinfo_links(self.personality, self.base_url))

    def nodeinfo(self, version: str) -> Reply:
        """``GET /nodeinfo/<version>``."""
        with self.lock:
            document = nodeinfo(self.personality, version, self._counts())
        profile = f"http://nodeinfo.diaspora.software/ns/schema/{version}#"
        reply = Reply.json(200, document)
        reply.content_type = f'application/json; profile="{profile}"'
        return reply

    def oauth_metadata(self) -> Reply:
        """``GET /.well-known/oauth-authorization-server``."""
        return Reply.json(200, oauth_metadata(self.base_url))

    # -- rate limits ---------------------------------------------------------------------

    def _window_of(self, key: str) -> _Window:
        index = int(self.now() // self._window)
        window = self._windows.get(key)
        if window is None or window.index != index:
            window = self._windows[key] = _Window(index, 0)
        return window

    def _take(self, key: str) -> bool:
        """Count one status against ``key``'s window; False (nothing counted) if full."""
        window = self._window_of(key)
        if window.count >= self._limit:
            return False
        window.count += 1
        return True

    def _rate_headers(self, key: str) -> list[tuple[str, str]]:
        window = self._window_of(key)
        remaining = str(max(self._limit - window.count, 0))
        reset = (window.index + 1) * self._window
        if self.personality.rate_limit is RateLimitStyle.IP_WITH_HEADERS:
            return [
                ("X-Ratelimit-Limit", str(self._limit)),
                ("X-Ratelimit-Remaining", remaining),
                ("X-Ratelimit-Reset", str(int(reset))),
            ]
        moment = datetime.fromtimestamp(reset, UTC).isoformat(timespec="microseconds")
        return [
            ("X-RateLimit-Limit", str(self._limit)),
            ("X-RateLimit-Remaining", remaining),
            ("X-RateLimit-Reset", moment.replace("+00:00", "Z")),
        ]

    def ip_rate_headers(self, client_ip: str) -> list[tuple[str, str]]:
        """GoToSocial's ``X-Ratelimit-*`` headers for every answer to ``client_ip``."""
        if self.personality.rate_limit is not RateLimitStyle.IP_WITH_HEADERS:
            return []
        with self.lock:
            return self._rate_headers(f"ip:{client_ip}")

    # -- statuses ------------------------------------------------------------------------

    def create_status(
        self, bearer: str | None, params: Params, key: str | None, client_ip: str
    ) -> Reply:
        """``POST /api/v1/statuses``, with the personality's checks in its order.

        ``key`` is the ``Idempotency-Key`` header. Answers 200 with the Status, or the
        server's refusal. See :mod:`postscheduler.sandbox.personalities` for what differs.
        """
        p = self.personality
        with self.lock:
            if p.rate_limit is RateLimitStyle.IP_WITH_HEADERS and not self._take(f"ip:{client_ip}"):
                return Reply.refusal(p.rate_limited)
            user = self._user(bearer, "write:statuses")
            if isinstance(user, Reply):
                return user
            token, account = user
            if key and p.idempotency in (
                Idempotency.RESPONSE_PER_ACCOUNT,
                Idempotency.RESPONSE_GLOBAL,
            ):
                return self._create_with_cached_reply(token, account, params, key)
            reply = self._create(token, account, params, key)
            if p.rate_limit is RateLimitStyle.ACCOUNT_WITH_HEADERS:
                reply = reply.with_headers(self._rate_headers(f"account:{account.id}"))
            return reply

    def _create_with_cached_reply(
        self, token: Token, account: Account, params: Params, key: str
    ) -> Reply:
        """Pleroma's idempotency plug: replay the whole first response for 6 h."""
        per_account = self.personality.idempotency is Idempotency.RESPONSE_PER_ACCOUNT
        cache_key = (account.id, key) if per_account else (key,)
        now = self.now()
        cached = self._replies.get(cache_key)
        if cached is not None and cached.expires_at > now:
            return cached.reply.with_headers(
                [
                    ("idempotency-key", key),
                    ("idempotent-replayed", "true"),
                    ("x-original-request-id", cached.request_id),
                ]
            )
        request_id = secrets.token_hex(10)
        reply = self._create(token, account, params, key)
        ttl = self.personality.idempotency_ttl
        self._replies[cache_key] = _CachedReply(reply, request_id, now + ttl)
        return reply.with_headers(
            [
                ("x-request-id", request_id),
                ("idempotency-key", key),
                ("x-original-request-id", request_id),
            ]
        )

    def _create(self, token: Token, account: Account, params: Params, key: str | None) -> Reply:
        p = self.personality
        if p.rate_limit is RateLimitStyle.ACCOUNT_NO_HEADERS and not self._take(
            f"account:{account.id}"
        ):
            return Reply.refusal(p.rate_limited)
        draft = self._draft(account, params)
        if isinstance(draft, Reply):
            return draft
        checks = {
            "reply": self._check_reply,
            "idempotency": self._check_idempotency,
            "media": self._check_media,
            "text": self._check_text,
        }
        for check in p.checks:
            outcome = checks[check](account, draft, key)
            if outcome is not None:
                return outcome
        if p.rate_limit is RateLimitStyle.ACCOUNT_WITH_HEADERS and not self._take(
            f"account:{account.id}"
        ):
            return Reply.refusal(p.rate_limited)
        status = self._store(token, account, draft, key)
        return Reply.json(200, status_json(status, self.base_url))

    def _draft(self, account: Account, params: Params) -> _Draft | Reply:
        """The posted parameters, with visibility, language and scheduled_at settled."""
        p = self.personality
        invalid = p.validation_status
        visibility = params.text("visibility") or p.default_visibility
        if visibility not in p.visibilities:
            if p.family is Family.MASTODON:
                message = "Validation failed: Visibility is not included in the list"
            else:
                message = f"invalid visibility: {visibility}"
            return Reply.json(invalid, {"error": message})
        language = self._language(params.text("language"))
        if isinstance(language, Reply):
            return language
        try:
            sensitive = bool(params.flag("sensitive"))
        except ValueError as error:
            return Reply.json(invalid, {"error": str(error)})
        spoiler = params.text("spoiler_text") or ""
        refusal = self._scheduled_at(params.text("scheduled_at"))
        if refusal is not None:
            return refusal
        return _Draft(
            text=params.text("status") or "",
            spoiler_text=spoiler,
            visibility=visibility,
            language=language,
            sensitive=sensitive or (bool(spoiler.strip()) and p.spoiler_implies_sensitive),
            in_reply_to_id=params.text("in_reply_to_id") or None,
            media_ids=params.values("media_ids"),
        )

    def _language(self, language: str | None) -> str | Reply | None:
        p = self.personality
        if not p.stores_language:
            return None
        if not language:
            return p.default_language
        if _LANGUAGE.match(language):
            return language
        if p.family is Family.GOTOSOCIAL:
            return Reply.json(400, {"error": f"Bad Request: invalid language tag: {language}"})
        if p.family is Family.PLEROMA:
            return Reply.json(422, {"error": "Invalid language"})
        return p.default_language  # Mastodon falls back to its default locale

    def _scheduled_at(self, value: str | None) -> Reply | None:
        """None to post now; a refusal otherwise (the sandbox keeps no scheduled status).

        Mastodon posts at once a time already past and refuses one less than 5 minutes
        ahead; Pleroma posts at once one that is too soon; GoToSocial refuses it; Takahē
        ignores the parameter.
        """
        p = self.personality
        if not value or p.family is Family.TAKAHE:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return Reply.json(p.validation_status, {"error": f"invalid scheduled_at: {value}"})
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ahead = moment.timestamp() - self.now()
        if p.family is Family.MASTODON and ahead <= 0:
            return None
        if ahead < SCHEDULE_MINIMUM:
            if p.family is Family.PLEROMA:
                return None
            if p.family is Family.MASTODON:
                message = "Validation failed: Scheduled at The scheduled date must be in the future"
            else:
                message = "Bad Request: scheduled_at must be at least 5 minutes in the future"
            return Reply.json(p.validation_status, {"error": message})
        return Reply.json(
            p.validation_status,
            {"error": "the sandbox keeps no scheduled statuses: post at the time instead"},
        )

    def _check_reply(self, account: Account, draft: _Draft, key: str | None) -> Reply | None:
        if not draft.in_reply_to_id:
            return None
        target = self._statuses_by_id.get(draft.in_reply_to_id)
        if target is not None and self._visible(target, account):
            draft.in_reply_to = target
            return None
        answer = self.personality.reply_missing
        return None if answer is None else Reply.refusal(answer)

    def _check_idempotency(self, account: Account, draft: _Draft, key: str | None) -> Reply | None:
        """Mastodon: a key already used by this account within the hour returns its status."""
        if not key:
            return None
        found = self._status_keys.get((account.id, key))
        if found is None or found[1] <= self.now():
            return None
        return Reply.json(200, status_json(self._statuses_by_id[found[0]], self.base_url))

    def _check_media(self, account: Account, draft: _Draft, key: str | None) -> Reply | None:
        family = self.personality.family
        if family is Family.MASTODON:
            return self._mastodon_media(account, draft)
        if family is Family.GOTOSOCIAL:
            return self._gotosocial_media(account, draft)
        if family is Family.PLEROMA:
            draft.media = [
                m
                for i in draft.media_ids
                if (m := self._media.get(i)) is not None and m.account is account
            ]
            too_many = self.personality.too_many_media
            if too_many is not None and len(draft.media) > self.personality.max_media_attachments:
                return Reply.refusal(too_many)
            return None
        for media_id in draft.media_ids:  # Takahē: get_object_or_404, no other check
            media = self._media.get(media_id)
            if media is None:
                return Reply.refusal(self.personality.unknown_media or self.personality.not_found)
            draft.media.append(media)
        return None

    def _mastodon_media(self, account: Account, draft: _Draft) -> Reply | None:
        p = self.personality
        if p.too_many_media and len(draft.media_ids) > p.max_media_attachments:
            return Reply.refusal(p.too_many_media.format(limit=p.max_media_attachments))
        missing = []
        for media_id in draft.media_ids:
            media = self._media.get(media_id)
            if media is None or media.account is not account or media.status_id is not None:
                missing.append(media_id)
            else:
                draft.media.append(media)
        if missing and p.unknown_media:
            return Reply.refusal(p.unknown_media.format(ids=", ".join(missing)))
        if len(draft.media) > 1 and any(m.kind in ("video", "audio") for m in draft.media):
            return Reply.refusal(_IMAGES_AND_VIDEO)
        if any(not m.processed for m in draft.media):
            return Reply.refusal(p.media_not_ready)
        return None

    def _gotosocial_media(self, account: Account, draft: _Draft) -> Reply | None:
        p = self.personality
        for media_id in draft.media_ids:
            media = self._media.get(media_id)
            if media is None or media.account is not account:
                return Reply.refusal((p.unknown_media or p.not_found).format(ids=media_id))
            if media.status_id is not None:
                message = f"Bad Request: media already attached to status: {media_id}"
                return Reply.json(400, {"error": message})
            if len(media.description) > DESCRIPTION_LIMIT:
                message = f"Bad Request: media description exceeds max chars ({DESCRIPTION_LIMIT})"
                return Reply.json(400, {"error": message})
            draft.media.append(media)
        return None

    def _check_text(self, account: Account, draft: _Draft, key: str | None) -> Reply | None:
        p = self.personality
        limit = self.max_characters
        if p.family is Family.MASTODON and not draft.text.strip() and draft.spoiler_text.strip():
            draft.text, draft.spoiler_text = draft.spoiler_text, ""  # the CW becomes the text
        if p.family is Family.PLEROMA:
            draft.text = draft.text.strip()
        has_media = bool(draft.media) or (
            p.family in (Family.GOTOSOCIAL, Family.TAKAHE) and bool(draft.media_ids)
        )
        if p.family is Family.PLEROMA:
            empty = not (draft.text + draft.spoiler_text).strip()
        elif p.family is Family.MASTODON:
            empty = not draft.text.strip()
        elif p.family is Family.GOTOSOCIAL:
            empty = gotosocial_length(draft.text, draft.spoiler_text) == 0
        else:
            empty = not draft.text
        if empty and not has_media:
            return Reply.refusal(p.empty)
        if _LENGTHS[p.family](draft.text, draft.spoiler_text) > limit:
            return Reply.refusal(p.too_long.format(limit=limit))
        too_many = p.too_many_media
        if (
            p.family is Family.GOTOSOCIAL
            and too_many is not None
            and len(draft.media_ids) > p.max_media_attachments
        ):
            return Reply.refusal(too_many.format(limit=p.max_media_attachments))
        return None

    def _resolve_mention(self, username: str, domain: str | None) -> Account | None:
        if domain is not None and domain.lower() != self.domain.lower():
            return None
        return self._accounts.get(username.lower())

    def _store(self, token: Token, account: Account, draft: _Draft, key: str | None) -> Status:
        now = self.now()
        content, mentions, tags = content_html(draft.text, self.base_url, self._resolve_mention)
        status = Status(
            id=self._ids.next(now),
            account=account,
            created_at=now,
            text=draft.text,
            spoiler_text=draft.spoiler_text,
            visibility=draft.visibility,
            language=draft.language,
            sensitive=draft.sensitive,
            in_reply_to=draft.in_reply_to,
            media=draft.media,
            idempotency_key=key,
            application=token.app.name,
            content=content,
            mentions=mentions,
            tags=tags,
        )
        for media in draft.media:
            media.status_id = status.id
        if draft.in_reply_to is not None:
            draft.in_reply_to.replies_count += 1
        account.statuses_count += 1
        account.last_status_at = now
        self._statuses.append(status)
        self._statuses_by_id[status.id] = status
        if key and self.personality.idempotency is Idempotency.STATUS_PER_ACCOUNT:
            self._status_keys[(account.id, key)] = (
                status.id,
                now + self.personality.idempotency_ttl,
            )
        if self._record is not None:
            self._record.write(json.dumps(self._record_of(status), ensure_ascii=False) + "\n")
            self._record.flush()
        return status

    def get_status(self, bearer: str | None, status_id: str) -> Reply:
        """``GET /api/v1/statuses/:id``: 404 for a status missing or not visible."""
        with self.lock:
            token = self._optional_auth(bearer)
            if isinstance(token, Reply):
                return token
            status = self._statuses_by_id.get(status_id)
            if status is None or not self._visible(status, token.account if token else None):
                return Reply.refusal(self.personality.not_found)
            return Reply.json(200, status_json(status, self.base_url))

    # -- media ---------------------------------------------------------------------------

    def _media_kind(self, mime_type: str) -> str:
        if mime_type == "image/gif" and self.personality.family is Family.MASTODON:
            return "gifv"  # Mastodon converts GIFs to video
        major = mime_type.split("/", maxsplit=1)[0]
        return major if major in ("image", "video", "audio") else "unknown"

    def upload_media(self, bearer: str | None, params: Params, api_version: int) -> Reply:
        """``POST /api/v1/media`` or ``/api/v2/media`` (multipart ``file``, ``description``,
        ``focus``).

        v2 on Mastodon answers 202 with ``url`` null for video, audio and GIF, processed
        after :attr:`media_processing_polls` polls; Pleroma answers 202 already processed;
        v1 and the other servers answer 200.
        """
        p = self.personality
        with self.lock:
            user = self._user(bearer, "write:media")
            if isinstance(user, Reply):
                return user
            _, account = user
            upload = params.file("file")
            if upload is None:
                return Reply.json(p.validation_status, {"error": "file is missing"})
            mime_type = upload.content_type
            if mime_type in ("", "application/octet-stream"):
                mime_type = mimetypes.guess_type(upload.filename)[0] or mime_type
            if mime_type not in p.supported_mime_types:
                message = f"file type is not supported: {mime_type}"
                return Reply.json(p.validation_status, {"error": message})
            kind = self._media_kind(mime_type)
            limit = p.image_size_limit if kind == "image" else p.video_size_limit
            if len(upload.data) > limit:
                message = f"file is too large: {len(upload.data)} bytes, at most {limit}"
                return Reply.json(p.validation_status, {"error": message})
            description = params.text("description") or ""
            if p.family is Family.MASTODON and len(description) > DESCRIPTION_LIMIT:
                message = (
                    "Validation failed: Description is too long (maximum is "
                    f"{DESCRIPTION_LIMIT} characters)"
                )
                return Reply.json(422, {"error": message})
            asynchronous = (
                api_version == 2 and p.media is MediaStyle.ASYNC_VIDEO and kind != "image"
            )
            now = self.now()
            media_id = self._ids.next(now)
            extension = mimetypes.guess_extension(mime_type) or ".bin"
            media = Media(
                id=media_id,
                account=account,
                kind=kind,
                mime_type=mime_type,
                filename=f"original{extension}",
                data=upload.data,
                description=description,
                focus=_focus(params.text("focus")),
                created_at=now,
                polls_left=self._media_polls if asynchronous else 0,
            )
            self._media[media.id] = media
            accepted = api_version == 2 and (asynchronous or p.media is MediaStyle.ACCEPTED_DONE)
            return Reply.json(202 if accepted else 200, media_json(media, self.base_url))

    def _own_media(self, bearer: str | None, media_id: str) -> tuple[Account, Media] | Reply:
        user = self._user(bearer, "read:statuses", "write:media")
        if isinstance(user, Reply):
            return user
        _, account = user
        media = self._media.get(media_id)
        if media is None or media.account is not account:
            return Reply.refusal(self.personality.not_found)
        return account, media

    def get_media(self, bearer: str | None, media_id: str) -> Reply:
        """``GET /api/v1/media/:id``: 206 while processing (one poll used), then 200."""
        with self.lock:
            found = self._own_media(bearer, media_id)
            if isinstance(found, Reply):
                return found
            _, media = found
            document = media_json(media, self.base_url)
            if media.processed:
                return Reply.json(200, document)
            media.polls_left -= 1
            return Reply.json(206, document)

    def update_media(self, bearer: str | None, media_id: str, params: Params) -> Reply:
        """``PUT /api/v1/media/:id``: change ``description`` and ``focus``.

        Mastodon refuses (404) once the media is attached to a status, and answers 206
        while it is processing.
        """
        p = self.personality
        with self.lock:
            found = self._own_media(bearer, media_id)
            if isinstance(found, Reply):
                return found
            _, media = found
            if p.family is Family.MASTODON and media.status_id is not None:
                return Reply.refusal(p.not_found)
            description = params.text("description")
            if description is not None:
                if p.family is Family.MASTODON and len(description) > DESCRIPTION_LIMIT:
                    message = (
                        "Validation failed: Description is too long (maximum is "
                        f"{DESCRIPTION_LIMIT} characters)"
                    )
                    return Reply.json(422, {"error": message})
                media.description = description
            if params.text("focus") is not None:
                media.focus = _focus(params.text("focus"))
            code = 200 if media.processed else 206
            return Reply.json(code, media_json(media, self.base_url))

    def media_file(self, media_id: str) -> Reply:
        """``GET /media/:id/:name``: the uploaded bytes, once processed."""
        with self.lock:
            media = self._media.get(media_id)
            if media is None or not media.processed:
                return Reply.refusal(self.personality.not_found)
            return Reply(200, media.data, media.mime_type)

    # -- pages ---------------------------------------------------------------------------

    def timeline(self) -> Reply:
        """``GET /``: what followers see, newest first (every status but direct ones)."""
        with self.lock:
            shown = [s for s in reversed(self._statuses) if s.visibility != "direct"]
            title = f"{self.personality.title} sandbox — {self.domain}"
            return Reply.html(200, timeline_page(title, shown, self.base_url, self.domain))

    def status_page(self, username: str, status_id: str) -> Reply:
        """``GET /@user/:id``: one status's page."""
        with self.lock:
            status = self._statuses_by_id.get(status_id)
            if (
                status is None
                or status.account.username.lower() != username.lower()
                or status.visibility == "direct"
            ):
                return Reply.html(404, message_page("Not Found", "No such status."))
            return Reply.html(200, status_page(status, self.base_url, self.domain))


def _focus(value: str | None) -> tuple[float, float]:
    """``"x,y"`` with both in [-1, 1]; (0, 0) when absent or malformed."""
    try:
        x, y = (float(part) for part in (value or "").split(","))
    except ValueError:
        return (0.0, 0.0)
    return (min(max(x, -1.0), 1.0), min(max(y, -1.0), 1.0))
