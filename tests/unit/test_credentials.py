"""Tokens: read from the environment, a 0600 file or a systemd credential, and never shown."""

from __future__ import annotations

import io
import logging
import os
import pickle
import uuid
from pathlib import Path

import pytest

from postscheduler.credentials import (
    MASK,
    RedactSecrets,
    Secret,
    install_redaction,
    read_token,
    redact,
    register_secret,
    write_private_file,
)
from postscheduler.domain.campaign import TokenSource
from postscheduler.errors import CredentialError


def planted() -> str:
    """A token no other test uses, long enough to be redacted."""
    return f"tok-{uuid.uuid4().hex}"


def token_file(folder: Path, text: str, mode: int = 0o600, name: str = "alba.token") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


# -- Secret ---------------------------------------------------------------------------------


def test_a_secret_never_shows_its_token() -> None:
    token = planted()
    secret = Secret(token)
    assert secret.reveal() == token
    shown = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>40}",
        "%s %r" % (secret, secret),  # noqa: UP031 (the old formatting must hide it too)
        "{}".format(secret),  # noqa: UP032
        str([secret]),
        str({"token": secret}),
        str(ValueError(secret)),
        repr(ValueError(secret)),
    ]
    for text in shown:
        assert token not in text
        assert MASK in text
    assert str(secret) == "Secret('********')"


def test_a_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(planted()))


def test_an_exception_raised_with_a_secret_does_not_show_it() -> None:
    token = planted()
    with pytest.raises(RuntimeError) as caught:
        raise RuntimeError(f"request failed with {Secret(token)}")
    assert token not in str(caught.value)


# -- the environment ------------------------------------------------------------------------


def test_a_token_is_read_from_the_environment_and_stripped() -> None:
    token = planted()
    secret = read_token(
        TokenSource(env="ALBA_TOKEN"), account="alba", environ={"ALBA_TOKEN": f"  {token}\n"}
    )
    assert secret.reveal() == token


def test_a_missing_variable_names_the_variable_and_the_account() -> None:
    with pytest.raises(CredentialError) as caught:
        read_token(TokenSource(env="ALBA_TOKEN"), account="alba", environ={})
    message = str(caught.value)
    assert "ALBA_TOKEN" in message
    assert "alba" in message
    assert "not set" in message


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_an_empty_variable_is_refused(value: str) -> None:
    with pytest.raises(CredentialError, match=r"alba: environment variable ALBA_TOKEN is empty"):
        read_token(TokenSource(env="ALBA_TOKEN"), account="alba", environ={"ALBA_TOKEN": value})


def test_a_value_of_several_words_is_refused_without_showing_it() -> None:
    token = planted()
    with pytest.raises(CredentialError, match="more than one word") as caught:
        read_token(
            TokenSource(env="T"), account="alba", environ={"T": f"{token}\nhttps://x.example"}
        )
    assert token not in str(caught.value)


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    token = planted()
    monkeypatch.setenv("PS_TEST_TOKEN", token)
    assert read_token(TokenSource(env="PS_TEST_TOKEN"), account="a").reveal() == token


# -- files ----------------------------------------------------------------------------------


def test_a_0600_file_is_read_relative_to_the_campaign_folder(tmp_path: Path) -> None:
    token = planted()
    token_file(tmp_path, f"{token}\n")
    secret = read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path)
    assert secret.reveal() == token


def test_a_0400_file_is_accepted(tmp_path: Path) -> None:
    token = planted()
    path = token_file(tmp_path, token, 0o400)
    assert read_token(TokenSource(file=str(path)), account="alba").reveal() == token


def test_a_file_readable_by_others_is_refused_with_the_chmod_hint(tmp_path: Path) -> None:
    token = planted()
    path = token_file(tmp_path, token, 0o644)
    with pytest.raises(CredentialError) as caught:
        read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path)
    message = str(caught.value)
    assert f"{path} is readable by others (mode 0644): run `chmod 600 {path}`" in message
    assert token not in message


@pytest.mark.parametrize(
    ("mode", "what"),
    [(0o640, "readable by others"), (0o604, "readable by others"), (0o620, "writable by others")],
)
def test_any_permission_for_group_or_others_is_refused(
    tmp_path: Path, mode: int, what: str
) -> None:
    token_file(tmp_path, planted(), mode)
    with pytest.raises(CredentialError, match=f"{what} \\(mode {mode:04o}\\): run `chmod 600"):
        read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path)


def test_a_missing_file_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(CredentialError) as caught:
        read_token(TokenSource(file="missing.token"), account="alba", base=tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "missing.token") in message
    assert "does not exist" in message
    assert message.startswith("account alba:")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    token_file(tmp_path, " \n")
    with pytest.raises(CredentialError, match="is empty"):
        read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path)


def test_a_directory_is_not_a_token_file(tmp_path: Path) -> None:
    (tmp_path / "dir.token").mkdir(mode=0o700)
    with pytest.raises(CredentialError, match="is a directory"):
        read_token(TokenSource(file="dir.token"), account="alba", base=tmp_path)


def test_a_large_file_is_not_a_token(tmp_path: Path) -> None:
    token_file(tmp_path, "x" * 100_000)
    with pytest.raises(CredentialError, match="too large"):
        read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path)


def test_a_binary_file_is_not_a_token(tmp_path: Path) -> None:
    path = tmp_path / "alba.token"
    path.write_bytes(b"\xff\xfe\x00token")
    path.chmod(0o600)
    with pytest.raises(CredentialError, match="not UTF-8"):
        read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_this_user_cannot_read_is_refused(tmp_path: Path) -> None:
    token_file(tmp_path, planted(), 0o000)
    with pytest.raises(CredentialError, match="cannot be read by this user"):
        read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path)


