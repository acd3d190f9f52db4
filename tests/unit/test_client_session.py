"""The publishing session reads the environment's proxy and CA settings once, for its server."""

from __future__ import annotations

import pytest

from postscheduler.publishers.client import USER_AGENT, session


def test_a_session_for_a_server_takes_the_environments_proxy_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http = session("https://social.example")
    assert http.proxies.get("https") == "http://127.0.0.1:3128"
    assert http.trust_env is False  # not read again on every request
    assert http.headers["User-Agent"] == USER_AGENT


def test_no_proxy_is_honoured_for_the_sessions_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "social.example")
    http = session("https://social.example")
    assert "https" not in http.proxies


def test_the_environments_ca_bundle_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/campaign-ca.pem")
    http = session("https://social.example")
    assert http.verify == "/etc/ssl/certs/campaign-ca.pem"


def test_a_session_for_no_server_in_particular_reads_the_environment_per_request() -> None:
    assert session().trust_env is True
