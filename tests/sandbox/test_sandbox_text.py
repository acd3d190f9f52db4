"""The sandbox's own text rules, checked directly: URLs, mentions, hashtags, lengths."""

from __future__ import annotations

import pytest

from postscheduler.sandbox.text import (
    find_hashtags,
    find_mentions,
    find_urls,
    gotosocial_length,
    grapheme_count,
    mastodon_length,
    pleroma_length,
    takahe_length,
)


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("see https://example.org/a.", ["https://example.org/a"]),
        ("(https://example.org/wiki/A_(b))", ["https://example.org/wiki/A_(b)"]),
        ("(see https://example.org/x)", ["https://example.org/x"]),
        ("https://example.org/?q=1&r=2!", ["https://example.org/?q=1&r=2"]),
        ("http://sub.example.co.uk:8080/p#frag", ["http://sub.example.co.uk:8080/p#frag"]),
        ("https://пример.рф/путь", ["https://пример.рф/путь"]),
        ("xhttps://example.org", []),  # preceded by a letter
        ("#https://example.org", []),
        ("http://localhost:8080/x", []),  # no top-level domain
        ("ftp://example.org", []),
        ("two https://a.org and http://b.net", ["https://a.org", "http://b.net"]),
    ],
)
def test_urls(text: str, urls: list[str]) -> None:
    assert [u.value for u in find_urls(text)] == urls


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("hi @alba", [("alba", None)]),
        ("hi @alba@sandbox.test!", [("alba", "sandbox.test")]),
        ("mail alba@example.org", []),
        ("@a.b_c-d@x.y", [("a.b_c-d", "x.y")]),
        ("url/@alba", []),
    ],
)
def test_mentions(text: str, mentions: list[tuple[str, str | None]]) -> None:
    assert [(m.value, m.domain) for m in find_mentions(text)] == mentions


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("#Venezuela", ["Venezuela"]),
        ("#2017", []),  # at least one letter
        ("#2017a", ["2017a"]),
        ("#nous_sommes", ["nous_sommes"]),
        ("#a·b #c・d", ["a·b", "c・d"]),
        ("＃全角", ["全角"]),
        ("abc#def", []),  # preceded by a letter
        ("https://x.org/#frag", []),  # preceded by /
        ("fin. #Paz!", ["Paz"]),
    ],
)
def test_hashtags(text: str, tags: list[str]) -> None:
    assert [t.value for t in find_hashtags(text)] == tags


def test_graphemes() -> None:
    assert grapheme_count("🇻🇪🇫🇷") == 2
    assert grapheme_count("e\u0301") == 1
    assert grapheme_count("👩\u200d👩\u200d👧") == 1
    assert grapheme_count("") == 0


def test_the_four_ways_of_counting() -> None:
    text, spoiler = "🇻🇪 https://example.org/" + "x" * 40 + " @alba@ailleurs.example", "CW"
    assert mastodon_length(text, spoiler) == 2 + 1 + 1 + 23 + 1 + 5
    assert gotosocial_length(text, spoiler) == len(text) + 2
    assert pleroma_length(text, spoiler) == len(text) - 1 + 2
    assert takahe_length(text, spoiler) == len(text)
    assert mastodon_length("   ", "") == 0
    assert pleroma_length("  a  ", " b ") == len("a b")
