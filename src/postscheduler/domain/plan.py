"""The planner: a validated campaign becomes the list of publications to send.

Pure and deterministic: the same campaign, statement and media facts give the same
publications with the same keys, times and texts. It takes no clock; the only outside help
it needs, expanding cron expressions, is passed in (``expand_cron``) so that this module
imports no scheduler library.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from postscheduler.domain.campaign import Account, CampaignFile, Post, Series, Visibility
from postscheduler.domain.compose import ComposeError, CountingRules, compose, fill_template
from postscheduler.domain.durations import format_duration
from postscheduler.domain.excerpts import ExcerptError, Statement
from postscheduler.domain.hashtags import hashtags_to_append, readability_warning
from postscheduler.domain.keys import content_hash, occurrence_label, publication_key
from postscheduler.domain.localtime import Resolution, resolve_local
from postscheduler.domain.problems import Problem, Severity
from postscheduler.domain.software import facts_for

#: ``expand_cron(expression, zone, start, end)`` → the instants (aware) it fires in [start, end].
CronExpander = Callable[[str, ZoneInfo, datetime, datetime], Sequence[datetime]]

#: A series firing more often than this inside the window is surely a mistake.
MAX_OCCURRENCES = 10_000


@dataclass(frozen=True)
class MediaFile:
    """What the loader found out about one media file named by the campaign."""

    path: str
    alt: str
    mime: str
    size: int
    sha256: str
    focus: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class PlannedPublication:
    """One status to publish: one post (or series occurrence), one account, one thread part."""

    key: str
    campaign: str
    post: str
    occurrence: str | None
    account: str
    instance: str
    part: int
    parts: int
    scheduled_at: datetime
    local_at: datetime
    text: str
    spoiler_text: str
    visibility: Visibility
    language: str
    sensitive: bool
    hashtags: tuple[str, ...]
    media: tuple[MediaFile, ...]
    reply_to: str | None
    characters: int
    limit: int
    counting: str
    content_hash: str


@dataclass(frozen=True)
class Plan:
    """The planner's answer: publications in time order, and every problem found."""

    window_start: datetime | None
    window_end: datetime | None
    publications: tuple[PlannedPublication, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings allowed)."""
        return not any(p.severity == "error" for p in self.problems)


def account_rules(account: Account) -> CountingRules:
    """How ``account``'s server counts, from the file (or the software's defaults)."""
    facts = facts_for(account.software)
    return CountingRules(
        counting=facts.counting,
        limit=account.max_characters or facts.max_characters,
        url_length=(
            account.characters_per_url
            if account.characters_per_url is not None
            else facts.characters_per_url
        ),
    )


@dataclass
class _Item:
    """A post or a series, with where it stands in the file."""

    where: str
    index: int
    content: Post | Series
    accounts: tuple[str, ...]
    parts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    hashtags: tuple[str, ...] = ()
    appended: tuple[str, ...] = ()
    media: tuple[MediaFile, ...] = ()


class _Planner:
    def __init__(
        self,
        campaign: CampaignFile,
        statement: Statement | None,
        media: Mapping[str, MediaFile],
        expand_cron: CronExpander,
        rules: Mapping[str, CountingRules] | None,
    ) -> None:
        self.file = campaign
        self.settings = campaign.campaign
        self.zone = self.settings.zone
        self.statement = statement
        self.media = media
        self.expand_cron = expand_cron
        self.rules = {
            name: (rules or {}).get(name) or account_rules(account)
            for name, account in campaign.accounts.items()
        }
        self.problems: list[Problem] = []
        self.where_by_id: dict[str, str] = {}
        # Accounts whose servers count alike get the same parts: compose once for them all.
        self.composed: dict[
            tuple[str, tuple[str, ...], str, CountingRules, bool], list[tuple[str, int]]
        ] = {}

    def problem(self, where: str, message: str, severity: Severity = "error") -> None:
        self.problems.append(Problem(where=where, message=message, severity=severity))

    # -- the window ---------------------------------------------------------------------

    def resolve(self, wall: datetime, where: str) -> datetime | None:
        resolved = resolve_local(wall, self.zone)
        if resolved.kind is Resolution.GAP:
            self.problem(
                where,
                f"{wall:%Y-%m-%d %H:%M} does not exist in {self.settings.timezone}: "
                "the clocks skip over it (daylight saving time); pick another time",
            )
            return None
        if resolved.kind is Resolution.FOLD and resolved.other is not None:
            self.problem(
                where,
                f"{wall:%Y-%m-%d %H:%M} happens twice in {self.settings.timezone} "
                f"(daylight saving time): {resolved.instant:%H:%M} UTC and "
                f"{resolved.other:%H:%M} UTC; the first is used — write an offset to choose",
                "warning",
            )
        return resolved.instant

    def window(self) -> tuple[datetime, datetime] | None:
        start = self.resolve(self.settings.start, "campaign.start")
        end = self.resolve(self.settings.end, "campaign.end")
        if start is None or end is None:
            return None
        return start, end

    # -- references ---------------------------------------------------------------------

    def items(self) -> list[_Item]:
        items: list[_Item] = []
        seen: dict[str, str] = {}
        everyone = tuple(self.file.accounts)
        entries: list[tuple[str, Sequence[Post | Series]]] = [
            ("posts", self.file.posts),
            ("series", self.file.series),
        ]
        for table, entries_of_table in entries:
            for index, content in enumerate(entries_of_table):
                where = f"{table}[{index}]"
                if content.id in seen:
                    self.problem(
                        f"{where}.id", f"id {content.id!r} is already used by {seen[content.id]}"
                    )
                    continue
                seen[content.id] = where
                self.where_by_id[content.id] = where
                accounts = content.accounts if content.accounts is not None else everyone
                known = True
                for position, name in enumerate(accounts):
                    if name not in self.file.accounts:
                        self.problem(
                            f"{where}.accounts[{position}]",
                            f"unknown account {name!r}: the file defines {', '.join(everyone)}",
                        )
                        known = False
                if not accounts:
                    self.problem(f"{where}.accounts", "the post names no account")
                    known = False
                if len(set(accounts)) != len(accounts):
                    self.problem(f"{where}.accounts", "an account is named twice")
                    known = False
                if known:
                    items.append(_Item(where, index, content, tuple(accounts)))
        return items

    # -- texts --------------------------------------------------------------------------

    def compose_item(self, item: _Item) -> bool:
        content = item.content
        excerpt = None
        if content.excerpt is not None:
            if self.statement is None:
                self.problem(
                    f"{item.where}.excerpt", "an excerpt needs campaign.statement (a text file)"
                )
                return False
            try:
                if content.excerpt.quote is not None:
                    excerpt = self.statement.find(content.excerpt.quote)
                else:
                    assert content.excerpt.paragraph is not None  # noqa: S101 (validated)
                    excerpt = self.statement.select(
                        content.excerpt.paragraph, content.excerpt.sentences
                    )
            except ExcerptError as error:
                self.problem(f"{item.where}.excerpt", str(error))
                return False
        body = fill_template(content.template, excerpt)
        item.hashtags = (*self.settings.hashtags, *content.hashtags)
        item.appended = hashtags_to_append(body, item.hashtags)
        item.media = tuple(self.media[m.path] for m in content.media if m.path in self.media)
        ok = len(item.media) == len(content.media)
        for name in item.accounts:
            account = self.file.accounts[name]
            facts = facts_for(account.software)
            if len(content.media) > facts.max_media:
                self.problem(
                    f"{item.where}.media",
                    f"{len(content.media)} attachments, and {facts.label} accepts "
                    f"{facts.max_media} (account {name})",
                )
                ok = False
            rules = self.rules[name]
            allow_thread = content.on_too_long == "thread"
            memo = (body, item.hashtags, content.spoiler_text, rules, allow_thread)
            if memo not in self.composed:
                try:
                    parts = compose(
                        body, item.hashtags, content.spoiler_text, rules, allow_thread=allow_thread
                    )
                except ComposeError as error:
                    self.problem(item.where, f"for account {name}: {error}")
                    ok = False
                    continue
                self.composed[memo] = [(p.text, p.characters) for p in parts]
            item.parts[name] = self.composed[memo]
        return ok

    def visibility(self, item: _Item) -> tuple[Visibility, Visibility] | None:
        main = item.content.visibility or self.settings.visibility
        follow = item.content.thread_visibility or (
            Visibility.UNLISTED if main is Visibility.PUBLIC else main
        )
        if follow.rank < main.rank:
            self.problem(
                f"{item.where}.thread_visibility",
                f"thread_visibility {follow.value!r} would show the thread to more people "
                f"than the post itself ({main.value!r})",
            )
            return None
        return main, follow

    def hashtag_warnings(self) -> None:
        warned: set[str] = set()
        sources: list[tuple[str, Sequence[str]]] = [("campaign.hashtags", self.settings.hashtags)]
        sources += [(f"posts[{i}].hashtags", p.hashtags) for i, p in enumerate(self.file.posts)]
        sources += [(f"series[{i}].hashtags", s.hashtags) for i, s in enumerate(self.file.series)]
        for where, tags in sources:
            for position, tag in enumerate(tags):
                message = readability_warning(tag)
                if message and tag.casefold() not in warned:
                    warned.add(tag.casefold())
                    self.problem(f"{where}[{position}]", message, "warning")

    # -- times --------------------------------------------------------------------------

    def posting_intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        opens, closes = self.settings.posting_hours
        first_day = start.astimezone(self.zone).date() - timedelta(days=1)
        last_day = end.astimezone(self.zone).date()
        intervals: list[tuple[datetime, datetime]] = []
        day = first_day
        while day <= last_day:
            close_day = day if closes > opens else day + timedelta(days=1)
            low = resolve_local(datetime.combine(day, opens), self.zone).instant
            high = resolve_local(datetime.combine(close_day, closes), self.zone).instant
            low, high = max(low, start), min(high, end)
            if low < high:
                if intervals and low <= intervals[-1][1]:
                    intervals[-1] = (intervals[-1][0], max(high, intervals[-1][1]))
                else:
                    intervals.append((low, high))
            day = _next_day(day)
        return intervals

    def occurrences(self, item: _Item, start: datetime, end: datetime) -> list[datetime]:
        assert isinstance(item.content, Series)  # noqa: S101 (callers pass series only)
        try:
            instants = list(self.expand_cron(item.content.cron, self.zone, start, end))
        except ValueError as error:
            self.problem(f"{item.where}.cron", str(error))
            return []
        if len(instants) > MAX_OCCURRENCES:
            self.problem(
                f"{item.where}.cron",
                f"fires {len(instants)} times in the window (at most {MAX_OCCURRENCES})",
            )
            return []
        if not instants:
            self.problem(f"{item.where}.cron", "never fires inside the campaign window", "warning")
        return [i.astimezone(UTC) for i in instants]

    def place(
        self,
        unplaced: list[_Item],
        busy: dict[str, list[datetime]],
        intervals: list[tuple[datetime, datetime]],
    ) -> dict[str, datetime]:
        """Give each post without ``at`` a slot: spread over the posting hours, in file
        order, at least ``min_spacing`` from the same account's other posts."""
        spacing = self.settings.min_spacing
        placed: dict[str, datetime] = {}
        if not unplaced:
            return placed
        posting = _PostingTime(intervals)
        if not posting.intervals:
            self.problem(
                "campaign.posting_hours",
                "the posting hours never overlap the campaign window, so posts without "
                "'at' have no slot",
            )
            return placed
        previous = posting.intervals[0][0]
        for rank, item in enumerate(unplaced):
            ideal = posting.walk(posting.total * ((rank + 0.5) / len(unplaced)))
            moment = posting.snap(_ceil_minute(max(ideal, previous)))
            # Each round moves past at least one busy instant or interval: bounded.
            rounds = sum(len(busy[name]) for name in item.accounts) + len(posting.intervals) + 2
            for _ in range(rounds):
                if moment is None:
                    break
                later = moment
                for name in item.accounts:
                    later = max(later, _clear_of(busy[name], later, spacing))
                if later == moment:
                    break
                moment = posting.snap(_ceil_minute(later))
            else:
                moment = None
            if moment is None:
                self.problem(
                    item.where,
                    "no free slot is left in the window for this post: widen posting_hours, "
                    "lower min_spacing, or give it an 'at'",
                )
                continue
            placed[item.where] = moment
            previous = moment
            for name in item.accounts:
                bisect.insort(busy[name], moment)
        return placed

    def spacing_warnings(self, firsts: Iterable[PlannedPublication]) -> None:
        spacing = self.settings.min_spacing
        by_account: dict[str, list[PlannedPublication]] = defaultdict(list)
        for publication in firsts:
            by_account[publication.account].append(publication)
        for name, publications in sorted(by_account.items()):
            publications.sort(key=lambda p: p.scheduled_at)
            for before, after in itertools.pairwise(publications):
                gap = after.scheduled_at - before.scheduled_at
                if gap < spacing:
                    self.problem(
                        self.where_by_id.get(after.post, ""),
                        f"{_label(before)} and {_label(after)} of account {name} are "
                        f"{format_duration(gap)} apart (min_spacing is "
                        f"{format_duration(spacing)})",
                        "warning",
                    )

    def duplicate_warnings(self, items: Sequence[_Item]) -> None:
        """Warn when one post sends the same text to several accounts of one server."""
        hosts = {name: account.host for name, account in self.file.accounts.items()}
        for item in items:
            if isinstance(item.content, Series):
                continue
            by_text: dict[tuple[str, str], list[str]] = defaultdict(list)
            for name, parts in item.parts.items():
                by_text[(hosts[name], parts[0][0])].append(name)
            for (host, _text), accounts in by_text.items():
                if len(accounts) > 1:
                    self.problem(
                        item.where,
                        f"the same text goes to {len(accounts)} accounts on {host} "
                        f"({', '.join(sorted(accounts))}): moderators may take it for spam",
                        "warning",
                    )
                    break

    # -- all together -------------------------------------------------------------------

    def run(self) -> Plan:
        window = self.window()
        items = self.items()
        self.hashtag_warnings()
        composed = [item for item in items if self.compose_item(item)]
        if window is None:
            return Plan(None, None, (), tuple(self.problems))
        start, end = window
        times = self.schedule(composed, start, end)
        publications: list[PlannedPublication] = []
        for item in composed:
            visibility = self.visibility(item)
            if visibility is None or item.where not in times:
                continue
            for instant in times[item.where]:
                publications.extend(self.publications_of(item, instant, visibility))
        publications.sort(key=lambda p: (p.scheduled_at, p.account, p.key))
        if not self.problems or all(p.severity == "warning" for p in self.problems):
            explicit = self.explicit_ids()
            self.spacing_warnings(p for p in publications if p.part == 1 and p.post in explicit)
            self.duplicate_warnings(composed)
        return Plan(start, end, tuple(publications), tuple(self.problems))

    def schedule(
        self, composed: list[_Item], start: datetime, end: datetime
    ) -> dict[str, list[datetime]]:
        """The instants of every post and series, by place in the file."""
        busy: dict[str, list[datetime]] = defaultdict(list)
        times: dict[str, list[datetime]] = {}
        unplaced: list[_Item] = []
        for item in composed:
            content = item.content
            if isinstance(content, Series):
                times[item.where] = self.occurrences(item, start, end)
            elif content.at is None:
                unplaced.append(item)
                continue
            else:
                instant = self.fixed_time(content.at, item.where, start, end)
                if instant is None:
                    continue
                times[item.where] = [instant]
            for name in item.accounts:
                busy[name].extend(times[item.where])
        for instants in busy.values():
            instants.sort()
        placed = self.place(unplaced, busy, self.posting_intervals(start, end))
        times.update((where, [moment]) for where, moment in placed.items())
        return times

    def fixed_time(
        self, wall: datetime, where: str, start: datetime, end: datetime
    ) -> datetime | None:
        """The instant of an explicit ``at``, or None (reported) when it cannot be used."""
        instant = self.resolve(wall, f"{where}.at")
        if instant is not None and not start <= instant <= end:
            self.problem(
                f"{where}.at",
                f"{_local(instant, self.zone)} is outside the campaign window "
                f"({_local(start, self.zone)} to {_local(end, self.zone)})",
            )
            return None
        return instant

    def explicit_ids(self) -> set[str]:
        """Posts whose times the organiser chose (``at`` or cron): spacing is theirs to see."""
        return {p.id for p in self.file.posts if p.at is not None} | {
            s.id for s in self.file.series
        }

    def publications_of(
        self, item: _Item, instant: datetime, visibility: tuple[Visibility, Visibility]
    ) -> list[PlannedPublication]:
        content = item.content
        campaign_id = self.settings.id
        local = instant.astimezone(self.zone)
        occurrence = occurrence_label(local) if isinstance(content, Series) else None
        language = content.language or self.settings.language
        result: list[PlannedPublication] = []
        for name in item.accounts:
            parts = item.parts[name]
            rules = self.rules[name]
            previous_key: str | None = None
            for number, (text, characters) in enumerate(parts, start=1):
                key = publication_key(campaign_id, content.id, name, number, occurrence)
                media = item.media if number == 1 else ()
                shown = visibility[0] if number == 1 else visibility[1]
                digest = content_hash(
                    {
                        "text": text,
                        "spoiler_text": content.spoiler_text,
                        "visibility": shown.value,
                        "language": language,
                        "sensitive": content.sensitive,
                        "media": [
                            {"sha256": m.sha256, "alt": m.alt, "focus": m.focus, "mime": m.mime}
                            for m in media
                        ],
                        "reply_to": previous_key,
                    }
                )
                result.append(
                    PlannedPublication(
                        key=key,
                        campaign=campaign_id,
                        post=content.id,
                        occurrence=occurrence,
                        account=name,
                        instance=self.file.accounts[name].instance,
                        part=number,
                        parts=len(parts),
                        scheduled_at=instant,
                        local_at=local,
                        text=text,
                        spoiler_text=content.spoiler_text,
                        visibility=shown,
                        language=language,
                        sensitive=content.sensitive,
                        hashtags=item.appended if number == 1 else (),
                        media=media,
                        reply_to=previous_key,
                        characters=characters,
                        limit=rules.limit,
                        counting=rules.counting.value,
                        content_hash=digest,
                    )
                )
                previous_key = key
        return result


