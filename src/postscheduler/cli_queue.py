"""The queue commands: ``status``, ``queue``, ``show``, ``cancel``, ``retry``, ``pause``,
``resume`` and ``export``.

:func:`add_queue_commands` adds them to the command line's subparsers. Each command is a
function ``run(args, session) -> exit status`` that reads and changes the store given in
its :class:`Session`; the ``handler`` argparse calls opens the store named by ``--db``
(``open_store(url, upgrade=False)``: these commands never create nor upgrade a database),
reads the clock once, runs the command and closes the store. Tests call ``args.queue_run``
with a session of their own.

Only :mod:`argparse` and the standard library are imported here at start-up (and the
state names, an enum); the store and the renderers are imported when a command runs.
Errors the tool raises on purpose (an unknown key, a refused change of state, arguments
that do not go together) reach ``cli.main``, which prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from postscheduler.domain.states import State
from postscheduler.errors import PostschedulerError

if TYPE_CHECKING:
    from datetime import datetime

    from postscheduler.ports import CampaignRecord, PublicationRecord, Store

EXIT_OK = 0
EXIT_PROBLEM = 1

#: Who the history says made a change from the command line.
ACTOR = "cli"
CANCEL_CAUSE = "cancelled by hand"
RETRY_CAUSE = "retry by hand"
DEFAULT_LIMIT = 50
EXPORT_FORMATS = ("csv", "json", "ics")


class CommandError(PostschedulerError):
    """Arguments that do not go together, or an output that cannot be written."""


@dataclass(frozen=True)
class Session:
    """What a command works with: the store, "now" (read once), and where it prints."""

    store: Store
    now: datetime
    out: TextIO
    err: TextIO


Run = Callable[[argparse.Namespace, Session], int]


# -- the parser -----------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """``--limit``'s type: an integer of at least 1, else a clear argparse error."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def add_queue_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the queue commands to ``subparsers`` (the command line's ``add_subparsers()``).

    Every command takes ``--db URL`` and ``--json``; each sets ``handler`` (what
    ``cli.main`` calls) and ``queue_run`` (the command itself, see :class:`Session`).
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="URL",
        help="the database (default: $POSTSCHEDULER_DATABASE_URL, else the state directory)",
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    def command(name: str, run: Run, summary: str, description: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name, parents=[common], help=summary, description=description
        )
        parser.set_defaults(handler=handle, queue_run=run)
        return parser

    status = command(
        "status",
        _status,
        "counts by state per campaign and account, what is next, the last error; the workers",
        "Show, per campaign and account, how many publications are in each state, when the "
        "next one is due, the last error, and whether it is paused or held; then each worker "
        "(`run` process) with when it last wrote its heartbeat (stale: dead or hung).",
    )
    status.add_argument("--campaign", metavar="ID", help="only this campaign")

    queue = command(
        "queue",
        _queue,
        "list publications in the order they are due",
        "List publications in due order (retry time, else scheduled time): due time, key, "
        "state, attempt and the first words of the text.",
    )
    queue.add_argument("--state", choices=[s.value for s in State], help="only this state")
    queue.add_argument("--account", metavar="NAME", help="only this account")
    queue.add_argument("--campaign", metavar="ID", help="only this campaign")
    queue.add_argument(
        "--limit",
        type=positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show at most N (default {DEFAULT_LIMIT})",
    )

    show = command(
        "show",
        _show,
        "everything about one publication, and its history",
        "Show every field of a publication, its whole text, content warning and media, and "
        "each change of its state.",
    )
    show.add_argument("key", metavar="KEY", help="the publication's key (see 'queue')")

    cancel = command(
        "cancel",
        _cancel,
        "cancel a publication, or every pending publication of a post",
        "Cancel one publication by its key, or with --post and --campaign every publication "
        "of that post still waiting (scheduled or retrying). Those being sent or already "
        "final are reported with the reason, and left alone. Exits 1 if nothing was "
        "cancelled.",
    )
    cancel.add_argument("key", metavar="KEY", nargs="?", help="the publication's key")
    cancel.add_argument("--post", metavar="ID", help="every pending publication of this post")
    cancel.add_argument("--campaign", metavar="ID", help="the post's campaign (with --post)")

    retry = command(
        "retry",
        _retry,
        "schedule a failed, expired or cancelled publication again",
        "Put a failed, expired or cancelled publication back in the queue (scheduled at its "
        "time); any other state is refused.",
    )
    retry.add_argument("key", metavar="KEY", help="the publication's key")

    for name, run, verb in (("pause", _pause, "Stop"), ("resume", _resume, "Start again")):
        toggle = command(
            name,
            run,
            f"{name} a campaign, or one of its accounts",
            f"{verb} sending the publications of a campaign, or of one of its accounts.",
        )
        toggle.add_argument("--campaign", metavar="ID", required=True, help="the campaign")
        toggle.add_argument("--account", metavar="NAME", help="only this account")

    export = command(
        "export",
        _export,
        "export publications as CSV, JSON or an iCalendar file",
        "Write the publications as CSV, JSON, or an iCalendar (ICS) file that calendar apps "
        "subscribe to. With --output the file is written whole or not at all.",
    )
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True, help="the format")
    export.add_argument("--campaign", metavar="ID", help="only this campaign")
    export.add_argument(
        "--output",
        metavar="FILE",
        help="write there instead of standard output (with --json: print a JSON summary)",
    )


