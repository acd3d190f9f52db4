"""From a post's template to the exact text(s) one account will publish.

The excerpt is put in place, the campaign's and the post's hashtags are appended (unless the
text already has them), and the result is measured the way the account's server measures
it. A text that does not fit becomes a thread: cut at sentence, then word boundaries, each
part numbered ``n/N``, the hashtags on the first part, the content warning on every part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from postscheduler.domain.hashtags import append_hashtags, hashtags_to_append
from postscheduler.domain.text import Counting, SplitError, count_characters, split_text

#: More parts than this is surely a mistake (a statement pasted whole, a wrong limit).
MAX_THREAD_PARTS = 25


class ComposeError(ValueError):
    """The post cannot be made to fit its server; the message says why."""


@dataclass(frozen=True)
class CountingRules:
    """How one account's server measures a post, and how much it accepts."""

    counting: Counting
    limit: int
    url_length: int = 23

    def measure(self, text: str, spoiler_text: str = "") -> int:
        """Characters of ``text`` with ``spoiler_text`` as this server counts them."""
        return count_characters(text, spoiler_text, self.counting, self.url_length)


@dataclass(frozen=True)
class ComposedPart:
    """One status to send: its final text and its measured length."""

    text: str
    characters: int


def fill_template(template: str, excerpt: str | None) -> str:
    """The template with ``{excerpt}`` replaced; nothing else in it is interpreted."""
    if excerpt is None:
        return template
    return template.replace("{excerpt}", excerpt)


def compose(
    body: str,
    hashtags: Sequence[str],
    spoiler_text: str,
    rules: CountingRules,
    *,
    allow_thread: bool,
) -> list[ComposedPart]:
    """The parts that publish ``body`` with ``hashtags`` under ``rules``.

    One part when it fits; otherwise a numbered thread when ``allow_thread``, else
    :class:`ComposeError` naming the count and the limit.
    """
    whole = append_hashtags(body, hashtags)
    characters = rules.measure(whole, spoiler_text)
    if characters <= rules.limit:
        return [ComposedPart(whole, characters)]
    if not allow_thread:
        raise ComposeError(
            f"the post is {characters} characters and its server accepts {rules.limit} "
            '(shorten it, or set on_too_long = "thread")'
        )
    tags = hashtags_to_append(body, hashtags)
    tag_block = append_hashtags("", tags)
    return _thread(body.strip(), tag_block, spoiler_text, rules)


def _thread(
    body: str, tag_block: str, spoiler_text: str, rules: CountingRules
) -> list[ComposedPart]:
    tag_cost = rules.measure("\n\n" + tag_block) if tag_block else 0
    parts_guess = 2
    while True:
        marker_cost = rules.measure(f" {parts_guess}/{parts_guess}")

        def budget(index: int, marker_cost: int = marker_cost) -> int:
            return rules.limit - marker_cost - (tag_cost if index == 0 else 0)

        try:
            chunks = split_text(body, budget, lambda chunk: rules.measure(chunk, spoiler_text))
        except SplitError as error:
            raise ComposeError(f"cannot split the post into a thread: {error}") from None
        if len(str(len(chunks))) <= len(str(parts_guess)):
            break
        parts_guess = len(chunks)
    total = len(chunks)
    if total > MAX_THREAD_PARTS:
        raise ComposeError(
            f"the post would need {total} parts at {rules.limit} characters each "
            f"(at most {MAX_THREAD_PARTS}): shorten it"
        )
    parts = []
    for index, chunk in enumerate(chunks):
        text = f"{chunk} {index + 1}/{total}"
        if index == 0 and tag_block:
            text = f"{text}\n\n{tag_block}"
        characters = rules.measure(text, spoiler_text)
        if characters > rules.limit:
            raise ComposeError(
                f"part {index + 1} of the thread is {characters} characters and its server "
                f"accepts {rules.limit}: shorten the post"
            )
        parts.append(ComposedPart(text, characters))
    return parts
