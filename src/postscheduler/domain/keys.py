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
    """SHA-256 (hex) of ``content`` in canonical JSON: equal content, equal hash."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
