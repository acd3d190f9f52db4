"""What the servers see in a status's text: URLs, mentions, hashtags, and its length.

Written from the servers' source, apart from the client's own counting, so that when the
two agree it means something:

- Mastodon (``StatusLengthValidator``): grapheme clusters of ``spoiler_text`` followed by the
  text in which every http(s) URL is replaced by 23 characters and every ``@user@domain`` by
  ``@user``; a blank text counts 0.
- GoToSocial: code points of the text plus code points of the spoiler, URLs at full length.
- Pleroma / Akkoma: grapheme clusters of ``trim(trim(text) <> spoiler)`` (Elixir's
  ``String.length`` counts graphemes).
- Takahē: code points of the text alone (Python's ``len``).

The URL pattern follows twitter-text as Mastodon's extractor uses it, with the protocol
required: not preceded by an ASCII letter, digit, ``@``, ``$`` or ``#``; a host whose last
label is a top-level domain made of letters (or punycode); trailing punctuation is not part
of the URL, and a closing parenthesis only when balanced. (twitter-text checks the TLD
against a list; the sandbox accepts any alphabetic one.)
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

__all__ = [
    "URL_PLACEHOLDER_LENGTH",
    "Entity",
    "find_entities",
    "find_hashtags",
    "find_mentions",
    "find_urls",
    "gotosocial_length",
    "grapheme_count",
    "mastodon_length",
    "pleroma_length",
    "takahe_length",
]

URL_PLACEHOLDER_LENGTH = 23

_GRAPHEME = regex.compile(r"\X")

_URL = regex.compile(
    r"(?<![A-Za-z0-9@＠$#＃])"
    r"https?://"
    r"(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?\.)+"
    r"(?:\p{L}{2,}|xn--[a-z0-9\-]+)"
    r"(?::\d{1,5})?"
    r"(?:[/?#][^\s<>\"]*)?",
    regex.IGNORECASE,
)
#: The characters a URL may end with; others at its end are punctuation of the sentence.
_URL_ENDING = regex.compile(r"[\p{L}\p{N}=_#/+\-&]")

# Mastodon's Account::MENTION_RE (username, then an optional @domain).
_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.\-]+[a-z0-9_]+)*)(?:@(\w+(?:[.\-]+\w+)*))?",
    regex.IGNORECASE,
)

# Mastodon's Tag::HASHTAG_RE: separators _ · ・ ZWNJ, at least one letter.
_SEPARATORS = "_\u00b7\u30fb\u200c"
_FIRST_SEQUENCE = rf"[\w_][\w{_SEPARATORS}]*[\p{{Alpha}}{_SEPARATORS}][\w{_SEPARATORS}]*[\w_]"
_LAST_SEQUENCE = r"[\w_]*\p{Alpha}[\w_]*"
_HASHTAG = regex.compile(
    rf"(?<![=/)\p{{Alnum}}])[#＃]({_FIRST_SEQUENCE}|{_LAST_SEQUENCE})", regex.IGNORECASE
)


@dataclass(frozen=True)
class Entity:
    """A URL, mention or hashtag found at ``text[start:end]``.

    ``value`` is the URL, the mentioned username, or the hashtag's name (without ``#``);
    ``domain`` is a mention's ``@domain`` part, if any.
    """

    kind: str
    start: int
    end: int
    value: str
    domain: str | None = None


def grapheme_count(text: str) -> int:
    """The number of extended grapheme clusters (user-perceived characters) in ``text``."""
    return len(_GRAPHEME.findall(text))


def _trim_url(url: str) -> str:
    while url:
        if url.endswith(")") and url.count("(") >= url.count(")"):
            return url
        if url[-1] != ")" and _URL_ENDING.fullmatch(url[-1]):
            return url
        url = url[:-1]
    return url


def find_urls(text: str) -> list[Entity]:
    """The http(s) URLs of ``text``, in order."""
    found = []
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        found.append(Entity("url", match.start(), match.start() + len(url), url))
    return found


def find_mentions(text: str) -> list[Entity]:
    """The ``@user`` and ``@user@domain`` mentions of ``text``, in order."""
    return [
        Entity("mention", m.start(), m.end(), m.group(1), m.group(2))
        for m in _MENTION.finditer(text)
    ]


def find_hashtags(text: str) -> list[Entity]:
    """The hashtags of ``text`` as Mastodon recognises them, in order."""
    return [Entity("hashtag", m.start(), m.end(), m.group(1)) for m in _HASHTAG.finditer(text)]


def _without_overlaps(entities: list[Entity]) -> list[Entity]:
    kept: list[Entity] = []
    for entity in sorted(entities, key=lambda e: (e.start, -e.end)):
        if not kept or entity.start >= kept[-1].end:
            kept.append(entity)
    return kept


def find_entities(text: str) -> list[Entity]:
    """URLs, mentions and hashtags of ``text``, in order, none overlapping another.

    Where two overlap, the one starting first wins (a ``#`` inside a URL is the URL's).
    """
    return _without_overlaps(find_urls(text) + find_mentions(text) + find_hashtags(text))


def _mastodon_countable_text(text: str) -> str:
    if not text.strip():
        return ""
    pieces: list[str] = []
    position = 0
    for entity in _without_overlaps(find_urls(text) + find_mentions(text)):
        pieces.append(text[position : entity.start])
        if entity.kind == "url":
            pieces.append("x" * URL_PLACEHOLDER_LENGTH)
        else:
            pieces.append("@" + entity.value)
        position = entity.end
    pieces.append(text[position:])
    return "".join(pieces)


def mastodon_length(text: str, spoiler_text: str) -> int:
    """Mastodon's length: graphemes of the CW then the text, URL = 23, ``@u@d`` = ``@u``."""
    return grapheme_count(spoiler_text + _mastodon_countable_text(text))


def gotosocial_length(text: str, spoiler_text: str) -> int:
    """GoToSocial's length: code points of the text plus code points of the CW."""
    return len(text) + len(spoiler_text)


def pleroma_length(text: str, spoiler_text: str) -> int:
    """Pleroma's and Akkoma's length: graphemes of ``trim(trim(text) + spoiler)``."""
    return grapheme_count((text.strip() + spoiler_text).strip())


def takahe_length(text: str, spoiler_text: str) -> int:
    """Takahē's length: code points of the text; the CW is not counted."""
    del spoiler_text  # Takahē ignores it
    return len(text)
