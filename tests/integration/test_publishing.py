"""The Mastodon.py adapter over real HTTP against the sandbox: every outcome class, each
personality. No mock of Mastodon.py: the sandbox plays the server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postscheduler.domain.states import State
from postscheduler.errors import AccountUnusable, OutcomeUnknown, PublishFailed, RetryLater
from postscheduler.ports import PublicationRecord, ServerProfile
from postscheduler.publishers.client import Timeouts
from postscheduler.publishers.mastodon import MastodonPublisher, comparable, text_of_html
from postscheduler.sandbox import SandboxServer
from postscheduler.testing import FakeClock

PERSONALITIES = ["mastodon", "gotosocial", "pleroma", "akkoma", "takahe"]
NOW = datetime(2017, 10, 5, 12, 0, tzinfo=UTC)


def profile(server: SandboxServer, software: str) -> ServerProfile:
    return ServerProfile(
        instance=server.url,
        software=software,
        version="test",
        max_characters=500,
        characters_per_url=23,
        max_media=4,
        idempotency_ttl=timedelta(hours=1) if software in ("mastodon", "pleroma") else None,
        scheduled_at=False,
        fetched_at=NOW,
    )


def publication(text: str = "Nous sommes tous le Venezuela", **fields: object) -> PublicationRecord:
    values: dict[str, object] = {
        "key": "demo/a/alba/1",
        "campaign": "demo",
        "post": "a",
        "occurrence": None,
        "account": "alba",
        "part": 1,
        "parts": 1,
        "scheduled_at": NOW,
        "text": text,
        "spoiler_text": "",
        "visibility": "public",
        "language": "fr",
        "sensitive": False,
        "media": (),
        "reply_to": None,
        "content_hash": "h",
        "state": State.CLAIMED,
    }
    values.update(fields)
    return PublicationRecord(**values)  # type: ignore[arg-type]


@pytest.fixture(params=PERSONALITIES)
def server(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    clock = FakeClock(NOW)
    with SandboxServer(request.param, clock=clock.epoch) as running:
        yield running


def publisher_for(server: SandboxServer, token: str, **options: object) -> MastodonPublisher:
    software = server.personality.name
    return MastodonPublisher(
        profile(server, software),
        token,
        timeouts=Timeouts(connect=2, read=2),
        sleep=lambda _seconds: None,
        **options,  # type: ignore[arg-type]
    )


def test_a_status_is_posted_with_its_language_and_visibility(server: SandboxServer) -> None:
    token = server.add_account("alba")
    published = publisher_for(server, token).post_status(
        publication(visibility="unlisted"),
        idempotency_key="k1",
        in_reply_to_id=None,
        media_ids=[],
    )
    (stored,) = server.statuses("alba")
    assert stored["id"] == published.remote_id
    assert published.url
    assert stored["visibility"] == "unlisted"
    if server.personality.name != "takahe":  # Takahē ignores language (DESIGN §6)
        assert stored["language"] == "fr"


def test_the_same_idempotency_key_is_one_status_where_the_server_honours_it(
    server: SandboxServer,
) -> None:
    token = server.add_account("alba")
    publisher = publisher_for(server, token)
    first = publisher.post_status(
        publication(), idempotency_key="same", in_reply_to_id=None, media_ids=[]
    )
    again = publisher.post_status(
        publication(), idempotency_key="same", in_reply_to_id=None, media_ids=[]
    )
    honours = server.personality.name in ("mastodon", "pleroma", "akkoma")
    assert (first.remote_id == again.remote_id) == honours
    assert len(server.statuses("alba")) == (1 if honours else 2)


def test_too_long_is_failed_with_the_servers_words(server: SandboxServer) -> None:
    token = server.add_account("alba")
    with pytest.raises(PublishFailed) as caught:
        publisher_for(server, token).post_status(
            publication("x" * 6000), idempotency_key="long", in_reply_to_id=None, media_ids=[]
        )
    assert caught.value.status in (400, 422)
    assert server.statuses("alba") == []


def test_a_revoked_token_makes_the_account_unusable(server: SandboxServer) -> None:
    token = server.add_account("alba")
    server.revoke(token)
    with pytest.raises(AccountUnusable):
        publisher_for(server, token).post_status(
            publication(), idempotency_key="k", in_reply_to_id=None, media_ids=[]
        )


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(server: SandboxServer, status: int) -> None:
    token = server.add_account("alba")
    server.faults.add("POST /api/v1/statuses", "status", status=status)
    with pytest.raises(RetryLater) as caught:
        publisher_for(server, token).post_status(
            publication(), idempotency_key="k", in_reply_to_id=None, media_ids=[]
        )
    assert caught.value.status == status
    assert server.statuses("alba") == []


def test_a_rate_limit_says_when_to_come_back(server: SandboxServer) -> None:
    token = server.add_account("alba")
    reset = "2017-10-05T13:00:00Z"
    server.faults.add(
        "POST /api/v1/statuses",
        "status",
        status=429,
        body={"error": "Too many requests"},
        headers={"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"},
    )
    with pytest.raises(RetryLater) as caught:
        publisher_for(server, token).post_status(
            publication(), idempotency_key="k", in_reply_to_id=None, media_ids=[]
        )
    assert caught.value.retry_at == datetime(2017, 10, 5, 13, 0, tzinfo=UTC)


def test_no_answer_after_sending_is_uncertain_and_reconciliation_finds_it(
    server: SandboxServer,
) -> None:
    token = server.add_account("alba")
    publisher = publisher_for(server, token)
    server.faults.add("POST /api/v1/statuses", "reset_after")
    record = publication("Un texte avec #NousSommesTousLeVenezuela et https://example.org/x")
    with pytest.raises(OutcomeUnknown):
        publisher.post_status(record, idempotency_key="k", in_reply_to_id=None, media_ids=[])
    (stored,) = server.statuses("alba")
    found = publisher.find_status(record, since=NOW - timedelta(minutes=5))
    assert found is not None
    assert found.remote_id == stored["id"]


def test_reconciliation_does_not_find_what_was_never_stored(server: SandboxServer) -> None:
    token = server.add_account("alba")
    publisher = publisher_for(server, token)
    publisher.post_status(
        publication("Un autre texte"), idempotency_key="o", in_reply_to_id=None, media_ids=[]
    )
    server.faults.add("POST /api/v1/statuses", "reset_before")
    record = publication("Le texte jamais reçu")
    with pytest.raises(OutcomeUnknown):
        publisher.post_status(record, idempotency_key="k", in_reply_to_id=None, media_ids=[])
    assert publisher.find_status(record, since=NOW - timedelta(minutes=5)) is None


@pytest.mark.parametrize("software", PERSONALITIES)
def test_reconciliation_pages_back_to_the_oldest_match_not_excluded(software: str) -> None:
    # A series says the same words every time: the oldest status with them, created since
    # the publication's first claim and not already recorded as another publication.
    clock = FakeClock(NOW)
    with SandboxServer(software, clock=clock.epoch) as server:
        publisher = publisher_for(server, server.add_account("alba"))
        words = publication("Les mêmes mots, chaque jour")

        def post(record: PublicationRecord, key: str) -> str:
            clock.advance(timedelta(seconds=30))
            done = publisher.post_status(
                record, idempotency_key=key, in_reply_to_id=None, media_ids=[]
            )
            return done.remote_id

        before = post(words, "before")  # created before the first claim: never it
        claimed = clock.now() + timedelta(minutes=5)
        clock.advance(timedelta(minutes=10))
        first = post(words, "first")
        others = [post(publication(f"Autre texte {n}"), f"o{n}") for n in range(45)]
        second = post(words, "second")
        assert len({before, first, second, *others}) == 48
        found = publisher.find_status(words, since=claimed)  # 2 pages back
        assert found is not None
        assert found.remote_id == first
        assert found.created_at is not None
        again = publisher.find_status(words, since=claimed, exclude={first})
        assert again is not None
        assert again.remote_id == second
        assert publisher.find_status(words, since=claimed, exclude={first, second}) is None
        assert publisher.find_status(words, since=clock.now() + timedelta(minutes=5)) is None


def test_reconciliation_errors_are_mapped_as_a_read(server: SandboxServer) -> None:
    token = server.add_account("alba")
    publisher = publisher_for(server, token)
    since = NOW - timedelta(minutes=5)
    server.faults.add("GET /api/v1/accounts", "status", status=503)
    with pytest.raises(RetryLater) as unavailable:
        publisher.find_status(publication(), since=since)
    assert unavailable.value.status == 503
    server.faults.add("GET /api/v1/accounts", "reset_after")
    with pytest.raises(RetryLater):  # a lookup never has an unknown outcome
        publisher.find_status(publication(), since=since)
    reset = "2017-10-05T13:00:00Z"
    server.faults.add(
        "GET /api/v1/accounts", "status", status=429, headers={"X-RateLimit-Reset": reset}
    )
    with pytest.raises(RetryLater) as limited:
        publisher.find_status(publication(), since=since)
    assert limited.value.retry_at == datetime(2017, 10, 5, 13, 0, tzinfo=UTC)
    server.faults.add("GET /api/v1/accounts", "status", status=404)
    with pytest.raises(PublishFailed):
        publisher.find_status(publication(), since=since)
    assert publisher.find_status(publication(), since=since) is None
    server.revoke(token)
    with pytest.raises(AccountUnusable):
        publisher.find_status(publication(), since=since)


def test_a_connection_refused_is_retried() -> None:
    with SandboxServer("mastodon") as running:
        url, token = running.url, running.add_account("alba")
        software_profile = profile(running, "mastodon")
    publisher = MastodonPublisher(software_profile, token, timeouts=Timeouts(connect=1, read=1))
    assert publisher.profile.instance == url
    with pytest.raises(RetryLater):
        publisher.post_status(publication(), idempotency_key="k", in_reply_to_id=None, media_ids=[])


def test_a_reply_to_a_missing_status(server: SandboxServer) -> None:
    token = server.add_account("alba")
    publisher = publisher_for(server, token)
    record = publication("Deuxième partie", part=2, reply_to="demo/a/alba/1")
    if server.personality.name == "takahe":  # posts it top-level (DESIGN §6)
        published = publisher.post_status(
            record, idempotency_key="r", in_reply_to_id="99999999", media_ids=[]
        )
        assert published.remote_id
        return
    with pytest.raises(PublishFailed):
        publisher.post_status(record, idempotency_key="r", in_reply_to_id="99999999", media_ids=[])


def test_a_thread_replies_to_its_previous_part(server: SandboxServer) -> None:
    token = server.add_account("alba")
    publisher = publisher_for(server, token)
    first = publisher.post_status(
        publication("Un 1/2"), idempotency_key="1", in_reply_to_id=None, media_ids=[]
    )
    publisher.post_status(
        publication("Deux 2/2", part=2),
        idempotency_key="2",
        in_reply_to_id=first.remote_id,
        media_ids=[],
    )
    statuses = server.statuses("alba")
    assert statuses[1]["in_reply_to_id"] == first.remote_id


def test_media_are_uploaded_with_alt_text_and_polled_until_ready(
    server: SandboxServer, tmp_path: Path
) -> None:
    token = server.add_account("alba")
    publisher = publisher_for(server, token, now=FakeClock(NOW).now)
    image = tmp_path / "drapeau.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    image_id = publisher.upload_media({"mime": "image/png", "alt": "Un drapeau"}, str(image))
    publisher.post_status(
        publication(), idempotency_key="i", in_reply_to_id=None, media_ids=[image_id]
    )
    (stored,) = server.statuses("alba")
    assert stored["media_ids"] == [image_id]
    assert stored["media_descriptions"] == ["Un drapeau"]


def test_a_video_is_polled_until_processed(tmp_path: Path) -> None:
    with SandboxServer("mastodon", media_processing_polls=3) as server:
        token = server.add_account("alba")
        naps: list[float] = []
        publisher = MastodonPublisher(profile(server, "mastodon"), token, sleep=naps.append)
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"0" * 64)
        video_id = publisher.upload_media({"mime": "video/mp4", "alt": "Une vidéo"}, str(video))
        # 202 on upload; three polls answer 206, the fourth 200: a pause before each poll.
        assert naps == [0.5, 1.0, 2.0, 4.0]
        publisher.post_status(
            publication(), idempotency_key="v", in_reply_to_id=None, media_ids=[video_id]
        )
        assert server.statuses("alba")[0]["media_ids"] == [video_id]


def test_a_video_still_processing_at_the_deadline_is_retried(tmp_path: Path) -> None:
    with SandboxServer("mastodon", media_processing_polls=50) as server:
        token = server.add_account("alba")
        clock = FakeClock(NOW)
        publisher = MastodonPublisher(
            profile(server, "mastodon"),
            token,
            sleep=lambda seconds: clock.advance(timedelta(seconds=seconds)) and None,
            now=clock.now,
            media_deadline=timedelta(seconds=20),
        )
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"0" * 64)
        with pytest.raises(RetryLater, match="still processing"):
            publisher.upload_media({"mime": "video/mp4", "alt": "Une vidéo"}, str(video))


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("<p>Bonjour</p><p>le monde</p>", "Bonjour\n\nle monde"),
        ("<p>a<br />b &amp; c</p>", "a\nb & c"),
        (
            '<p><a href="https://x.example/tags/Che50" class="mention hashtag">'
            "#<span>Che50</span></a></p>",
            "#Che50",
        ),
    ],
)
def test_html_is_reduced_to_the_text_typed(content: str, text: str) -> None:
    assert text_of_html(content) == text


def test_comparable_text_drops_mention_domains_and_spacing() -> None:
    assert comparable("Salut  @alba@peuples.example\n\nça va") == "Salut @alba ça va"
