"""Unit tests for hashtags: Mastodon's recognition rules, normalization and appending."""

from __future__ import annotations

import re

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from postscheduler.domain.hashtags import (
    HASHTAG_IN_TEXT,
    HashtagError,
    append_hashtags,
    hashtags_in,
    hashtags_to_append,
    normalize_hashtag,
    readability_warning,
)

# -- finding hashtags in text -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#Venezuela", ["Venezuela"]),
        ("Nous sommes tous #Venezuela #ALBA", ["Venezuela", "ALBA"]),
        ("#one·two", ["one·two"]),  # middle dot is a separator
        ("#東京・大阪", ["東京・大阪"]),  # katakana middle dot too
        ("#2017", []),  # no letter
        ("#1_000 #2·0", ["1_000", "2·0"]),  # Mastodon's first pattern: a separator will do
        ("#_x", ["_x"]),
        ("#x_", ["x_"]),
        ("#_2017", []),
        ("first line\n#tag", ["tag"]),  # after a newline
        ("tab\t#tag", ["tag"]),
        ("foo#bar", []),  # not after whitespace
        ("(#tag)", []),
        ("x\u00a0#nbsp", []),  # Ruby's \s is ASCII whitespace only
        ("＃fullwidth", ["fullwidth"]),
        ("#tag. Next", ["tag"]),
        ("#tag, #other!", ["tag", "other"]),
        ("#a-b", ["a"]),
        ("#foo·", ["foo"]),  # a trailing separator is not part of the name
        ("#·foo", []),
        ("#café #e\u0301t\u00e9", ["café", "e\u0301t\u00e9"]),  # combining accent is a mark
        ("#日本語", ["日本語"]),
        ("#tophttps://example.org", ["top"]),  # Mastodon drops the scheme glued to it
        ("##double", []),
        ("", []),
        ("no tags here", []),
    ],
)
def test_hashtags_in(text: str, expected: list[str]) -> None:
    assert hashtags_in(text) == expected


def test_pattern_group_one_is_the_name() -> None:
    match = HASHTAG_IN_TEXT.search("Vive #NousSommesTous!")
    assert match is not None
    assert match.group(1) == "NousSommesTous"
    assert match.group(0) == "#NousSommesTous"


# Mastodon's HASHTAG_RE transcribed literally from app/models/tag.rb (Ruby's [[:word:]] is
# Alphabetic | Mark | Decimal_Number | Connector_Punctuation, its \\s ASCII whitespace).
_W = r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}"
_A = r"\p{Alphabetic}"
_S = "_\u00b7\u30fb\u200c"
_MASTODON_NAME = rf"(?:[{_W}_][{_W}{_S}]*[{_A}{_S}][{_W}{_S}]*[{_W}_])|(?:[{_W}_]*[{_A}][{_W}_]*)"
_MASTODON_HASHTAG_RE = regex.compile(
    rf"(?<=^|[ \t\n\v\f\r])[#＃]({_MASTODON_NAME})", regex.IGNORECASE
)
_tag_text = st.text(alphabet=st.sampled_from("ab1_·・\u200c#＃ -\n.é\u0301日"), max_size=20)


@given(_tag_text)
def test_pattern_agrees_with_mastodons(text: str) -> None:
    expected = [m.span(1) for m in _MASTODON_HASHTAG_RE.finditer(text)]
    assert [m.span(1) for m in HASHTAG_IN_TEXT.finditer(text)] == expected


@given(_tag_text)
def test_names_agree_with_mastodons(name: str) -> None:
    valid = regex.fullmatch(_MASTODON_NAME, name.strip()) is not None
    try:
        normalize_hashtag(name)
    except HashtagError:
        accepted = False
    else:
        accepted = True
    if not name.strip().startswith(("#", "＃")):
        assert accepted == valid


def test_long_names_take_linear_time() -> None:
    # Mastodon's pattern backtracks quadratically on these; ours must not.
    for text in ["#" + "a·" * 20_000, "#" + "1·" * 20_000, "#" + "a" * 40_000 + "·-"]:
        hashtags_in(text)
        with pytest.raises(HashtagError):
            normalize_hashtag(text + "-")


