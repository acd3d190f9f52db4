"""``postscheduler check``: the campaign file as it will be published, or what is wrong.

Reads and plans the file (no network, no database) and renders the result as a table for
people or as JSON for programs. The report is built even when the file is wrong, so that
every problem is shown at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postscheduler.campaign_file import LoadedCampaign, load_campaign, locate
from postscheduler.cron import expand_cron
from postscheduler.domain.compose import CountingRules
from postscheduler.domain.plan import PlannedPublication, account_rules, plan_campaign
from postscheduler.domain.problems import Problem
from postscheduler.domain.software import Software, facts_for
from postscheduler.errors import (
    CampaignInvalid,
    ConfigError,
    DiscoveryError,
    PostschedulerError,
)


@dataclass(frozen=True)
class AccountSummary:
    """How one account's posts were measured."""

    name: str
    instance: str
    software: str
    assumed: bool
    limit: int


@dataclass(frozen=True)
class CheckReport:
    """Everything ``check`` found: problems (errors first) and the planned publications."""

    path: str
    problems: tuple[Problem, ...]
    publications: tuple[PlannedPublication, ...]
    loaded: LoadedCampaign | None = None
    window: tuple[datetime, datetime] | None = None
    #: What the servers said of themselves (``check --online``).
    notes: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Problem]:
        """The problems that stop the campaign."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems worth reading that do not stop it."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not self.errors

    def accounts(self) -> list[AccountSummary]:
        """The accounts, with the counting rules used for each."""
        if self.loaded is None:
            return []
        result = []
        for name, account in self.loaded.campaign.accounts.items():
            facts = facts_for(account.software)
            result.append(
                AccountSummary(
                    name=name,
                    instance=account.instance,
                    software=facts.label,
                    assumed=account.software is Software.AUTO,
                    limit=account_rules(account).limit,
                )
            )
        return result


def check_file(
    path: str | Path,
    *,
    online: Callable[[LoadedCampaign], tuple[dict[str, CountingRules], list[str]]] | None = None,
) -> CheckReport:
    """Load and plan the campaign at ``path``; never raises for a problem in the file.

    With ``online``, each account's server is asked how it counts (discovery) and the plan
    follows its answers; a server that cannot be asked is reported as an error.
    """
    shown = str(path)
    try:
        loaded = load_campaign(path)
    except CampaignInvalid as error:
        return CheckReport(shown, _ordered(error.problems), ())
    except ConfigError as error:
        return CheckReport(shown, (error.problem,), ())
    if online is None:
        return check_loaded(shown, loaded)
    try:
        rules, notes = online(loaded)
    except DiscoveryError as error:
        where = f"accounts.{error.account}.instance" if error.account else ""
        problem = Problem(where, f"cannot ask {error.instance} what server it is: {error.what}")
        return CheckReport(shown, tuple(locate([problem], loaded.source)), (), loaded)
    except PostschedulerError as error:
        problem = Problem("", str(error))
        return CheckReport(shown, tuple(locate([problem], loaded.source)), (), loaded)
    report = check_loaded(shown, loaded, rules)
    return CheckReport(
        report.path,
        report.problems,
        report.publications,
        report.loaded,
        report.window,
        tuple(notes),
    )


def check_loaded(
    shown: str, loaded: LoadedCampaign, rules: Mapping[str, CountingRules] | None = None
) -> CheckReport:
    """Plan a campaign already loaded (``shown`` names its file in messages); ``rules``
    are how each account's server counts, when it was asked (``check --online``)."""
    plan = plan_campaign(loaded.campaign, loaded.statement, loaded.media, expand_cron, rules)
    problems = _ordered([*loaded.warnings, *locate(plan.problems, loaded.source)])
    window = (
        (plan.window_start, plan.window_end)
        if plan.window_start is not None and plan.window_end is not None
        else None
    )
    publications = plan.publications if not any(p.severity == "error" for p in problems) else ()
    return CheckReport(shown, problems, publications, loaded, window)


def _ordered(problems: Sequence[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=lambda p: (p.severity != "error", p.line or 0)))


# -- JSON -----------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def publication_json(publication: PlannedPublication) -> dict[str, Any]:
    """One publication as ``check --json`` shows it."""
    return {
        "key": publication.key,
        "post": publication.post,
        "occurrence": publication.occurrence,
        "account": publication.account,
        "instance": publication.instance,
        "part": publication.part,
        "parts": publication.parts,
        "at": _iso(publication.scheduled_at),
        "local_at": publication.local_at.isoformat(),
        "text": publication.text,
        "spoiler_text": publication.spoiler_text,
        "visibility": publication.visibility.value,
        "language": publication.language,
        "sensitive": publication.sensitive,
        "hashtags": list(publication.hashtags),
        "media": [
            {"path": m.path, "alt": m.alt, "mime": m.mime, "size": m.size, "focus": m.focus}
            for m in publication.media
        ],
        "in_reply_to": publication.reply_to,
        "characters": publication.characters,
        "limit": publication.limit,
        "counting": publication.counting,
        "content_hash": publication.content_hash,
    }