def test_the_file_checked_is_the_link_target(tmp_path: Path) -> None:
    token = planted()
    target = token_file(tmp_path, token, 0o644, name="real.token")
    (tmp_path / "alba.token").symlink_to(target)
    with pytest.raises(CredentialError, match="readable by others"):
        read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path)
    target.chmod(0o600)
    assert read_token(TokenSource(file="alba.token"), account="alba", base=tmp_path).reveal() == (
        token
    )


# -- systemd credentials --------------------------------------------------------------------


def test_a_systemd_credential_is_read_from_its_directory(tmp_path: Path) -> None:
    token = planted()
    token_file(tmp_path, f"{token}\n", 0o400, name="alba")
    secret = read_token(
        TokenSource(credential="alba"),
        account="alba",
        environ={"CREDENTIALS_DIRECTORY": str(tmp_path)},
    )
    assert secret.reveal() == token


def test_without_a_credentials_directory_the_error_says_to_use_load_credential() -> None:
    with pytest.raises(CredentialError) as caught:
        read_token(TokenSource(credential="alba"), account="alba", environ={})
    message = str(caught.value)
    assert "CREDENTIALS_DIRECTORY" in message
    assert "LoadCredential=alba:" in message


def test_a_missing_credential_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match=f"no systemd credential alba in {tmp_path}"):
        read_token(
            TokenSource(credential="alba"),
            account="alba",
            environ={"CREDENTIALS_DIRECTORY": str(tmp_path)},
        )


def test_a_credential_name_cannot_leave_its_directory(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="not a systemd credential name"):
        read_token(
            TokenSource(credential="../alba"),
            account="alba",
            environ={"CREDENTIALS_DIRECTORY": str(tmp_path)},
        )


# -- redaction ------------------------------------------------------------------------------


def test_every_token_read_is_redacted_in_texts() -> None:
    token = planted()
    read_token(TokenSource(env="T"), account="alba", environ={"T": token})
    assert (
        redact(f"GET /api?x={token}&y=1 failed: {token}") == f"GET /api?x={MASK}&y=1 failed: {MASK}"
    )


def test_bearer_tokens_and_access_token_parameters_are_redacted_even_unregistered() -> None:
    token = planted()
    assert token not in redact(f"Authorization: Bearer {token}")
    assert token not in redact(f"https://x.example/api/v1/streaming?access_token={token}&s=1")
    assert token not in redact(f"{{'access_token': '{token}', 'scope': 'read'}}")
    assert redact("no secret here") == "no secret here"


def test_a_registered_secret_inside_a_longer_one_is_still_redacted_whole() -> None:
    short, long = planted(), planted()
    register_secret(short)
    register_secret(short + long)
    assert redact(f"[{short}{long}]") == f"[{MASK}]"


def test_very_short_values_are_not_registered() -> None:
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


def capture(logger_name: str) -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(logger_name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, stream, handler


def test_the_logging_filter_redacts_the_message_and_its_arguments() -> None:
    token = planted()
    register_secret(token)
    logger, stream, handler = capture(f"ps.test.{uuid.uuid4().hex}")
    handler.addFilter(RedactSecrets())
    logger.info(f"token in the message: {token}")
    logger.info("token in an argument: %s", token)
    logger.info("token in a named argument: %(t)s", {"t": token})
    logger.info("token inside an object: %r", {"headers": {"Authorization": f"Bearer {token}"}})
    logger.info("a number stays a number: %d", 42)
    output = stream.getvalue()
    assert token not in output
    assert output.count(MASK) == 4
    assert "a number stays a number: 42" in output


def test_the_logging_filter_redacts_tracebacks() -> None:
    token = planted()
    register_secret(token)
    logger, stream, handler = capture(f"ps.test.{uuid.uuid4().hex}")
    handler.addFilter(RedactSecrets())
    try:
        raise ValueError(f"refused {token}")
    except ValueError:
        logger.exception("it failed")
    output = stream.getvalue()
    assert "ValueError: refused ********" in output
    assert token not in output


def test_install_redaction_filters_the_root_handlers_once() -> None:
    token = planted()
    register_secret(token)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        first = install_redaction()
        second = install_redaction()
        assert first is second
        assert sum(isinstance(f, RedactSecrets) for f in handler.filters) == 1
        logging.getLogger(f"ps.test.{uuid.uuid4().hex}").warning("leaking %s", token)
        assert token not in stream.getvalue()
        assert MASK in stream.getvalue()
    finally:
        root.removeHandler(handler)


# -- writing --------------------------------------------------------------------------------


def test_a_private_file_is_0600_whatever_the_umask_and_reads_back(tmp_path: Path) -> None:
    token = planted()
    path = tmp_path / "alba.token"
    previous = os.umask(0)
    try:
        write_private_file(path, token + "\n")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_token(TokenSource(file=str(path)), account="alba").reveal() == token
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alba.token"]


def test_a_private_file_never_replaces_one_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "alba.token"
    path.write_text("keep\n", encoding="utf-8")
    token = planted()
    with pytest.raises(CredentialError, match="already exists") as caught:
        write_private_file(path, token)
    assert token not in str(caught.value)
    assert path.read_text(encoding="utf-8") == "keep\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alba.token"]
    write_private_file(path, token, overwrite=True)
    assert path.read_text(encoding="utf-8") == token
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_private_file_needs_its_folder(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="is not a folder"):
        write_private_file(tmp_path / "missing" / "alba.token", planted())
