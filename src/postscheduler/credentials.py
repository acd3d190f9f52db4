"""Access tokens: where they are read from, and how they are kept out of sight.

DESIGN §4, invariant 7: a token comes from the environment, a file only its owner can read,
or a systemd credential, and it never reaches the store, the logs, an error message or the
dashboard. This module is the one place that reads tokens:

- :func:`read_token` reads an account's :class:`~postscheduler.domain.campaign.TokenSource`
  and returns a :class:`Secret`, whose ``str()``, ``repr()`` and f-string forms are
  ``Secret('********')``; only :meth:`Secret.reveal` gives the token, to hand it to the HTTP
  client and nowhere else.
- Every token read is registered (:func:`register_secret`); :func:`redact` replaces the
  registered tokens (and anything that looks like a bearer token or an ``access_token=``
  parameter) in a text, and :class:`RedactSecrets` does the same to log records.
  :func:`install_redaction` puts that filter on the root logger's handlers.
- :func:`write_private_file` writes a token file the way :func:`read_token` wants it:
  mode 0600 from its first instant, whole or not at all.

A token file is refused, as OpenSSH refuses a private key, when its group or others have
any permission on it (``chmod 600`` is the cure, and the message says so). A systemd
credential is not checked that way: systemd keeps it in a directory only the service can
read, with the mode it chooses.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from postscheduler.errors import CredentialError

if TYPE_CHECKING:
    from postscheduler.domain.campaign import TokenSource

__all__ = [
    "MASK",
    "RedactSecrets",
    "Secret",
    "install_redaction",
    "read_token",
    "redact",
    "register_secret",
    "write_private_file",
]

#: What a secret is replaced with wherever it would be shown.
MASK = "********"
#: Registered secrets shorter than this are not searched for in texts: they would match
#: ordinary words. (Real tokens are 40 characters or more; the Secret still hides them.)
MIN_REDACTED_LENGTH = 6
#: A token file larger than this is surely not a token (a wrong path).
MAX_TOKEN_FILE_BYTES = 64 * 1024
#: The environment variable systemd sets for ``LoadCredential=`` / ``SetCredential=``.
CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"


class Secret:
    """A token that does not show itself: ``str``, ``repr`` and formatting give
    ``Secret('********')``; :meth:`reveal` returns the token.

    It cannot be pickled (that would write the token wherever the pickle goes), and two
    secrets compare by identity only.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """The token itself: pass it to the HTTP client, never to a message or a log."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


# -- reading ---------------------------------------------------------------------------------


def read_token(
    source: TokenSource,
    *,
    account: str,
    environ: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> Secret:
    """The token of ``account`` from ``source``, surrounding whitespace stripped.

    - ``{ env = "NAME" }``: the variable ``NAME`` of ``environ`` (default ``os.environ``).
    - ``{ file = "path" }``: that file, relative to ``base`` (the campaign file's folder;
      default the current folder), ``~`` expanded. Refused unless only its owner has any
      permission on it (``chmod 600``).
    - ``{ credential = "name" }``: ``$CREDENTIALS_DIRECTORY/name`` (systemd's
      ``LoadCredential=``).

    The token is registered for redaction (:func:`register_secret`) before it is returned.
    Raises :class:`CredentialError` — one line naming the account and the source, never the
    token — when it is missing, empty, holds more than one word, or is not safe to use.
    """
    env = os.environ if environ is None else environ
    if source.env:
        token = _from_environment(source.env, account, env)
    elif source.file:
        token = _from_file(_token_path(source.file, base), account)
    elif source.credential:
        token = _from_credential(source.credential, account, env)
    else:  # pragma: no cover - TokenSource validates that exactly one is given
        raise CredentialError(f"account {account}: no token source given")
    secret = Secret(token)
    register_secret(secret)
    return secret


def _token_path(file: str, base: Path | None) -> Path:
    path = Path(file).expanduser()
    if not path.is_absolute():
        path = (base if base is not None else Path.cwd()) / path
    return path.absolute()


def _from_environment(name: str, account: str, env: Mapping[str, str]) -> str:
    value = env.get(name)
    if value is None:
        raise CredentialError(
            f"account {account}: environment variable {name} is not set "
            "(it must hold the account's access token)"
        )
    return _checked(value, account, f"environment variable {name}")


def _from_file(path: Path, account: str, *, check_mode: bool = True) -> str:
    """The text of the token file at ``path``, checked through the open descriptor (so
    that the file checked is the file read)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise CredentialError(
            f"account {account}: token file {path} does not exist "
            "(write the token there with mode 0600, or run 'postscheduler login')"
        ) from None
    except PermissionError:
        raise CredentialError(
            f"account {account}: token file {path} cannot be read by this user "
            "(it must belong to the user postscheduler runs as, with mode 0600)"
        ) from None
    except OSError as error:
        raise CredentialError(
            f"account {account}: token file {path} cannot be opened ({_reason(error)})"
        ) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise CredentialError(f"account {account}: token file {path} is {kind}")
        if check_mode:
            _check_mode(path, info.st_mode, account)
        if info.st_size > MAX_TOKEN_FILE_BYTES:
            raise CredentialError(
                f"account {account}: token file {path} is {info.st_size} bytes: "
                "too large to be an access token (is it the right file?)"
            )
        raw = _read_all(descriptor, path, account)
    finally:
        os.close(descriptor)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(
            f"account {account}: token file {path} is not UTF-8 text (is it the right file?)"
        ) from None
    return _checked(text, account, f"token file {path}")