def handle(args: argparse.Namespace) -> int:
    """What ``cli.main`` calls: open the store of ``--db`` (never creating nor upgrading
    it), read the clock once, run ``args.queue_run``, close the store."""
    from datetime import UTC, datetime  # noqa: PLC0415 (lazy by design)

    from postscheduler.store.opening import open_store  # noqa: PLC0415

    store = open_store(args.db, upgrade=False)
    try:
        run: Run = args.queue_run
        return run(args, Session(store, datetime.now(UTC), sys.stdout, sys.stderr))
    finally:
        store.engine.dispose()


# -- helpers --------------------------------------------------------------------------------


def _print(session: Session, text: str) -> None:
    print(text, file=session.out)


def _print_json(session: Session, document: Any) -> None:
    print(json.dumps(document, ensure_ascii=False), file=session.out)


def _campaigns(session: Session, wanted: str | None) -> list[CampaignRecord]:
    """Every campaign, or the one ``wanted``; an unknown one is an error."""
    from postscheduler.errors import UnknownPublication  # noqa: PLC0415

    campaigns = session.store.campaigns()
    if wanted is None:
        return campaigns
    found = [c for c in campaigns if c.id == wanted]
    if not found:
        known = ", ".join(c.id for c in campaigns) or "none yet"
        raise UnknownPublication(f"no campaign {wanted!r} in the database (known: {known})")
    return found


def _check_account(session: Session, campaign: str | None, account: str) -> None:
    from postscheduler.errors import UnknownPublication  # noqa: PLC0415

    if not any(a.name == account for a in session.store.accounts(campaign)):
        where = f" in campaign {campaign!r}" if campaign else ""
        raise UnknownPublication(f"no account {account!r}{where}")


def _due(record: PublicationRecord, now: datetime) -> str:
    from postscheduler.queue_views import iso, relative  # noqa: PLC0415

    return f"{iso(record.due_at)} ({relative(record.due_at, now)})"


# -- status, queue, show --------------------------------------------------------------------


def _status(args: argparse.Namespace, session: Session) -> int:
    """Counts by state per campaign and account (see :func:`queue_views.status_table`),
    then the workers and their heartbeats (:func:`queue_views.workers_table`)."""
    from postscheduler.queue_views import (  # noqa: PLC0415
        status_json,
        status_table,
        workers_table,
    )

    campaigns = _campaigns(session, args.campaign)
    rows = session.store.status(args.campaign)
    workers = session.store.workers()
    if args.json:
        _print_json(session, status_json(rows, campaigns, session.now, workers))
    else:
        _print(session, status_table(rows, campaigns, session.now))
        _print(session, "")
        _print(session, workers_table(workers, session.now))
    return EXIT_OK


def _queue(args: argparse.Namespace, session: Session) -> int:
    """Publications in due order, filtered; says on stderr when more than ``--limit`` match."""
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    from postscheduler.queue_views import queue_json, queue_table  # noqa: PLC0415

    campaigns = _campaigns(session, args.campaign)
    if args.account is not None:
        _check_account(session, args.campaign, args.account)
    found = session.store.publications(
        state=State(args.state) if args.state else None,
        account=args.account,
        campaign=args.campaign,
        limit=args.limit + 1,
    )
    records, more = found[: args.limit], len(found) > args.limit
    if args.json:
        _print_json(session, queue_json(records))
    else:
        zones = {c.timezone for c in campaigns}
        zone = ZoneInfo(zones.pop()) if len(zones) == 1 else None
        width = shutil.get_terminal_size((120, 24)).columns
        _print(session, queue_table(records, zone, now=session.now, width=width))
    if more:
        print(
            f"showing the first {args.limit}; more match (raise --limit to see them)",
            file=session.err,
        )
    return EXIT_OK


def _show(args: argparse.Namespace, session: Session) -> int:
    """One publication, every field, and its history."""
    from postscheduler.queue_views import show_json, show_text  # noqa: PLC0415

    record = session.store.get(args.key)
    history = session.store.history(args.key)
    if args.json:
        _print_json(session, show_json(record, history))
    else:
        _print(session, show_text(record, history))
    return EXIT_OK


