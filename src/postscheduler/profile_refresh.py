"""Keeping the cached server profiles fresh, off the publishing path (a daemon's interval job).

Discovery (:mod:`postscheduler.publishers.discovery`) caches each server's profile in the
store for :data:`~postscheduler.publishers.discovery.DEFAULT_TTL` (24 h). The publishing
path asks for a profile only when it needs one; :class:`ProfileRefresher` asks the servers
again *before* their cached profile runs out, so that publishing never waits on discovery
and a change of a server's limits is noticed while there is still time to act on it.

One :meth:`ProfileRefresher.refresh` reads the clock once, then for every instance the
stored accounts live on:

- an instance with **no cached profile** is left alone: it has never been discovered (the
  first publication of its accounts, or ``accounts --verify``, does that), and this job
  only refreshes what is known;
- a profile that is **fresh** — younger than ``ttl - margin``, where ``margin`` is how often
  the job runs, so that it is refreshed before the next run would find it stale — is kept;
- otherwise the server is **asked again** and the new profile saved. A server that cannot
  be asked is logged (``profile_refresh_failed``) and its old profile kept: the job never
  raises for one server, and the next run tries again.

When a refreshed profile differs from the cached one (software, version or a limit), the
change is logged (``profile_changed``) and ``on_change`` is called (the daemon drops its
cached publishers of that server, so they are rebuilt with the new profile). When what
counts changed — the software, ``max_characters`` or what a link costs — every queued
publication of the server's accounts (scheduled, retrying, uncertain or claimed) is
measured again with :mod:`postscheduler.domain.text`'s counting under the new profile, and
each one that does not fit any more is logged as a warning (``too_long_for_server``, with
its key, its count and the new limit): the server would refuse it, so the organisers
should shorten it in the campaign file. The count follows the server's own rules; a
``max_characters`` written in the campaign file is not in the store, and cannot make the
server accept more anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from postscheduler.domain.compose import CountingRules
from postscheduler.domain.software import Software, facts_for
from postscheduler.domain.states import State
from postscheduler.domain.text import Counting
from postscheduler.errors import DiscoveryError
from postscheduler.ports import AccountRecord, Clock, PublicationRecord, ServerProfile, Store
from postscheduler.publishers.discovery import (
    DEFAULT_TTL,
    describe_profile,
    discover,
    discovery_client,
    normalise_instance,
    software_of,
)

if TYPE_CHECKING:
    import httpx


log = logging.getLogger("postscheduler.profiles")

#: The publications re-measured when a server's limits change: those that may still be sent.
QUEUED: tuple[State, ...] = (State.SCHEDULED, State.RETRYING, State.UNCERTAIN, State.CLAIMED)
#: At most this many ``too_long_for_server`` lines per server and refresh; then one summary.
MOST_LINES = 20


@dataclass(frozen=True)
class TooLong:
    """A queued publication that its server's new limits no longer accept."""

    key: str
    campaign: str
    account: str
    post: str
    part: int
    characters: int
    limit: int


@dataclass(frozen=True)
class ProfileChange:
    """A server whose refreshed profile differs from the one cached before."""

    instance: str
    before: ServerProfile
    after: ServerProfile
    #: The stored accounts on that server.
    accounts: tuple[AccountRecord, ...]
    #: Its queued publications that do not fit the new profile (only measured when what
    #: counts changed: software, ``max_characters``, ``characters_per_url``).
    too_long: tuple[TooLong, ...] = ()

    @property
    def counting_changed(self) -> bool:
        """Whether the way the server counts, or how much it accepts, changed."""
        return _counting(self.before) != _counting(self.after)


@dataclass
class RefreshReport:
    """What one :meth:`ProfileRefresher.refresh` did."""

    #: Instances asked again whose new profile was saved.
    refreshed: list[str] = field(default_factory=list)
    #: Instances whose cached profile was still fresh (not asked).
    fresh: list[str] = field(default_factory=list)
    #: Instances never discovered (left to the publishing path).
    unknown: list[str] = field(default_factory=list)
    #: Instance → why it could not be asked (its old profile is kept).
    failed: dict[str, str] = field(default_factory=dict)
    changed: list[ProfileChange] = field(default_factory=list)


