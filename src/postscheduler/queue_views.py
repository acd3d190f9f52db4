"""What the queue commands print: status, queue, show and export, as text, JSON, CSV or ICS.

Pure rendering — no store, no clock, no file: every function takes the records it shows
(and "now", where a time is shown relative to it) and returns a string or a JSON-ready
value, so that the same input always gives the same output.

Every time is shown in UTC (``2017-10-05T12:00:00Z``); the queue table can add a local
column. Text that came from outside (campaign files, servers' error messages) is cleaned
of control characters before it reaches a terminal or a calendar, so that it can neither
move the cursor nor break a line it should not.

The ICS export follows RFC 5545: TEXT values escaped (``\\\\ ; , newline``), content lines
folded at 75 octets without splitting a UTF-8 character, CRLF line endings.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from postscheduler import __version__
from postscheduler.domain.states import State
from postscheduler.ports import (
    STALE_AFTER_BEATS,
    CampaignRecord,
    PublicationRecord,
    StatusRow,
    TransitionRecord,
    WorkerRecord,
)

#: The order states are listed in, everywhere.
STATES: tuple[State, ...] = tuple(State)
#: What a calendar event lasts (a post takes no time; five minutes shows on every calendar).
EVENT_DURATION = "PT5M"
#: The longest content line of an iCalendar file, in octets, CRLF excluded (RFC 5545 §3.1).
ICS_LINE_OCTETS = 75
PRODID = f"-//postscheduler//postscheduler {__version__}//EN"
#: Columns of the CSV export, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "key",
    "campaign",
    "post",
    "occurrence",
    "account",
    "part",
    "parts",
    "scheduled_at",
    "due_at",
    "state",
    "attempt",
    "next_attempt_at",
    "published_at",
    "remote_id",
    "remote_url",
    "last_error",
    "cause",
    "visibility",
    "language",
    "sensitive",
    "spoiler_text",
    "media",
    "reply_to",
    "content_hash",
    "updated_at",
    "text",
)

# C0 controls but tab and newline, DEL, C1 controls: never shown raw.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ICS_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


# -- small pieces ---------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    """``moment`` in UTC as ISO 8601 with a ``Z`` (``2017-10-05T12:00:00Z``); None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def span(delta: timedelta) -> str:
    """A length of time, its two largest units, rounded down: ``3d 4h``, ``2h 10m``, ``5m``.

    Negative spans are measured by their size. Under a minute gives ``0m``.
    """
    minutes = int(abs(delta.total_seconds())) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def relative(moment: datetime, now: datetime) -> str:
    """When ``moment`` is, seen from ``now``: ``in 2h 10m``, ``5m late``, or ``now``.

    Within a minute either way is ``now``; otherwise the span is rounded down to the minute.
    """
    delta = moment - now
    if abs(delta) < timedelta(minutes=1):
        return "now"
    return f"in {span(delta)}" if delta > timedelta(0) else f"{span(delta)} late"


def clean(text: str) -> str:
    """``text`` with control characters (but newline and tab) shown as ``\\x1b``-style escapes.

    Campaign texts and servers' error messages reach the terminal through this: an escape
    sequence in them is shown, never obeyed.
    """
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def first_words(text: str, width: int) -> str:
    """``text`` on one line (whitespace runs made one space), cut to ``width`` with ``…``."""
    flat = " ".join(clean(text).split())
    if len(flat) <= width:
        return flat
    return flat[: max(width - 1, 0)].rstrip() + "…"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    widths[-1] = 0
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    return lines


def publication_json(record: PublicationRecord) -> dict[str, Any]:
    """Every field of a stored publication, JSON-ready (times in UTC ISO 8601)."""
    return {
        "key": record.key,
        "campaign": record.campaign,
        "post": record.post,
        "occurrence": record.occurrence,
        "account": record.account,
        "part": record.part,
        "parts": record.parts,
        "scheduled_at": iso(record.scheduled_at),
        "due_at": iso(record.due_at),
        "state": record.state.value,
        "attempt": record.attempt,
        "next_attempt_at": iso(record.next_attempt_at),
        "lease_owner": record.lease_owner,
        "lease_expires_at": iso(record.lease_expires_at),
        "remote_id": record.remote_id,
        "remote_url": record.remote_url,
        "published_at": iso(record.published_at),
        "last_error": record.last_error,
        "cause": record.cause,
        "updated_at": iso(record.updated_at),
        "text": record.text,
        "spoiler_text": record.spoiler_text,
        "visibility": record.visibility,
        "language": record.language,
        "sensitive": record.sensitive,
        "media": [dict(m) for m in record.media],
        "reply_to": record.reply_to,
        "content_hash": record.content_hash,
    }


