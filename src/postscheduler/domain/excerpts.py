"""Excerpts of a campaign's statement: paragraphs, sentences, and finding a quoted passage.

Organisers quote the campaign's statement in their posts. This module reads the statement's
text (given as a string: it does no I/O), numbers its paragraphs and sentences from 1 so that
organisers can name an excerpt ("paragraph 4, sentences 2-3"), and finds a passage that an
organiser typed by hand, returning it exactly as the statement writes it.

Matching a typed quote ignores every difference that an organiser cannot see or usually does
not control: all whitespace (spaces, non-breaking spaces, line breaks), the kind of quotation
marks, apostrophes and dashes, ``...`` against ``…``, and composed against decomposed accents.
Everything else, including case and the statement's own typos, must match.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["ExcerptError", "Statement"]


class ExcerptError(ValueError):
    """An excerpt cannot be taken from the statement; the message is meant for organisers."""


# --- Canonical form used for matching -----------------------------------------------------

_DOUBLE_QUOTES = frozenset('«»“”„‟"″')
_SINGLE_QUOTES = frozenset("’‘‚‛′'‹›")
_DASHES = frozenset("–—‒―-‐‑")
# Invisible characters that are not whitespace for Python but are ignored like it:
# zero-width space, word joiner, byte order mark, soft hyphen.
_INVISIBLE = frozenset("\u200b\u2060\ufeff\u00ad")


@lru_cache(maxsize=8192)
def _canonical_char(char: str) -> str:
    """What one character becomes in the canonical form: possibly nothing, or several characters.

    Whitespace and invisible characters vanish; quotation marks, apostrophes and dashes become
    one representative of their class; ``…`` becomes ``...``; any other character becomes its
    canonical decomposition (so that ``é`` matches ``e`` followed by a combining acute accent).
    """
    if char.isspace() or char in _INVISIBLE:
        return ""
    if char in _DOUBLE_QUOTES:
        return '"'
    if char in _SINGLE_QUOTES:
        return "'"
    if char in _DASHES:
        return "-"
    if char == "…":
        return "..."
    return unicodedata.normalize("NFD", char)


def _canonical_text(text: str) -> str:
    """The canonical form of ``text`` (see :func:`_canonical_char`)."""
    return "".join(map(_canonical_char, text))


def _canonical_words(text: str) -> list[str]:
    """The canonical forms of the whitespace-separated words of ``text``."""
    return [canonical for canonical in map(_canonical_text, text.split()) if canonical]


def _canonical_with_origins(text: str) -> tuple[str, tuple[int, ...]]:
    """The canonical form of ``text`` and, for each of its characters, the index in ``text``
    of the character it comes from (non-decreasing)."""
    parts: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        canonical = _canonical_char(char)
        if canonical:
            parts.append(canonical)
            origins.extend([index] * len(canonical))
    return "".join(parts), tuple(origins)


# --- Sentence segmentation ----------------------------------------------------------------

# A run of sentence-ending punctuation, then closing quotation marks or brackets (a French
# closing guillemet may be preceded by a space on the same line), then whitespace, then the
# first character of what follows (checked in Python: see _starts_sentence).
_SENTENCE_END = re.compile(
    r"""
    (?P<stop>[.!?…]+)
    (?P<closers>(?:[»”"’)\]]|[^\S\n]+»)*)
    (?=\s+(?P<next>\S))
    """,
    re.VERBOSE,
)
# Characters other than capitals and digits that can begin a sentence.
_SENTENCE_OPENERS = frozenset('«“„"—–¿¡')
# Characters that may precede a word (and are not part of it) when looking for abbreviations.
_LEADING_PUNCTUATION = "«“„\"‘’'([¿¡—–-"
# Abbreviations after which a full stop does not end a sentence, as written (case matters:
# "No." is the number sign, "no." is a word).
_ABBREVIATIONS = frozenset(
    {
        # French
        "M", "MM", "Mme", "Mmes", "Mlle", "Mlles", "Me", "Mgr", "Dr", "Drs", "Pr",
        "St", "Ste", "Sts", "No", "N°", "Nos", "cf", "Cf", "etc", "p", "pp", "ex",
        "p.ex", "av", "apr", "env", "art", "Art", "vol", "Vol", "éd", "chap", "fig",
        "n°", "réf", "tél", "Tél", "vs", "c.-à-d", "c-à-d",
        # Other European languages
        "Mr", "Mrs", "Ms", "Prof", "Sr", "Sra", "Srta", "Jr", "Dra", "Hr", "Fr", "Nr",
        "e.g", "i.e", "z.B", "bzw", "usw", "ca", "vgl", "Av", "Sig", "Sig.ra", "Dott",
    }
)  # fmt: skip
# One capital letter, or initials such as "J.-C" or "J.M" (the final full stop is not included).
_INITIALS = re.compile(r"[^\W\d_](?:\.-?[^\W\d_])*")


def _starts_sentence(char: str) -> bool:
    """Whether ``char`` can be the first character of a new sentence."""
    return (
        char.isupper()
        or unicodedata.category(char) == "Lt"
        or char.isdecimal()
        or char in _SENTENCE_OPENERS
    )


def _word_before(paragraph: str, end: int) -> str:
    """The word that ends at ``end`` in ``paragraph``, without opening punctuation."""
    start = end
    while start > 0 and not paragraph[start - 1].isspace():
        start -= 1
    return paragraph[start:end].lstrip(_LEADING_PUNCTUATION)


def _is_abbreviation(word: str) -> bool:
    """Whether a full stop after ``word`` is an abbreviation's, not a sentence's end."""
    if word in _ABBREVIATIONS:
        return True
    return word.isupper() and _INITIALS.fullmatch(word) is not None


def _ends_sentence(paragraph: str, match: re.Match[str]) -> bool:
    """Whether a candidate sentence end found by ``_SENTENCE_END`` really ends a sentence."""
    if not _starts_sentence(match["next"]):
        return False
    stop, closers = match["stop"], match["closers"]
    if stop == ".":
        return not _is_abbreviation(_word_before(paragraph, match.start()))
    # "[…]" and "(…)" mark words left out in the middle of a sentence.
    omission = stop in {"…", "..."} and match.start() > 0
    return not (omission and paragraph[match.start() - 1] in "[(" and closers[:1] in {"]", ")"})


def _sentence_spans(paragraph: str) -> tuple[tuple[int, int], ...]:
    """The (start, end) offsets of each sentence of ``paragraph``, covering all its text.

    Each span starts and ends on a non-whitespace character; only whitespace lies between
    consecutive spans.
    """
    spans: list[tuple[int, int]] = []
    start = len(paragraph) - len(paragraph.lstrip())
    for match in _SENTENCE_END.finditer(paragraph):
        if _ends_sentence(paragraph, match):
            spans.append((start, match.end()))
            start = match.start("next")
    end = len(paragraph.rstrip())
    if start < end:
        spans.append((start, end))
    return tuple(spans)


# --- Selectors ----------------------------------------------------------------------------

_SELECTOR = re.compile(r"\s*(?P<first>[0-9]+)?\s*(?:(?P<dash>[-–—])\s*(?P<last>[0-9]+)?)?\s*")
_SELECTOR_HELP = "write one sentence number such as 2, or a range such as 1-3, 2- or -2"


def _parse_selector(selector: str, paragraph: int, count: int) -> tuple[int, int]:
    """The 1-based (first, last) sentences named by ``selector`` in ``paragraph``, which has
    ``count`` sentences; ExcerptError if the selector is empty, malformed, out of range or
    reversed."""
    shown = selector.strip()
    if not shown:
        raise ExcerptError(f"the sentence selection is empty: {_SELECTOR_HELP}")
    match = _SELECTOR.fullmatch(selector)
    if match is None or (match["first"] is None and match["last"] is None):
        raise ExcerptError(f'cannot read the sentence selection "{shown}": {_SELECTOR_HELP}')
    written = [int(number) for number in (match["first"], match["last"]) if number is not None]
    if min(written) < 1:
        raise ExcerptError("sentence 0 does not exist: sentences are numbered from 1")
    if max(written) > count:
        raise ExcerptError(
            f"paragraph {paragraph} has only {_plural(count, 'sentence')}; asked for {max(written)}"
        )
    first = int(match["first"]) if match["first"] is not None else 1
    if match["dash"] is None:
        last = first
    else:
        last = int(match["last"]) if match["last"] is not None else count
    if first > last:
        raise ExcerptError(
            f'the sentence range "{shown}" is reversed: '
            f"write the smaller number first, as in {last}-{first}"
        )
    return first, last


# --- Messages -----------------------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut after at most ``limit`` characters at a word end, with "…"."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


_PASSAGE_LIMIT = 120
# Closest passage search: how many candidates get difflib's exact (slow) comparison, and the
# quote length above which that comparison is made word by word rather than by character.
_CLOSEST_FINALISTS = 8
_CHARACTER_COMPARISON_LIMIT = 200
_DESCRIBE_LIMIT = 80
_PARAGRAPH_SEPARATOR = "\n\n"


# --- The statement ------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """A campaign's statement, split into paragraphs numbered from 1 for organisers.

    Build it with :meth:`Statement.parse`. Constructed directly, ``paragraphs`` must be
    non-blank; a statement without paragraphs is refused with :class:`ExcerptError`.
    The canonical form used by :meth:`find` and the sentence boundaries are computed once,
    at construction.
    """

    paragraphs: tuple[str, ...]
    # The paragraphs joined by one blank line: the text that find() returns passages from.
    _text: str = field(init=False, repr=False, compare=False)
    # Offset of each paragraph in _text.
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # Canonical form of _text, and the index in _text of each of its characters.
    _canonical: str = field(init=False, repr=False, compare=False)
    _origins: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # Sentence spans of each paragraph, as offsets in that paragraph.
    _sentences: tuple[tuple[tuple[int, int], ...], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.paragraphs:
            raise ExcerptError("the statement is empty: it has no text to quote from")
        for number, paragraph in enumerate(self.paragraphs, start=1):
            if not paragraph.strip():
                raise ExcerptError(f"paragraph {number} of the statement is empty")
        starts: list[int] = []
        offset = 0
        for paragraph in self.paragraphs:
            starts.append(offset)
            offset += len(paragraph) + len(_PARAGRAPH_SEPARATOR)
        text = _PARAGRAPH_SEPARATOR.join(self.paragraphs)
        canonical, origins = _canonical_with_origins(text)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_starts", tuple(starts))
        object.__setattr__(self, "_canonical", canonical)
        object.__setattr__(self, "_origins", origins)
        object.__setattr__(self, "_sentences", tuple(_sentence_spans(p) for p in self.paragraphs))

    @classmethod
    def parse(cls, text: str) -> Statement:
        """Split a statement's text into paragraphs.

        Paragraphs are separated by one or more blank lines (a line holding only whitespace,
        non-breaking spaces included, is blank). Line breaks inside a paragraph are kept as
        ``\\n``; whitespace around each paragraph is removed. A leading byte order mark is
        dropped and Windows (CRLF) or old Mac (CR) line ends are read as ``\\n``.

        Raises :class:`ExcerptError` if the text has no paragraph at all.
        """
        text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        paragraphs: list[str] = []
        block: list[str] = []
        for line in [*text.split("\n"), ""]:
            if line.strip():
                block.append(line)
            elif block:
                paragraphs.append("\n".join(block).strip())
                block = []
        return cls(tuple(paragraphs))

    # -- paragraphs and sentences ----------------------------------------------------------

    def _index(self, paragraph: int) -> int:
        """The 0-based index of the 1-based ``paragraph``, or ExcerptError."""
        count = len(self.paragraphs)
        if paragraph < 1:
            raise ExcerptError(
                f"paragraph {paragraph} does not exist: paragraphs are numbered from 1 to {count}"
            )
        if paragraph > count:
            raise ExcerptError(
                f"paragraph {paragraph} does not exist: "
                f"the statement has {_plural(count, 'paragraph')}"
            )
        return paragraph - 1

    def sentences(self, paragraph: int) -> tuple[str, ...]:
        """The sentences of the 1-based ``paragraph``, in order, each an exact substring of it.

        A sentence ends after ``.``, ``!``, ``?``, ``…`` or ``...`` (and any closing quotation
        marks or brackets right after, or a ``»`` after a space) when whitespace follows and
        then a capital letter, a digit, an opening quotation mark or a dash. A full stop after
        a common abbreviation (M., Mme, Dr, etc., cf., No., St., …) or after an initial
        (J. Martí) does not end a sentence, nor does ``[…]``. Every non-whitespace character
        of the paragraph belongs to exactly one sentence: an opening ``«`` at the start goes
        with the first sentence, a closing ``»`` at the end with the last one.

        Raises :class:`ExcerptError` if the paragraph does not exist.
        """
        index = self._index(paragraph)
        text = self.paragraphs[index]
        return tuple(text[start:end] for start, end in self._sentences[index])

    def select(self, paragraph: int, sentences: str | None = None) -> str:
        """The whole 1-based ``paragraph``, or the sentences of it named by ``sentences``.

        The selector is a sentence number (``"2"``) or a range: ``"1-3"``, ``"2-"`` (to the
        end of the paragraph), ``"-2"`` (from its start); spaces are allowed and an en or em
        dash may replace the hyphen. Other forms (lists such as ``"1,3"``) are refused. The
        result is the exact text of the paragraph from the first to the last selected sentence.

        Raises :class:`ExcerptError` if the paragraph or a sentence does not exist, or if the
        selector is empty, malformed or reversed.
        """
        index = self._index(paragraph)
        text = self.paragraphs[index]
        if sentences is None:
            return text
        spans = self._sentences[index]
        first, last = _parse_selector(sentences, paragraph, len(spans))
        return text[spans[first - 1][0] : spans[last - 1][1]]

    # -- finding a quote -------------------------------------------------------------------

    def _at_char_boundary(self, position: int) -> bool:
        """Whether ``position`` in the canonical form falls between two original characters."""
        origins = self._origins
        return position in {0, len(origins)} or origins[position - 1] != origins[position]

    def _locate(self, needle: str) -> tuple[int, int] | None:
        """The span in the text of the first occurrence of canonical ``needle``, if any."""
        position = self._canonical.find(needle)
        while position != -1:
            end = position + len(needle)
            if self._at_char_boundary(position) and self._at_char_boundary(end):
                return self._origins[position], self._origins[end - 1] + 1
            position = self._canonical.find(needle, position + 1)
        return None

    def _locate_unquoted(self, needle: str) -> tuple[int, int] | None:
        """Like :meth:`_locate` for canonical ``needle`` without the quotation marks around it
        (double ones, or a pair of single ones), if it has any."""
        unquoted = needle.strip('"')
        if len(needle) > 2 and needle[0] == needle[-1] == "'":
            unquoted = needle[1:-1]
        if not unquoted.strip("\"'") or unquoted == needle:
            return None
        return self._locate(unquoted)

    def find(self, quote: str) -> str:
        """The passage of the statement that ``quote`` quotes, exactly as the statement has it.

        The statement is authoritative: the result is its own text, from the character that
        matches the first character of the quote to the one that matches the last, whatever
        the quote's spacing or typography. Matching ignores all whitespace (spaces,
        non-breaking and thin spaces, line breaks, so a quote may run over a paragraph break,
        which is returned as one blank line) and invisible characters; treats
        « » “ ” „ ‟ " ″ as one character, ’ ‘ ‚ ‛ ′ ' ‹ › as another, and – — ‒ ― - ‐ ‑ as
        another; treats ``…`` as ``...``; and treats composed and decomposed accents alike.
        Otherwise it is exact, case included. When the quote occurs more than once, the first
        occurrence is returned. If the quote is not found as written but is found without
        the quotation marks around it (double ones, or a pair of single ones), the passage
        without them is returned.

        Raises :class:`ExcerptError` if the quote is blank or is not in the statement; in the
        second case the message shows the closest passage of the statement and its paragraph.
        """
        needle = _canonical_text(quote)
        if not needle:
            raise ExcerptError("the quote is empty: write the words to find in the statement")
        span = self._locate(needle)
        if span is None:
            span = self._locate_unquoted(needle)
        if span is None:
            raise ExcerptError(self._not_found_message(quote, needle))
        start, end = span
        return self._text[start:end]

    def _canonical_span(self, start: int, end: int) -> str:
        """The canonical form of ``self._text[start:end]``."""
        origins = self._origins
        return self._canonical[bisect_left(origins, start) : bisect_left(origins, end)]

    def _candidate_spans(self, quote: str) -> list[tuple[int, int]]:
        """Passages to compare with a quote not found: every paragraph, every sentence, and
        runs of as many consecutive words as the quote has (starting at every word for a
        short quote, at every few words for a long one, whose windows barely differ from one
        word to the next)."""
        candidates: list[tuple[int, int]] = []
        for start, paragraph, spans in zip(
            self._starts, self.paragraphs, self._sentences, strict=True
        ):
            candidates.append((start, start + len(paragraph)))
            candidates.extend((start + s, start + e) for s, e in spans)
        words = [match.span() for match in re.finditer(r"\S+", self._text)]
        size = max(1, min(len(quote.split()), len(words)))
        step = max(1, size // 10)
        candidates.extend(
            (words[i][0], words[i + size - 1][1]) for i in range(0, len(words) - size + 1, step)
        )
        return candidates

    def _closest(self, quote: str, needle: str) -> tuple[int, int]:
        """The span of the passage of the statement most similar to a quote not found.

        Candidates are first ranked by the characters they share with the quote, whatever
        their order (cheap); the best few are then compared in order with difflib, character
        by character for a short quote and word by word for a long one (to stay fast).
        """
        needle_counts = Counter(needle)
        ranked: list[tuple[float, int, tuple[int, int]]] = []
        for order, span in enumerate(self._candidate_spans(quote)):
            candidate = self._canonical_span(*span)
            shared = (Counter(candidate) & needle_counts).total()
            ranked.append((2 * shared / (len(candidate) + len(needle)), -order, span))
        ranked.sort(reverse=True)
        by_words = len(needle) > _CHARACTER_COMPARISON_LIMIT
        matcher: difflib.SequenceMatcher[str] = difflib.SequenceMatcher(autojunk=False)
        matcher.set_seq2(_canonical_words(quote) if by_words else needle)
        scored: list[tuple[float, int, tuple[int, int]]] = []
        for _bound, order, (start, end) in ranked[:_CLOSEST_FINALISTS]:
            if by_words:
                matcher.set_seq1(_canonical_words(self._text[start:end]))
            else:
                matcher.set_seq1(self._canonical_span(start, end))
            scored.append((matcher.ratio(), order, (start, end)))
        # Every statement has at least one sentence, so there is always a candidate.
        return max(scored)[2]

    def _not_found_message(self, quote: str, needle: str) -> str:
        start, end = self._closest(quote, needle)
        paragraph = bisect_right(self._starts, start)
        passage = _shorten(self._text[start:end], _PASSAGE_LIMIT)
        return (
            "quote not found in the statement; "
            f'closest passage (paragraph {paragraph}): "{passage}"'
        )

    # -- listing for organisers ------------------------------------------------------------

    def describe(self) -> str:
        """A numbered listing of the statement for organisers writing selectors.

        Each paragraph number is followed by its sentences, numbered from 1, each shortened to
        its first 80 characters or so on one line.
        """
        lines: list[str] = []
        for number in range(1, len(self.paragraphs) + 1):
            sentences = self.sentences(number)
            lines.append(f"Paragraph {number} ({_plural(len(sentences), 'sentence')}):")
            width = len(str(len(sentences)))
            lines.extend(
                f"  {index:>{width}}. {_shorten(sentence, _DESCRIBE_LIMIT)}"
                for index, sentence in enumerate(sentences, start=1)
            )
        return "\n".join(lines)