# -- cancel, retry --------------------------------------------------------------------------


def _cancel_targets(args: argparse.Namespace, session: Session) -> list[PublicationRecord]:
    """The publications ``cancel`` is asked to cancel; wrong arguments or names raise."""
    from postscheduler.errors import TransitionRefused, UnknownPublication  # noqa: PLC0415

    if args.key is not None:
        if args.post is not None or args.campaign is not None:
            raise CommandError("cancel takes a KEY, or --post with --campaign, not both")
        record = session.store.get(args.key)
        if record.state is State.CANCELLED:
            raise TransitionRefused(f"{args.key} is already cancelled")
        return [record]
    if args.post is None or args.campaign is None:
        raise CommandError("cancel needs a KEY, or --post ID with --campaign ID")
    _campaigns(session, args.campaign)
    targets = session.store.publications(campaign=args.campaign, post=args.post)
    if not targets:
        raise UnknownPublication(f"no post {args.post!r} in campaign {args.campaign!r}")
    return targets


def _cancel(args: argparse.Namespace, session: Session) -> int:
    """Cancel ``KEY``, or every pending publication of ``--post`` in ``--campaign``.

    A single key that cannot be cancelled raises TransitionRefused (the state machine's
    reason). For a post, each publication is tried in turn — the store refuses, atomically,
    those in flight or final — and both lists are reported; exit 1 if none was cancelled.
    """
    from postscheduler.errors import TransitionRefused  # noqa: PLC0415

    cancelled: list[tuple[str, State]] = []
    refused: list[tuple[str, State, str]] = []
    targets = _cancel_targets(args, session)
    order = {record.key: index for index, record in enumerate(targets)}
    # Last parts first: cancelling a thread's first part would otherwise cancel the later
    # ones with it before their turn, and they would be reported as already cancelled.
    for record in sorted(targets, key=lambda r: -r.part):
        if record.state is State.CANCELLED:
            refused.append((record.key, record.state, f"{record.key} is already cancelled"))
            continue
        try:
            session.store.transition(
                record.key, State.CANCELLED, now=session.now, cause=CANCEL_CAUSE, actor=ACTOR
            )
        except TransitionRefused as error:
            if args.key is not None:
                raise
            refused.append((record.key, record.state, str(error)))
        else:
            cancelled.append((record.key, record.state))
    cancelled.sort(key=lambda item: order[item[0]])
    refused.sort(key=lambda item: order[item[0]])

    if args.json:
        _print_json(
            session,
            {
                "cancelled": [{"key": k, "was": s.value} for k, s in cancelled],
                "not_cancelled": [{"key": k, "state": s.value, "reason": r} for k, s, r in refused],
            },
        )
        return EXIT_OK if cancelled else EXIT_PROBLEM
    for key, was in cancelled:
        _print(session, f"cancelled {key} (was {was.value})")
    for _key, _state, reason in refused:
        print(f"not cancelled: {reason}", file=session.err)
    if not cancelled:
        print(
            f"nothing cancelled: no publication of post {args.post!r} is waiting",
            file=session.err,
        )
    return EXIT_OK if cancelled else EXIT_PROBLEM


def retry_refusal(
    record: PublicationRecord, previous: PublicationRecord | None = None
) -> str | None:
    """Why ``retry`` refuses ``record``, or None if it may be retried (failed, expired,
    cancelled) — a thread part only if ``previous``, the part it replies to, has not ended
    unpublished: retried alone, it would wait for that part forever.

    Where the state machine itself forbids the move to scheduled, its own message is
    given; where it allows it for other reasons (a worker releasing a claim, a post coming
    back into the file), the message says what retry is for and what happens instead.
    """
    from postscheduler.domain.states import (  # noqa: PLC0415
        RETRYABLE_BY_HAND,
        IllegalTransition,
        check_transition,
    )
    from postscheduler.queue_views import iso  # noqa: PLC0415

    if record.state in RETRYABLE_BY_HAND:
        if previous is not None and previous.state in RETRYABLE_BY_HAND:
            return (
                f"{record.key} replies to {previous.key}, which is {previous.state.value}: "
                f"retry that part instead (postscheduler retry {previous.key}); the parts "
                "after it come back with it"
            )
        return None
    try:
        check_transition(record.key, record.state, State.SCHEDULED)
    except IllegalTransition as error:
        return str(error)
    instead = {
        State.RETRYING: f"it will be tried again at {iso(record.due_at)}",
        State.CLAIMED: "it is being sent right now",
    }.get(record.state, "")
    return (
        f"{record.key} is {record.state.value}; retry takes only failed, expired or "
        f"cancelled publications" + (f" ({instead})" if instead else "")
    )


