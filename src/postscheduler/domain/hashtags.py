"""Hashtags as Mastodon recognises them, and how we add them to a post.

The rules follow Mastodon's ``Tag`` model (``app/models/tag.rb``) and its ``Extractor``:

* A name is made of "word" characters (Ruby's ``[[:word:]]``: Unicode alphabetic
  characters, marks, decimal digits and connector punctuation such as ``_``) and the
  separators ``_``, ``·`` (U+00B7), ``・`` (U+30FB) and ZERO WIDTH NON-JOINER (U+200C).
* It must not start or end with a separator other than ``_``, and it needs a letter --
  except that Mastodon's first pattern also accepts a separator in the middle instead of a
  letter, so ``1_000`` and ``2·0`` are hashtags while ``2017`` is not. We follow the
  server, not the simplification.
* In a text a hashtag starts at the start of the text or after an ASCII whitespace
  character (Ruby's ``\\s``), with ``#`` or the fullwidth ``＃``: ``foo#bar`` has no hashtag,
  and neither has ``foo\u00a0#bar`` (no-break space).

Everything here is pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import regex

__all__ = [
    "HASHTAG_IN_TEXT",
    "HashtagError",
    "append_hashtags",
    "hashtags_in",
    "hashtags_to_append",
    "normalize_hashtag",
    "readability_warning",
]

#: Mastodon's ``HASHTAG_SEPARATORS``.
SEPARATORS = "_\u00b7\u30fb\u200c"
#: Separators that may not open or close a name (``_`` may).
_EDGE_FORBIDDEN = "\u00b7\u30fb\u200c"

# Ruby/Onigmo's [[:word:]] is Alphabetic | Mark | Decimal_Number | Connector_Punctuation,
# and [[:alpha:]] is the Alphabetic property.
_WORD = r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}"
_ALPHA = r"\p{Alphabetic}"
_SEPS = SEPARATORS

# Mastodon's FIRST_SEQUENCE is [W_][WS]*[AS][WS]*[W_] (W: word, S: separators, A: alpha),
# which backtracks quadratically on long names. This is the same language with the same
# (greedy) matches: a word character, then -- checked once, atomically -- a letter or
# separator followed later by a word character, then as far as the last word character.
_FIRST_SEQUENCE = (
    rf"[{_WORD}_](?=(?>[{_WORD}{_SEPS}]*?[{_ALPHA}{_SEPS}])[{_WORD}{_SEPS}]*?[{_WORD}_])"
    rf"[{_WORD}{_SEPS}]*[{_WORD}_]"
)
# LAST_SEQUENCE, [W_]*[A][W_]*, likewise: a run of word characters holding a letter.
_LAST_SEQUENCE = rf"(?=[{_WORD}_]*?[{_ALPHA}])[{_WORD}_]++"
_NAME = rf"(?:{_FIRST_SEQUENCE})|(?:{_LAST_SEQUENCE})"

#: A hashtag in running text; group 1 is its name (without the sign).
HASHTAG_IN_TEXT: regex.Pattern[str] = regex.compile(
    rf"(?<=^|[ \t\n\v\f\r])[#＃]({_NAME})", regex.IGNORECASE
)
_NAME_ONLY: regex.Pattern[str] = regex.compile(rf"(?:{_NAME})", regex.IGNORECASE)
_NAME_CHAR: regex.Pattern[str] = regex.compile(rf"[{_WORD}{_SEPS}]")
_HAS_ALPHA: regex.Pattern[str] = regex.compile(rf"[{_ALPHA}]")
_SCHEME_TAIL: regex.Pattern[str] = regex.compile(r"(.+)(https?)", regex.DOTALL)

#: A tag at least this many cased letters long, all lowercase, earns a readability warning.
READABILITY_MIN_LETTERS = 12


class HashtagError(ValueError):
    """A hashtag Mastodon would not recognise; the message says why, in one sentence."""


def _describe(char: str) -> str:
    """``char`` as an organiser can recognise it in a message."""
    if char.isprintable() and unicodedata.category(char)[0] not in "MZC":
        return f"'{char}'"
    name = unicodedata.name(char, "")
    code = f"U+{ord(char):04X}"
    return f"the invisible character {code} ({name})" if name else f"the character {code}"


def _without_sign(text: str) -> str:
    return text[1:] if text.startswith(("#", "＃")) else text


def _camel_case(words: Sequence[str]) -> str:
    joined = []
    for word in words:
        bare = _without_sign(word)
        joined.append(bare[:1].upper() + bare[1:])
    return "".join(joined)


def normalize_hashtag(raw: str) -> str:
    """The bare name of the hashtag ``raw``, or :class:`HashtagError` if it is not one.

    Surrounding whitespace and one leading ``#`` or ``＃`` are removed; nothing else is
    changed (no case folding, no Unicode normalisation). The name is accepted exactly when
    Mastodon's ``HASHTAG_NAME_RE`` accepts it.
    """
    name = _without_sign(raw.strip())
    if not name:
        raise HashtagError("the hashtag is empty: write a word after the '#'")
    if any(char.isspace() for char in name):
        suggestion = _camel_case(name.split())
        raise HashtagError(
            f"a hashtag cannot contain spaces: write '{suggestion}' or use CamelCase"
        )
    if _NAME_ONLY.fullmatch(name):
        return name
    for char in name:
        if not _NAME_CHAR.fullmatch(char):
            raise HashtagError(f"{_describe(char)} cannot appear in a hashtag ('{name}')")
    if not _HAS_ALPHA.search(name):
        raise HashtagError(f"'{name}' is not a hashtag on Mastodon: it needs at least one letter")
    if name[0] in _EDGE_FORBIDDEN:
        raise HashtagError(f"a hashtag cannot start with {_describe(name[0])} ('{name}')")
    if name[-1] in _EDGE_FORBIDDEN:
        raise HashtagError(f"a hashtag cannot end with {_describe(name[-1])} ('{name}')")
    raise HashtagError(f"'{name}' is not a hashtag Mastodon recognises")  # pragma: no cover


def hashtags_in(text: str) -> list[str]:
    """Names of the hashtags Mastodon finds in ``text``, in order of appearance.

    Like Mastodon's extractor, a name directly followed by ``://`` loses a trailing
    ``http``/``https`` (``#tophttps://…`` is the tag ``top``).
    """
    names: list[str] = []
    if "#" not in text and "＃" not in text:
        return names
    for match in HASHTAG_IN_TEXT.finditer(text):
        name = str(match.group(1))
        if text.startswith("://", match.end()):
            trimmed = _SCHEME_TAIL.fullmatch(name)
            if trimmed:
                name = str(trimmed.group(1))
        names.append(name)
    return names


def _key(tag: str) -> str:
    """What makes two spellings the same tag: NFKC, then case folding."""
    return unicodedata.normalize("NFKC", tag).casefold()


def hashtags_to_append(text: str, tags: Sequence[str]) -> tuple[str, ...]:
    """The tags of ``tags`` (bare, normalized names) that ``text`` does not already have.

    Comparison ignores case (NFKC + casefold), both against the hashtags found in ``text``
    and among ``tags`` themselves; order is kept and the first spelling wins.
    """
    seen = {_key(name) for name in hashtags_in(text)}
    result: list[str] = []
    for tag in tags:
        key = _key(tag)
        if key not in seen:
            seen.add(key)
            result.append(tag)
    return tuple(result)


def append_hashtags(text: str, tags: Sequence[str]) -> str:
    """``text`` followed by a blank line and the missing ``tags`` as ``#Tag #Other``.

    ``text`` is returned unchanged when every tag is already in it. Otherwise trailing
    whitespace of ``text`` is replaced by the blank line; a blank ``text`` gives just the
    tags.
    """
    missing = hashtags_to_append(text, tags)
    if not missing:
        return text
    line = " ".join(f"#{tag}" for tag in missing)
    body = text.rstrip()
    return f"{body}\n\n{line}" if body else line


def readability_warning(tag: str) -> str | None:
    """A warning for a long all-lowercase tag, which screen readers cannot split into words.

    Warns when the tag has at least :data:`READABILITY_MIN_LETTERS` cased letters, no
    uppercase or titlecase letter and no separator. Tags in scripts without case (Japanese,
    Arabic, …) and shorter tags get None. A leading ``#`` is ignored.
    """
    name = _without_sign(tag)
    if any(char in SEPARATORS for char in name):
        return None
    cased = 0
    for char in name:
        if char.isupper() or char.istitle():
            return None
        if char.islower():
            cased += 1
    if cased < READABILITY_MIN_LETTERS:
        return None
    return (
        f"#{name} has no capitals: write it in CamelCase (e.g. #NousSommesTous rather "
        "than #noussommestous) so screen readers read it word by word"
    )
