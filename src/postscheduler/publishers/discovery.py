"""Asking a server what it is: software, version and limits (DESIGN §2, §6).

Discovery uses httpx, never Mastodon.py: Mastodon.py asks for ``/api/v1/instance/`` with a
trailing slash, which Takahē answers 404, and then recurses (DESIGN §6). Two questions:

1. ``GET /.well-known/nodeinfo`` → the link to the newest NodeInfo 2.x document →
   ``software.name`` and ``software.version``. When NodeInfo cannot be had, the instance
   document's ``version`` string is read instead (``… (compatible; Pleroma 2.6)``,
   ``takahe/0.11.0``); a plain version number there is not taken as proof of Mastodon.
2. ``GET /api/v2/instance``, else ``GET /api/v1/instance`` (never with a trailing slash) →
   ``configuration.statuses`` (``max_characters``, ``characters_reserved_per_url``,
   ``max_media_attachments``) and ``configuration.media_attachments``
   (``supported_mime_types``, ``image_size_limit``, ``video_size_limit``,
   ``description_limit``); Pleroma's older top-level ``max_toot_chars``, ``upload_limit``
   and ``description_limit`` are read when the configuration does not say.

The profile says how the server **really** counts, not only what it advertises: only
Mastodon counts a link as ``characters_reserved_per_url``; GoToSocial advertises 25 but
counts links at full length, and so do Pleroma, Akkoma and Takahē — their profile has
``characters_per_url = 0`` ("full length").

Software the facts table does not know (Misskey, Friendica…) is kept as ``unknown:NAME``
and planned with the most cautious counting we have — code points of text and content
warning, links and mentions at full length (:attr:`Counting.GOTOSOCIAL`) — with its
advertised limit (else 500), no trust in ``Idempotency-Key`` and no ``scheduled_at``.
An account that names its software in the campaign file is counted by that software's
rules when the server's own is unknown.

``Idempotency-Key`` lifetimes come from :data:`postscheduler.domain.software.FACTS`;
``scheduled_at`` support from :data:`SCHEDULED_AT_SINCE` (Mastodon, Pleroma and Akkoma:
yes; GoToSocial: from 0.20.0; Takahē: no, it posts at once).

Only ``https://`` servers are asked, except on loopback (127.0.0.0/8, ::1, localhost: the
bundled sandbox), where ``http://`` is allowed; a redirect may not leave those rules.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from postscheduler import __version__
from postscheduler.domain.compose import CountingRules
from postscheduler.domain.software import FACTS, Software, facts_for
from postscheduler.domain.text import Counting
from postscheduler.errors import DiscoveryError
from postscheduler.ports import ServerProfile

if TYPE_CHECKING:
    # httpx is imported where a request is made: the daemon's profile refresh uses this
    # module's pure helpers every few minutes and asks a server about once a day.
    import httpx

    from postscheduler.campaign_file import LoadedCampaign
    from postscheduler.domain.campaign import Account
    from postscheduler.ports import Store

__all__ = [
    "DEFAULT_TTL",
    "SCHEDULED_AT_SINCE",
    "counting_rules",
    "describe_profile",
    "discover",
    "discovery_client",
    "is_loopback_host",
    "normalise_instance",
    "online_rules",
    "profile_for",
    "profile_notes",
    "software_of",
]

USER_AGENT = f"postscheduler/{__version__}"
#: How long a discovered profile is trusted before the server is asked again.
DEFAULT_TTL = timedelta(hours=24)
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/"
#: Since which version each software holds a status posted with ``scheduled_at`` (None:
#: never — Takahē ignores it and posts at once). Unknown software: never.
SCHEDULED_AT_SINCE: dict[Software, tuple[int, ...] | None] = {
    Software.MASTODON: (0,),
    Software.GOTOSOCIAL: (0, 20, 0),
    Software.PLEROMA: (0,),
    Software.AKKOMA: (0,),
    Software.TAKAHE: None,
}
#: NodeInfo names of forks that count and answer exactly as their parent does.
ALIASES: dict[str, Software] = {
    "hometown": Software.MASTODON,
    "glitch-soc": Software.MASTODON,
    "glitchsoc": Software.MASTODON,
}
#: What an unknown software is assumed to accept when it does not say.
UNKNOWN_MAX_CHARACTERS = 500
UNKNOWN_MAX_MEDIA = 4
UNKNOWN_PREFIX = "unknown:"
#: Column widths of the store (server_profiles.software, .version).
_SOFTWARE_WIDTH = 32
_VERSION_WIDTH = 64
#: At most this much of an answer is read (an instance document is a few kilobytes).
_MAX_BODY = 2 * 1024 * 1024
_MAX_REDIRECTS = 5


# -- addresses ------------------------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_instance(instance: str) -> str:
    """``scheme://host[:port]`` of a server address (``https://`` assumed when none is
    written); raises :class:`DiscoveryError` for ``http://`` off loopback, a path, or an
    address that is not one."""
    text = instance.strip()
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise DiscoveryError(instance, "not a server address: write e.g. https://example.social")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise DiscoveryError(
            instance, "use https:// (plain http:// is only allowed on 127.0.0.1 / localhost)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise DiscoveryError(instance, "write only the server's address, without a path")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _check_url(instance: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback_host(parts.hostname or "")
    ):
        return
    raise DiscoveryError(instance, f"refused to follow {url} (https:// only, except loopback)")


# -- HTTP -----------------------------------------------------------------------------------


def discovery_client(*, connect: float = 5.0, read: float = 15.0) -> httpx.Client:
    """An httpx client for discovery: our User-Agent, separate connect and read timeouts.
    (:func:`discover` follows redirects itself, checking each before it is followed.)
    Close it when done."""
    import httpx  # noqa: PLC0415 (see the imports)

    return httpx.Client(
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        timeout=httpx.Timeout(read, connect=connect),
    )


@dataclass(frozen=True)
class _Answer:
    status: int
    document: Any  # the decoded JSON, or None when the body was not JSON


def _get(client: httpx.Client, instance: str, url: str) -> _Answer:
    """GET ``url``, following at most :data:`_MAX_REDIRECTS` redirects, each checked before
    it is followed; a failure to get any answer at all is a DiscoveryError."""
    import httpx  # noqa: PLC0415 (see the imports)

    for _hop in range(_MAX_REDIRECTS + 1):
        _check_url(instance, url)
        try:
            response = client.get(url, follow_redirects=False)
        except httpx.TimeoutException:
            raise DiscoveryError(instance, f"no answer in time from {url}") from None
        except httpx.ConnectError as error:
            raise DiscoveryError(instance, f"cannot connect ({_first_line(error)})") from None
        except httpx.HTTPError as error:
            raise DiscoveryError(instance, f"{url}: {_first_line(error)}") from None
        location = response.headers.get("Location")
        if not response.is_redirect or not location:
            break
        url = urljoin(url, location)
    else:
        raise DiscoveryError(instance, f"too many redirects from {url}")
    content = response.content[:_MAX_BODY]
    try:
        document = json.loads(content) if content else None
    except ValueError:
        document = None
    return _Answer(response.status_code, document)


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# -- discovery ------------------------------------------------------------------------------


def discover(instance: str, *, client: httpx.Client, now: datetime) -> ServerProfile:
    """Ask ``instance`` what it is and what it accepts (see the module docstring).

    ``now`` (UTC-aware) becomes the profile's ``fetched_at``. Raises
    :class:`DiscoveryError` — one line with the instance and what failed — when the server
    cannot be reached, does not answer in time, or answers neither instance endpoint with
    a JSON document.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("discover needs a UTC-aware now")
    base = normalise_instance(instance)
    nodeinfo = _nodeinfo(client, base)
    document = _instance_document(client, base)
    if nodeinfo is not None:
        name, version = nodeinfo
    else:
        name, version = _software_from_version(document.get("version"))
    software = _software(name)
    return _profile(base, name=name, software=software, version=version, document=document, now=now)


