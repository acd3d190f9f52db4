"""The HTTP side of the sandbox: parse a request, apply faults, route it, write the answer.

One :class:`SandboxRequestHandler` per connection (HTTP/1.1, keep-alive). The routes are the
Mastodon API endpoints a publishing client uses, the OAuth endpoints, NodeInfo, the HTML
timeline, and the administration endpoints under ``/_sandbox`` (never faulted):

==========================  ========================================================
``GET /_sandbox``           summary: personality, URL, time, accounts, status count
``POST /_sandbox/accounts`` ``{"username": …}`` → ``{"username", "id", "token"}``
``GET /_sandbox/statuses``  every stored status (``?username=`` to filter), oldest first
``GET|POST|DELETE``         ``/_sandbox/faults``: list, add (one object, a list, or
                            ``{"faults": [...]}``), clear
``POST /_sandbox/clock``    ``{"advance": seconds}`` or ``{"offset": seconds}``
``POST /_sandbox/revoke``   ``{"token": …}`` → ``{"revoked": bool}``
==========================  ========================================================
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from postscheduler.sandbox.core import Sandbox
from postscheduler.sandbox.faults import Fault, Faults
from postscheduler.sandbox.model import iso_time
from postscheduler.sandbox.protocol import Params, Reply, Upload

__all__ = ["SandboxHTTPServer", "SandboxRequestHandler"]

#: The largest request body read (a Mastodon video is at most 99 MB).
MAX_BODY = 128 * 1024 * 1024


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its sandbox, its faults and its connections.

    It tracks open connections so that :meth:`close_connections` can end idle keep-alive
    ones when the sandbox stops.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], sandbox: Sandbox, faults: Faults, *, verbose: bool
    ) -> None:
        super().__init__(address, SandboxRequestHandler)
        self.sandbox = sandbox
        self.faults = faults
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection, then serve it in a thread."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection, then close it."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection down (their threads then end)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class _Request:
    """A parsed request, as the route functions see it."""

    method: str
    path: str
    params: Params
    bearer: str | None
    idempotency_key: str | None
    client_ip: str


class _BadRequest(Exception):
    """A request the sandbox cannot parse; its message goes back as a 400."""


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, list[object]], dict[str, Upload]]:
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise _BadRequest("malformed multipart body")
    fields: dict[str, list[object]] = {}
    files: dict[str, Upload] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = Upload(filename, part.get_content_type(), data)
        else:
            charset = part.get_content_charset() or "utf-8"
            fields.setdefault(name, []).append(data.decode(charset, errors="replace"))
    return fields, files


def _admin_json(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as error:
        raise _BadRequest(f"the body is not JSON: {error}") from None


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Serves one connection of a :class:`SandboxHTTPServer`."""

    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "postscheduler-sandbox"
    sys_version = ""
    timeout = 60

    # -- plumbing ------------------------------------------------------------------------

    def setup(self) -> None:
        """Disable Nagle's algorithm: headers and body go out as two writes, and waiting
        for the client's delayed ACK between them would cost 40 ms per answer."""
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        """Handle a GET."""
        self._handle()

    def do_POST(self) -> None:
        """Handle a POST."""
        self._handle()

    def do_PUT(self) -> None:
        """Handle a PUT."""
        self._handle()

    def do_PATCH(self) -> None:
        """Handle a PATCH."""
        self._handle()

    def do_DELETE(self) -> None:
        """Handle a DELETE."""
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Log requests to stderr only when the server is verbose."""
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _reset(self) -> None:
        """Close the connection without answering (an RST, so the client notices at once)."""
        self.close_connection = True
        linger = struct.pack("ii", 1, 0)
        with contextlib.suppress(OSError):  # the client is already gone
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.connection.close()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest("Content-Length is not a number") from None
        if length > MAX_BODY:
            raise _BadRequest(f"the body is larger than {MAX_BODY} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise _BadRequest(f"the body is larger than {MAX_BODY} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _params(self, query: Mapping[str, Sequence[str]], body: bytes) -> Params:
        content_type = self.headers.get("Content-Type", "")
        kind = content_type.split(";")[0].strip().lower()
        if not body:
            return Params([query])
        if kind == "application/json":
            try:
                document = json.loads(body)
            except ValueError as error:
                raise _BadRequest(f"the body is not JSON: {error}") from None
            if not isinstance(document, dict):
                raise _BadRequest("the JSON body is not an object")
            return Params([query, Params.from_json(document)])
        if kind == "multipart/form-data":
            fields, files = _multipart(content_type, body)
            return Params([query, fields], files)
        form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return Params([query, form])

    def _bearer(self, params: Params) -> str | None:
        header = self.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip() or None
        return params.text("access_token")

    # -- one request ---------------------------------------------------------------------

    def _handle(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path) or "/"
        query = parse_qs(split.query, keep_blank_values=True)
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            self._handle_admin(path, query)
            return
        fault = self.server.faults.take(self.command, path)
        if fault is not None and fault.kind == "down":
            self._reset()
            return
        try:
            body = self._read_body()
            params = self._params(query, body)
        except _BadRequest as error:
            self._send(Reply.json(400, {"error": str(error)}))
            return
        if fault is not None and not self._apply_fault(fault, params):
            return
        request = _Request(
            method=self.command,
            path=path,
            params=params,
            bearer=self._bearer(params),
            idempotency_key=self.headers.get("Idempotency-Key"),
            client_ip=self.client_address[0],
        )
        reply = self._route(request)
        reply = reply.with_headers(self.server.sandbox.ip_rate_headers(request.client_ip))
        if fault is not None and fault.kind == "reset_after":
            self._reset()
            return
        self._send(reply)

    def _apply_fault(self, fault: Fault, params: Params) -> bool:
        """Apply a fault before routing; False when the request is over (answered or cut)."""
        if fault.kind == "delay":
            time.sleep(fault.seconds)
        elif fault.kind == "reset_before":
            self._reset()
            return False
        elif fault.kind == "status":
            self._send(Reply.json(fault.status, fault.body, fault.headers))
            return False
        elif fault.kind == "revoke":
            bearer = self._bearer(params)
            if bearer:
                self.server.sandbox.revoke(bearer)
        return True

    def _route(self, request: _Request) -> Reply:
        sandbox = self.server.sandbox
        path = request.path
        if not sandbox.personality.strict_slashes and len(path) > 1:
            path = path.rstrip("/") or "/"
        for method, pattern, function in _ROUTES:
            if method != request.method:
                continue
            match = pattern.fullmatch(path)
            if match is not None:
                return function(sandbox, request, *match.groups())
        return Reply.refusal(sandbox.personality.not_found)

    # -- administration ------------------------------------------------------------------

    def _handle_admin(self, path: str, query: Mapping[str, Sequence[str]]) -> None:
        try:
            body = _admin_json(self._read_body())
            function = _ADMIN.get((self.command, path.rstrip("/")))
            if function is None:
                reply = Reply.json(
                    404, {"error": f"no administration endpoint {self.command} {path}"}
                )
            else:
                reply = function(self.server, query, body)
        except (_BadRequest, ValueError, TypeError, KeyError) as error:
            reply = Reply.json(400, {"error": str(error)})
        self._send(reply)


# -- administration --------------------------------------------------------------------------

AdminQuery = Mapping[str, Sequence[str]]


def _summary(server: SandboxHTTPServer, query: AdminQuery, body: Any) -> Reply:
    sandbox = server.sandbox
    summary = {
        "personality": sandbox.personality.name,
        "url": sandbox.base_url,
        "domain": sandbox.domain,
        "now": iso_time(sandbox.now()),
        "statuses": len(sandbox.stored_statuses()),
    }
    return Reply.json(200, summary)


def _add_account(server: SandboxHTTPServer, query: AdminQuery, body: Any) -> Reply:
    username = str(body["username"])
    token = server.sandbox.add_account(username)
    account = server.sandbox.ensure_account(username)
    return Reply.json(201, {"username": account.username, "id": account.id, "token": token})


def _stored_statuses(server: SandboxHTTPServer, query: AdminQuery, body: Any) -> Reply:
    usernames = query.get("username") or []
    return Reply.json(200, server.sandbox.stored_statuses(usernames[0] if usernames else None))


def _list_faults(server: SandboxHTTPServer, query: AdminQuery, body: Any) -> Reply:
    return Reply.json(200, {"faults": server.faults.pending()})


def _add_faults(server: SandboxHTTPServer, query: AdminQuery, body: Any) -> Reply:
    entries = body.get("faults", body) if isinstance(body, dict) else body
    for entry in entries if isinstance(entries, list) else [entries]:
        settings = dict(entry)
        pattern, kind = settings.pop("pattern"), settings.pop("kind")
        times = int(settings.pop("times", 1))
        server.faults.add(str(pattern), str(kind), times, **settings)
    return Reply.json(201, {"faults": server.faults.pending()})


def _clear_faults(server: SandboxHTTPServer, query: AdminQuery, body: Any) -> Reply:
    server.faults.clear()
    return Reply.json(200, {"faults": []})


def _clock(server: SandboxHTTPServer, query: AdminQuery, body: Any) -> Reply:
    sandbox = server.sandbox
    if "offset" in body:
        offset = sandbox.set_clock_offset(float(body["offset"]))
    else:
        offset = sandbox.advance_clock(float(body.get("advance", 0)))
    return Reply.json(200, {"now": iso_time(sandbox.now()), "offset": offset})


def _revoke_token(server: SandboxHTTPServer, query: AdminQuery, body: Any) -> Reply:
    return Reply.json(200, {"revoked": server.sandbox.revoke(str(body["token"]))})


_ADMIN: dict[tuple[str, str], Callable[[SandboxHTTPServer, AdminQuery, Any], Reply]] = {
    ("GET", "/_sandbox"): _summary,
    ("POST", "/_sandbox/accounts"): _add_account,
    ("GET", "/_sandbox/statuses"): _stored_statuses,
    ("GET", "/_sandbox/faults"): _list_faults,
    ("POST", "/_sandbox/faults"): _add_faults,
    ("DELETE", "/_sandbox/faults"): _clear_faults,
    ("POST", "/_sandbox/clock"): _clock,
    ("POST", "/_sandbox/revoke"): _revoke_token,
}


# -- routes ----------------------------------------------------------------------------------

Route = Callable[..., Reply]


def _timeline(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.timeline()


def _status_page(sandbox: Sandbox, request: _Request, username: str, status_id: str) -> Reply:
    return sandbox.status_page(username, status_id)


def _media_file(sandbox: Sandbox, request: _Request, media_id: str, name: str) -> Reply:
    return sandbox.media_file(media_id)


def _nodeinfo_links(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.nodeinfo_links()


def _nodeinfo(sandbox: Sandbox, request: _Request, version: str) -> Reply:
    if version == "2.1" and sandbox.personality.software not in ("pleroma", "akkoma"):
        return Reply.refusal(sandbox.personality.not_found)
    return sandbox.nodeinfo(version)


def _oauth_metadata(sandbox: Sandbox, request: _Request) -> Reply:
    if not sandbox.personality.oauth_metadata:
        return Reply.refusal(sandbox.personality.not_found)
    return sandbox.oauth_metadata()


def _create_app(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.create_app(request.params)


def _authorize(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.authorize(request.params)


def _token(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.issue_token(request.params)


def _revoke(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.revoke_token(request.params)


def _verify_credentials(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.verify_credentials(request.bearer)


def _account(sandbox: Sandbox, request: _Request, account_id: str) -> Reply:
    return sandbox.get_account(account_id)


def _account_statuses(sandbox: Sandbox, request: _Request, account_id: str) -> Reply:
    return sandbox.account_statuses(request.bearer, account_id, request.params, request.path)


def _instance_v1(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.instance(1)


def _instance_v2(sandbox: Sandbox, request: _Request) -> Reply:
    if not sandbox.personality.serves_instance_v2:
        return Reply.refusal(sandbox.personality.not_found)
    return sandbox.instance(2)


def _create_status(sandbox: Sandbox, request: _Request) -> Reply:
    return sandbox.create_status(
        request.bearer, request.params, request.idempotency_key, request.client_ip
    )


def _status(sandbox: Sandbox, request: _Request, status_id: str) -> Reply:
    return sandbox.get_status(request.bearer, status_id)


def _upload(sandbox: Sandbox, request: _Request, version: str) -> Reply:
    return sandbox.upload_media(request.bearer, request.params, int(version))


def _media(sandbox: Sandbox, request: _Request, media_id: str) -> Reply:
    return sandbox.get_media(request.bearer, media_id)


def _update_media(sandbox: Sandbox, request: _Request, media_id: str) -> Reply:
    return sandbox.update_media(request.bearer, media_id, request.params)


_ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    (method, re.compile(pattern), function)
    for method, pattern, function in (
        ("GET", r"/", _timeline),
        ("GET", r"/@([^/]+)/([^/]+)", _status_page),
        ("GET", r"/media/([^/]+)/([^/]+)", _media_file),
        ("GET", r"/\.well-known/nodeinfo", _nodeinfo_links),
        ("GET", r"/nodeinfo/(2\.[01])", _nodeinfo),
        ("GET", r"/\.well-known/oauth-authorization-server", _oauth_metadata),
        ("POST", r"/api/v1/apps", _create_app),
        ("GET", r"/oauth/authorize", _authorize),
        ("POST", r"/oauth/token", _token),
        ("POST", r"/oauth/revoke", _revoke),
        ("GET", r"/api/v1/accounts/verify_credentials", _verify_credentials),
        ("GET", r"/api/v1/accounts/([^/]+)", _account),
        ("GET", r"/api/v1/accounts/([^/]+)/statuses", _account_statuses),
        ("GET", r"/api/v1/instance", _instance_v1),
        ("GET", r"/api/v2/instance", _instance_v2),
        ("POST", r"/api/v1/statuses", _create_status),
        ("GET", r"/api/v1/statuses/([^/]+)", _status),
        ("POST", r"/api/v([12])/media", _upload),
        ("GET", r"/api/v1/media/([^/]+)", _media),
        ("PUT", r"/api/v1/media/([^/]+)", _update_media),
    )
]
