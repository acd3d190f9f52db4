"""``postscheduler sync``: make the store match a campaign file, or refuse the file.

A valid file is planned and its difference applied in one transaction; an invalid one
changes nothing and is recorded as refused, with its error, so that ``status`` and the
daemon can show why the last edit did not take.

Each accepted reading is remembered with a **fingerprint** of everything the plan depends
on — the file's bytes, the statement's, each medium's SHA-256, this version of
postscheduler and the time-zone rules over the window. A file whose fingerprint matches the
last accepted one cannot plan differently, so it is not planned again ("unchanged").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from postscheduler import __version__
from postscheduler.campaign_file import LoadedCampaign, load_campaign
from postscheduler.check import check_loaded
from postscheduler.domain.localtime import resolve_local
from postscheduler.domain.problems import Problem
from postscheduler.domain.sync import SyncPlan
from postscheduler.errors import CampaignInvalid, ConfigError
from postscheduler.ports import FileVersion, Store
from postscheduler.store.common import campaign_records

try:
    import tomli as _toml
except ImportError:  # pragma: no cover
    import tomllib as _toml  # type: ignore[no-redef]

#: The zone's offset is sampled this often over the window for the fingerprint.
_ZONE_SAMPLE = timedelta(hours=1)
_MAX_ZONE_SAMPLES = 50_000
#: How many keys of each group the text report lists.
KEYS_SHOWN = 20


@dataclass(frozen=True)
class SyncOutcome:
    """What a sync did (or, with ``dry_run``, would do) to one campaign."""

    path: str
    campaign: str
    plan: SyncPlan
    dry_run: bool
    warnings: tuple[str, ...] = ()
    #: Set when the file was not planned again: the time of the accepted reading it matches.
    up_to_date_since: datetime | None = None

    def summary(self) -> str:
        """One line: the counts, or that nothing changed."""
        if self.up_to_date_since is not None:
            return (
                f"{self.campaign}: unchanged since the sync of "
                f"{self.up_to_date_since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
            )
        counts = self.plan.counts()
        if self.plan.is_empty and not self.plan.refused:
            return f"{self.campaign}: unchanged ({counts['unchanged']} publications)"
        parts = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
        if self.plan.ended:
            parts += (
                f" ({len(self.plan.ended)} of them ended at once with the thread part they "
                "reply to)"
            )
        return (
            f"{self.campaign}: " + ("(dry run, nothing written) " if self.dry_run else "") + parts
        )

    def key_lines(self, most: int = KEYS_SHOWN) -> list[str]:
        """``added  KEY`` lines for each group that changed, at most ``most`` per group."""
        plan = self.plan
        groups = (
            ("added", [p.key for p in plan.added]),
            ("changed", [p.key for p in plan.changed]),
            ("revived", [p.key for p in plan.revived]),
            ("cancelled", [s.key for s in plan.cancelled]),
        )
        lines: list[str] = []
        for name, keys in groups:
            lines.extend(f"{name:9s}  {key}" for key in keys[:most])
            if len(keys) > most:
                lines.append(f"{name:9s}  … and {len(keys) - most} more (--json lists them all)")
        lines.extend(f"{'ended':9s}  {e.key} ({e.cause})" for e in plan.ended[:most])
        if len(plan.ended) > most:
            lines.append(f"ended      … and {len(plan.ended) - most} more (--json lists them all)")
        return lines

    def as_json(self) -> dict[str, Any]:
        """The outcome as ``sync --json`` prints it."""
        plan = self.plan
        return {
            "file": self.path,
            "campaign": self.campaign,
            "dry_run": self.dry_run,
            "up_to_date_since": (
                self.up_to_date_since.isoformat() if self.up_to_date_since else None
            ),
            "counts": plan.counts(),
            "added": [p.key for p in plan.added],
            "changed": [p.key for p in plan.changed],
            "revived": [p.key for p in plan.revived],
            "cancelled": [s.key for s in plan.cancelled],
            "ended": [{"key": e.key, "state": e.state.value, "cause": e.cause} for e in plan.ended],
            "refused": [{"key": r.key, "reason": r.reason} for r in plan.refused],
            "unchanged": len(plan.unchanged),
            "warnings": list(self.warnings),
        }


def fingerprint(loaded: LoadedCampaign, raw: bytes) -> str:
    """SHA-256 of everything the plan of ``loaded`` depends on (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(f"postscheduler {__version__}\n".encode())
    digest.update(hashlib.sha256(raw).digest())
    if loaded.statement is not None:
        digest.update("\n\n".join(loaded.statement.paragraphs).encode())
    for path in sorted(loaded.media):
        digest.update(f"{path}={loaded.media[path].sha256}\n".encode())
    settings = loaded.campaign.campaign
    zone = settings.zone
    start = resolve_local(settings.start, zone).instant
    end = resolve_local(settings.end, zone).instant
    step = max(_ZONE_SAMPLE, (end - start) / _MAX_ZONE_SAMPLES)
    moment = start
    while moment <= end + step:
        digest.update(str(moment.astimezone(zone).utcoffset()).encode())
        moment += step
    return digest.hexdigest()


def sync_file(
    store: Store, path: str | Path, now: datetime, *, dry_run: bool = False, force: bool = False
) -> SyncOutcome:
    """Check the campaign file at ``path`` and apply it to ``store``.

    Raises :class:`CampaignInvalid` (with every problem) for a file that cannot be used;
    unless ``dry_run``, that refusal is recorded in the store first, and nothing else
    changes. Unless ``force``, a file whose fingerprint matches the last accepted reading
    is not planned again.
    """
    shown = str(path)
    resolved = str(Path(path).resolve())
    try:
        loaded = load_campaign(path)
    except CampaignInvalid as error:
        _refuse(store, shown, now, error.problems, dry_run=dry_run)
        raise
    except ConfigError as error:
        _refuse(store, shown, now, [error.problem], dry_run=dry_run)
        raise CampaignInvalid(shown, [error.problem]) from None
    campaign_id = loaded.campaign.campaign.id
    stamp = fingerprint(loaded, Path(path).read_bytes())
    if not force:
        accepted = [v for v in store.file_versions(campaign_id) if v.accepted]
        if accepted and accepted[0].sha256 == stamp:
            empty = SyncPlan((), (), (), (), (), ())
            return SyncOutcome(shown, campaign_id, empty, dry_run, (), accepted[0].at)
    report = check_loaded(shown, loaded)
    if not report.ok or report.window is None:
        _refuse(store, shown, now, report.problems, dry_run=dry_run)
        raise CampaignInvalid(shown, report.problems)
    campaign, accounts = campaign_records(loaded.campaign, resolved, report.window)
    version = FileVersion(path=resolved, sha256=stamp, at=now, campaign=campaign.id)
    plan = store.sync(campaign, accounts, report.publications, version, dry_run=dry_run)
    warnings = tuple(p.render(shown) for p in report.warnings)
    return SyncOutcome(shown, campaign.id, plan, dry_run, warnings)


def _refuse(store: Store, shown: str, now: datetime, problems: Any, *, dry_run: bool) -> None:
    """Remember that this reading of the file was refused, and why (not in a dry run)."""
    if dry_run:
        return
    errors: list[Problem] = [p for p in problems if p.severity == "error"]
    file = Path(shown)
    try:
        raw = file.read_bytes()
    except OSError:
        raw = b""
    campaign: str | None = None
    try:
        identity = _toml.loads(raw.decode("utf-8")).get("campaign", {}).get("id")
        campaign = identity if isinstance(identity, str) else None
    except (UnicodeDecodeError, _toml.TOMLDecodeError, AttributeError):
        campaign = None
    store.record_file_version(
        FileVersion(
            path=str(file.resolve()) if raw else shown,
            sha256=hashlib.sha256(raw).hexdigest(),
            at=now,
            campaign=campaign,
            accepted=False,
            error="\n".join(p.render(shown) for p in errors),
        )
    )