def _nodeinfo(client: httpx.Client, base: str) -> tuple[str, str] | None:
    """``(name, version)`` from NodeInfo, None when the server offers none we can read.

    A server that cannot be reached at all raises here (the instance endpoints would fail
    the same way).
    """
    index = _get(client, base, f"{base}/.well-known/nodeinfo")
    if index.status != 200 or not isinstance(index.document, dict):
        return None
    links = index.document.get("links")
    best: tuple[tuple[int, ...], str] | None = None
    for link in links if isinstance(links, list) else ():
        if not isinstance(link, dict):
            continue
        rel, href = link.get("rel"), link.get("href")
        if not isinstance(rel, str) or not isinstance(href, str):
            continue
        if not rel.startswith(NODEINFO_SCHEMA + "2."):
            continue
        schema = _version_tuple(rel[len(NODEINFO_SCHEMA) :])
        if best is None or schema > best[0]:
            best = (schema, urljoin(f"{base}/", href))
    if best is None:
        return None
    answer = _get(client, base, best[1])
    document = answer.document
    if answer.status != 200 or not isinstance(document, dict):
        return None
    software = document.get("software")
    if not isinstance(software, dict) or not isinstance(software.get("name"), str):
        return None
    version = software.get("version")
    return software["name"].strip().lower(), version.strip() if isinstance(version, str) else ""