def transition_json(line: TransitionRecord) -> dict[str, Any]:
    """One history line, JSON-ready."""
    return {
        "at": iso(line.at),
        "from": line.from_state.value if line.from_state is not None else None,
        "to": line.to_state.value,
        "cause": line.cause,
        "attempt": line.attempt,
        "actor": line.actor,
        "detail": line.detail,
    }


# -- status ---------------------------------------------------------------------------------


def _campaign_index(campaigns: Iterable[CampaignRecord]) -> dict[str, CampaignRecord]:
    return {c.id: c for c in campaigns}


def _grouped(
    rows: Sequence[StatusRow], campaigns: Sequence[CampaignRecord]
) -> list[tuple[str, CampaignRecord | None, list[StatusRow]]]:
    """Rows by campaign: every campaign given (by id), then any row whose campaign is not."""
    known = _campaign_index(campaigns)
    order = sorted(known) + sorted({r.campaign for r in rows} - set(known))
    return [
        (
            ident,
            known.get(ident),
            sorted((r for r in rows if r.campaign == ident), key=lambda r: r.account),
        )
        for ident in order
    ]


def _account_state(row: StatusRow) -> str:
    if row.held_reason:
        return f"held: {row.held_reason}"
    return "paused" if row.paused else "active"


def status_json(
    rows: Sequence[StatusRow],
    campaigns: Sequence[CampaignRecord],
    now: datetime,
    workers: Sequence[WorkerRecord] = (),
) -> dict[str, Any]:
    """The status as ``status --json`` prints it.

    One entry per campaign (every campaign given, by id), each with its accounts; each
    account has a count for every one of the eight states (zeros included), its total, the
    next due time (UTC ISO, seconds from ``now`` — negative when late — and in words), its
    last error, whether it is paused (itself or through its campaign) and why it is held.
    ``workers`` lists the daemons' heartbeat rows (:func:`workers_json`).
    """
    document: list[dict[str, Any]] = []
    for ident, campaign, found in _grouped(rows, campaigns):
        accounts = []
        for row in found:
            due = row.next_due
            accounts.append(
                {
                    "name": row.account,
                    "counts": {s.value: row.counts.get(s, 0) for s in STATES},
                    "total": sum(row.counts.values()),
                    "next_due": iso(due),
                    "next_due_in_seconds": (
                        int((due - now).total_seconds()) if due is not None else None
                    ),
                    "next_due_relative": relative(due, now) if due is not None else None,
                    "last_error": row.last_error,
                    "paused": row.paused,
                    "held_reason": row.held_reason,
                }
            )
        document.append(
            {
                "id": ident,
                "name": campaign.name if campaign else None,
                "timezone": campaign.timezone if campaign else None,
                "window_start": iso(campaign.window_start) if campaign else None,
                "window_end": iso(campaign.window_end) if campaign else None,
                "paused": campaign.paused if campaign else False,
                "accounts": accounts,
            }
        )
    return {"now": iso(now), "campaigns": document, "workers": workers_json(workers, now)}


def counts_text(counts: dict[State, int]) -> str:
    """``12 scheduled, 3 published``: the states in their usual order, zeros left out."""
    shown = [f"{counts[s]} {s.value}" for s in STATES if counts.get(s)]
    return ", ".join(shown) if shown else "no publications"


