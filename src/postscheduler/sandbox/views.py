"""The JSON documents the sandbox answers with, in the Mastodon API's shapes.

Accounts, statuses and media attachments follow Mastodon's REST entities (every personality
speaks that API); the instance documents (v1, v2) and NodeInfo carry each personality's
version, software name and limits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from postscheduler.sandbox.model import Account, App, Media, Status, iso_time
from postscheduler.sandbox.personalities import Family, Personality

__all__ = [
    "account_json",
    "app_json",
    "instance_v1",
    "instance_v2",
    "media_json",
    "nodeinfo",
    "nodeinfo_links",
    "oauth_metadata",
    "status_json",
]

JSON = dict[str, Any]


def account_json(
    account: Account,
    base_url: str,
    *,
    source: tuple[str, str | None] | None = None,
) -> JSON:
    """An Account entity; ``source`` (default visibility, language) for the owner's view."""
    day = datetime.fromtimestamp(account.created_at, UTC).date()
    url = f"{base_url}/@{account.username}"
    document: JSON = {
        "id": account.id,
        "username": account.username,
        "acct": account.username,
        "display_name": account.username,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "group": False,
        "created_at": f"{day.isoformat()}T00:00:00.000Z",
        "note": "",
        "url": url,
        "uri": f"{base_url}/users/{account.username}",
        "avatar": f"{base_url}/avatars/original/missing.png",
        "avatar_static": f"{base_url}/avatars/original/missing.png",
        "header": f"{base_url}/headers/original/missing.png",
        "header_static": f"{base_url}/headers/original/missing.png",
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": account.statuses_count,
        "last_status_at": (
            datetime.fromtimestamp(account.last_status_at, UTC).date().isoformat()
            if account.last_status_at is not None
            else None
        ),
        "emojis": [],
        "fields": [],
    }
    if source is not None:
        privacy, language = source
        document["source"] = {
            "privacy": privacy,
            "sensitive": False,
            "language": language or "",
            "note": "",
            "fields": [],
            "follow_requests_count": 0,
        }
    return document


def app_json(app: App, *, with_secret: bool) -> JSON:
    """An Application entity as ``POST /api/v1/apps`` returns it (with its credentials)."""
    document: JSON = {
        "id": app.id,
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes,
        "redirect_uri": "\n".join(app.redirect_uris),
        "redirect_uris": app.redirect_uris,
        "vapid_key": "",
    }
    if with_secret:
        document["client_id"] = app.client_id
        document["client_secret"] = app.client_secret
        document["client_secret_expires_at"] = 0
    return document


def media_json(media: Media, base_url: str) -> JSON:
    """A MediaAttachment entity; ``url`` is null until processing is over (Mastodon)."""
    file_url = f"{base_url}/media/{media.id}/{media.filename}"
    x, y = media.focus
    return {
        "id": media.id,
        "type": media.kind,
        "url": file_url if media.processed else None,
        "preview_url": file_url if media.processed else None,
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": {"focus": {"x": x, "y": y}},
        "description": media.description or None,
        "blurhash": None,
    }


def status_json(status: Status, base_url: str) -> JSON:
    """A Status entity as the author sees it."""
    user = status.account.username
    parent = status.in_reply_to
    return {
        "id": status.id,
        "created_at": iso_time(status.created_at),
        "in_reply_to_id": parent.id if parent else None,
        "in_reply_to_account_id": parent.account.id if parent else None,
        "sensitive": status.sensitive,
        "spoiler_text": status.spoiler_text,
        "visibility": status.visibility,
        "language": status.language,
        "uri": f"{base_url}/users/{user}/statuses/{status.id}",
        "url": f"{base_url}/@{user}/{status.id}",
        "replies_count": status.replies_count,
        "reblogs_count": 0,
        "favourites_count": 0,
        "edited_at": None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "pinned": False,
        "content": status.content,
        "filtered": [],
        "reblog": None,
        "application": {"name": status.application, "website": None},
        "account": account_json(status.account, base_url),
        "media_attachments": [media_json(m, base_url) for m in status.media],
        "mentions": [
            {
                "id": a.id,
                "username": a.username,
                "url": f"{base_url}/@{a.username}",
                "acct": a.username,
            }
            for a in status.mentions
        ],
        "tags": [{"name": t, "url": f"{base_url}/tags/{t}"} for t in status.tags],
        "emojis": [],
        "card": None,
        "poll": None,
    }


def _media_configuration(p: Personality) -> JSON:
    return {
        "supported_mime_types": list(p.supported_mime_types),
        "description_limit": 1500,
        "image_size_limit": p.image_size_limit,
        "image_matrix_limit": 33_177_600,
        "video_size_limit": p.video_size_limit,
        "video_frame_rate_limit": 120,
        "video_matrix_limit": 8_294_400,
    }


