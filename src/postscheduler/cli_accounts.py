"""The account commands: ``accounts`` (what each account's server is, and whether its token
works) and ``login`` (get a token for an account by OAuth, into a 0600 file).

:func:`add_accounts_commands` adds them to the command line's subparsers; each sets
``handler`` (what ``cli.main`` calls). The commands themselves are
:func:`accounts_command` and :func:`login_command`, which take their streams (and the
environment, the clock) as arguments so that tests can drive them.

Only :mod:`argparse` and the standard library are imported at start-up; Mastodon.py, httpx
and the store are imported when a command runs. Tokens never reach stdout or stderr: the
commands print a token's *source* (``environment variable ALBA_TOKEN``), every message
that could quote a server or a library goes through :func:`postscheduler.credentials.redact`,
and the redaction filter is put on the logging handlers before anything is read.

``login`` decisions:

- The token file defaults to ``./NAME.token`` in the folder the command runs in
  (``--token-file`` to choose); an existing file is never replaced — remove it first. It is
  written with mode 0600 from its first instant, whole or not at all.
- The ``[accounts.NAME]`` snippet printed names the token file by its absolute path, which
  is right wherever the campaign file lives (a relative ``file`` in a campaign is read
  relative to the campaign file's folder).
- The app registration (client id and secret, not a token) is kept beside the token file as
  ``NAME.token.pending`` (mode 0600) until the login succeeds, so that
  ``login … --code CODE`` can finish a login begun earlier (the code is bound to the app
  that asked for it), and a repeated attempt does not register yet another app.
- The new token is checked (``verify_credentials``) before it is written: a token that does
  not work is never saved.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from postscheduler.errors import PostschedulerError

if TYPE_CHECKING:
    from datetime import datetime

    import httpx
    from mastodon import Mastodon

    from postscheduler.campaign_file import LoadedCampaign
    from postscheduler.credentials import Secret
    from postscheduler.domain.campaign import Account
    from postscheduler.ports import ServerProfile, Store
    from postscheduler.store.sql import SqlStore

EXIT_OK = 0
EXIT_PROBLEM = 1

#: What postscheduler asks for: post statuses and media, know who it is, find its statuses.
SCOPES = ["write:statuses", "write:media", "read:accounts", "read:statuses"]
CLIENT_NAME = "postscheduler"
#: The out-of-band redirect: the server shows the code instead of redirecting.
OOB = "urn:ietf:wg:oauth:2.0:oob"
PENDING_SUFFIX = ".pending"


class LoginError(PostschedulerError):
    """A login cannot go on: a wrong address or name, a refused code, a server that fails."""


# -- the parser -----------------------------------------------------------------------------


def add_accounts_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``accounts`` and ``login`` to ``subparsers`` (the command line's
    ``add_subparsers()``); each sets ``handler``."""
    accounts = subparsers.add_parser(
        "accounts",
        help="each account of a campaign: its server (software, limits) and, with --verify, "
        "whether its token works",
        description=(
            "List the accounts of a campaign file: server address, where the token is read "
            "from (never the token), and what the server is — software, version, character "
            "limit and how it counts links — asked of the server and cached in the database "
            "when there is one (none is created for this). With --verify, each token is "
            "tried (verify_credentials) and the account's handle shown. Exits 1 when a "
            "server cannot be asked or a token does not work."
        ),
    )
    accounts.add_argument("campaign", metavar="CAMPAIGN.toml", help="the campaign file")
    accounts.add_argument(
        "--verify", action="store_true", help="read each token and check it with its server"
    )
    accounts.add_argument("--json", action="store_true", help="print a JSON document")
    accounts.add_argument(
        "--db",
        metavar="URL",
        help="the database caching server profiles (default: $POSTSCHEDULER_DATABASE_URL, "
        "else the state directory; used only if it exists)",
    )
    accounts.set_defaults(handler=_accounts_handler)

    login = subparsers.add_parser(
        "login",
        help="get an access token for an account (OAuth), into a file only you can read",
        description=(
            "Register postscheduler with the server, print the address where you authorise "
            "it (logged in as the account), read the code the server shows (from standard "
            "input, or --code), and write the account's token to a file with mode 0600 "
            "(default ./NAME.token; an existing file is never replaced). Prints the "
            "[accounts.NAME] lines to put in the campaign file. The token is never printed."
        ),
    )
    login.add_argument(
        "instance", metavar="INSTANCE", help="the server, e.g. https://example.social"
    )
    login.add_argument(
        "--account", metavar="NAME", required=True, help="the account's name in the campaign"
    )
    login.add_argument(
        "--token-file", metavar="PATH", help="where to write the token (default ./NAME.token)"
    )
    login.add_argument(
        "--code",
        metavar="CODE",
        help="the authorisation code, to finish a login begun without it (instead of stdin)",
    )
    login.set_defaults(handler=_login_handler)


