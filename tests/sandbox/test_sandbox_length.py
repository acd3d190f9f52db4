"""Length limits as each server counts: graphemes, code points, URLs, mentions, CW."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]

FLAG = "🇻🇪"  # two code points, one grapheme
URL_100 = "https://example.org/" + "p" * 80  # 100 characters
assert len(URL_100) == 100

TOO_LONG = {
    "mastodon": (422, "Validation failed: Text character limit of {limit} exceeded"),
    "gotosocial": (400, "Bad Request: text with spoiler exceed max chars ({limit})"),
    "pleroma": (422, "The status is over the character limit"),
    "akkoma": (422, "The status is over the character limit"),
    "takahe": (400, "Status is too long"),
}


def post(
    server: SandboxServer, open_client: OpenClient, text: str, spoiler: str = ""
) -> httpx.Response:
    client = open_client(server, server.add_account("alba"))
    return client.post("/api/v1/statuses", data={"status": text, "spoiler_text": spoiler})


def assert_too_long(answer: httpx.Response, personality: str, limit: int) -> None:
    status, message = TOO_LONG[personality]
    assert answer.status_code == status, answer.text
    assert answer.json() == {"error": message.format(limit=limit)}


@pytest.mark.parametrize(
    ("personality", "limit"),
    [("mastodon", 500), ("gotosocial", 5000), ("pleroma", 5000), ("akkoma", 5000), ("takahe", 500)],
)
def test_the_default_limit_is_the_last_accepted_length(
    personality: str, limit: int, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    assert post(server, open_client, "a" * limit).status_code == 200
    assert_too_long(post(server, open_client, "a" * (limit + 1)), personality, limit)
    assert len(server.statuses()) == 1


#: What 500 flags (500 graphemes, 1000 code points) do under a 500-character limit.
FLAGS_ACCEPTED = {
    "mastodon": True,
    "gotosocial": False,
    "pleroma": True,
    "akkoma": True,
    "takahe": False,
}


def test_500_flags_are_500_graphemes_but_1000_code_points(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality, max_characters=500)
    answer = post(server, open_client, FLAG * 500)
    if FLAGS_ACCEPTED[personality]:
        assert answer.status_code == 200, answer.text
        assert server.statuses()[0]["text"] == FLAG * 500
    else:
        assert_too_long(answer, personality, 500)


def test_a_family_emoji_is_one_grapheme_on_mastodon(
    start_server: StartServer, open_client: OpenClient
) -> None:
    family = "👩\u200d👩\u200d👧\u200d👦"  # 7 code points
    server = start_server("mastodon", max_characters=10)
    assert post(server, open_client, family * 10).status_code == 200
    assert post(server, open_client, family * 11).status_code == 422


#: Whether 470 letters, a space and a 100-character URL (571 characters) fit in 500.
URL_ACCEPTED = {
    "mastodon": True,  # the URL counts 23: 494
    "gotosocial": False,  # full length, although it advertises 25 per URL
    "pleroma": False,
    "akkoma": False,
    "takahe": False,
}


def test_a_url_counts_23_on_mastodon_and_in_full_elsewhere(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality, max_characters=500)
    answer = post(server, open_client, "a" * 470 + " " + URL_100)
    if URL_ACCEPTED[personality]:
        assert answer.status_code == 200, answer.text
    else:
        assert_too_long(answer, personality, 500)


def test_on_mastodon_every_url_counts_23_exactly(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon", max_characters=71)
    two_urls = f"{URL_100} {URL_100} "  # 23 + 1 + 23 + 1 = 48
    assert post(server, open_client, two_urls + "x" * 23).status_code == 200
    assert_too_long(post(server, open_client, two_urls + "x" * 24), "mastodon", 71)
    # A short URL counts 23 too: 48 + 23 + 1 + 11 = 83.
    assert_too_long(
        post(server, open_client, two_urls + "https://t.co " + "x" * 11), "mastodon", 71
    )
    # "https://t.c" has a one-letter top-level domain: not a URL, 11 characters: 48 + 23 = 71.
    assert post(server, open_client, two_urls + "https://t.c " + "x" * 11).status_code == 200


def test_a_remote_mention_counts_as_its_username_on_mastodon(
    start_server: StartServer, open_client: OpenClient
) -> None:
    mention = "@quelqu_un@instance.example"  # 27 characters, counts as @quelqu_un (10)
    server = start_server("mastodon")
    assert post(server, open_client, mention + " " + "x" * 489).status_code == 200
    assert post(server, open_client, mention + " " + "x" * 490).status_code == 422
    email = "quelqu_un@instance.example"  # not a mention: counted in full
    assert post(server, open_client, email + " " + "x" * 489).status_code == 422


def test_the_content_warning_counts_except_on_takahe(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality, max_characters=500)
    answer = post(server, open_client, "t" * 491, spoiler="attention!")  # 10 + 491
    if personality == "takahe":
        assert answer.status_code == 200, answer.text
        assert server.statuses()[0]["spoiler_text"] == "attention!"
    else:
        assert_too_long(answer, personality, 500)
    assert post(server, open_client, "t" * 490, spoiler="attention!").status_code == 200


def test_pleroma_counts_the_trimmed_text(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("pleroma", max_characters=20)
    assert post(server, open_client, "   " + "a" * 20 + "\n\n ").status_code == 200
    assert post(server, open_client, "a" * 21).status_code == 422


def test_gotosocial_counts_whitespace_and_takahe_code_points(
    start_server: StartServer, open_client: OpenClient
) -> None:
    gotosocial = start_server("gotosocial", max_characters=20)
    assert post(gotosocial, open_client, " " * 21).status_code == 400
    takahe = start_server("takahe", max_characters=20)
    assert post(takahe, open_client, "é" * 20).status_code == 200
    assert post(takahe, open_client, "e\u0301" * 11).status_code == 400  # 22 code points


EMPTY = {
    "mastodon": (422, "Validation failed: Text can't be blank"),
    "gotosocial": (400, "Bad Request: status contains no text, media or poll"),
    "pleroma": (422, "Cannot post an empty status without attachments"),
    "akkoma": (422, "Cannot post an empty status without attachments"),
    "takahe": (400, "Status is empty"),
}


def test_an_empty_status_without_media_is_refused(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    answer = post(server, open_client, "")
    status, message = EMPTY[personality]
    assert answer.status_code == status
    assert answer.json() == {"error": message}
    assert server.statuses() == []


#: Whether a status of three spaces is posted.
BLANK_POSTED = {
    "mastodon": False,
    "gotosocial": True,
    "pleroma": False,
    "akkoma": False,
    "takahe": True,
}


def test_a_blank_status_is_empty_for_some_servers_only(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    answer = post(server, open_client, "   ")
    assert (answer.status_code == 200) is BLANK_POSTED[personality], answer.text