def _instance_document(client: httpx.Client, base: str) -> dict[str, Any]:
    """``/api/v2/instance``, else ``/api/v1/instance`` — never with a trailing slash."""
    tried: list[str] = []
    for path in ("/api/v2/instance", "/api/v1/instance"):
        answer = _get(client, base, f"{base}{path}")
        if answer.status == 200 and isinstance(answer.document, dict):
            return answer.document
        what = "not JSON" if answer.status == 200 else str(answer.status)
        tried.append(f"{path} {what}")
    raise DiscoveryError(base, "no instance document (" + ", ".join(tried) + ")")


_COMPATIBLE = re.compile(r"\(compatible;\s*([A-Za-z][\w.-]*)\s+([^)\s]*)")


def _software_from_version(version: Any) -> tuple[str, str]:
    """``(name, version)`` read from an instance document's ``version`` field, for servers
    without NodeInfo: ``2.7.2 (compatible; Pleroma 2.6.0)``, ``takahe/0.11.0``."""
    if not isinstance(version, str) or not version.strip():
        return "", ""
    text = version.strip()
    compatible = _COMPATIBLE.search(text)
    if compatible:
        return compatible.group(1).lower(), compatible.group(2)
    if "/" in text:
        name, _, rest = text.partition("/")
        return name.strip().lower(), rest.strip()
    return "", text


def _software(name: str) -> Software | None:
    if name in ALIASES:
        return ALIASES[name]
    try:
        software = Software(name)
    except ValueError:
        return None
    return None if software is Software.AUTO else software