def _retry(args: argparse.Namespace, session: Session) -> int:
    """Failed or expired → scheduled (cause "retry by hand"); anything else is refused."""
    from postscheduler.errors import TransitionRefused  # noqa: PLC0415

    record = session.store.get(args.key)
    previous = session.store.get(record.reply_to) if record.reply_to else None
    refusal = retry_refusal(record, previous)
    if refusal is not None:
        raise TransitionRefused(refusal)
    after = session.store.transition(
        args.key, State.SCHEDULED, now=session.now, cause=RETRY_CAUSE, actor=ACTOR
    )
    if _take_the_files_version(session, after):
        after = session.store.get(args.key)
    if args.json:
        _print_json(
            session,
            {"key": args.key, "was": record.state.value, "state": after.state.value},
        )
    else:
        _print(
            session,
            f"{args.key}: {record.state.value} → {after.state.value}, "
            f"due {_due(after, session.now)}",
        )
    return EXIT_OK


def _take_the_files_version(session: Session, record: PublicationRecord) -> bool:
    """Sync the retried publication's campaign file again, so that it goes with the text
    the file holds now: while it was failed, a sync refused to change it ("use retry").
    Whether the publication changed; a file that is gone or has errors is said on stderr,
    and the retry keeps the text it had."""
    from pathlib import Path  # noqa: PLC0415

    from postscheduler.errors import CampaignInvalid  # noqa: PLC0415
    from postscheduler.syncing import sync_file  # noqa: PLC0415

    campaign = next(c for c in session.store.campaigns() if c.id == record.campaign)
    if not Path(campaign.path).is_file():
        print(
            f"{campaign.path}: not found; {record.key} keeps the text it had",
            file=session.err,
        )
        return False
    try:
        outcome = sync_file(session.store, campaign.path, session.now, force=True)
    except CampaignInvalid as error:
        for line in error.lines():
            print(line, file=session.err)
        print(
            f"{campaign.path}: has errors; {record.key} keeps the text it had",
            file=session.err,
        )
        return False
    changed = any(p.key == record.key for p in outcome.plan.changed)
    if not outcome.plan.is_empty:
        print(outcome.summary(), file=session.err)
    return changed


# -- pause, resume --------------------------------------------------------------------------


def _toggle(args: argparse.Namespace, session: Session, paused: bool) -> int:
    campaign = _campaigns(session, args.campaign)[0]
    if args.account is None:
        before = campaign.paused
        what = f"campaign {args.campaign}"
    else:
        _check_account(session, args.campaign, args.account)
        before = next(
            a.paused for a in session.store.accounts(args.campaign) if a.name == args.account
        )
        what = f"account {args.account} of campaign {args.campaign}"
    session.store.set_paused(args.campaign, args.account, paused, now=session.now)
    if args.json:
        _print_json(
            session,
            {
                "campaign": args.campaign,
                "account": args.account,
                "paused": paused,
                "changed": before != paused,
            },
        )
    else:
        verb = "paused" if paused else "resumed"
        already = "already paused" if paused else "not paused"
        _print(session, f"{verb} {what}" if before != paused else f"{what} was {already}")
    return EXIT_OK


def _pause(args: argparse.Namespace, session: Session) -> int:
    """Pause a campaign, or one of its accounts (idempotent)."""
    return _toggle(args, session, True)


def _resume(args: argparse.Namespace, session: Session) -> int:
    """Resume a campaign, or one of its accounts (idempotent)."""
    return _toggle(args, session, False)


# -- export ---------------------------------------------------------------------------------


def _export(args: argparse.Namespace, session: Session) -> int:
    """Every publication (of ``--campaign``) as CSV, JSON or ICS, to stdout or ``--output``."""
    from postscheduler.queue_views import export_csv, export_ics, export_json  # noqa: PLC0415

    campaigns = _campaigns(session, args.campaign)
    records = session.store.publications(campaign=args.campaign)
    if args.format == "csv":
        text = export_csv(records)
    elif args.format == "json":
        text = export_json(records)
    else:
        text = export_ics(records, campaigns)
    data = text.encode("utf-8")
    if args.output is None:
        buffer = getattr(session.out, "buffer", None)
        if buffer is not None:
            session.out.flush()
            buffer.write(data)
            buffer.flush()
        else:
            session.out.write(text)
        return EXIT_OK
    target = Path(args.output)
    write_atomically(target, data)
    if args.json:
        _print_json(
            session, {"output": str(target), "format": args.format, "publications": len(records)}
        )
    else:
        print(f"wrote {len(records)} publications to {target} ({args.format})", file=session.err)
    return EXIT_OK


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file in the same folder,
    flushed to disk, then renamed over ``path``. An existing file keeps its permissions; a
    new one gets the usual ones (0666 less the umask). Failure raises CommandError, and
    leaves no temporary file behind."""
    folder = path.parent
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