def status_table(
    rows: Sequence[StatusRow],
    campaigns: Sequence[CampaignRecord],
    now: datetime,
    *,
    error_width: int = 60,
) -> str:
    """The status for people: per campaign a heading, then one line per account.

    Each account line shows whether it is active, paused or held (and why), its counts by
    state (zeros left out), its next due time (UTC and relative to ``now``) and its last
    error on one line, cut to ``error_width`` characters. No campaign gives one line
    saying so.
    """
    if not rows and not campaigns:
        return "no campaign in the database (run 'postscheduler sync CAMPAIGN.toml')"
    out: list[str] = []
    for ident, campaign, found in _grouped(rows, campaigns):
        if out:
            out.append("")
        if campaign is not None:
            paused = "  [paused]" if campaign.paused else ""
            out.append(f"{clean(campaign.name)} ({ident}){paused}")
            out.append(
                f"window: {iso(campaign.window_start)} to {iso(campaign.window_end)} "
                f"({campaign.timezone})"
            )
        else:
            out.append(ident)
        if not found:
            out.append("no accounts")
            continue
        table_rows = [
            (
                row.account,
                clean(_account_state(row)),
                counts_text(row.counts),
                (
                    f"{iso(row.next_due)} ({relative(row.next_due, now)})"
                    if row.next_due is not None
                    else "-"
                ),
                first_words(row.last_error, error_width) if row.last_error else "-",
            )
            for row in found
        ]
        out.extend(
            _table(("account", "state", "publications", "next due", "last error"), table_rows)
        )
    return "\n".join(out)


# -- workers (status) -----------------------------------------------------------------------