def _profile(
    base: str,
    *,
    name: str,
    software: Software | None,
    version: str,
    document: Mapping[str, Any],
    now: datetime,
) -> ServerProfile:
    configuration = _mapping(document.get("configuration"))
    statuses = _mapping(configuration.get("statuses"))
    media = _mapping(configuration.get("media_attachments"))

    advertised_limit = _positive(statuses.get("max_characters")) or _positive(
        document.get("max_toot_chars")
    )
    advertised_url = _natural(statuses.get("characters_reserved_per_url"))
    advertised_media = _positive(statuses.get("max_media_attachments")) or _positive(
        document.get("max_media_attachments")
    )
    upload_limit = _positive(document.get("upload_limit"))
    types = media.get("supported_mime_types")

    if software is None:
        label = (name or "unnamed")[: _SOFTWARE_WIDTH - len(UNKNOWN_PREFIX)]
        stored_name = UNKNOWN_PREFIX + label
        max_characters = advertised_limit or UNKNOWN_MAX_CHARACTERS
        per_url = 0
        max_media = advertised_media or UNKNOWN_MAX_MEDIA
        idempotency: timedelta | None = None
        scheduled = False
    else:
        facts = FACTS[software]
        stored_name = software.value
        max_characters = advertised_limit or facts.max_characters
        # Only Mastodon counts a link as its advertised cost; the others at full length.
        if software is Software.MASTODON:
            per_url = advertised_url if advertised_url is not None else facts.characters_per_url
        else:
            per_url = 0
        max_media = advertised_media or facts.max_media
        idempotency = facts.idempotency_ttl
        scheduled = _schedules(software, version)
    return ServerProfile(
        instance=base,
        software=stored_name,
        version=version[:_VERSION_WIDTH],
        max_characters=max_characters,
        characters_per_url=per_url,
        max_media=max_media,
        idempotency_ttl=idempotency,
        scheduled_at=scheduled,
        fetched_at=now,
        max_alt_text=_positive(media.get("description_limit"))
        or _positive(document.get("description_limit")),
        media_types=tuple(t for t in types if isinstance(t, str))
        if isinstance(types, list)
        else (),
        image_size_limit=_positive(media.get("image_size_limit")) or upload_limit,
        video_size_limit=_positive(media.get("video_size_limit")) or upload_limit,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _positive(value: Any) -> int | None:
    """A count or a size as the server gave it: a positive integer, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _natural(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    if not match:
        return ()
    return tuple(int(part) for part in match.group(1).split("."))


def _schedules(software: Software, version: str) -> bool:
    since = SCHEDULED_AT_SINCE.get(software)
    if since is None:
        return False
    found = _version_tuple(version)
    # A version we cannot read is assumed recent: the server is answering today.
    return not found or found >= since


# -- using a profile ------------------------------------------------------------------------


def software_of(profile: ServerProfile) -> Software | None:
    """The profile's software as our enum, None when it is ``unknown:…``."""
    try:
        software = Software(profile.software)
    except ValueError:
        return None
    return None if software is Software.AUTO else software


def counting_rules(profile: ServerProfile, account: Account) -> CountingRules:
    """How ``account``'s server counts a post, from its discovered ``profile``.

    The account's own ``max_characters`` and ``characters_per_url`` (campaign file) win over
    discovery. The counting follows the discovered software; for an unknown software, the
    software the account names in the file, else the most cautious counting
    (:attr:`Counting.GOTOSOCIAL`: code points, everything at full length).
    """
    software = software_of(profile)
    if software is None and account.software is not Software.AUTO:
        software = account.software
    counting = facts_for(software).counting if software is not None else Counting.GOTOSOCIAL
    return CountingRules(
        counting=counting,
        limit=account.max_characters or profile.max_characters,
        url_length=(
            account.characters_per_url
            if account.characters_per_url is not None
            else profile.characters_per_url
        ),
    )


def describe_profile(profile: ServerProfile) -> str:
    """One phrase for people: ``GoToSocial 0.20.0, 5000 characters, links at full length``."""
    software = software_of(profile)
    if software is not None:
        name = FACTS[software].label
    else:
        name = f"unknown software {profile.software.removeprefix(UNKNOWN_PREFIX)!r}"
    version = f" {profile.version}" if profile.version else ""
    links = (
        f"a link counts {profile.characters_per_url}"
        if profile.characters_per_url
        else "links at full length"
    )
    return f"{name}{version}, {profile.max_characters} characters, {links}"


def profile_for(
    instance: str,
    *,
    store: Store | None,
    client: httpx.Client,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> ServerProfile:
    """The profile of ``instance``: the one cached in ``store`` when it is younger than
    ``ttl`` (and not from the future), else discovered now and saved there.

    Without a store, the server is always asked. Raises :class:`DiscoveryError` when the
    server must be asked and cannot be (a stale cached profile is not returned).
    """
    base = normalise_instance(instance)
    if store is not None:
        cached = store.profile(base)
        if cached is not None and timedelta(0) <= now - cached.fetched_at < ttl:
            return cached
    profile = discover(base, client=client, now=now)
    if store is not None:
        store.save_profile(profile)
    return profile


def online_rules(
    loaded: LoadedCampaign,
    *,
    store: Store | None,
    client: httpx.Client,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> tuple[dict[str, CountingRules], list[str]]:
    """The counting rules of every account of ``loaded`` as their servers count, with one
    note per account (``alba: https://x is GoToSocial 0.20.0, 5000 characters, …``).

    Each server is asked once (through :func:`profile_for`, so a fresh cached profile is
    used). A note also says when the file names another software than the server's, and
    when the file's own limit overrides the server's. The first account whose server
    cannot be asked raises :class:`DiscoveryError` naming that account.
    """
    rules: dict[str, CountingRules] = {}
    notes: list[str] = []
    seen: dict[str, ServerProfile] = {}
    for name, account in loaded.campaign.accounts.items():
        if account.instance not in seen:
            try:
                seen[account.instance] = profile_for(
                    account.instance, store=store, client=client, now=now, ttl=ttl
                )
            except DiscoveryError as error:
                raise DiscoveryError(error.instance, error.what, account=name) from None
        profile = seen[account.instance]
        rules[name] = counting_rules(profile, account)
        notes.append(f"{name}: {profile.instance} is {describe_profile(profile)}")
        notes.extend(f"{name}: {line}" for line in profile_notes(profile, account, rules[name]))
    return rules, notes


def profile_notes(profile: ServerProfile, account: Account, rules: CountingRules) -> list[str]:
    """What a person should know about counting ``account``'s posts with ``rules``: the file
    names another software than the server's, the server's software is unknown, or the
    file's ``max_characters`` overrides the server's limit (one line each, no account name).
    """
    lines = []
    software = software_of(profile)
    if software is not None and account.software not in (Software.AUTO, software):
        lines.append(
            f"the file says {FACTS[account.software].label} but the server is "
            f"{FACTS[software].label}: counting as {FACTS[software].label}"
        )
    if software is None:
        how = (
            f"counted as {FACTS[account.software].label}"
            if account.software is not Software.AUTO
            else "counted cautiously (code points, links at full length)"
        )
        lines.append(f"{profile.software} is not a server software postscheduler knows: {how}")
    if account.max_characters and account.max_characters != profile.max_characters:
        above = (
            " (above the server's: it will refuse)" if rules.limit > profile.max_characters else ""
        )
        lines.append(
            f"the file's max_characters = {account.max_characters} is used, "
            f"the server says {profile.max_characters}{above}"
        )
    return lines