def _read_all(descriptor: int, path: Path, account: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    try:
        while chunk := os.read(descriptor, 8192):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_TOKEN_FILE_BYTES:
                raise CredentialError(
                    f"account {account}: token file {path} is too large to be an access token"
                )
    except OSError as error:
        raise CredentialError(
            f"account {account}: token file {path} cannot be read ({_reason(error)})"
        ) from None
    return b"".join(chunks)


def _check_mode(path: Path, mode: int, account: str) -> None:
    """Refuse a file its group or others have any permission on (OpenSSH's rule)."""
    bits = stat.S_IMODE(mode)
    if not bits & 0o077:
        return
    if bits & 0o044:
        what = "readable by others"
    elif bits & 0o022:
        what = "writable by others"
    else:
        what = "accessible by others"
    raise CredentialError(
        f"account {account}: {path} is {what} (mode {bits:04o}): run `chmod 600 {path}`"
    )


def _from_credential(name: str, account: str, env: Mapping[str, str]) -> str:
    directory = env.get(CREDENTIALS_DIRECTORY)
    if not directory:
        raise CredentialError(
            f"account {account}: systemd credential {name} needs ${CREDENTIALS_DIRECTORY}, "
            f"which is not set: run postscheduler under systemd with "
            f"LoadCredential={name}:/path/to/token in its unit (or use env or file instead)"
        )
    if not name or "/" in name or name in (".", ".."):
        raise CredentialError(f"account {account}: {name!r} is not a systemd credential name")
    path = Path(directory) / name
    if not path.exists():
        raise CredentialError(
            f"account {account}: no systemd credential {name} in {directory}: "
            f"add LoadCredential={name}:/path/to/token to the unit"
        )
    # systemd keeps credentials in a directory only the service can read, with its own mode.
    return _from_file(path, account, check_mode=False)


def _checked(value: str, account: str, where: str) -> str:
    token = value.strip()
    if not token:
        raise CredentialError(f"account {account}: {where} is empty (it must hold the token)")
    if any(character.isspace() for character in token):
        raise CredentialError(
            f"account {account}: {where} holds more than one word: put only the access token in it"
        )
    return token


def _reason(error: OSError) -> str:
    return error.strerror or errno.errorcode.get(error.errno or 0, "error")


# -- redaction -------------------------------------------------------------------------------

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

#: Tokens that were never registered but show themselves by their context.
_CONTEXTUAL = (
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"""(?i)(\baccess_token["']?\s*[:=]\s*["']?)[^\s"'&,;})\]]{6,}"""),
)


