"""The store contract for server profiles (discovery's cache), run against every store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from postscheduler.ports import ServerProfile, Store

FETCHED = datetime(2017, 10, 1, 12, 0, 0, 123456, tzinfo=UTC)

MASTODON = ServerProfile(
    instance="https://a.example",
    software="mastodon",
    version="4.3.2",
    max_characters=500,
    characters_per_url=23,
    max_media=4,
    idempotency_ttl=timedelta(hours=1),
    scheduled_at=True,
    fetched_at=FETCHED,
    max_alt_text=1500,
    media_types=("image/jpeg", "image/png", "video/mp4"),
    image_size_limit=16_777_216,
    video_size_limit=103_809_024,
)

GOTOSOCIAL = ServerProfile(
    instance="http://127.0.0.1:8080",
    software="gotosocial",
    version="0.20.0+git-abc",
    max_characters=5000,
    characters_per_url=0,
    max_media=6,
    idempotency_ttl=None,
    scheduled_at=True,
    fetched_at=FETCHED,
)


def test_an_unknown_instance_has_no_profile(store: Store) -> None:
    assert store.profile("https://nowhere.example") is None


def test_a_saved_profile_reads_back_exactly(store: Store) -> None:
    store.save_profile(MASTODON)
    store.save_profile(GOTOSOCIAL)
    assert store.profile(MASTODON.instance) == MASTODON
    assert store.profile(GOTOSOCIAL.instance) == GOTOSOCIAL


def test_the_times_read_back_are_utc_aware(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    store.save_profile(replace(MASTODON, fetched_at=FETCHED.astimezone(paris)))
    found = store.profile(MASTODON.instance)
    assert found is not None
    assert found.fetched_at == FETCHED
    assert found.fetched_at.utcoffset() == timedelta(0)


def test_saving_again_replaces_the_profile_of_that_instance_only(store: Store) -> None:
    store.save_profile(MASTODON)
    store.save_profile(GOTOSOCIAL)
    newer = replace(
        MASTODON,
        version="4.4.0",
        max_characters=1000,
        idempotency_ttl=None,
        scheduled_at=False,
        max_alt_text=None,
        media_types=(),
        fetched_at=FETCHED + timedelta(days=1),
    )
    store.save_profile(newer)
    assert store.profile(MASTODON.instance) == newer
    assert store.profile(GOTOSOCIAL.instance) == GOTOSOCIAL


def test_an_unknown_software_keeps_its_name(store: Store) -> None:
    other = replace(MASTODON, instance="https://m.example", software="unknown:misskey")
    store.save_profile(other)
    found = store.profile("https://m.example")
    assert found is not None
    assert found.software == "unknown:misskey"


def test_a_naive_fetched_at_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="UTC-aware"):
        store.save_profile(replace(MASTODON, fetched_at=datetime(2017, 10, 1, 12, 0)))
    assert store.profile(MASTODON.instance) is None
