"""``postscheduler accounts`` and ``postscheduler login`` as organisers run them: in a
subprocess, against the bundled sandbox started in this test process (127.0.0.1 only).

Every token the sandbox hands out is planted: no output of any command run here may
contain one (checked after every command, and once more over all outputs at the end).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postscheduler.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
CLI = (ROOT / "src" / "postscheduler" / "cli.py").read_text(encoding="utf-8")

#: Until ``cli.main`` knows the account commands, a runner that builds the same parser
#: around them and prints errors as ``cli.main`` does (one redacted line, exit 1).
RUNNER = """
import argparse, sys
from postscheduler.cli_accounts import add_accounts_commands
from postscheduler.credentials import redact
from postscheduler.errors import PostschedulerError
parser = argparse.ArgumentParser(prog="postscheduler")
add_accounts_commands(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(args.handler(args))
except PostschedulerError as error:
    print(f"postscheduler: {redact(str(error))}", file=sys.stderr)
    sys.exit(1)
"""

#: Every token handed out in this module, and every output of every command.
PLANTED: list[str] = []
OUTPUTS: list[str] = []


def command() -> list[str]:
    if "add_accounts_commands" in CLI:
        return [sys.executable, "-m", "postscheduler"]
    return [sys.executable, "-c", RUNNER]


def environment(extra: dict[str, str] | None = None, *, home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("POSTSCHEDULER_DATABASE_URL", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY")
        and not k.endswith("_TOKEN")
    }
    env["XDG_STATE_HOME"] = str(home / "state")
    env["HOME"] = str(home)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


def check_output(*texts: str) -> None:
    joined = "\n".join(texts)
    OUTPUTS.append(joined)
    assert "Traceback" not in joined, joined
    for token in PLANTED:
        assert token not in joined, "a token was printed"


def run(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*command(), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
        env=environment(env, home=cwd),
    )
    check_output(result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def mastodon() -> Iterator[SandboxServer]:
    server = SandboxServer(personality="mastodon")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gotosocial() -> Iterator[SandboxServer]:
    server = SandboxServer(personality="gotosocial")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def takahe() -> Iterator[SandboxServer]:
    server = SandboxServer(personality="takahe")
    server.start()
    yield server
    server.stop()


def plant(server: SandboxServer, username: str) -> str:
    token = server.add_account(username)
    PLANTED.append(token)
    return token


def base(server: SandboxServer) -> str:
    return server.url.rstrip("/")


def host(server: SandboxServer) -> str:
    return base(server).split("://", 1)[1]


def campaign(folder: Path, accounts: dict[str, tuple[SandboxServer | str, str]]) -> Path:
    """A campaign whose accounts point at sandboxes (or addresses); ``accounts`` maps a name
    to its server and its token source (a TOML inline table)."""
    tables = "\n".join(
        f'[accounts.{name}]\ninstance = "{server if isinstance(server, str) else base(server)}"'
        f"\ntoken = {source}\n"
        for name, (server, source) in accounts.items()
    )
    path = folder / "campaign.toml"
    path.write_text(
        f"""
[campaign]
id = "demo"
name = "Demo"
timezone = "Europe/Paris"
start = 2017-10-05T00:00:00
end = 2017-10-08T23:59:00
language = "fr"

{tables}
[[posts]]
id = "p"
text = "Bonjour"
at = 2017-10-05T10:00:00
""",
        encoding="utf-8",
    )
    return path


def token_file(folder: Path, name: str, token: str, mode: int = 0o600) -> Path:
    path = folder / name
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {account["name"]: account for account in document["accounts"]}


# -- accounts -------------------------------------------------------------------------------


def test_accounts_verify_json_shows_each_handle_and_server(
    tmp_path: Path, mastodon: SandboxServer, gotosocial: SandboxServer
) -> None:
    alba = plant(mastodon, "alba")
    peuples = plant(gotosocial, "peuples")
    token_file(tmp_path, "peuples.token", peuples)
    path = campaign(
        tmp_path,
        {
            "alba": (mastodon, '{ env = "ALBA_TOKEN" }'),
            "peuples": (gotosocial, '{ file = "peuples.token" }'),
        },
    )
    result = run(
        "accounts", str(path), "--verify", "--json", cwd=tmp_path, env={"ALBA_TOKEN": alba}
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    accounts = by_name(document)
    assert accounts["alba"]["verification"] == {
        "ok": True,
        "handle": f"@alba@{host(mastodon)}",
        "error": None,
    }
    sources = {name: account["token_source"] for name, account in accounts.items()}
    assert sources == {"alba": "environment variable ALBA_TOKEN", "peuples": "file peuples.token"}
    assert accounts["alba"]["profile"]["software"] == "mastodon"
    assert accounts["alba"]["limit"] == 500
    assert accounts["peuples"]["verification"]["handle"] == f"@peuples@{host(gotosocial)}"
    assert accounts["peuples"]["profile"]["software"] == "gotosocial"
    assert accounts["peuples"]["profile"]["characters_per_url"] == 0
    assert accounts["peuples"]["counting"] == "gotosocial"


def test_accounts_without_verify_reads_no_token_and_creates_no_database(
    tmp_path: Path, mastodon: SandboxServer
) -> None:
    path = campaign(tmp_path, {"alba": (mastodon, '{ env = "UNSET_TOKEN" }')})
    result = run("accounts", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"alba: {base(mastodon)} (token from environment variable UNSET_TOKEN)" in (
        result.stdout
    )
    assert "server:  Mastodon 4.3.2, 500 characters, a link counts 23" in result.stdout
    assert "account:" not in result.stdout
    assert not (tmp_path / "state").exists()


def test_accounts_caches_profiles_in_an_existing_database(
    tmp_path: Path, mastodon: SandboxServer
) -> None:
    from postscheduler.store.migrate import upgrade  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'ps.sqlite3'}"
    upgrade(url)
    path = campaign(tmp_path, {"alba": (mastodon, '{ env = "UNSET_TOKEN" }')})
    first = run("accounts", str(path), "--json", "--db", url, cwd=tmp_path)
    second = run("accounts", str(path), "--json", "--db", url, cwd=tmp_path)
    assert by_name(json.loads(first.stdout))["alba"]["profile"]["cached"] is False
    cached = by_name(json.loads(second.stdout))["alba"]["profile"]
    assert cached["cached"] is True
    assert cached["software"] == "mastodon"


def test_a_revoked_token_fails_verification_with_the_reason(
    tmp_path: Path, mastodon: SandboxServer, takahe: SandboxServer
) -> None:
    alba = plant(mastodon, "alba2")
    mastodon.revoke(alba)
    bad = plant(takahe, "bad")
    takahe.revoke(bad)
    good = plant(mastodon, "good")
    path = campaign(
        tmp_path,
        {
            "alba": (mastodon, '{ env = "ALBA_TOKEN" }'),
            "good": (mastodon, '{ env = "GOOD_TOKEN" }'),
            "tk": (takahe, '{ env = "TK_TOKEN" }'),
        },
    )
    env = {"ALBA_TOKEN": alba, "GOOD_TOKEN": good, "TK_TOKEN": bad}
    result = run("accounts", str(path), "--verify", cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("  account: FAILED — token refused (401") and "revoked" in line
        for line in lines
    ), result.stdout
    assert any(line.startswith("  account: FAILED — token refused (400") for line in lines), (
        result.stdout
    )
    assert f"  account: @good@{host(mastodon)} — token works" in lines
    assert "2 of 3 account(s) not usable: alba, tk" in result.stderr

    as_json = run("accounts", str(path), "--verify", "--json", cwd=tmp_path, env=env)
    assert as_json.returncode == 1
    accounts = by_name(json.loads(as_json.stdout))
    assert accounts["alba"]["verification"]["ok"] is False
    assert "token refused" in accounts["alba"]["verification"]["error"]
    assert accounts["good"]["verification"]["ok"] is True


def test_a_token_file_others_can_read_is_refused_with_the_chmod_hint(
    tmp_path: Path, mastodon: SandboxServer
) -> None:
    token = plant(mastodon, "loose")
    loose = token_file(tmp_path, "loose.token", token, 0o644)
    path = campaign(tmp_path, {"loose": (mastodon, '{ file = "loose.token" }')})
    result = run("accounts", str(path), "--verify", cwd=tmp_path)
    assert result.returncode == 1
    assert f"is readable by others (mode 0644): run `chmod 600 {loose}`" in result.stdout


def test_a_missing_variable_and_an_unreachable_server_are_reported(
    tmp_path: Path, mastodon: SandboxServer
) -> None:
    import socket  # noqa: PLC0415

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        path = campaign(
            tmp_path,
            {
                "alba": (mastodon, '{ env = "NOT_SET_TOKEN" }'),
                "gone": (f"http://127.0.0.1:{port}", '{ env = "GONE_TOKEN" }'),
            },
        )
        env = {"GONE_TOKEN": plant(mastodon, "gone")}
        result = run("accounts", str(path), "--verify", "--json", cwd=tmp_path, env=env)
    finally:
        holder.close()
    assert result.returncode == 1
    accounts = by_name(json.loads(result.stdout))
    assert "NOT_SET_TOKEN is not set" in accounts["alba"]["verification"]["error"]
    assert accounts["gone"]["profile"] is None
    assert accounts["gone"]["discovery_error"].startswith(
        f"cannot ask http://127.0.0.1:{port} what server it is"
    )
    assert "unreachable" in accounts["gone"]["verification"]["error"]


# -- login ----------------------------------------------------------------------------------

URL = re.compile(r"^\s+(http://\S+/oauth/authorize\?\S+)$", re.MULTILINE)


def authorise(url: str, username: str) -> str:
    """What a person does in the browser: open the address logged in as ``username`` (the
    sandbox's ``username`` parameter), read the code shown."""
    page = httpx.get(f"{url}&username={username}", timeout=10)
    assert page.status_code == 200, page.text
    found = re.search(r'id="authorization-code">([^<]+)<', page.text)
    assert found, page.text
    return found.group(1)


def verify_with(server: SandboxServer, token: str) -> str:
    from postscheduler.publishers.client import make_client  # noqa: PLC0415

    account = make_client(base(server), token).account_verify_credentials()
    return str(account["username"])


def read_token_file(path: Path) -> str:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text(encoding="utf-8").strip()
    PLANTED.append(token)
    return token


def test_login_reads_the_code_from_stdin_and_writes_a_0600_token_that_works(
    tmp_path: Path, mastodon: SandboxServer
) -> None:
    plant(mastodon, "newcomer")
    process = subprocess.Popen(
        [*command(), "login", base(mastodon), "--account", "newcomer"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=environment(home=tmp_path),
    )
    assert process.stderr is not None
    assert process.stdin is not None
    seen = ""
    while not (found := URL.search(seen)):
        line = process.stderr.readline()
        assert line, f"no authorisation address in: {seen}"
        seen += line
    process.stdin.write(authorise(found.group(1), "newcomer") + "\n")
    process.stdin.flush()
    out, err = process.communicate(timeout=60)
    check_output(out, seen + err)
    assert process.returncode == 0, seen + err
    path = tmp_path / "newcomer.token"
    token = read_token_file(path)
    assert verify_with(mastodon, token) == "newcomer"
    snippet = tomllib.loads(out)
    assert snippet == {
        "accounts": {
            "newcomer": {"instance": base(mastodon), "token": {"file": str(path)}},
        }
    }
    assert f"logged in as @newcomer@{host(mastodon)}" in err
    assert not (tmp_path / "newcomer.token.pending").exists()
    check_output(out, err)


def test_login_in_two_steps_with_code(tmp_path: Path, gotosocial: SandboxServer) -> None:
    plant(gotosocial, "later")
    target = tmp_path / "secrets" / "later.token"
    target.parent.mkdir()
    first = run(
        "login", base(gotosocial), "--account", "later", "--token-file", str(target), cwd=tmp_path
    )
    assert first.returncode == 1
    assert "no code given" in first.stderr
    assert "--code CODE" in first.stderr
    pending = target.with_name("later.token.pending")
    assert stat.S_IMODE(pending.stat().st_mode) == 0o600
    found = URL.search(first.stderr)
    assert found, first.stderr
    code = authorise(found.group(1), "later")
    second = run(
        "login",
        base(gotosocial),
        "--account",
        "later",
        "--token-file",
        str(target),
        "--code",
        code,
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    assert verify_with(gotosocial, read_token_file(target)) == "later"
    assert not pending.exists()
    # the token file then serves a campaign as it is
    path = campaign(tmp_path, {"later": (gotosocial, f'{{ file = "{target}" }}')})
    verified = run("accounts", str(path), "--verify", "--json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert by_name(json.loads(verified.stdout))["later"]["verification"]["ok"] is True


def test_login_refuses_to_replace_a_file_and_a_wrong_code(
    tmp_path: Path, mastodon: SandboxServer
) -> None:
    (tmp_path / "taken.token").write_text("keep me\n", encoding="utf-8")
    refused = run("login", base(mastodon), "--account", "taken", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"postscheduler: {tmp_path / 'taken.token'} already exists: remove it first, "
        "or pass --token-file"
    )
    assert (tmp_path / "taken.token").read_text(encoding="utf-8") == "keep me\n"

    first = run("login", base(mastodon), "--account", "wrong", cwd=tmp_path)
    assert first.returncode == 1
    bad = run("login", base(mastodon), "--account", "wrong", "--code", "not-a-code", cwd=tmp_path)
    assert bad.returncode == 1
    assert "refused the code" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "wrong.token").exists()


def test_login_requires_https_off_loopback(tmp_path: Path) -> None:
    result = run("login", "http://example.social", "--account", "alba", cwd=tmp_path)
    assert result.returncode == 1
    assert "use https://" in result.stderr


def test_no_planted_token_appeared_in_any_output() -> None:
    """Runs last in this module: every token handed out, every output collected."""
    assert len(PLANTED) >= 8
    assert len(OUTPUTS) >= 10
    everything = "\n".join(OUTPUTS)
    for token in PLANTED:
        assert token not in everything