def register_secret(secret: Secret | str) -> None:
    """Remember ``secret`` so that :func:`redact` and :class:`RedactSecrets` hide it.

    Values shorter than :data:`MIN_REDACTED_LENGTH` are not remembered (they would match
    ordinary words); the process keeps what it registered until it ends.
    """
    global _pattern  # noqa: PLW0603 (one registry per process, by design)
    value = secret.reveal() if isinstance(secret, Secret) else secret
    if len(value) < MIN_REDACTED_LENGTH:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret, bearer token and ``access_token=`` value
    replaced by ``********``."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for contextual in _CONTEXTUAL:
        text = contextual.sub(lambda match: match.group(1) + MASK, text)
    return text


def _shows_secret(text: str) -> bool:
    return redact(text) != text


class RedactSecrets(logging.Filter):
    """A logging filter that hides secrets in a record's message, arguments and traceback.

    String arguments are redacted in place; any other argument whose text shows a secret
    is replaced by its redacted text. A traceback is formatted and redacted here, so that
    the handler's formatter prints the redacted one. The record is always let through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        elif _shows_secret(str(record.msg)):
            record.msg = redact(str(record.msg))
        if isinstance(record.args, Mapping):
            record.args = {key: _redact_argument(v) for key, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_argument(v) for v in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_argument(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float, Secret)):
        return value
    try:
        shown = str(value)
        represented = repr(value)
    except Exception:  # an argument that cannot show itself shows no secret either
        return value
    if _shows_secret(shown) or _shows_secret(represented):
        return redact(shown)
    return value


def install_redaction(handlers: Iterable[logging.Handler] | None = None) -> RedactSecrets:
    """Put one :class:`RedactSecrets` on ``handlers`` (default: the root logger's, and
    :data:`logging.lastResort`), once each; return the filter.

    Filters on handlers see every record that reaches them, propagated or not. Handlers
    added to the root logger later need this called again.
    """
    chosen = list(handlers) if handlers is not None else list(logging.getLogger().handlers)
    if handlers is None and logging.lastResort is not None:
        chosen.append(logging.lastResort)
    existing: RedactSecrets | None = None
    for handler in chosen:
        for installed in handler.filters:
            if isinstance(installed, RedactSecrets):
                existing = installed
    the_filter = existing or RedactSecrets()
    for handler in chosen:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(the_filter)
    return the_filter


# -- writing ---------------------------------------------------------------------------------


def write_private_file(path: Path, text: str, *, overwrite: bool = False) -> None:
    """Write ``text`` to ``path`` whole or not at all, readable by its owner only.

    The file is created with mode 0600 from its first instant (``O_CREAT | O_EXCL`` on a
    temporary name in the same folder, whatever the umask), synced, then moved into place:
    with ``overwrite`` by a rename, otherwise by a hard link that fails if ``path`` exists
    (no window where another file could be replaced). Raises :class:`CredentialError` when
    ``path`` exists (without ``overwrite``) or cannot be written; the text never appears in
    a message.
    """
    folder = path.parent
    if not folder.is_dir():
        raise CredentialError(f"cannot write {path}: {folder} is not a folder")
    temporary = folder / f".{path.name}.{os.urandom(6).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(temporary, flags, 0o600)
    except OSError as error:
        raise CredentialError(f"cannot write in {folder} ({_reason(error)})") from None
    try:
        try:
            os.fchmod(descriptor, 0o600)
            data = text.encode("utf-8")
            while data:
                data = data[os.write(descriptor, data) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        _move_into_place(temporary, path, overwrite=overwrite)
    except OSError as error:
        raise CredentialError(f"cannot write {path} ({_reason(error)})") from None
    finally:
        if temporary.exists():
            temporary.unlink()
    _sync_folder(folder)


def _move_into_place(temporary: Path, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise CredentialError(
            f"{path} already exists: remove it first, or choose another path"
        ) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # A file system without hard links: check, then rename (a narrow window).
        if path.exists():
            raise CredentialError(
                f"{path} already exists: remove it first, or choose another path"
            ) from None
        os.rename(temporary, path)


def _sync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot sync a folder; the file itself was synced
    finally:
        os.close(descriptor)
