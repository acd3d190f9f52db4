"""Measuring a post as its server measures it, and cutting a long text into parts.

How each server software counts (from their source):

* **Mastodon** (``StatusLengthValidator``): grapheme clusters of
  ``spoiler_text + countable(text)``. In ``countable(text)`` every link with a scheme counts
  as ``url_length`` characters (23 by default) and a mention ``@user@domain`` counts as
  ``@user``; a text that is only whitespace counts as empty. Links and mentions are found
  the way Mastodon finds them (twitter-text with Mastodon's changes, ``Account::MENTION_RE``);
  where two overlap, the one that starts first wins (a mention inside a link is part of
  the link).
* **GoToSocial**: code points of ``text`` plus code points of ``spoiler_text``; links and
  mentions at full length.
* **Pleroma** and **Akkoma**: grapheme clusters of ``text + spoiler_text``, at full length.
* **Takahē**: code points of ``text`` alone; the content warning is not counted.

Everything here is pure: no I/O.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Callable

import regex

__all__ = [
    "MENTION_IN_TEXT",
    "URL_IN_TEXT",
    "Counting",
    "SplitError",
    "count_characters",
    "split_text",
]


class Counting(enum.StrEnum):
    """How a server software counts the characters of a status (Akkoma counts as Pleroma)."""

    MASTODON = "mastodon"
    GOTOSOCIAL = "gotosocial"
    PLEROMA = "pleroma"
    TAKAHE = "takahe"


# -- links --------------------------------------------------------------------------------
#
# Mastodon's link pattern (config/initializers/twitter_regex.rb over twitter-text), with two
# documented simplifications: any top-level domain of two or more letters (or punycode) is
# accepted instead of twitter-text's list of known ones, and a few more closing punctuation
# marks (» « “ ” ‘ ’ … and CJK ones) may not end a link. The second only ever makes us count
# a character or two more than Mastodon does, never fewer.
#
# Links "run together" follow from the pattern, as on Mastodon: separated by whitespace they
# are two links; "https://a.example,https://b.example" is two as well (a domain stops at the
# comma), but "https://a.example/x,https://b.example" is ONE link, because a path may hold
# "," and ":" -- Mastodon counts it as 23 characters and links it as a whole.

# A character that may not come right before a link (twitter-text's preceding chars).
_URL_PRECEDING = r"A-Za-z0-9@＠$#＃\ufffe\ufeff\uffff"
_DOMAIN_CHAR = r"\p{L}\p{M}\p{N}"
_LABEL = rf"[{_DOMAIN_CHAR}](?:[{_DOMAIN_CHAR}_-]*[{_DOMAIN_CHAR}])?"
_TLD = rf"(?:xn--[a-z0-9-]+|\p{{L}}[\p{{L}}\p{{M}}]+)(?![{_DOMAIN_CHAR}_@+-])"
_PATH_CHAR = r"[^\p{White_Space}<>()?]"
_PARENS = rf"\((?:{_PATH_CHAR}+|{_PATH_CHAR}*\({_PATH_CHAR}+\){_PATH_CHAR}*)\)"
_PATH_END = (
    r"(?:[^\p{White_Space}()?!*\"'「」<>;:=,.$%\[\]~&|@»«“”‘’…。、，！？：；）】』〉》]"
    rf"|{_PARENS})"
)
_PATH_PIECE = rf"(?:{_PATH_CHAR}*(?:{_PARENS}{_PATH_CHAR}*)*{_PATH_END}|{_PATH_CHAR}+/)"
_UCHARS = (
    r"\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd"
    r"\U00030000-\U000efffd\U000f0000-\U000ffffd\U00100000-\U0010fffd"
)
_QUERY_CHAR = rf"[a-z0-9!?*'();:&=+$/%#\[\]\-_.,~|@^{_UCHARS}]"
_QUERY_END = rf"[a-z0-9_&=#/\-{_UCHARS}]"

#: A link with a scheme, as Mastodon recognises it (``http``, ``https``, and the other
#: schemes Mastodon links: dat, dweb, ipfs, ipns, ssb, gopher, gemini).
URL_IN_TEXT: regex.Pattern[str] = regex.compile(
    rf"""
    (?<![{_URL_PRECEDING}])
    (?:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://  # as _SCHEMES
    (?:{_LABEL}\.)+{_TLD}
    (?::[0-9]+)?
    (?:/{_PATH_PIECE}*)?
    (?:\?{_QUERY_CHAR}*{_QUERY_END})?
    """,
    regex.IGNORECASE | regex.VERBOSE,
)

# -- mentions -----------------------------------------------------------------------------

_WORD = r"\p{Alphabetic}\p{M}\p{Nd}\p{Pc}"  # Ruby's [[:word:]]
# twitter-text's LATIN_ACCENTS: a mention directly followed by one of these, by an at sign
# or by "://" is not a mention (Mastodon's END_MENTION_MATCH).
_LATIN_ACCENTS = (
    "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256\u0257"
    "\u0259\u025b\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)

#: A mention as Mastodon recognises it (``Account::MENTION_RE`` and the extractor's check of
#: what follows). Group 1 is ``user`` or ``user@domain``, group 2 the username.
MENTION_IN_TEXT: regex.Pattern[str] = regex.compile(
    rf"""
    (?<![=/{_WORD}])
    @(?>(
        ([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)
        (?:@[{_WORD}.-]+[{_WORD}]+)?
    ))
    (?![@＠{_LATIN_ACCENTS}]|://)
    """,
    regex.IGNORECASE | regex.VERBOSE,
)

#: The schemes of URL_IN_TEXT (none ends another).
_SCHEMES = ("https", "http", "dat", "dweb", "ipfs", "ipns", "ssb", "gopher", "gemini")
_GRAPHEME: regex.Pattern[str] = regex.compile(r"\X")
_CLUSTER_RUN: regex.Pattern[str] = regex.compile(
    r"[^\p{GCB=Other}\p{GCB=Control}\p{GCB=CR}\p{GCB=LF}]+"
)
_GCB_OTHER: regex.Pattern[str] = regex.compile(r"\p{GCB=Other}")
_BLANK: regex.Pattern[str] = regex.compile(r"\p{White_Space}*")
#: twitter-text ignores links longer than this.
_MAX_URL_LENGTH = 4096
#: Mastodon ignores mentions whose domain is longer than this.
_MAX_DOMAIN_LENGTH = 253


def _graphemes(text: str) -> int:
    """Extended grapheme clusters in ``text``, as ``len(regex.findall(r"\\X", text))``.

    ``\\X`` is slow, so it only runs on the few stretches that can hold a cluster of more
    than one code point: runs of characters whose Grapheme_Cluster_Break is not Other,
    Control, CR or LF (marks, joiners, regional indicators, Hangul jamo, …) with their
    neighbours of class Other. Outside them every code point is a cluster, except CR LF.
    """
    count = len(text) - text.count("\r\n")
    if text.isascii():
        return count
    region_start = region_end = 0
    for run in _CLUSTER_RUN.finditer(text):
        start, end = run.span()
        if start > 0 and _GCB_OTHER.match(text, start - 1):
            start -= 1
        if end < len(text) and _GCB_OTHER.match(text, end):
            end += 1
        if start <= region_end and region_end > region_start:
            region_end = end
            continue
        count -= _excess(text[region_start:region_end])
        region_start, region_end = start, end
    return count - _excess(text[region_start:region_end])


def _excess(region: str) -> int:
    """Code points of ``region`` beyond its number of grapheme clusters."""
    return len(region) - len(_GRAPHEME.findall(region)) if region else 0


def _links(text: str) -> list[tuple[int, int]]:
    """Spans of ``URL_IN_TEXT.finditer(text)``, found faster: only tried where ``://`` is."""
    spans: list[tuple[int, int]] = []
    position = 0
    while (separator := text.find("://", position)) >= 0:
        position = separator + 3
        before = text[max(separator - 6, 0) : separator].lower()
        scheme = next((s for s in _SCHEMES if before.endswith(s)), None)
        start = separator - len(scheme) if scheme else -1
        if start < 0 or (spans and start < spans[-1][1]):
            continue
        match = URL_IN_TEXT.match(text, start)
        if match:
            spans.append((start, int(match.end())))
            position = max(position, int(match.end()))
    return spans


def _mastodon_countable(text: str, url_length: int) -> str:
    """``text`` with links replaced by ``url_length`` x's and mentions by ``@user``."""
    if _BLANK.fullmatch(text):
        return ""
    placeholder = "x" * url_length
    entities = [
        (start, end, placeholder) for start, end in _links(text) if end - start <= _MAX_URL_LENGTH
    ]
    position = 0
    while (at := text.find("@", position)) >= 0:
        position = at + 1
        match = MENTION_IN_TEXT.match(text, at)
        if match:
            position = int(match.end())
            _, _, domain = str(match.group(1)).partition("@")
            if len(domain) <= _MAX_DOMAIN_LENGTH:
                entities.append((at, position, "@" + str(match.group(2))))
    if not entities:
        return text
    entities.sort()
    pieces: list[str] = []
    position = 0
    for start, end, replacement in entities:
        if start < position:  # overlaps an entity already kept
            continue
        pieces += (text[position:start], replacement)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def count_characters(
    text: str,
    spoiler_text: str = "",
    counting: Counting = Counting.MASTODON,
    url_length: int = 23,
) -> int:
    """Characters of a status with ``text`` and content warning ``spoiler_text``.

    Counted the way ``counting``'s server software counts them (see the module's docstring);
    ``url_length`` is what one link costs on Mastodon (its ``characters_reserved_per_url``)
    and is ignored by the other softwares.
    """
    counting = Counting(counting)
    if counting is Counting.MASTODON:
        if url_length < 0:
            raise ValueError(f"a link cannot count as {url_length} characters")
        return _graphemes(spoiler_text + _mastodon_countable(text, url_length))
    if counting is Counting.GOTOSOCIAL:
        return len(text) + len(spoiler_text)
    if counting is Counting.PLEROMA:
        return _graphemes(text + spoiler_text)
    return len(text)


# -- splitting ----------------------------------------------------------------------------


class SplitError(ValueError):
    """A text cannot be cut into parts that fit; ``part`` is the 0-based part that failed."""

    def __init__(self, message: str, part: int) -> None:
        super().__init__(message)
        self.part = part


# Whitespace is what str.isspace() says (Unicode White_Space plus U+001C..U+001F), so that
# parts agree with str.split(). No-break spaces never make a cut (French "Bonjour !",
# "10 000"); a gap where a part may end is a run of whitespace holding another space.
_SPACE = r"\s\x1c-\x1f"
_NO_BREAK = "\u00a0\u2007\u202f"
_BREAKING = rf"(?:[^\S{_NO_BREAK}]|[\x1c-\x1f])"
_LINE_CHARS = r"\n\r\x1c-\x1e\x85\u2028\u2029"
#: Marks that end a sentence.
_ENDERS = re.escape(".!?…‼⁇⁈⁉。！？")
#: Closing quotes and brackets that may follow the end of a sentence.
_CLOSERS = re.escape("\"'»«”“’‘)]}」』）〕】》〉›‹")
#: The closers that never open anything (« “ ‘ ‹ open quotes in some languages).
_CLOSING_ONLY = re.escape("»”’)]}」』）〕】》〉›")

# (?r) searches backwards: the match nearest before ``endpos``, and a leading [...]* reaches
# back to the start of its run of whitespace.
_GAP_BEFORE: regex.Pattern[str] = regex.compile(rf"(?r)[{_SPACE}]*{_BREAKING}")
_PARAGRAPH_BEFORE: regex.Pattern[str] = regex.compile(
    rf"(?r)[{_SPACE}]*(?:(?:\r\n?|[\n\x85\u2028])[^\S\r\n\x85\u2028\u2029]*"
    rf"(?:\r\n?|[\n\x85\u2028])|\u2029)"
)
_LINE_BEFORE: regex.Pattern[str] = regex.compile(rf"(?r)[{_SPACE}]*[{_LINE_CHARS}]")
# Forward searches use the standard library's re, whose calls cost less.
_GAP_AFTER = re.compile(rf"[{_SPACE}]*{_BREAKING}")
_SPACES = re.compile(rf"[{_SPACE}]+")
_NOT_SPACE = re.compile(rf"[^{_SPACE}]")
_LINE_CHAR = re.compile(rf"[{_LINE_CHARS}]")
# After a sentence's last mark: closing quotes or brackets, maybe after a no-break space.
_CLOSING = re.compile(rf"(?:[{_NO_BREAK}]*[{_CLOSERS}])*")
# A gap, then a word made only of closing marks, as in French "… la paix. »".
_LONE_CLOSING = re.compile(rf"[{_SPACE}]+[{_CLOSING_ONLY}]+(?=[{_SPACE}])")
# A gap, then a word made only of punctuation that belongs to the word before ("Vive le
# Venezuela !", "le Venezuela » dans"): no part should start with it.
_LONE_PUNCTUATION = re.compile(rf"[{_SPACE}]+[{_ENDERS}{_CLOSING_ONLY}:;,%]+(?:[{_SPACE}]|\Z)")
_SENTENCE_MARKS = ".!?…‼⁇⁈⁉。！？"
_WORD_IN_MESSAGE = 40
#: Steps of interpolation, then of doubling, before bisecting (see ``_last_fitting``).
_GALLOP_STEPS = 8


def _shorten(word: str) -> str:
    if len(word) <= _WORD_IN_MESSAGE:
        return word
    return word[: _WORD_IN_MESSAGE - 1] + "…"


def _numbering(text: str, dot: int) -> bool:
    """Whether the ``.`` at ``dot`` closes a word of one or two digits: "1." numbering a
    list item, "3. Oktober" (a year as in "since 2019." still ends its sentence)."""
    start = dot
    while start > 0 and dot - start <= 2 and text[start - 1].isdigit():
        start -= 1
    return 0 < dot - start <= 2 and (start == 0 or text[start - 1].isspace())


def _gap_end(text: str, cut: int) -> int:
    """Where the word after the gap at ``cut`` starts."""
    match = _SPACES.match(text, cut)
    return match.end() if match else cut


class _Cuts:
    """The places where a part starting at ``start`` may end, found on demand.

    A cut is the start of a gap (see ``_BREAKING``) after ``start``, or the end of the text.
    """

    def __init__(self, text: str, start: int, enders: list[str], *, has_lines: bool) -> None:
        self.text = text
        self.start = start
        self.enders = enders  # the sentence-ending characters that occur in ``text``
        self.has_lines = has_lines

    def at_or_before(self, position: int) -> int | None:
        """The last cut at or before ``position``; None if there is none after ``start``."""
        if position >= len(self.text):
            return len(self.text)
        if position <= self.start:
            return None
        match = _GAP_BEFORE.search(self.text, self.start + 1, position + 1)
        return int(match.start()) if match else None

    def after(self, position: int) -> int:
        """The first cut after ``position`` (itself a cut or ``start``)."""
        word = _NOT_SPACE.search(self.text, position)
        if word is None:
            return len(self.text)
        match = _GAP_AFTER.search(self.text, word.start())
        return int(match.start()) if match else len(self.text)

    def preferred(self, latest: int) -> int:
        """The best cut up to ``latest``: a paragraph or sentence end, a line break, else it."""
        text, start = self.text, self.start
        strong = self.sentence_end(latest) or 0
        if self.has_lines:
            window = _gap_end(text, latest)
            paragraph = _PARAGRAPH_BEFORE.search(text, start, window)
            if paragraph:
                strong = max(strong, int(paragraph.start()))
            if strong <= start:
                line = _LINE_BEFORE.search(text, start, window)
                strong = int(line.start()) if line else 0
        if strong > start:
            return strong
        if _LONE_PUNCTUATION.match(text, latest):
            earlier = self.at_or_before(latest - 1)
            return latest if earlier is None else earlier
        return latest

    def sentence_end(self, latest: int) -> int | None:
        """The last cut up to ``latest`` that follows the end of a sentence."""
        text, start, end = self.text, self.start, latest
        while self.enders:
            mark = max(text.rfind(ender, start, end) for ender in self.enders)
            if mark < 0:
                return None
            end = mark
            if text[mark] == "." and _numbering(text, mark):
                continue
            closing = _CLOSING.match(text, mark + 1)
            cut = closing.end() if closing else mark + 1
            lone = _LONE_CLOSING.match(text, cut)
            if lone:  # "paix. »": the sentence ends after the "»", if that still fits
                cut = lone.end()
            if cut <= latest and _GAP_AFTER.match(text, cut):
                return cut
        return None


def _predict(start: int, end: int, size: int, limit: int) -> int:
    """Where a part from ``start`` would reach ``limit``, if ``text[start:end]`` has ``size``."""
    return start + (end - start) * limit // max(size, 1)


def _last_fitting(cuts: _Cuts, limit: int, size: Callable[[int], int]) -> int | None:
    """The last cut whose part has ``size(cut) <= limit``; None if the first word is too big.

    ``size`` must not decrease from one cut to the next. The search starts where ``limit``
    characters would end, brackets the answer by interpolation (a few steps) then doubling,
    and closes in by interpolation and bisection in turn: when ``measure`` is close to
    ``len`` it costs two calls of ``size``, rarely more than four otherwise.
    """
    guess = cuts.at_or_before(cuts.start + limit)
    if guess is None:
        guess = cuts.after(cuts.start)
    measured = size(guess)
    if measured <= limit:
        good, good_size, bad, bad_size = _bracket_up(cuts, limit, size, guess, measured)
        if bad is None:
            return good
    else:
        found, good_size, bad, bad_size = _bracket_down(cuts, limit, size, guess, measured)
        if found is None:
            return None
        good = found
    for step in itertools.count():
        if step % 2 == 0 and bad_size is not None and bad_size > good_size:
            target = good + (bad - good) * (limit - good_size) // (bad_size - good_size)
        else:
            target = (good + bad) // 2
        probe = cuts.at_or_before(target)
        if probe is None or probe <= good:
            probe = cuts.after(good)
        if probe >= bad:
            break
        measured = size(probe)
        if measured <= limit:
            good, good_size = probe, measured
        else:
            bad, bad_size = probe, measured
    return good


def _bracket_up(
    cuts: _Cuts, limit: int, size: Callable[[int], int], good: int, measured: int
) -> tuple[int, int, int | None, int | None]:
    """From a cut that fits, a cut that fits and a later one that does not, with their sizes
    (None, None: the whole rest fits)."""
    start, end = cuts.start, len(cuts.text)
    for attempt in range(_GALLOP_STEPS):
        if good == end:
            return good, measured, None, None
        if attempt < _GALLOP_STEPS // 2:
            target = _predict(start, good, measured, limit)
        else:
            target = good + 2 * (good - start)
        probe = cuts.at_or_before(target)
        if probe is None or probe <= good:
            probe = cuts.after(good)
        probe_size = size(probe)
        if probe_size > limit:
            return good, measured, probe, probe_size
        good, measured = probe, probe_size
    return good, measured, end + 1, None


def _bracket_down(
    cuts: _Cuts, limit: int, size: Callable[[int], int], bad: int, measured: int
) -> tuple[int | None, int, int, int]:
    """From a cut that does not fit, an earlier one that does (None: not even the first
    word) and a later one that does not, with their sizes."""
    for _ in range(_GALLOP_STEPS // 2):
        probe = cuts.at_or_before(min(_predict(cuts.start, bad, measured, limit), bad - 1))
        if probe is None:
            break
        probe_size = size(probe)
        if probe_size <= limit:
            return probe, probe_size, bad, measured
        bad, measured = probe, probe_size
    first = cuts.after(cuts.start)
    if first >= bad:
        return None, 0, bad, measured
    first_size = size(first)
    if first_size > limit:
        return None, 0, bad, measured
    return first, first_size, bad, measured


def split_text(body: str, budget: Callable[[int], int], measure: Callable[[str], int]) -> list[str]:
    """Cut ``body`` into consecutive parts with ``measure(parts[i]) <= budget(i)``.

    Contract:

    * Cuts happen only at whitespace (never inside a word, link, mention or hashtag); the
      whitespace at a cut is dropped and nothing else changes, so every part is a substring
      of ``body`` and ``" ".join(parts).split() == body.split()``. No-break spaces (U+00A0,
      U+2007, U+202F) are not cut at.
    * Greedy: each part holds as much as fits. Among the cuts that fit, the last paragraph
      break or sentence end (``.`` ``!`` ``?`` ``…`` possibly followed by closing quotes or
      brackets; not the dot of "1.") is preferred, then the last line break, then the last
      space.
    * A body that fits ``budget(0)`` whole gives ``[body.strip()]`` (``[""]`` for a blank
      body); otherwise no part is empty.
    * :class:`SplitError` when ``budget(i) <= 0`` for a part that is needed, or when a word
      alone does not fit its part.

    ``measure`` must not decrease when a part grows by whole words (true of every
    :class:`Counting`). It is called a few times per part, on candidate parts only, and the
    text is searched only around the candidate cuts, so a long body costs little more than
    measuring it.
    """
    text = body.strip()
    has_lines = _LINE_CHAR.search(text) is not None
    enders = [mark for mark in _SENTENCE_MARKS if mark in text]
    chunks: list[str] = []
    start = 0
    while True:
        part = len(chunks)
        limit = budget(part)
        if limit <= 0:
            raise SplitError(
                f"part {part + 1} has no room left for text (it may hold {limit} characters)",
                part,
            )

        def size(end: int, start: int = start) -> int:
            return measure(text[start:end])

        cuts = _Cuts(text, start, enders, has_lines=has_lines)
        best = _last_fitting(cuts, limit, size)
        if best is None:
            word = text[start : cuts.after(start)]
            raise SplitError(
                f"the word '{_shorten(word)}' alone is longer than the {limit} characters "
                "a part may hold",
                part,
            )
        if best == len(text):
            chunks.append(text[start:])
            return chunks
        cut = cuts.preferred(best)
        chunks.append(text[start:cut])
        start = _gap_end(text, cut)