class ProfileRefresher:
    """Refreshes the stale cached profiles of the accounts' servers; see the module docstring.

    ``client`` is the httpx client to ask the servers with (default: a
    :func:`~postscheduler.publishers.discovery.discovery_client` owned, and closed by
    :meth:`close`). ``margin`` is how early a profile is refreshed before it is ``ttl`` old
    (the daemon passes how often it runs the job). Thread-safe as long as one refresh runs
    at a time (the daemon's job has ``max_instances=1``).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        client: httpx.Client | None = None,
        ttl: timedelta = DEFAULT_TTL,
        margin: timedelta = timedelta(0),
        on_change: Callable[[ProfileChange], None] | None = None,
    ) -> None:
        if not timedelta(0) <= margin < ttl:
            raise ValueError("the margin must be at least 0 and less than the TTL")
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self.margin = margin
        self.on_change = on_change or (lambda change: None)
        self._own_client = client is None
        self._client = client

    def close(self) -> None:
        """Close the httpx client if this refresher made it."""
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def _asker(self) -> httpx.Client:
        """The httpx client, made when a server is first asked (an idle daemon whose
        profiles are fresh never imports httpx)."""
        if self._client is None:
            self._client = discovery_client()
        return self._client

    def stale(self, profile: ServerProfile, now: datetime) -> bool:
        """Whether ``profile`` is due for a refresh at ``now`` (or comes from the future)."""
        age = now - profile.fetched_at
        return not timedelta(0) <= age < self.ttl - self.margin

    def refresh(self) -> RefreshReport:
        """Ask again every server whose cached profile is stale; see the module docstring.

        Errors of one server are logged and reported, never raised; a store that cannot be
        read raises (the daemon's job logs it and tries again at its next run).
        """
        now = self.clock.now()
        report = RefreshReport()
        for instance, accounts in _by_instance(self.store.accounts()).items():
            cached = self.store.profile(instance)
            if cached is None:
                report.unknown.append(instance)
                continue
            if not self.stale(cached, now):
                report.fresh.append(instance)
                continue
            try:
                profile = discover(instance, client=self._asker(), now=now)
            except DiscoveryError as error:
                report.failed[instance] = str(error)
                log.warning(
                    "%s; its profile of %s is kept and asked for again later",
                    error,
                    _iso(cached.fetched_at),
                    extra={"event": "profile_refresh_failed", "instance": instance},
                )
                continue
            self.store.save_profile(profile)
            report.refreshed.append(instance)
            log.debug(
                "%s: profile refreshed (%s)",
                instance,
                describe_profile(profile),
                extra={"event": "profile_refreshed", "instance": instance},
            )
            if _same(cached, profile):
                continue
            change = ProfileChange(instance, cached, profile, tuple(accounts))
            if change.counting_changed:
                change = replace(change, too_long=tuple(self._too_long(profile, accounts)))
            report.changed.append(change)
            _log_change(change)
            self.on_change(change)
        return report

    def _too_long(self, profile: ServerProfile, accounts: Sequence[AccountRecord]) -> list[TooLong]:
        found: list[TooLong] = []
        for account in accounts:
            rules = server_rules(profile, account)
            for state in QUEUED:
                for record in self.store.publications(
                    state=state, campaign=account.campaign, account=account.name
                ):
                    characters = rules.measure(record.text, record.spoiler_text)
                    if characters > rules.limit:
                        found.append(_too_long(record, characters, rules.limit))
        found.sort(key=lambda t: t.key)
        return found


def server_rules(profile: ServerProfile, account: AccountRecord) -> CountingRules:
    """How ``profile``'s server counts and how much it accepts, for one stored account.

    The discovered software's counting; for an unknown software, the one the account names
    in the campaign file, else the most cautious (code points, links at full length).
    """
    software = software_of(profile)
    if software is None:
        named = _software(account.software)
        counting = facts_for(named).counting if named is not None else Counting.GOTOSOCIAL
    else:
        counting = facts_for(software).counting
    return CountingRules(
        counting=counting, limit=profile.max_characters, url_length=profile.characters_per_url
    )


def _software(name: str) -> Software | None:
    try:
        software = Software(name)
    except ValueError:
        return None
    return None if software is Software.AUTO else software


def _by_instance(accounts: Sequence[AccountRecord]) -> dict[str, list[AccountRecord]]:
    """The accounts grouped by their server's normalised address (in order of address); an
    address that is not one (it never could have been discovered) is left out."""
    grouped: dict[str, list[AccountRecord]] = {}
    for account in accounts:
        try:
            instance = normalise_instance(account.instance)
        except DiscoveryError:
            continue
        grouped.setdefault(instance, []).append(account)
    return dict(sorted(grouped.items()))


def _counting(profile: ServerProfile) -> tuple[str, int, int]:
    return (profile.software, profile.max_characters, profile.characters_per_url)


def _same(before: ServerProfile, after: ServerProfile) -> bool:
    """Whether two profiles say the same, whatever their age."""
    return replace(before, fetched_at=after.fetched_at) == after


def _too_long(record: PublicationRecord, characters: int, limit: int) -> TooLong:
    return TooLong(
        key=record.key,
        campaign=record.campaign,
        account=record.account,
        post=record.post,
        part=record.part,
        characters=characters,
        limit=limit,
    )


def _log_change(change: ProfileChange) -> None:
    log.info(
        "%s changed: was %s, now %s",
        change.instance,
        describe_profile(change.before),
        describe_profile(change.after),
        extra={"event": "profile_changed", "instance": change.instance},
    )
    for item in change.too_long[:MOST_LINES]:
        log.warning(
            "%s: %d characters, and %s now accepts %d: it will be refused; shorten it in "
            "the campaign file",
            item.key,
            item.characters,
            change.instance,
            item.limit,
            extra={
                "event": "too_long_for_server",
                "key": item.key,
                "campaign": item.campaign,
                "account": item.account,
                "post": item.post,
            },
        )
    more = len(change.too_long) - MOST_LINES
    if more > 0:
        log.warning(
            "%s: %d more queued publications do not fit its new limit: shorten them in the "
            "campaign file",
            change.instance,
            more,
            extra={"event": "too_long_for_server", "instance": change.instance},
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