def _statuses_configuration(p: Personality, max_characters: int) -> JSON:
    return {
        "max_characters": max_characters,
        "max_media_attachments": p.max_media_attachments,
        "characters_reserved_per_url": p.characters_reserved_per_url,
    }


def instance_v1(
    p: Personality, base_url: str, domain: str, max_characters: int, counts: tuple[int, int]
) -> JSON:
    """``GET /api/v1/instance``; ``counts`` is (users, statuses)."""
    users, statuses = counts
    document: JSON = {
        "uri": domain,
        "title": f"{p.title} sandbox",
        "short_description": "A loopback server for rehearsals and tests.",
        "description": "A loopback server for rehearsals and tests.",
        "email": "",
        "version": p.version,
        "urls": {"streaming_api": base_url.replace("http", "ws", 1)},
        "stats": {"user_count": users, "status_count": statuses, "domain_count": 0},
        "thumbnail": None,
        "languages": ["en"],
        "registrations": False,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": {
            "accounts": {"max_featured_tags": 10},
            "statuses": _statuses_configuration(p, max_characters),
            "media_attachments": _media_configuration(p),
            "polls": {
                "max_options": 4,
                "max_characters_per_option": 50,
                "min_expiration": 300,
                "max_expiration": 2_629_746,
            },
        },
        "contact_account": None,
        "rules": [],
    }
    if p.family in (Family.PLEROMA, Family.GOTOSOCIAL):
        document["max_toot_chars"] = max_characters
    if p.family is Family.PLEROMA:
        document["upload_limit"] = p.image_size_limit
        document["pleroma"] = {
            "metadata": {
                "features": ["mastodon_api", "pleroma_api", "media_proxy"],
                "post_formats": ["text/plain", "text/html", "text/markdown"],
            }
        }
    return document


def instance_v2(
    p: Personality, base_url: str, domain: str, max_characters: int, users: int
) -> JSON:
    """``GET /api/v2/instance``."""
    return {
        "domain": domain,
        "title": f"{p.title} sandbox",
        "version": p.version,
        "source_url": "https://example.invalid/sandbox",
        "description": "A loopback server for rehearsals and tests.",
        "usage": {"users": {"active_month": users}},
        "thumbnail": {"url": f"{base_url}/thumbnail.png"},
        "icon": [],
        "languages": ["en"],
        "configuration": {
            "urls": {"streaming": base_url.replace("http", "ws", 1)},
            "vapid": {"public_key": ""},
            "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
            "statuses": _statuses_configuration(p, max_characters),
            "media_attachments": _media_configuration(p),
            "polls": {
                "max_options": 4,
                "max_characters_per_option": 50,
                "min_expiration": 300,
                "max_expiration": 2_629_746,
            },
            "translation": {"enabled": False},
        },
        "registrations": {
            "enabled": False,
            "approval_required": False,
            "message": None,
            "url": None,
        },
        "api_versions": {"mastodon": 2},
        "contact": {"email": "", "account": None},
        "rules": [],
    }


def nodeinfo_links(p: Personality, base_url: str) -> JSON:
    """``GET /.well-known/nodeinfo``: where the NodeInfo documents are."""
    versions = ["2.0", "2.1"] if p.family is Family.PLEROMA else ["2.0"]
    return {
        "links": [
            {
                "rel": f"http://nodeinfo.diaspora.software/ns/schema/{version}",
                "href": f"{base_url}/nodeinfo/{version}",
            }
            for version in versions
        ]
    }


def nodeinfo(p: Personality, version: str, counts: tuple[int, int]) -> JSON:
    """``GET /nodeinfo/2.0`` (or 2.1): the software's name and version, and usage."""
    users, statuses = counts
    return {
        "version": version,
        "software": {"name": p.software, "version": p.software_version},
        "protocols": ["activitypub"],
        "services": {"outbound": [], "inbound": []},
        "usage": {
            "users": {"total": users, "activeMonth": users, "activeHalfyear": users},
            "localPosts": statuses,
        },
        "openRegistrations": False,
        "metadata": {},
    }


def oauth_metadata(base_url: str) -> JSON:
    """``GET /.well-known/oauth-authorization-server`` (RFC 8414), as Mastodon ≥ 4.3."""
    return {
        "issuer": f"{base_url}/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base_url}/oauth/authorize",
        "token_endpoint": f"{base_url}/oauth/token",
        "revocation_endpoint": f"{base_url}/oauth/revoke",
        "app_registration_endpoint": f"{base_url}/api/v1/apps",
        "scopes_supported": ["read", "write", "follow", "push", "profile"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }
