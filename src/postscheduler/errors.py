"""The error tree of postscheduler.

Every error the tool raises on purpose derives from :class:`PostschedulerError`; the command
line turns any of them into one readable line and a non-zero exit, never a traceback::

    PostschedulerError
    ├── ConfigError              a campaign file (or a file it names) is unusable
    │   └── CampaignInvalid      the file was read, and one or more problems were found in it
    ├── StoreError               the store cannot do what was asked
    │   ├── StoreUnavailable     the database cannot be reached, opened or written
    │   ├── SchemaMismatch       the database's schema is older or newer than this code
    │   ├── UnknownPublication   no publication (or campaign, account) has that name
    │   ├── TransitionRefused    the state machine does not allow that change
    │   └── LeaseLost            a worker's claim was taken from it (its lease expired)
    ├── SyncFailed               the process syncing a campaign file failed (crashed, killed)
    ├── CredentialError          an account's token cannot be read, or is not safe to use
    ├── DiscoveryError           a server could not be asked what it is (software, limits)
    └── PublishError             sending to a server did not (certainly) succeed
        ├── RetryLater           try again later (429, 5xx, network before sending)
        ├── OutcomeUnknown       the request may have been acted on (timeout after sending)
        ├── PublishFailed        refused for good (422, 400, a missing reply target)
        └── AccountUnusable      the account's token is revoked or refused (401, 403)

Publish errors are raised by the publisher adapter, which translates the HTTP library's
and Mastodon.py's exceptions at the boundary: nothing above it imports them.

Later branches (store, publishing) join this tree in this module, so that code above an
adapter never needs to import a library's own exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from postscheduler.domain.problems import Problem


class PostschedulerError(Exception):
    """Base of every error postscheduler raises on purpose."""


class ConfigError(PostschedulerError):
    """A campaign file, or a file it refers to, cannot be used as it is."""

    def __init__(self, path: str, message: str, *, where: str = "", line: int | None = None):
        self.path = path
        self.problem = Problem(where=where, message=message, line=line)
        super().__init__(self.problem.render(path))


class CampaignInvalid(ConfigError):
    """The campaign file was read and has errors; ``problems`` lists them all (errors first)."""

    def __init__(self, path: str, problems: Sequence[Problem]):
        errors = [p for p in problems if p.severity == "error"]
        if not errors:
            raise ValueError("CampaignInvalid needs at least one error")
        first = errors[0]
        super().__init__(path, first.message, where=first.where, line=first.line)
        self.problems = tuple(problems)

    def lines(self) -> list[str]:
        """Every problem as one line, errors before warnings, in file order within each."""
        ordered = sorted(self.problems, key=lambda p: (p.severity != "error", p.line or 0))
        return [p.render(self.path) for p in ordered]


class StoreError(PostschedulerError):
    """The store cannot do what was asked."""


class StoreUnavailable(StoreError):
    """The database cannot be reached, opened or written; the message says what to do."""


class SchemaMismatch(StoreError):
    """The database's schema revision does not match this version of postscheduler."""


class UnknownPublication(StoreError):
    """No publication, campaign or account has the name given."""


class TransitionRefused(StoreError):
    """A change of state that the state machine does not allow; nothing was changed."""


class LeaseLost(StoreError):
    """The worker no longer holds the claim (its lease expired and it was reaped, or
    another worker has it): its outcome is not recorded; the reconciler will find it."""


class SyncFailed(PostschedulerError):
    """The child process syncing a campaign file failed other than by refusing the file or
    by a store error: an unexpected exception, a crash, killed (see
    :mod:`postscheduler.sync_process`). What it had not committed is unchanged."""


class CredentialError(PostschedulerError):
    """An account's token cannot be read, or is not safe to use (a file others can read)."""


class PublishError(PostschedulerError):
    """Sending to a server did not (certainly) succeed; ``status`` is the HTTP status if any."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetryLater(PublishError):
    """Worth trying again: rate limited, server error, or no connection before sending.

    ``retry_at`` is when the server said to come back (``X-RateLimit-Reset``,
    ``Retry-After``), None when it did not say.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_at: datetime | None = None
    ):
        super().__init__(message, status=status)
        self.retry_at = retry_at


class OutcomeUnknown(PublishError):
    """The request was sent and no answer came back: the server may hold the status."""


class PublishFailed(PublishError):
    """The server refused the publication for good; the message is the server's reason."""


class AccountUnusable(PublishError):
    """The account's token was revoked or refused: its publications must wait."""


class DiscoveryError(PostschedulerError):
    """The server could not be asked what it is (software, version, limits).

    The message is one line naming the instance and what failed (no connection, a timeout,
    an answer that is not JSON, no instance endpoint); ``account`` prefixes it when the
    question was asked for one account of a campaign.
    """

    def __init__(self, instance: str, what: str, *, account: str | None = None):
        self.instance = instance
        self.what = what
        self.account = account
        prefix = f"{account}: " if account else ""
        super().__init__(f"{prefix}cannot ask {instance} what server it is: {what}")