def plan_campaign(
    campaign: CampaignFile,
    statement: Statement | None,
    media: Mapping[str, MediaFile],
    expand_cron: CronExpander,
    rules: Mapping[str, CountingRules] | None = None,
) -> Plan:
    """Plan ``campaign``: every publication with its UTC time, final text and key.

    ``media`` maps each media path written in the file to what the loader found; a path
    missing from it has already been reported by the loader. ``rules`` overrides how an
    account's server counts (from discovery); by default the file and the software decide.
    """
    return _Planner(campaign, statement, media, expand_cron, rules).run()


def _next_day(day: date) -> date:
    return day + timedelta(days=1)


class _PostingTime:
    """The posting intervals of the window, measured as one continuous stretch of time."""

    def __init__(self, intervals: list[tuple[datetime, datetime]]) -> None:
        # Intervals shorter than their first whole minute cannot hold a slot.
        self.intervals = [(low, high) for low, high in intervals if _ceil_minute(low) <= high]
        self.ends = [high for _low, high in self.intervals]
        self.before: list[timedelta] = []
        total = timedelta()
        for low, high in self.intervals:
            self.before.append(total)
            total += high - low
        self.total = total

    def walk(self, offset: timedelta) -> datetime:
        """The instant ``offset`` of posting time after the first interval opens."""
        index = max(bisect.bisect_right(self.before, offset) - 1, 0)
        low, high = self.intervals[index]
        return min(low + (offset - self.before[index]), high)

    def snap(self, moment: datetime) -> datetime | None:
        """``moment`` if it is in an interval, else the next opening; None past the last."""
        index = bisect.bisect_left(self.ends, moment)
        if index == len(self.intervals):
            return None
        return max(moment, _ceil_minute(self.intervals[index][0]))


def _ceil_minute(moment: datetime) -> datetime:
    if moment.second == 0 and moment.microsecond == 0:
        return moment
    floor = moment.replace(second=0, microsecond=0)
    return floor + timedelta(minutes=1)


def _clear_of(busy: list[datetime], moment: datetime, spacing: timedelta) -> datetime:
    """The first instant ≥ ``moment`` at least ``spacing`` away from every busy instant."""
    if spacing <= timedelta(0):
        return moment
    while True:
        index = bisect.bisect_left(busy, moment - spacing + timedelta(microseconds=1))
        if index < len(busy) and busy[index] < moment + spacing:
            moment = busy[index] + spacing
            continue
        return moment


def _local(instant: datetime, zone: ZoneInfo) -> str:
    return f"{instant.astimezone(zone):%Y-%m-%d %H:%M}"


def _label(publication: PlannedPublication) -> str:
    if publication.occurrence:
        return f"{publication.post!r} ({publication.occurrence})"
    return repr(publication.post)
