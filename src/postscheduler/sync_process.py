"""Syncing a campaign file for the daemon, in a short-lived child process when it can be.

Planning a campaign imports the campaign-file code (pydantic, the TOML parser, the planner:
about 11 MB that a process keeps for its lifetime) and allocates far more than the plan it
leaves in the store (a peak of about 240 MB for 100,000 publications, of which the C heap
keeps a part). The daemon lives for weeks on a small machine, so when its store is a SQL
database it does neither: :func:`sync_campaign` starts a child process, a fresh
interpreter (``sys.executable -c``: fork and exec at once, never a bare fork — the daemon
has threads, APScheduler's, the dispatcher's, SQLAlchemy's pool), which opens its own
store on the same URL, runs :func:`~postscheduler.syncing.sync_file` (its writes committed
before it answers) and sends back a small :class:`SyncReport`. Everything it allocated goes
back to the system when it exits. The request (URL and password included) goes to the
child on its stdin, the pickled answer comes back on its stdout; its stderr is ours.

Not multiprocessing's spawn context, which does the same but keeps its resource-tracker
process alive beside the daemon from the first sync on (about 12 MB resident), and
re-imports the parent's main script in each child (a script without a ``__main__`` guard
then fails).

The parent sees what an in-process sync would have shown: the report, or the same
:class:`~postscheduler.errors.CampaignInvalid` (every problem, with file, line and place),
or the same store error. A child that fails otherwise — an unexpected exception, a crash,
killed for memory — is :class:`~postscheduler.errors.SyncFailed`, one line; nothing it
did not commit has changed.

A store that another process cannot open — a :class:`~postscheduler.store.memory.MemoryStore`
(tests, the state-machine test), an in-memory SQLite database — is synced in this process,
by the same function.
"""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from postscheduler import errors
from postscheduler.errors import CampaignInvalid, PostschedulerError, StoreError, SyncFailed

if TYPE_CHECKING:
    from postscheduler.ports import Store

#: What the child process runs (``python -c``).
CHILD_CODE = "from postscheduler.sync_process import child_main; child_main()"


@dataclass(frozen=True)
class SyncReport:
    """What a sync did, small enough to be sent back from the child."""

    #: The campaign's id.
    campaign: str
    #: :meth:`~postscheduler.syncing.SyncOutcome.summary`.
    summary: str
    #: The file's warnings, each rendered on one line.
    warnings: tuple[str, ...]
    #: Whether the file was planned (False: unchanged since the last accepted reading).
    planned: bool


def sync_campaign(
    store: Store, path: str | Path, now: datetime, *, force: bool = False, here: bool = False
) -> SyncReport:
    """Sync the campaign file at ``path`` into ``store`` as ``sync_file`` does, in a child
    process when ``store`` is a SQL database another process can open (unless ``here``).

    Raises :class:`CampaignInvalid` for a refused file (the refusal recorded in the store),
    a :class:`~postscheduler.errors.StoreError` when the store fails, and
    :class:`SyncFailed` when the child process fails in any other way.
    """
    url = None if here else shared_url(store)
    if url is None:
        return _sync_here(store, str(path), now, force)
    return _sync_in_child(url, str(path), now, force)


def shared_url(store: Store) -> str | None:
    """The URL another process opens ``store`` with; None if it cannot."""
    from postscheduler.store.sql import SqlStore  # noqa: PLC0415 (a MemoryStore needs none)

    if not isinstance(store, SqlStore):
        return None
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    ):
        return None
    return url.render_as_string(hide_password=False)


def _sync_here(store: Store, path: str, now: datetime, force: bool) -> SyncReport:
    from postscheduler.syncing import sync_file  # noqa: PLC0415 (the campaign-file code)

    outcome = sync_file(store, path, now, force=force)
    return SyncReport(
        campaign=outcome.campaign,
        summary=outcome.summary(),
        warnings=outcome.warnings,
        planned=outcome.up_to_date_since is None,
    )


def _sync_in_child(url: str, path: str, now: datetime, force: bool) -> SyncReport:
    # The URL (and its password, if any) goes through the child's stdin, never on its
    # command line; the answer comes back on its stdout; its stderr is the daemon's.
    request = pickle.dumps((url, path, now, force))
    try:
        ran = subprocess.run(  # noqa: S603 - this interpreter, our own code
            [sys.executable, "-c", CHILD_CODE],
            input=request,
            stdout=subprocess.PIPE,
            check=False,
        )
    except OSError as error:
        raise SyncFailed(f"cannot start the sync process: {error}") from None
    try:
        reply: tuple[Any, ...] = pickle.loads(ran.stdout)  # noqa: S301 - our child's
    except Exception:  # no answer, or half of one: the child died
        raise SyncFailed(
            f"the sync process ended without an answer ({_ending(ran.returncode)})"
        ) from None
    kind = reply[0]
    if kind == "synced":
        report: SyncReport = reply[1]
        return report
    if kind == "refused":
        raise CampaignInvalid(reply[1], reply[2])
    if kind == "store":
        raise _store_error(reply[1], reply[2])
    raise SyncFailed(f"the sync process failed: {reply[1]}")


def _ending(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exit status {code}"


def _store_error(name: str, message: str) -> PostschedulerError:
    """The store error the child raised, raised again here (its class, or a StoreError)."""
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, StoreError):
        return kind(message)
    return StoreError(message)


def child_main() -> None:
    """The child process: read the request on stdin, sync, write one answer on stdout,
    exit (what it allocated goes with it)."""
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print goes to the log, not into the answer
    url, path, now, force = pickle.load(sys.stdin.buffer)  # noqa: S301 - our parent's
    from postscheduler.store.database import create  # noqa: PLC0415
    from postscheduler.store.sql import SqlStore  # noqa: PLC0415

    answer: tuple[Any, ...]
    try:
        store = SqlStore(create(url, create_directory=False))
        try:
            answer = ("synced", _sync_here(store, path, now, force))
        finally:
            store.engine.dispose()
    except CampaignInvalid as error:
        answer = ("refused", error.path, error.problems)
    except StoreError as error:
        answer = ("store", type(error).__name__, str(error))
    except PostschedulerError as error:
        answer = ("failed", str(error))
    except Exception as error:  # anything else: one line to the parent, the trace to stderr
        traceback.print_exc(file=sys.stderr)
        answer = ("failed", f"{type(error).__name__}: {error}")
    pickle.dump(answer, answers)
    answers.flush()