def _problem_json(report: CheckReport, problem: Problem) -> dict[str, Any]:
    return {
        "file": report.path,
        "line": problem.line,
        "where": problem.where,
        "message": problem.message,
    }


def report_json(report: CheckReport) -> str:
    """The report as the JSON document of ``check --json``."""
    document = {
        "ok": report.ok,
        "file": report.path,
        "errors": [_problem_json(report, p) for p in report.errors],
        "warnings": [_problem_json(report, p) for p in report.warnings],
        "accounts": [
            {
                "name": a.name,
                "instance": a.instance,
                "software": a.software,
                "software_assumed": a.assumed,
                "limit": a.limit,
            }
            for a in report.accounts()
        ],
        "publications": [publication_json(p) for p in report.publications],
    }
    return json.dumps(document, ensure_ascii=False)


# -- text -----------------------------------------------------------------------------------


def _first_words(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def report_text(report: CheckReport, *, full: bool = False, width: int = 100) -> str:
    """The report as a table for people; ``full`` adds every text exactly as it will be sent."""
    lines: list[str] = []
    loaded = report.loaded
    if loaded is not None and report.window is not None:
        settings = loaded.campaign.campaign
        zone = settings.zone
        start, end = (moment.astimezone(zone) for moment in report.window)
        lines.append(f"{settings.name} ({settings.id})")
        lines.append(
            f"window: {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {settings.timezone} "
            f"({_iso(report.window[0])} to {_iso(report.window[1])})"
        )
        for account in [] if report.notes else report.accounts():
            assumed = (
                " (assumed: software = auto until the server is asked)" if account.assumed else ""
            )
            lines.append(
                f"account {account.name}: {account.instance}, {account.software}, "
                f"{account.limit} characters{assumed}"
            )
        lines.append("")
    if report.publications:
        lines.extend(_table(report.publications, width))
        if full:
            for publication in report.publications:
                lines.extend(_full(publication))
        posts = len({(p.post, p.occurrence) for p in report.publications})
        accounts = len({p.account for p in report.publications})
        lines.append("")
        lines.append(
            f"{len(report.publications)} publications ({posts} posts, {accounts} accounts)"
        )
    return "\n".join(lines)


def problems_text(report: CheckReport) -> list[str]:
    """One line per problem, errors first, each naming the file, line and place."""
    return [p.render(report.path) for p in report.problems]


def summary_line(report: CheckReport) -> str:
    """``ok`` or how many errors, and how many warnings."""
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "ok" if report.ok else f"{errors} error{'s' * (errors != 1)}"
    return f"{report.path}: {verdict}, {warnings} warning{'s' * (warnings != 1)}"


def _table(publications: Sequence[PlannedPublication], width: int) -> list[str]:
    rows = [
        (
            f"{p.local_at:%Y-%m-%d %H:%M %z}",
            f"{p.scheduled_at.astimezone(UTC):%m-%d %H:%MZ}",
            p.account,
            p.post if p.occurrence is None else f"{p.post}@{p.occurrence[-4:]}",
            f"{p.part}/{p.parts}",
            f"{p.characters}/{p.limit}",
        )
        for p in publications
    ]
    headers = ("local time", "UTC", "account", "post", "part", "chars")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    used = sum(widths) + 2 * len(widths)
    words = max(20, width - used)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + "  text"]
    for row, publication in zip(rows, publications, strict=True):
        cells = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        out.append(f"{cells}  {_first_words(publication.text, words)}")
    return out


def _full(publication: PlannedPublication) -> list[str]:
    head = (
        f"── {publication.key}  {publication.local_at:%Y-%m-%d %H:%M %Z}  "
        f"{publication.visibility.value}, {publication.language}, "
        f"{publication.characters}/{publication.limit} ({publication.counting})"
    )
    lines = ["", head]
    if publication.spoiler_text:
        lines.append(f"CW: {publication.spoiler_text}")
    lines.extend(publication.text.splitlines() or [""])
    for media in publication.media:
        lines.append(f"[{media.mime}: {media.path}] alt: {media.alt}")
    if publication.reply_to:
        lines.append(f"(replies to {publication.reply_to})")
    return lines