def age(delta: timedelta) -> str:
    """How long ago, to the second while it is short: ``12s``, ``2m 5s``, then as :func:`span`.

    Negative spans (a clock behind another's) are measured by their size."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m {rest}s" if rest else f"{minutes}m"
    return span(delta)


def worker_state(worker: WorkerRecord, now: datetime) -> str:
    """``running``, ``stopping``, ``stopped``, or ``stale`` (running or stopping, but not
    seen for more than :data:`~postscheduler.ports.STALE_AFTER_BEATS` of its beats)."""
    return "stale" if worker.stale(now) else worker.state.value


def workers_json(workers: Sequence[WorkerRecord], now: datetime) -> list[dict[str, Any]]:
    """The workers as ``status --json`` lists them: every field of each row, how many
    seconds ago it was written, and whether it is stale."""
    return [
        {
            "owner": w.owner,
            "hostname": w.info.hostname,
            "pid": w.info.pid,
            "version": w.info.version,
            "state": w.state.value,
            "stale": w.stale(now),
            "started_at": iso(w.info.started_at),
            "last_seen_at": iso(w.last_seen_at),
            "seen_seconds_ago": int((now - w.last_seen_at).total_seconds()),
            "beat_every_seconds": int(w.info.beat_every.total_seconds()),
            "files": list(w.info.files),
            "campaigns": list(w.info.campaigns),
        }
        for w in workers
    ]


def workers_table(workers: Sequence[WorkerRecord], now: datetime) -> str:
    """The workers for people: one line each — owner, state (``stale`` for one that stopped
    beating), when last seen, since when it runs, its version and campaigns — then a note
    saying what stale means when one is."""
    if not workers:
        return "workers: none has written a heartbeat (no `postscheduler run` yet)"
    rows = [
        (
            clean(w.owner),
            worker_state(w, now),
            f"{age(now - w.last_seen_at)} ago",
            iso(w.info.started_at) or "-",
            clean(w.info.version),
            clean(", ".join(w.info.campaigns)) or "-",
        )
        for w in workers
    ]
    lines = [
        "workers",
        *_table(("owner", "state", "last seen", "started", "version", "campaigns"), rows),
    ]
    stale = [w for w in workers if w.stale(now)]
    if stale:
        lines.append(
            f"stale: not seen for more than {STALE_AFTER_BEATS} heartbeats — dead, hung or cut "
            "off from the database; what it had claimed goes back to the queue when its lease "
            "runs out"
        )
    return "\n".join(lines)


# -- queue ----------------------------------------------------------------------------------


def queue_json(records: Sequence[PublicationRecord]) -> list[dict[str, Any]]:
    """The publications as ``queue --json`` prints them: every field of each, in order."""
    return [publication_json(r) for r in records]


def queue_table(
    records: Sequence[PublicationRecord],
    zone: tzinfo | None = None,
    *,
    now: datetime | None = None,
    width: int = 100,
) -> str:
    """The publications for people, one per line, in the order given.

    Columns: due time in UTC, then in ``zone`` when given, then how far it is from ``now``
    when given, key, state, attempt, and the first words of the text, cut so that a line
    fits ``width`` characters (at least 20 characters of text are always shown). No
    publication gives one line saying so.
    """
    if not records:
        return "no publication matches"
    headers = ["due (UTC)"]
    if zone is not None:
        headers.append(f"local ({zone})")
    if now is not None:
        headers.append("when")
    headers += ["key", "state", "try"]
    rows: list[list[str]] = []
    for record in records:
        row = [f"{record.due_at.astimezone(UTC):%Y-%m-%d %H:%M}Z"]
        if zone is not None:
            row.append(f"{record.due_at.astimezone(zone):%Y-%m-%d %H:%M %z}")
        if now is not None:
            row.append(relative(record.due_at, now))
        row += [record.key, record.state.value, str(record.attempt)]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    words = max(20, width - sum(widths) - 2 * len(widths))
    text_rows = [
        [*row, first_words(record.text, words)] for row, record in zip(rows, records, strict=True)
    ]
    return "\n".join(_table([*headers, "text"], text_rows))


# -- show -----------------------------------------------------------------------------------


def show_json(record: PublicationRecord, history: Sequence[TransitionRecord]) -> dict[str, Any]:
    """One publication as ``show --json`` prints it: every field, and its history."""
    return {**publication_json(record), "history": [transition_json(h) for h in history]}


def history_line(line: TransitionRecord) -> str:
    """``2017-10-01T12:00:00Z  scheduled → cancelled  cancelled by hand  attempt 0  cli``."""
    before = line.from_state.value if line.from_state is not None else "(new)"
    text = (
        f"{iso(line.at)}  {before} → {line.to_state.value}  {clean(line.cause)}  "
        f"attempt {line.attempt}  {clean(line.actor)}"
    )
    if line.detail:
        text += f"  {first_words(line.detail, 200)}"
    return text


def show_text(record: PublicationRecord, history: Sequence[TransitionRecord]) -> str:
    """One publication for people: every field, its whole text (with its content warning
    and each medium's alt text), then its history, oldest first."""
    fields: list[tuple[str, str | None]] = [
        ("campaign", record.campaign),
        ("post", record.post),
        ("occurrence", record.occurrence),
        ("account", record.account),
        ("part", f"{record.part} of {record.parts}"),
        ("state", record.state.value),
        ("cause", record.cause),
        ("attempt", str(record.attempt)),
        ("scheduled at", iso(record.scheduled_at)),
        ("next attempt at", iso(record.next_attempt_at)),
        ("due at", iso(record.due_at)),
        ("lease", record.lease_owner),
        ("lease expires at", iso(record.lease_expires_at)),
        ("published at", iso(record.published_at)),
        ("remote id", record.remote_id),
        ("remote url", record.remote_url),
        ("last error", record.last_error),
        ("visibility", record.visibility),
        ("language", record.language),
        ("sensitive", "yes" if record.sensitive else "no"),
        ("in reply to", record.reply_to),
        ("content hash", record.content_hash),
        ("updated at", iso(record.updated_at)),
    ]
    width = max(len(name) for name, _ in fields)
    out = [record.key]
    out.extend(
        f"  {name.ljust(width)}  {clean(value)}" for name, value in fields if value is not None
    )
    out.append("")
    if record.spoiler_text:
        out.append(f"CW: {clean(record.spoiler_text)}")
    out.append("text:")
    out.extend(f"  {line}" for line in (clean(record.text).splitlines() or [""]))
    for medium in record.media:
        kind = medium.get("mime") or "media"
        path = medium.get("path") or "?"
        out.append(
            f"[{clean(str(kind))}: {clean(str(path))}] alt: {clean(str(medium.get('alt') or ''))}"
        )
    out.append("")
    out.append("history:")
    out.extend(f"  {history_line(h)}" for h in history)
    if not history:
        out.append("  (none)")
    return "\n".join(out)


# -- export ---------------------------------------------------------------------------------


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def export_csv(records: Sequence[PublicationRecord]) -> str:
    """The publications as CSV (RFC 4180: CRLF, fields quoted when needed), one header row
    of :data:`CSV_COLUMNS`; empty cells for missing values, media as a JSON list."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        data = publication_json(record)
        writer.writerow([_csv_value(data[column]) for column in CSV_COLUMNS])
    return buffer.getvalue()


def export_json(records: Sequence[PublicationRecord]) -> str:
    """The publications as a JSON array of :func:`publication_json` objects, ending in a
    newline."""
    return json.dumps(queue_json(records), ensure_ascii=False, indent=2) + "\n"


def ics_escape(text: str) -> str:
    """``text`` as an RFC 5545 TEXT value: ``\\``, ``;`` and ``,`` escaped with a backslash,
    each line break (CRLF, CR or LF) as ``\\n``, other control characters (tab aside)
    dropped, since the RFC does not allow them."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    text = text.replace("\n", "\\n")
    return _ICS_CONTROLS.sub("", text)


def ics_fold(line: str, limit: int = ICS_LINE_OCTETS) -> str:
    """One content line folded as RFC 5545 §3.1 asks: physical lines of at most ``limit``
    octets of UTF-8 (a continuation's leading space included), joined by CRLF + space,
    never splitting a character. Unfolding (removing every CRLF + space) gives ``line``
    back. ``line`` must hold no CR or LF."""
    if "\r" in line or "\n" in line:
        raise ValueError("a content line cannot hold a line break: escape it first")
    pieces: list[str] = []
    current: list[str] = []
    size, room = 0, limit
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > room:
            pieces.append("".join(current))
            current, size, room = [], 0, limit - 1
        current.append(char)
        size += octets
    pieces.append("".join(current))
    return "\r\n ".join(pieces)


def _ics_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _uri(value: str) -> str:
    """A URI value: no escaping in iCalendar, but never a control character or a space."""
    return re.sub(r"[\x00-\x20\x7f]", "", value)


def _calendar_name(
    records: Sequence[PublicationRecord], campaigns: Sequence[CampaignRecord]
) -> str:
    names = _campaign_index(campaigns)
    shown = sorted({r.campaign for r in records} | set(names))
    if not shown:
        return "postscheduler"
    return ", ".join(names[c].name if c in names else c for c in shown)


def ics_event(record: PublicationRecord, *, words: int = 60) -> list[str]:
    """The unfolded content lines of one publication's VEVENT.

    UID is the key + ``@postscheduler`` (stable: a calendar updates the event in place);
    DTSTAMP and LAST-MODIFIED are when the publication last changed (its scheduled time if
    that is unknown), so that exporting twice gives the same file; DTSTART is its due time.
    """
    stamp = _ics_time(record.updated_at or record.scheduled_at)
    summary = f"[{record.state.value}] {record.account}: {first_words(record.text, words)}"
    description = record.text
    if record.spoiler_text:
        description = f"CW: {record.spoiler_text}\n\n{description}"
    description += f"\n\nstate: {record.state.value}"
    if record.cause:
        description += f" ({record.cause})"
    if record.last_error and record.state is not State.PUBLISHED:
        description += f"\nlast error: {record.last_error}"
    if record.remote_url:
        description += f"\n{record.remote_url}"
    description += f"\n{record.key}"
    lines = [
        "BEGIN:VEVENT",
        f"UID:{ics_escape(record.key)}@postscheduler",
        f"DTSTAMP:{stamp}",
        f"LAST-MODIFIED:{stamp}",
        f"DTSTART:{_ics_time(record.due_at)}",
        f"DURATION:{EVENT_DURATION}",
        f"SUMMARY:{ics_escape(summary)}",
        f"DESCRIPTION:{ics_escape(description)}",
        f"CATEGORIES:{ics_escape(record.campaign)},{ics_escape(record.account)}",
        "TRANSP:TRANSPARENT",
    ]
    if record.remote_url:
        lines.append(f"URL:{_uri(record.remote_url)}")
    if record.state is State.CANCELLED:
        lines.append("STATUS:CANCELLED")
    lines.append("END:VEVENT")
    return lines


def export_ics(records: Sequence[PublicationRecord], campaigns: Sequence[CampaignRecord]) -> str:
    """The publications as an iCalendar file (RFC 5545) to subscribe to: one VEVENT each
    (see :func:`ics_event`), the calendar named after the campaign(s) (X-WR-CALNAME).

    Every content line is folded to 75 octets and ends with CRLF, the last one included.
    """
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{ics_escape(_calendar_name(records, campaigns))}",
    ]
    for record in records:
        lines.extend(ics_event(record))
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) + "\r\n" for line in lines)