def _accounts_handler(args: argparse.Namespace) -> int:
    return accounts_command(args, out=sys.stdout, err=sys.stderr)


def _login_handler(args: argparse.Namespace) -> int:
    return login_command(args, out=sys.stdout, err=sys.stderr, stdin=sys.stdin)


# -- accounts -------------------------------------------------------------------------------


@dataclass
class AccountReport:
    """What ``accounts`` found about one account."""

    name: str
    instance: str
    token_source: str
    software: str
    profile: ServerProfile | None = None
    limit: int | None = None
    counting: str | None = None
    notes: list[str] = field(default_factory=list)
    discovery_error: str | None = None
    verified: bool | None = None
    handle: str | None = None
    verify_error: str | None = None

    @property
    def ok(self) -> bool:
        """No discovery error, and the token works when it was tried."""
        return self.discovery_error is None and self.verified is not False


def accounts_command(
    args: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> int:
    """``accounts CAMPAIGN.toml [--verify] [--json] [--db URL]``; see the module docstring.

    Exit 0 when every server answered (and, with ``--verify``, every token works), else 1.
    A campaign file that cannot be read raises (``cli.main`` prints one line).
    """
    from datetime import UTC, datetime  # noqa: PLC0415 (lazy by design)

    from postscheduler.campaign_file import load_campaign  # noqa: PLC0415
    from postscheduler.credentials import install_redaction  # noqa: PLC0415
    from postscheduler.publishers.discovery import discovery_client  # noqa: PLC0415

    install_redaction()
    loaded = load_campaign(args.campaign)
    moment = now if now is not None else datetime.now(UTC)
    store, store_note = _cache_store(args.db)
    reports: list[AccountReport] = []
    try:
        with discovery_client() as client:
            for name, account in loaded.campaign.accounts.items():
                report = _discover_account(name, account, store=store, client=client, now=moment)
                if args.verify:
                    _verify_account(report, account, loaded, environ)
                reports.append(report)
    finally:
        if store is not None:
            store.engine.dispose()
    ok = all(r.ok for r in reports)
    if args.json:
        document = _accounts_json(
            loaded, reports, ok=ok, verify=args.verify, note=store_note, now=moment
        )
        print(_redacted(json.dumps(document, ensure_ascii=False, indent=2)), file=out)
    else:
        if store_note:
            print(_redacted(store_note), file=err)
        print(_redacted(_accounts_text(reports)), file=out)
        failed = [r for r in reports if not r.ok]
        if failed:
            print(
                f"{len(failed)} of {len(reports)} account(s) not usable: "
                + ", ".join(r.name for r in failed),
                file=err,
            )
    return EXIT_OK if ok else EXIT_PROBLEM


def _cache_store(url: str | None) -> tuple[SqlStore | None, str | None]:
    """The SQL store to cache profiles in, if its database exists (None otherwise), and a
    note when it exists but cannot be used (discovery then goes on without a cache)."""
    from postscheduler.errors import StoreError  # noqa: PLC0415
    from postscheduler.store.database import resolve_url, sqlite_path  # noqa: PLC0415
    from postscheduler.store.opening import open_store  # noqa: PLC0415

    path = sqlite_path(resolve_url(url))
    if path is not None and not path.exists():
        return None, None
    try:
        return open_store(url, upgrade=False), None
    except StoreError as error:
        return None, f"server profiles not cached: {error}"


def _discover_account(
    name: str, account: Account, *, store: Store | None, client: httpx.Client, now: datetime
) -> AccountReport:
    from postscheduler.errors import DiscoveryError  # noqa: PLC0415
    from postscheduler.publishers.discovery import (  # noqa: PLC0415
        counting_rules,
        profile_for,
        profile_notes,
    )

    report = AccountReport(
        name=name,
        instance=account.instance,
        token_source=account.token.describe(),
        software=account.software.value,
    )
    try:
        profile = profile_for(account.instance, store=store, client=client, now=now)
    except DiscoveryError as error:
        report.discovery_error = str(error)
        return report
    rules = counting_rules(profile, account)
    report.profile = profile
    report.limit = rules.limit
    report.counting = rules.counting.value
    report.notes = profile_notes(profile, account, rules)
    return report


def _verify_account(
    report: AccountReport,
    account: Account,
    loaded: LoadedCampaign,
    environ: Mapping[str, str] | None,
) -> None:
    from postscheduler.credentials import read_token  # noqa: PLC0415
    from postscheduler.errors import CredentialError  # noqa: PLC0415

    try:
        secret = read_token(
            account.token, account=report.name, environ=environ, base=loaded.path.parent
        )
    except CredentialError as error:
        report.verified, report.verify_error = False, str(error)
        return
    takahe = report.profile is not None and report.profile.software == "takahe"
    handle, reason = verify_token(account.instance, secret, takahe=takahe)
    report.verified = handle is not None
    report.handle, report.verify_error = handle, reason


def verify_token(
    instance: str, secret: Secret, *, takahe: bool = False
) -> tuple[str | None, str | None]:
    """Ask ``instance`` who ``secret`` belongs to (Mastodon.py ``verify_credentials``).

    Returns ``("@username@host", None)`` when the token works, else ``(None, reason)``:
    refused (401, 403; Takahē answers 400 to a bad token), unreachable, or what the server
    said — one line, redacted.
    """
    from urllib.parse import urlsplit  # noqa: PLC0415

    from mastodon.errors import MastodonError  # noqa: PLC0415

    from postscheduler.publishers.client import Timeouts, make_client  # noqa: PLC0415

    client = make_client(instance, secret.reveal(), timeouts=Timeouts(connect=5.0, read=20.0))
    try:
        account = client.account_verify_credentials()
    except (MastodonError, KeyError, TypeError, ValueError) as error:
        return None, _explain(error, instance, takahe=takahe)
    finally:
        client.session.close()
    username = account.get("username") or str(account.get("acct", "")).split("@")[0]
    if not username:
        return None, f"{instance} answered verify_credentials without a username"
    return f"@{username}@{urlsplit(instance).netloc}", None


def _explain(error: Exception, instance: str, *, takahe: bool) -> str:
    """One redacted line saying why a call to ``instance`` through Mastodon.py failed."""
    from mastodon.errors import (  # noqa: PLC0415
        MastodonAPIError,
        MastodonNetworkError,
        MastodonRatelimitError,
    )

    from postscheduler.credentials import redact  # noqa: PLC0415

    if isinstance(error, MastodonNetworkError):
        reason = _network_reason(error, instance)
    elif isinstance(error, MastodonRatelimitError):
        reason = f"rate limited by {instance}: try again later"
    elif isinstance(error, MastodonAPIError):
        reason = _api_reason(error, instance, takahe=takahe)
    else:
        reason = f"{instance} gave an unexpected answer ({_one_line(str(error))})"
    return redact(reason)


def _network_reason(error: Exception, instance: str) -> str:
    text = str(error)
    if "timed out" in text.lower() or "timeout" in type(error).__name__.lower():
        return f"unreachable: {instance} did not answer in time"
    if "refused" in text.lower():
        return f"unreachable: {instance} refused the connection"
    return f"unreachable: {_one_line(text)}"


def _api_reason(error: Exception, instance: str, *, takahe: bool) -> str:
    """Mastodon.py raises ``MastodonAPIError(message, status, reason, server's error)``."""
    status = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else None
    said = _server_said(error)
    detail = f"{status}: {said}" if said else str(status)
    # Takahē answers a bad token with 400 text/html "Invalid Bearer token" (DESIGN §6).
    if status in (401, 403) or (status == 400 and (takahe or "bearer" in said.lower())):
        return (
            f"token refused ({detail}): it was revoked or is wrong — get a new one with "
            "'postscheduler login'"
        )
    if status is not None:
        return f"{instance} answered {detail}"
    return f"{instance}: {_one_line(str(error))}"


def _server_said(error: Exception) -> str:
    """The server's own message in a Mastodon.py API error (its 4th argument), if any."""
    if len(error.args) > 3 and error.args[3]:
        return _one_line(str(error.args[3]))
    if len(error.args) > 2 and error.args[2]:
        return _one_line(str(error.args[2]))
    return ""


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _redacted(text: str) -> str:
    from postscheduler.credentials import redact  # noqa: PLC0415

    return redact(text)


def _profile_json(profile: ServerProfile, *, cached: bool) -> dict[str, Any]:
    from postscheduler.publishers.discovery import describe_profile  # noqa: PLC0415

    ttl = profile.idempotency_ttl
    return {
        "software": profile.software,
        "version": profile.version,
        "summary": describe_profile(profile),
        "max_characters": profile.max_characters,
        "characters_per_url": profile.characters_per_url,
        "max_media": profile.max_media,
        "idempotency_ttl_seconds": None if ttl is None else int(ttl.total_seconds()),
        "scheduled_at": profile.scheduled_at,
        "max_alt_text": profile.max_alt_text,
        "media_types": list(profile.media_types),
        "image_size_limit": profile.image_size_limit,
        "video_size_limit": profile.video_size_limit,
        "fetched_at": profile.fetched_at.isoformat(),
        "cached": cached,
    }


def _accounts_json(
    loaded: LoadedCampaign,
    reports: list[AccountReport],
    *,
    ok: bool,
    verify: bool,
    note: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "ok": ok,
        "file": str(loaded.path),
        "campaign": loaded.campaign.campaign.id,
        "notes": [note] if note else [],
        "accounts": [
            {
                "name": r.name,
                "instance": r.instance,
                "token_source": r.token_source,
                "software": r.software,
                "profile": _profile_json(r.profile, cached=r.profile.fetched_at != now)
                if r.profile
                else None,
                "limit": r.limit,
                "counting": r.counting,
                "notes": r.notes,
                "discovery_error": r.discovery_error,
                "verification": (
                    {"ok": bool(r.verified), "handle": r.handle, "error": r.verify_error}
                    if verify
                    else None
                ),
            }
            for r in reports
        ],
    }


def _accounts_text(reports: list[AccountReport]) -> str:
    from postscheduler.publishers.discovery import describe_profile  # noqa: PLC0415

    lines: list[str] = []
    for r in reports:
        lines.append(f"{r.name}: {r.instance} (token from {r.token_source})")
        if r.profile is not None:
            profile = r.profile
            key = (
                "Idempotency-Key ignored"
                if profile.idempotency_ttl is None
                else f"Idempotency-Key kept {_duration(profile.idempotency_ttl.total_seconds())}"
            )
            scheduled = "scheduled posts" if profile.scheduled_at else "no scheduled posts"
            lines.append(
                f"  server:  {describe_profile(profile)}; up to {profile.max_media} media; "
                f"{key}; {scheduled}"
            )
            if r.limit is not None and r.limit != profile.max_characters:
                lines.append(f"  limit:   {r.limit} characters (from the campaign file)")
        else:
            lines.append(f"  server:  {r.discovery_error}")
        lines.extend(f"  note:    {note}" for note in r.notes)
        if r.verified is True:
            lines.append(f"  account: {r.handle} — token works")
        elif r.verified is False:
            lines.append(f"  account: FAILED — {r.verify_error}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:g} h" if hours >= 1 else f"{seconds / 60:g} min"


# -- login ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _App:
    """postscheduler's registration with one server (not a token: it acts for nobody)."""

    instance: str
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class _Target:
    """Where a login goes: the server, the account's name, the token file."""

    instance: str
    name: str
    path: Path
    allow_http: bool

    @property
    def pending(self) -> Path:
        """Where the app registration waits until the login succeeds."""
        return self.path.with_name(self.path.name + PENDING_SUFFIX)


def login_command(args: argparse.Namespace, *, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """``login INSTANCE --account NAME [--token-file PATH] [--code CODE]``; see the module
    docstring. Instructions and the authorisation address go to ``err``, the campaign
    snippet to ``out``; the token to the file only. Raises :class:`LoginError` (or
    :class:`~postscheduler.errors.CredentialError` for the file) with one line."""
    from postscheduler.credentials import (  # noqa: PLC0415
        Secret,
        install_redaction,
        register_secret,
        write_private_file,
    )
    from postscheduler.publishers.client import session  # noqa: PLC0415

    install_redaction()
    target = _login_target(args)
    http = session()
    try:
        app, code = _app_and_code(args, target, http, err=err, stdin=stdin)
        register_secret(app.client_secret)
        register_secret(code)
        secret = Secret(_exchange(app, code, http, allow_http=target.allow_http))
        register_secret(secret)
        handle, reason = verify_token(target.instance, secret)
        if handle is None:
            raise LoginError(f"the new token does not work: {reason}")
        write_private_file(target.path, secret.reveal() + "\n")
    finally:
        http.close()
    target.pending.unlink(missing_ok=True)
    print(f"logged in as {handle}; token written to {target.path} (mode 0600)", file=err)
    print(
        f"[accounts.{target.name}]\n"
        f"instance = {_toml_string(target.instance)}\n"
        f"token = {{ file = {_toml_string(str(target.path))} }}",
        file=out,
    )
    return EXIT_OK


def _login_target(args: argparse.Namespace) -> _Target:
    """Check the arguments of ``login`` before any server is asked."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    from postscheduler.domain.campaign import ID_PATTERN  # noqa: PLC0415
    from postscheduler.errors import DiscoveryError  # noqa: PLC0415
    from postscheduler.publishers.discovery import (  # noqa: PLC0415
        is_loopback_host,
        normalise_instance,
    )

    try:
        instance = normalise_instance(args.instance)
    except DiscoveryError as error:
        raise LoginError(f"{args.instance}: {error.what}") from None
    name = args.account
    if not ID_PATTERN.fullmatch(name):
        raise LoginError(
            f"{name!r} is not an account name: use lowercase letters, digits, '-' and '_' "
            "(as in [accounts.NAME] of the campaign file)"
        )
    path = Path(args.token_file or f"{name}.token").expanduser().absolute()
    if path.exists() or path.is_symlink():
        raise LoginError(f"{path} already exists: remove it first, or pass --token-file")
    if not path.parent.is_dir():
        raise LoginError(f"cannot write {path}: {path.parent} is not a folder")
    parts = urlsplit(instance)
    allow_http = parts.scheme == "http" and is_loopback_host(parts.hostname or "")
    return _Target(instance, name, path, allow_http)


def _app_and_code(
    args: argparse.Namespace, target: _Target, http: Any, *, err: TextIO, stdin: TextIO
) -> tuple[_App, str]:
    """The app registration and the authorisation code: from ``--code`` and the pending
    registration, or by registering (or reusing the pending registration), printing the
    authorisation address and reading the code from ``stdin``."""
    from postscheduler.credentials import register_secret, write_private_file  # noqa: PLC0415

    app = _read_pending(target.pending, target.instance)
    if args.code and args.code.strip():
        if app is None:
            raise LoginError(
                f"no login in progress for {target.name} at {target.instance} "
                f"({target.pending} is missing): run the same command without --code first"
            )
        return app, args.code.strip()
    if app is None:
        app = _register(target.instance, http)
        register_secret(app.client_secret)
        write_private_file(target.pending, json.dumps(app.__dict__) + "\n", overwrite=True)
    url = _authorisation_url(app, http, allow_http=target.allow_http)
    print(
        f"Open this address in a browser logged in as the account {target.name!r} on "
        f"{target.instance}, authorise postscheduler, and copy the code it shows:\n\n"
        f"  {url}\n",
        file=err,
        flush=True,
    )
    print("code: ", end="", file=err, flush=True)
    code = stdin.readline().strip()
    if not code:
        print(file=err)
        again = f"postscheduler login {target.instance} --account {target.name}"
        if args.token_file:
            again += f" --token-file {args.token_file}"
        raise LoginError(f"no code given: once you have it, run '{again} --code CODE'")
    return app, code


def _read_pending(pending: Path, instance: str) -> _App | None:
    """The app registration kept by an earlier attempt for ``instance``, if any."""
    try:
        data = json.loads(pending.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("instance") != instance:
        return None
    client_id, client_secret = data.get("client_id"), data.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        return None
    return _App(instance, client_id, client_secret)


def _register(instance: str, http: Any) -> _App:
    """Register postscheduler with ``instance`` (``POST /api/v1/apps``)."""
    from mastodon import Mastodon  # noqa: PLC0415
    from mastodon.errors import MastodonError  # noqa: PLC0415

    from postscheduler.publishers.client import USER_AGENT  # noqa: PLC0415

    try:
        client_id, client_secret = Mastodon.create_app(
            CLIENT_NAME,
            scopes=SCOPES,
            redirect_uris=OOB,
            api_base_url=instance,
            request_timeout=30,
            session=http,
            user_agent=USER_AGENT,
        )
    except (MastodonError, KeyError, TypeError, ValueError) as error:
        raise LoginError(
            f"{instance} did not register postscheduler: {_explain_login(error, instance)}"
        ) from None
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise LoginError(f"{instance} did not register postscheduler: no client id in its answer")
    return _App(instance, client_id, client_secret)


def _client(app: _App, http: Any) -> Mastodon:
    from postscheduler.publishers.client import make_client  # noqa: PLC0415

    return make_client(
        app.instance, client_id=app.client_id, client_secret=app.client_secret, http=http
    )


def _authorisation_url(app: _App, http: Any, *, allow_http: bool) -> str:
    from mastodon.errors import MastodonError  # noqa: PLC0415

    try:
        url: str = _client(app, http).auth_request_url(
            client_id=app.client_id,
            redirect_uris=OOB,
            scopes=SCOPES,
            force_login=True,
            allow_http=allow_http,
        )
    except (MastodonError, KeyError, TypeError, ValueError) as error:
        raise LoginError(
            f"cannot build the authorisation address: {_explain_login(error, app.instance)}"
        ) from None
    return _without_empty_parameters(url)


def _without_empty_parameters(url: str) -> str:
    """Mastodon.py writes unset ``state`` and ``lang`` as the text ``None``: drop them."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit  # noqa: PLC0415

    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if v != "None"]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def _exchange(app: _App, code: str, http: Any, *, allow_http: bool) -> str:
    """The access token for ``code`` (``POST /oauth/token``); a refusal is a LoginError."""
    from mastodon.errors import MastodonError  # noqa: PLC0415

    try:
        token = _client(app, http).log_in(
            code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=allow_http
        )
    except (MastodonError, KeyError, TypeError, ValueError) as error:
        raise LoginError(
            f"{app.instance} refused the code: {_explain_login(error, app.instance)} "
            "(a code works once, for the login that asked for it: run login again)"
        ) from None
    if not isinstance(token, str) or not token.strip():
        raise LoginError(f"{app.instance} gave no access token for the code")
    return token.strip()


def _explain_login(error: Exception, instance: str) -> str:
    from mastodon.errors import MastodonIllegalArgumentError  # noqa: PLC0415

    from postscheduler.credentials import redact  # noqa: PLC0415

    if isinstance(error, MastodonIllegalArgumentError):
        return redact(_one_line(str(error)))
    return _explain(error, instance, takahe=False)


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string."""
    escaped = []
    for character in text:
        if character in ('"', "\\"):
            escaped.append("\\" + character)
        elif ord(character) < 0x20 or ord(character) == 0x7F:
            escaped.append(f"\\u{ord(character):04x}")
        else:
            escaped.append(character)
    return '"' + "".join(escaped) + '"'