# -- normalizing a configured hashtag -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Venezuela", "Venezuela"),
        ("#Venezuela", "Venezuela"),
        ("＃Venezuela", "Venezuela"),
        ("  #NousSommesTous  ", "NousSommesTous"),
        ("one·two", "one·two"),
        ("_x", "_x"),
        ("日本", "日本"),
        ("Ünïcödé", "Ünïcödé"),
        ("1_000", "1_000"),
    ],
)
def test_normalize_hashtag_accepts(raw: str, expected: str) -> None:
    assert normalize_hashtag(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "the hashtag is empty"),
        ("#", "the hashtag is empty"),
        ("   ", "the hashtag is empty"),
        (
            "nous sommes tous",
            "a hashtag cannot contain spaces: write 'NousSommesTous' or use CamelCase",
        ),
        ("#2017", "'2017' is not a hashtag on Mastodon: it needs at least one letter"),
        ("_2017", "it needs at least one letter"),
        ("foo-bar", "'-' cannot appear in a hashtag"),
        ("##x", "'#' cannot appear in a hashtag"),
        ("❤️", "'❤' cannot appear in a hashtag"),
        ("a\u200db", "U+200D (ZERO WIDTH JOINER) cannot appear in a hashtag"),
        ("·foo", "a hashtag cannot start with '·'"),
        ("foo·", "a hashtag cannot end with '·'"),
    ],
)
def test_normalize_hashtag_rejects(raw: str, message: str) -> None:
    with pytest.raises(HashtagError, match=re.escape(message)) as caught:
        normalize_hashtag(raw)
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


@given(st.text(max_size=20))
def test_a_normalized_name_is_found_whole_after_a_sign(raw: str) -> None:
    try:
        name = normalize_hashtag(raw)
    except HashtagError:
        return
    assert hashtags_in(f"#{name}") == [name]
    assert hashtags_in(f"text ＃{name} more") == [name]
    assert normalize_hashtag(name) == name


@given(st.text(max_size=60))
def test_every_found_name_normalizes_to_itself(text: str) -> None:
    for name in hashtags_in(text):
        assert normalize_hashtag(name) == name


# -- appending ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tags", "expected"),
    [
        ("Hello", ["Venezuela", "ALBA"], ("Venezuela", "ALBA")),
        ("Vive #venezuela", ["Venezuela", "ALBA"], ("ALBA",)),  # case-insensitive
        ("Hello", ["ALBA", "alba", "Alba"], ("ALBA",)),  # first spelling wins
        ("foo#ALBA", ["ALBA"], ("ALBA",)),  # not a hashtag in the text
        ("Ｖive #ＡＬＢＡ", ["ALBA"], ()),  # fullwidth letters are the same tag (NFKC)
        ("#Straße", ["STRASSE"], ()),  # casefold
        ("", [], ()),
    ],
)
def test_hashtags_to_append(text: str, tags: list[str], expected: tuple[str, ...]) -> None:
    assert hashtags_to_append(text, tags) == expected


@pytest.mark.parametrize(
    ("text", "tags", "expected"),
    [
        ("Hello", ["Venezuela", "ALBA"], "Hello\n\n#Venezuela #ALBA"),
        ("Hello\n", ["Venezuela"], "Hello\n\n#Venezuela"),
        ("Vive #Venezuela", ["venezuela"], "Vive #Venezuela"),
        ("Vive #Venezuela", ["venezuela", "ALBA"], "Vive #Venezuela\n\n#ALBA"),
        ("", ["Venezuela", "ALBA"], "#Venezuela #ALBA"),
        ("Hello", [], "Hello"),
    ],
)
def test_append_hashtags(text: str, tags: list[str], expected: str) -> None:
    assert append_hashtags(text, tags) == expected


_names = st.text(alphabet=st.sampled_from("abcXYZé日_·0123456789"), min_size=1, max_size=12).filter(
    lambda name: hashtags_in(f"#{name}") == [name]
)


@given(st.text(max_size=80), st.lists(_names, max_size=5))
def test_appending_is_idempotent(text: str, tags: list[str]) -> None:
    once = append_hashtags(text, tags)
    assert hashtags_to_append(once, tags) == ()
    assert append_hashtags(once, tags) == once
    found = {name.casefold() for name in hashtags_in(once)}
    assert all(tag.casefold() in found for tag in tags)


# -- readability --------------------------------------------------------------------------


def test_readability_warning_for_a_long_lowercase_tag() -> None:
    warning = readability_warning("noussommestousvenezuela")
    assert warning is not None
    assert warning.startswith("#noussommestousvenezuela has no capitals")
    assert "CamelCase" in warning


@pytest.mark.parametrize(
    "tag",
    [
        "NousSommesTousVenezuela",  # has capitals
        "noussommestousVenezuela",  # one capital is enough
        "venezuela",  # short
        "abcdefghijk",  # 11 letters
        "nous_sommes_tous_venezuela",  # separators show the words
        "東京オリンピックパラリンピック",  # no case in Japanese
        "عاشت_فنزويلا_حرة_مستقلة",
        "2017202020232024",
    ],
)
def test_no_readability_warning(tag: str) -> None:
    assert readability_warning(tag) is None


def test_readability_warning_counts_twelve_letters() -> None:
    assert readability_warning("abcdefghijkl") is not None
    assert readability_warning("#abcdefghijkl") == readability_warning("abcdefghijkl")
