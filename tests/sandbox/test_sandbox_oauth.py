"""OAuth as the servers do it: app, authorize page, code exchange, revocation; bad tokens."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sandbox_support import oauth_token

from postscheduler.sandbox import SandboxServer

StartServer = Callable[..., SandboxServer]
OpenClient = Callable[..., httpx.Client]


def test_the_oauth_flow_gives_a_working_token(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    answer = oauth_token(open_client(server), username="peuples")
    assert answer["token_type"] == "Bearer"  # noqa: S105 (not a password)
    assert answer["scope"] == "read write"
    assert isinstance(answer["created_at"], int)
    me = open_client(server, answer["access_token"]).get("/api/v1/accounts/verify_credentials")
    assert me.status_code == 200
    account = me.json()
    assert account["username"] == account["acct"] == "peuples"
    assert account["url"] == f"{server.url}/@peuples"
    assert account["id"]


def test_the_app_answer_carries_its_credentials(
    start_server: StartServer, open_client: OpenClient
) -> None:
    app = open_client(start_server()).post(
        "/api/v1/apps",
        json={"client_name": "ps", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read"},
    )
    assert app.status_code == 200
    document = app.json()
    assert document["name"] == "ps"
    assert document["scopes"] == ["read"]
    assert document["redirect_uri"] == "urn:ietf:wg:oauth:2.0:oob"
    assert document["client_id"]
    assert document["client_secret"]


def test_an_app_without_a_name_is_refused(
    start_server: StartServer, open_client: OpenClient
) -> None:
    answer = open_client(start_server()).post(
        "/api/v1/apps", data={"redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    )
    assert answer.status_code == 422
    assert "name can't be blank" in answer.json()["error"]


def test_authorize_without_a_username_approves_the_default_user(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(default_username="organiser")
    client = open_client(server)
    app = client.post(
        "/api/v1/apps", data={"client_name": "ps", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    ).json()
    page = client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
        },
    )
    assert page.status_code == 200
    assert 'class="oauth-code"' in page.text
    assert "@organiser" in page.text


def test_authorize_redirects_to_a_registered_uri_with_the_code_and_state(
    start_server: StartServer, open_client: OpenClient
) -> None:
    client = open_client(start_server())
    app = client.post(
        "/api/v1/apps", data={"client_name": "ps", "redirect_uris": "http://localhost/cb"}
    ).json()
    answer = client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": "http://localhost/cb",
            "state": "xyz",
        },
    )
    assert answer.status_code == 302
    location = httpx.URL(answer.headers["Location"])
    assert location.path == "/cb"
    assert location.params["state"] == "xyz"
    assert location.params["code"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": "nobody"}, "invalid_client"),
        ({"redirect_uri": "http://evil.example/cb"}, "invalid_redirect_uri"),
        ({"scope": "admin:write"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_authorize_refuses_what_the_app_did_not_register(
    change: dict[str, str], error: str, start_server: StartServer, open_client: OpenClient
) -> None:
    client = open_client(start_server())
    app = client.post(
        "/api/v1/apps",
        data={
            "client_name": "ps",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read write",
        },
    ).json()
    params = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
        "scope": "read",
    }
    answer = client.get("/oauth/authorize", params={**params, **change})
    assert answer.status_code == 400
    assert error in answer.text


def test_a_code_is_exchanged_once_and_needs_the_client_secret(
    start_server: StartServer, open_client: OpenClient
) -> None:
    client = open_client(start_server())
    app = client.post(
        "/api/v1/apps", data={"client_name": "ps", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    ).json()
    page = client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
        },
    )
    code = page.text.split('id="authorization-code">')[1].split("<")[0]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app["client_id"],
        "client_secret": "wrong",
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
    }
    wrong_secret = client.post("/oauth/token", data=exchange)
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    exchange["client_secret"] = app["client_secret"]
    assert client.post("/oauth/token", data=exchange).status_code == 200
    again = client.post("/oauth/token", data=exchange)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_an_app_token_cannot_act_as_a_user(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server()
    client = open_client(server)
    app = client.post(
        "/api/v1/apps",
        data={
            "client_name": "ps",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read write",
        },
    ).json()
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read write",
        },
    ).json()["access_token"]
    answer = open_client(server, token).get("/api/v1/accounts/verify_credentials")
    assert answer.status_code == 422
    assert answer.json() == {"error": "This method requires an authenticated user"}


def test_a_read_only_token_cannot_post_on_mastodon(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    token = oauth_token(open_client(server), scopes="read")["access_token"]
    answer = open_client(server, token).post("/api/v1/statuses", data={"status": "hello"})
    assert answer.status_code == 403
    assert answer.json() == {"error": "This action is outside the authorized scopes"}
    assert server.statuses() == []


#: (status, content type, body) of a bad token, per personality.
BAD_TOKEN = {
    "mastodon": (401, "application/json", {"error": "The access token is invalid"}),
    "gotosocial": (401, "application/json", {"error": "Unauthorized: token not supplied"}),
    "pleroma": (403, "application/json", {"error": "Invalid credentials."}),
    "akkoma": (403, "application/json", {"error": "Invalid credentials."}),
    "takahe": (400, "text/html", "Invalid Bearer token"),
}


@pytest.mark.parametrize("path", ["/api/v1/statuses", "/api/v1/accounts/verify_credentials"])
def test_a_bad_token_is_refused_as_each_server_refuses_it(
    personality: str, path: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    client = open_client(server, "not-a-token")
    answer = client.post(path, data={"status": "x"}) if "statuses" in path else client.get(path)
    status, content_type, body = BAD_TOKEN[personality]
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith(content_type)
    assert (answer.json() if content_type == "application/json" else answer.text) == body
    assert server.statuses() == []


def test_a_revoked_token_stops_working(
    personality: str, start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server(personality)
    token = server.add_account("alba")
    client = open_client(server, token)
    assert client.get("/api/v1/accounts/verify_credentials").status_code == 200
    assert server.revoke(token)
    answer = client.get("/api/v1/accounts/verify_credentials")
    assert answer.status_code == BAD_TOKEN[personality][0]


def test_mastodon_says_a_revoked_token_was_revoked(
    start_server: StartServer, open_client: OpenClient
) -> None:
    server = start_server("mastodon")
    client = open_client(server)
    answer = oauth_token(client)
    app_credentials = client.post(
        "/api/v1/apps", data={"client_name": "other", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    ).json()
    token = answer["access_token"]
    # Another app cannot revoke it; its own can (POST /oauth/revoke answers 200 either way).
    revoke = {"token": token, "client_id": app_credentials["client_id"]}
    assert client.post("/oauth/revoke", data=revoke).status_code == 200
    user = open_client(server, token)
    assert user.get("/api/v1/accounts/verify_credentials").status_code == 200
    assert server.revoke(token)
    refused = user.get("/api/v1/accounts/verify_credentials")
    assert refused.status_code == 401
    assert refused.json() == {"error": "The access token was revoked"}
    assert "invalid_token" in refused.headers["WWW-Authenticate"]


def test_oauth_revoke_by_the_owning_app(start_server: StartServer, open_client: OpenClient) -> None:
    server = start_server("gotosocial")
    client = open_client(server)
    app = client.post(
        "/api/v1/apps",
        data={"client_name": "ps", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read"},
    ).json()
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    ).json()["access_token"]
    revoked = client.post(
        "/oauth/revoke",
        data={"token": token, "client_id": app["client_id"], "client_secret": app["client_secret"]},
    )
    assert revoked.status_code == 200
    assert open_client(server, token).get("/api/v1/statuses/1").status_code == 401


def test_a_missing_token_on_takahe_is_a_401_not_the_html_400(
    start_server: StartServer, open_client: OpenClient
) -> None:
    answer = open_client(start_server("takahe")).post("/api/v1/statuses", data={"status": "x"})
    assert answer.status_code == 401
    assert answer.json() == {"error": "identity_token_required"}
