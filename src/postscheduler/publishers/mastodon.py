"""The Mastodon.py adapter: one account's server, spoken to as the Publisher port says.

Every outcome becomes one of our publish errors here, at the boundary — nothing above this
module imports Mastodon.py's or requests' exceptions:

======================================  ==================================================
what happened                           what we raise
======================================  ==================================================
2xx                                     (returns :class:`~postscheduler.ports.Published`)
429                                     RetryLater, at ``Retry-After`` / ``X-RateLimit-Reset``
5xx; refused, DNS, connect timeout      RetryLater (nothing reached the server)
read timeout, reset after sending       OutcomeUnknown (the status may exist: reconcile)
401, 403; Takahē's 400 "Invalid Bearer" AccountUnusable
404 (reply target gone), 422, 400       PublishFailed with the server's own words
======================================  ==================================================

Error classes depend on the server's software where servers differ (DESIGN §6): Takahē
answers a bad token with 400 text/html rather than 401.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
)

from postscheduler.errors import (
    AccountUnusable,
    OutcomeUnknown,
    PublishError,
    PublishFailed,
    RetryLater,
)
from postscheduler.ports import PublicationRecord, Published, ServerProfile
from postscheduler.publishers.client import DEFAULT_TIMEOUTS, Timeouts, make_client, session

#: How long we wait for the server to process an uploaded video or audio file.
MEDIA_DEADLINE = timedelta(minutes=5)
#: How many of the account's recent statuses reconciliation looks through, at most.
RECONCILE_LIMIT = 200
#: Statuses per page when reconciling (the most Mastodon gives).
PAGE_SIZE = 40
#: How far the server's clock may be behind ours when reconciling.
CLOCK_SKEW = timedelta(minutes=1)
_MENTION = re.compile(r"(?<![\w/=])@([A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*)@[\w.-]+\w")


class MastodonPublisher:
    """Publishes to one account; not shared between threads (one per worker and account)."""

    def __init__(
        self,
        profile: ServerProfile,
        token: str,
        *,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        media_deadline: timedelta = MEDIA_DEADLINE,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.profile = profile
        self._http = session(profile.instance)
        self._last = threading.local()
        self._http.hooks["response"].append(self._remember)
        self.client: Mastodon = make_client(
            profile.instance, token, timeouts=timeouts, http=self._http
        )
        self._token = token
        self._timeouts = timeouts
        self.media_deadline = media_deadline
        self._sleep = sleep
        self._now = now
        self._account_id: str | None = None

    # -- the port -------------------------------------------------------------------------

    def upload_media(self, media: dict[str, Any], path: str) -> str:
        """See :class:`postscheduler.ports.Publisher`: upload, then poll with our deadline."""
        file = Path(path)
        focus = tuple(media["focus"]) if media.get("focus") else None
        try:
            handle = file.open("rb")
        except OSError as error:
            raise PublishFailed(f"{file}: cannot be read ({error.strerror or error})") from None
        with handle, self._translate("uploading " + file.name, sent_is_unknown=False):
            attachment = self.client.media_post(
                handle,
                mime_type=media.get("mime"),
                description=media.get("alt"),
                focus=focus,
                file_name=file.name,
                synchronous=False,
            )
        media_id = str(attachment["id"])
        deadline = self._now() + self.media_deadline
        pause = 0.5
        while attachment.get("url") is None:
            if self._now() >= deadline:
                raise RetryLater(f"the server is still processing {file.name} after the deadline")
            self._sleep(pause)
            pause = min(pause * 2, 5.0)
            with self._translate("checking " + file.name, sent_is_unknown=False):
                attachment = self.client.media(media_id)
        return media_id

    def post_status(
        self,
        publication: PublicationRecord,
        *,
        idempotency_key: str,
        in_reply_to_id: str | None,
        media_ids: Sequence[str],
    ) -> Published:
        """See :class:`postscheduler.ports.Publisher`. Visibility and language are always
        sent: GoToSocial would otherwise apply the account's defaults (DESIGN §6)."""
        # The hot call goes through our own session rather than Mastodon.py's status_post,
        # which spends ~3.7 ms of CPU per call building its typed Status object (measured,
        # bench/bench_daemon_throughput.py); the request and its error mapping are the same.
        form: list[tuple[str, str]] = [
            ("status", publication.text),
            ("visibility", publication.visibility),
            ("language", publication.language),
            ("sensitive", "true" if publication.sensitive else "false"),
        ]
        if publication.spoiler_text:
            form.append(("spoiler_text", publication.spoiler_text))
        if in_reply_to_id:
            form.append(("in_reply_to_id", in_reply_to_id))
        form.extend(("media_ids[]", media_id) for media_id in media_ids)
        headers = {"Authorization": f"Bearer {self._token}", "Idempotency-Key": idempotency_key}
        try:
            response = self._http.post(
                f"{self.profile.instance}/api/v1/statuses",
                data=form,
                headers=headers,
                timeout=(self._timeouts.connect, self._timeouts.read),
            )
        except requests.RequestException as error:
            raise self._network_error("posting", error, sent_is_unknown=True) from None
        if not response.ok:
            raise self._http_error("posting", response.status_code, response)
        try:
            status = response.json()
            return _published(status)
        except (ValueError, KeyError, TypeError):
            raise OutcomeUnknown(
                f"posting: the server answered {response.status_code} with no readable status"
            ) from None

    def find_status(
        self,
        publication: PublicationRecord,
        *,
        since: datetime,
        exclude: Collection[str] = frozenset(),
    ) -> Published | None:
        """See :class:`postscheduler.ports.Publisher`: the account's statuses newest first,
        down to ``since`` (less a minute of clock skew), compared as text; of those that
        match and are not in ``exclude``, the oldest."""
        wanted = comparable(publication.text)
        floor = since - CLOCK_SKEW
        found: dict[str, Any] | None = None
        seen = 0
        max_id: str | None = None
        while True:
            page, max_id = self._statuses_page(max_id)
            for status in page:
                seen += 1
                created = _aware(status.get("created_at"))
                if created is not None and created < floor:
                    return None if found is None else _published(found)
                if (
                    str(status.get("id")) not in exclude
                    and (status.get("spoiler_text") or "") == publication.spoiler_text
                    and comparable(text_of_html(str(status.get("content") or ""))) == wanted
                ):
                    found = status  # pages go back in time: the oldest match is kept
            if not page or max_id is None or seen >= RECONCILE_LIMIT:
                return None if found is None else _published(found)

    # -- plumbing -------------------------------------------------------------------------

    def _statuses_page(self, max_id: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the account's statuses, newest first, older than ``max_id``; and the
        ``max_id`` of the next (older) page, from the ``Link`` header (None: no more).

        Through our own session, as :meth:`post_status`: Mastodon.py's typed parsing cost
        ~0.1 s of CPU per page of 40 statuses (bench/bench_publish.py --reconcile).
        """
        action = "looking for the status"
        params = {"limit": str(PAGE_SIZE)}
        if max_id is not None:
            params["max_id"] = max_id
        response = self._get(action, f"/api/v1/accounts/{self._me()}/statuses", params)
        page = _json(action, response)
        if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
            raise RetryLater(f"{action}: the server answered with no list of statuses")
        following = response.links.get("next", {}).get("url")
        # Only the next page's max_id is taken: the request stays on our instance's URL.
        next_max = parse_qs(urlsplit(following).query).get("max_id") if following else None
        return page, next_max[0] if next_max else None

    def _me(self) -> str:
        """The account's id on its server (asked once)."""
        if self._account_id is None:
            action = "looking for the status"
            me = _json(action, self._get(action, "/api/v1/accounts/verify_credentials", {}))
            if not isinstance(me, dict) or me.get("id") is None:
                raise RetryLater(f"{action}: the server did not say who the account is")
            self._account_id = str(me["id"])
        return self._account_id

    def _get(self, action: str, path: str, params: dict[str, str]) -> requests.Response:
        """GET ``path`` with the token; a failure mapped as the module docstring says (a
        read never has an unknown outcome: no answer is RetryLater)."""
        try:
            response = self._http.get(
                f"{self.profile.instance}{path}",
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=(self._timeouts.connect, self._timeouts.read),
            )
        except requests.RequestException as error:
            raise self._network_error(action, error, sent_is_unknown=False) from None
        if not response.ok:
            raise self._http_error(action, response.status_code, response)
        return response

    def _remember(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        self._last.response = response

    def _last_response(self) -> requests.Response | None:
        return getattr(self._last, "response", None)

    def _translate(self, action: str, *, sent_is_unknown: bool) -> _Translate:
        self._last.response = None
        return _Translate(self, action, sent_is_unknown)

    def classify(self, error: MastodonError, action: str, sent_is_unknown: bool) -> PublishError:
        """Our publish error for a Mastodon.py exception (see the module docstring)."""
        response = self._last_response()
        if isinstance(error, MastodonRatelimitError):
            return self._http_error(action, 429, response)
        if isinstance(error, MastodonNetworkError):
            return self._network_error(
                action, error.__context__ or error.__cause__, sent_is_unknown=sent_is_unknown
            )
        if isinstance(error, MastodonAPIError):
            status = (
                error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else None
            )
            words = error.args[3] if len(error.args) > 3 and error.args[3] else None
            return self._http_error(action, status, response, words=words)
        return RetryLater(f"{action}: {error}")

    def _network_error(
        self, action: str, cause: BaseException | None, *, sent_is_unknown: bool
    ) -> PublishError:
        """No answer: nothing can have reached the server (retry), or it may have (unknown)."""
        if _before_sending(cause) or not sent_is_unknown:
            return RetryLater(f"{action}: {_network_reason(cause)}")
        return OutcomeUnknown(
            f"{action}: no answer after the request was sent ({_network_reason(cause)})"
        )

    def _http_error(
        self,
        action: str,
        status: int | None,
        response: requests.Response | None,
        *,
        words: str | None = None,
    ) -> PublishError:
        """The server answered ``status``: which of our outcomes that is."""
        reason = words or _response_words(response)
        if status == 429:
            return RetryLater(
                f"{action}: rate limited by the server",
                status=429,
                retry_at=self._retry_at(response),
            )
        if status in (401, 403) or self._bad_token(status, response):
            return AccountUnusable(
                f"{action}: the server refused the token ({reason})", status=status
            )
        if status is not None and status >= 500:
            return RetryLater(f"{action}: server error {status} ({reason})", status=status)
        if status == 404:
            return PublishFailed(f"{action}: not found ({reason})", status=status)
        if status is None:
            return RetryLater(f"{action}: {reason}")
        return PublishFailed(f"{action}: refused by the server ({status}: {reason})", status=status)

    def _bad_token(self, status: int | None, response: requests.Response | None) -> bool:
        """Takahē says 400 text/html "Invalid Bearer token" where others say 401."""
        return (
            status == 400
            and response is not None
            and "invalid bearer token" in response.text.lower()
        )

    def _retry_at(self, response: requests.Response | None) -> datetime | None:
        """When the server said to come back: ``Retry-After`` (seconds or a date), else
        ``X-RateLimit-Reset`` (ISO 8601 or epoch seconds)."""
        if response is None:
            return None
        headers = response.headers
        after = (headers.get("Retry-After") or "").strip()
        if after.isdigit():
            return self._now() + timedelta(seconds=int(after))
        reset = headers.get("X-RateLimit-Reset") or headers.get("X-Ratelimit-Reset")
        return _parse_moment(after) or _parse_moment(reset or "")


def _parse_moment(text: str) -> datetime | None:
    """An HTTP date, an ISO 8601 time or epoch seconds, as an aware UTC datetime."""
    text = text.strip()
    if not text:
        return None
    parsers: tuple[Callable[[str], datetime], ...] = (
        parsedate_to_datetime,
        lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")),
        lambda t: datetime.fromtimestamp(float(t), UTC),
    )
    for parse in parsers:
        try:
            moment = parse(text)
        except (TypeError, ValueError, IndexError):
            continue
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


class _Translate:
    """``with publisher._translate(...)``: Mastodon.py's exceptions become ours."""

    def __init__(self, publisher: MastodonPublisher, action: str, sent_is_unknown: bool):
        self.publisher, self.action, self.sent_is_unknown = publisher, action, sent_is_unknown

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if isinstance(error, MastodonError):
            raise self.publisher.classify(error, self.action, self.sent_is_unknown) from None
        if isinstance(error, requests.RequestException):
            raise RetryLater(f"{self.action}: {_network_reason(error)}") from None


def _before_sending(cause: BaseException | None) -> bool:
    """True when the request cannot have reached the server (no connection was made)."""
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ReadTimeout):
        return False
    if isinstance(cause, requests.exceptions.ConnectionError):
        text = repr(cause)
        return (
            any(
                marker in text
                for marker in (
                    "NewConnectionError",
                    "Connection refused",
                    "NameResolution",
                    "Max retries",
                )
            )
            and "RemoteDisconnected" not in text
            and "Connection aborted" not in text
        )
    return False


def _network_reason(cause: BaseException | None) -> str:
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return "the server did not accept a connection in time"
    if isinstance(cause, requests.exceptions.ReadTimeout):
        return "the server did not answer in time"
    text = repr(cause)
    if "Connection refused" in text:
        return "connection refused"
    if "NameResolution" in text or "Name or service not known" in text:
        return "the server's name does not resolve"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset" in text.lower():
        return "the connection was closed without an answer"
    return "network error"


def _response_words(response: requests.Response | None) -> str:
    """What the server said: the ``error`` of a JSON answer, else its text without tags."""
    if response is None:
        return "no reason given"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:300]
    text = re.sub(r"<[^>]+>", " ", response.text or "")
    return " ".join(text.split())[:200] or (response.reason or "no reason given")


def _json(action: str, response: requests.Response) -> Any:
    """The JSON body of a successful answer (else RetryLater: nothing was changed)."""
    try:
        return response.json()
    except ValueError:
        raise RetryLater(
            f"{action}: the server answered {response.status_code} with no readable JSON"
        ) from None


def _published(status: Any) -> Published:
    return Published(
        remote_id=str(status["id"]),
        url=status.get("url") or status.get("uri"),
        created_at=_aware(status.get("created_at")),
    )


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def text_of_html(content: str) -> str:
    """A status's HTML reduced to the text its author typed (as near as can be told):
    paragraphs → blank lines, ``<br>`` → newlines, tags dropped, entities decoded."""
    text = re.sub(r"(?i)<br\s*/?>", "\n", content)
    text = re.sub(r"(?i)</p>\s*<p[^>]*>", "\n\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text)


def comparable(text: str) -> str:
    """Text reduced to what survives every server's rendering: mentions without their
    domain (servers render ``@user@domain`` as ``@user``), whitespace collapsed."""
    return " ".join(_MENTION.sub(r"@\1", text).split())
