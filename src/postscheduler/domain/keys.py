"""Stable names for publications.

A publication's **key** says what it is — campaign, post (and occurrence of a series),
account, part — and stays the same for the same file, so that a re-sync recognises it.
Its **content hash** says what will be sent; a change of wording changes the hash, not the key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

OCCURRENCE_FORMAT = "%Y%m%dT%H%M"


def occurrence_label(local_time: datetime) -> str:
    """A series occurrence, named by its local wall-clock time (``20171005T0900``)."""
    return local_time.strftime(OCCURRENCE_FORMAT)


def publication_key(
    campaign: str, post: str, account: str, part: int, occurrence: str | None = None
) -> str:
    """``campaign/post/account/part``, or ``campaign/series@occurrence/account/part``."""
    name = post if occurrence is None else f"{post}@{occurrence}"
    return f"{campaign}/{name}/{account}/{part}"


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``content`` in a canonical form: equal content, equal hash.

    Keys in sorted order; a text value as its length and itself (so no separator can be
    forged by the text); None, booleans and empty lists by a tag; anything else as
    canonical JSON.
    """
    parts: list[str] = []
    for name in sorted(content):
        parts.append(f"{len(name)}:{name}=")
        parts.append(_encode(content[name]))
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return f"s{len(value)}:{value};"
    if value is None:
        return "n;"
    if isinstance(value, bool):
        return "t;" if value else "f;"
    if not value and isinstance(value, list | tuple):
        return "l0;"
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"j{len(canonical)}:{canonical};"


def idempotency_key(key: str, content_hash: str) -> str:
    """The ``Idempotency-Key`` of a publication: the same for every try of the same content.

    Derived from the publication's key (campaign, post, account, part, occurrence) and its
    content hash, so a retry — after a crash, a restart, a 5xx — is the same request, and a
    corrected text is a new one.
    """
    return hashlib.sha256(f"{key}\n{content_hash}".encode()).hexdigest()[:48]
