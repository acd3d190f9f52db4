"""Unit tests for counting characters as each server software does, and for splitting."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from postscheduler.domain.text import (
    MENTION_IN_TEXT,
    URL_IN_TEXT,
    Counting,
    SplitError,
    count_characters,
    split_text,
)

M, G, P, T = Counting.MASTODON, Counting.GOTOSOCIAL, Counting.PLEROMA, Counting.TAKAHE

FLAG = "🇻🇪"  # 1 grapheme, 2 code points
FAMILY = "👨\u200d👩\u200d👧"  # 1 grapheme, 5 code points
E_ACUTE = "e\u0301"  # 1 grapheme, 2 code points
LONG_URL = "https://example.org/" + "a" * 80  # 100 characters
MENTION = "@alice@very.long.domain.example"  # 31 characters, 6 on Mastodon


def test_counting_values() -> None:
    assert [c.value for c in Counting] == ["mastodon", "gotosocial", "pleroma", "takahe"]
    assert Counting("pleroma") is Counting.PLEROMA
    # a plain string from a config file counts the same as the member
    assert count_characters(FLAG, counting="gotosocial") == 2  # type: ignore[arg-type]


# -- what each software counts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoiler", "expected"),
    [
        ("hello", "", {M: 5, G: 5, P: 5, T: 5}),
        (FLAG, "", {M: 1, G: 2, P: 1, T: 2}),
        (FAMILY, "", {M: 1, G: 5, P: 1, T: 5}),
        (E_ACUTE, "", {M: 1, G: 2, P: 1, T: 2}),
        ("a\r\nb", "", {M: 3, G: 4, P: 3, T: 4}),
        (MENTION, "", {M: 6, G: 31, P: 31, T: 31}),
        (f"hi {MENTION}!", "", {M: 10, G: 35, P: 35, T: 35}),
        (LONG_URL, "", {M: 23, G: 100, P: 100, T: 100}),
        (f"see {LONG_URL}.", "", {M: 28, G: 105, P: 105, T: 105}),
        # the content warning: counted by all but Takahē
        ("hello", "CW", {M: 7, G: 7, P: 7, T: 5}),
        ("hello", FLAG, {M: 6, G: 7, P: 6, T: 5}),
        # Mastodon counts a blank text as empty
        ("   ", "CW", {M: 2, G: 5, P: 5, T: 3}),
        ("", "", {M: 0, G: 0, P: 0, T: 0}),
    ],
)
def test_count_characters_per_software(
    text: str, spoiler: str, expected: dict[Counting, int]
) -> None:
    assert {c: count_characters(text, spoiler, c) for c in Counting} == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # links
        ("https://example.com", 23),
        ("http://example.com/a", 23),
        ("HTTPS://EXAMPLE.COM/A", 23),
        ("gemini://example.org/page", 23),  # Mastodon links these schemes too
        ("example.com/without/a/scheme", 28),  # no scheme: full length
        ("ftp://example.com/file", 22),
        ("https://a.example https://b.example", 47),  # run together: two links
        ("https://a.example\nhttps://b.example", 47),
        ("https://a.example,https://b.example", 47),  # no path: the comma ends the first
        ("https://a.example/x,https://b.example", 23),  # as Mastodon: one link (path chars)
        ("https://example.com/foo.", 24),  # trailing punctuation is not part of the link
        ("https://example.com/foo!?", 25),
        ("https://example.com/foo):", 25),
        ("«https://example.com/foo»", 25),
        ('"https://example.com/foo"', 25),
        ("(https://en.wikipedia.org/wiki/Foo_(bar))", 25),  # balanced parens stay inside
        ("(https://example.com/foo)", 25),
        ("https://example.com/search?q=a&b=c!", 24),
        ("https://example.com:8080/a#frag", 23),
        ("xhttps://example.com", 20),  # glued to a letter: not a link
        ("https://example.c", 17),  # one-letter top-level domain
        ("https://localhost/", 18),  # no dot
        ("https://xn--80ak6aa92e.xn--p1ai/путь", 23),  # punycode
        ("https://пример.рф/путь", 23),
        # mentions
        ("@alice", 6),
        ("@alice@example.org", 6),
        ("@Alice@Example.Org", 6),
        ("cc @alice@example.org @bob@example.net", 14),
        ("alice@example.org", 17),  # an address, not a mention
        ("a=@bob@example.org", 18),
        ("@josé@example.org", 17),  # followed by an accent: not a mention
        ("@alice@example.org@more", 23),  # followed by an at sign: not a mention
        # a mention inside a link is part of the link
        ("https://mastodon.example/@alice@other.example", 23),
        ("https://mastodon.example/@alice", 23),
    ],
)
def test_mastodon_entities(text: str, expected: int) -> None:
    assert count_characters(text) == expected


@pytest.mark.parametrize(("url_length", "expected"), [(23, 27), (0, 4), (30, 34), (100, 104)])
def test_url_length(url_length: int, expected: int) -> None:
    text = f"see {LONG_URL}"
    assert count_characters(text, url_length=url_length) == expected
    assert count_characters(text, counting=G, url_length=url_length) == len(text)


def test_negative_url_length_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot count as -1"):
        count_characters("x", url_length=-1)


def test_url_and_mention_patterns() -> None:
    text = f"Vive {MENTION} et https://example.org/paix, merci."
    assert [m.group() for m in URL_IN_TEXT.finditer(text)] == ["https://example.org/paix"]
    mention = MENTION_IN_TEXT.search(text)
    assert mention is not None
    assert mention.group(1) == MENTION[1:]
    assert mention.group(2) == "alice"


# Reference implementations, written for clarity rather than speed.


def _reference_graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


def _reference_mastodon(text: str, spoiler: str, url_length: int) -> int:
    if not regex.sub(r"\p{White_Space}", "", text):
        return _reference_graphemes(spoiler)
    entities = [(m.start(), m.end(), "x" * url_length) for m in URL_IN_TEXT.finditer(text)]
    entities += [(m.start(), m.end(), "@" + m.group(2)) for m in MENTION_IN_TEXT.finditer(text)]
    kept: list[tuple[int, int, str]] = []
    for entity in sorted(entities):
        if not kept or entity[0] >= kept[-1][1]:
            kept.append(entity)
    countable = text
    for start, end, replacement in reversed(kept):
        countable = countable[:start] + replacement + countable[end:]
    return _reference_graphemes(spoiler + countable)


_tricky = st.sampled_from(
    [
        FLAG,
        FAMILY,
        E_ACUTE,
        "\u0301",
        "\u200d",
        "\ufe0f",
        "👍🏽",
        "🇫",
        "🇷",
        "각",
        "\u1100",
        "\u1161",
        "\u11a8",
        "क्ष",
        "\u094d",
        "ि",
        "\r",
        "\n",
        "\r\n",
        "\u0600",
        "a",
        "é",
        " ",
        "\u00a0",
        "x",
        "日",
    ]
)
_pieces = st.sampled_from(
    [
        "https://",
        "http://",
        "gemini://",
        "HTTP://",
        "example",
        ".org",
        ".c",
        "/",
        "(",
        ")",
        ".",
        ",",
        "!",
        "?q=1",
        ":80",
        "@",
        "alice",
        "@ex.org",
        "é",
        " ",
        "\n",
        "»",
        "#",
        "x",
        "=",
        "_",
        "-",
        FLAG,
        E_ACUTE,
    ]
)


@given(st.lists(_tricky | st.characters(), max_size=40).map("".join), st.text(max_size=5))
def test_graphemes_match_the_reference(text: str, spoiler: str) -> None:
    assert count_characters(text, spoiler, P) == _reference_graphemes(text + spoiler)
    assert count_characters(text, spoiler, G) == len(text) + len(spoiler)
    assert count_characters(text, spoiler, T) == len(text)


@given(
    st.lists(_pieces, max_size=30).map("".join),
    st.sampled_from(["", "CW", FLAG]),
    st.integers(0, 40),
)
def test_mastodon_counting_matches_the_reference(text: str, spoiler: str, url_length: int) -> None:
    expected = _reference_mastodon(text, spoiler, url_length)
    assert count_characters(text, spoiler, M, url_length) == expected


# -- splitting ----------------------------------------------------------------------------


def _fixed(limit: int) -> Callable[[int], int]:
    return lambda _part: limit


def test_a_body_that_fits_is_one_stripped_part() -> None:
    assert split_text("  Hello world.\n", _fixed(20), len) == ["Hello world."]
    assert split_text("", _fixed(20), len) == [""]


def test_prefers_the_last_sentence_end_that_fits() -> None:
    body = "First sentence here. Second one is here. Third sentence is too long to fit."
    assert split_text(body, _fixed(45), len) == [
        "First sentence here. Second one is here.",
        "Third sentence is too long to fit.",
    ]


@pytest.mark.parametrize(
    ("body", "limit", "expected"),
    [
        # no sentence end fits: the last space that fits
        ("one two three four five six", 14, ["one two three", "four five six"]),
        # a paragraph break
        ("Para one\n\nPara two goes on", 20, ["Para one", "Para two goes on"]),
        # a line break before a plain space
        ("- item one\n- item two and more", 20, ["- item one", "- item two and more"]),
        # closing quotes and brackets stay with their sentence
        ('He said "Stop." Then he left', 20, ['He said "Stop."', "Then he left"]),
        ("(See above.) Then more words", 20, ["(See above.)", "Then more words"]),
        # French: the closing guillemet after a space stays too
        ("« C'est beau. » Il y a encore", 20, ["« C'est beau. »", "Il y a encore"]),
        # no part starts with a lone "!"
        ("aaaa bbbb Venezuela ! eeee", 20, ["aaaa bbbb", "Venezuela ! eeee"]),
        # "1." numbers a list item, it ends no sentence
        ("Do it. Steps: 1. open the door", 25, ["Do it.", "Steps: 1. open the door"]),
        # other sentence marks
        (
            "Vraiment ? Oui ! Bien sûr…  Fin du texte",
            27,
            ["Vraiment ? Oui ! Bien sûr…", "Fin du texte"],
        ),
        ("これは文です。 次の文です", 9, ["これは文です。", "次の文です"]),
        # a no-break space is never a cut
        ("Bonjour\u00a0! Comment allez-vous", 12, ["Bonjour\u00a0!", "Comment", "allez-vous"]),
        # the whitespace at a cut is dropped, internal newlines kept
        ("line one\nline two   \n\n  next part here", 18, ["line one\nline two", "next part here"]),
    ],
)
def test_split_text_cuts(body: str, limit: int, expected: list[str]) -> None:
    assert split_text(body, _fixed(limit), len) == expected


def test_cuts_only_at_whitespace_even_without_any() -> None:
    with pytest.raises(SplitError, match="the word 'これは文です。次の文です' alone"):
        split_text("これは文です。次の文です", _fixed(9), len)


def test_budgets_can_differ_between_parts() -> None:
    body = "aaa bbb ccc ddd eee fff ggg hhh"
    parts = split_text(body, lambda i: 7 if i == 0 else 15, len)
    assert parts == ["aaa bbb", "ccc ddd eee fff", "ggg hhh"]


def test_never_cuts_inside_a_link_mention_or_hashtag() -> None:
    url = "https://example.org/a/long/path/to/the/statement"
    body = f"Read {url} and tell @alice@example.org about #NousSommesTous now."
    for limit in range(len(url), len(body) + 1):
        parts = split_text(body, _fixed(limit), len)
        words = {word for part in parts for word in part.split()}
        assert {url, "@alice@example.org", "#NousSommesTous"} <= words


def test_measures_as_the_server_does() -> None:
    url = "https://example.org/" + "x" * 60
    body = " ".join([url] * 12)

    def measure(chunk: str) -> int:
        return count_characters(chunk)

    parts = split_text(body, _fixed(100), measure)
    assert all(measure(part) <= 100 for part in parts)
    assert [part.count("https://") for part in parts] == [4, 4, 4]  # 4 * 23 + 3 = 95


def test_a_word_too_long_for_its_part() -> None:
    word = "https://example.org/" + "a" * 100
    with pytest.raises(SplitError) as caught:
        split_text(f"Short start. {word} end", _fixed(50), len)
    message = str(caught.value)
    assert message == (
        "the word 'https://example.org/aaaaaaaaaaaaaaaaaaa…' alone is longer than the 50 "
        "characters a part may hold"
    )
    assert caught.value.part == 1
    assert isinstance(caught.value, ValueError)


def test_a_short_word_is_named_whole() -> None:
    with pytest.raises(SplitError, match="the word 'abcdef' alone is longer than the 5"):
        split_text("abcdef gh", _fixed(5), len)


@pytest.mark.parametrize("limit", [0, -3])
def test_no_room_at_all(limit: int) -> None:
    with pytest.raises(SplitError, match=f"part 1 has no room left for text.*{limit}"):
        split_text("Hello", _fixed(limit), len)


def test_no_room_in_a_later_part() -> None:
    with pytest.raises(SplitError, match="part 2 has no room") as caught:
        split_text("aaa bbb ccc", lambda i: 7 if i == 0 else 0, len)
    assert caught.value.part == 1


def test_measure_is_called_on_candidate_parts_only() -> None:
    sentence = "La solidarité avec le peuple du Venezuela est notre devoir. "
    body = sentence * 50  # about 3000 characters
    calls: list[int] = []

    def measure(chunk: str) -> int:
        calls.append(len(chunk))
        return len(chunk)

    parts = split_text(body, _fixed(500), measure)
    assert len(parts) == 7
    assert max(calls) <= 500 + len(sentence)  # never the whole remaining text
    assert len(calls) <= 3 * len(parts)


# Hypothesis: random words, sentence marks and whitespace; words shorter than any budget.

_word = st.text(
    alphabet=st.sampled_from("abcdefghijklmnoéàç日ABC0123456789-'’@#/"), min_size=1, max_size=15
)
_ending = st.sampled_from(["", "", "", ".", "!", "?", "…", ",", ":", '."', ".»", ")"])
_space = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", "\t", " \u00a0", "\u3000", "\r\n"])
_bodies = st.lists(st.tuples(_word, _ending, _space), min_size=1, max_size=120).map(
    lambda items: "".join(w + e + s for w, e, s in items)
)
_budgets = st.lists(st.integers(40, 200), min_size=1, max_size=6)


def _budget(limits: list[int]) -> Callable[[int], int]:
    return lambda i: limits[min(i, len(limits) - 1)]


def _check_parts(
    body: str, parts: list[str], limits: list[int], measure: Callable[[str], int]
) -> None:
    # (1) every part fits its budget
    assert all(measure(part) <= _budget(limits)(i) for i, part in enumerate(parts))
    # (2) only whitespace at the cuts is lost, and parts are in order in the body
    assert " ".join(parts).split() == body.split()
    position = 0
    for part in parts:
        found = body.find(part, position)
        assert found >= position
        position = found + len(part)
    # (3) no part is empty, and parts are stripped
    assert all(part and part == part.strip() for part in parts)


@settings(max_examples=300)
@given(_bodies, _budgets)
def test_split_properties(body: str, limits: list[int]) -> None:
    parts = split_text(body, _budget(limits), len)
    _check_parts(body, parts, limits, len)


@settings(max_examples=150)
@given(
    st.lists(
        st.sampled_from(
            [
                "Vive",
                "le",
                "Venezuela.",
                "https://example.org/statement",
                "@alice@example.org",
                "#NousSommesTous",
                FLAG,
                FAMILY,
                E_ACUTE + "té",
                "(voir",
                "https://x.example/a)",
                "»",
            ]
        )
        | _word,
        min_size=1,
        max_size=80,
    ).map(" ".join),
    _budgets,
    st.sampled_from(list(Counting)),
)
def test_split_properties_with_server_counting(
    body: str, limits: list[int], counting: Counting
) -> None:
    def measure(chunk: str) -> int:
        return count_characters(chunk, "CW", counting)

    parts = split_text(body, _budget(limits), measure)
    _check_parts(body, parts, limits, measure)


_plain_word = st.text(alphabet=st.sampled_from("abcdefghijkéàç日ABC0123"), min_size=1, max_size=15)


@given(_plain_word, _plain_word, _plain_word, st.integers(0, 100))
def test_cuts_after_the_second_sentence_when_two_fit(a: str, b: str, c: str, extra: int) -> None:
    first, second, third = f"{a} one.", f"{b} two!", f"{c} three and some more words."
    body = f"{first} {second} {third}"
    two = len(first) + 1 + len(second)
    limit = max(two + extra % (len(third) + 1), 20)  # the third sentence never fits too
    assert split_text(body, _fixed(limit), len)[0] == f"{first} {second}"
