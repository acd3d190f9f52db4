"""Building a Mastodon.py client the way postscheduler needs it.

- ``ratelimit_method="throw"``: the dispatcher owns waiting and retrying (Mastodon.py's
  "wait"/"pace" modes sleep inside the call and are not thread-safe).
- ``version_check_mode="none"`` with an explicit ``mastodon_version``: Mastodon.py's own
  version check asks for ``/api/v1/instance/`` with a trailing slash, which Takahē answers
  404, after which it recurses until RecursionError (DESIGN §6). We discover the server
  with httpx instead, and tell Mastodon.py what it is.
- A ``requests.Session`` per client: connections are reused; connect and read timeouts are
  separate, so a slow answer is distinguishable from no connection at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from mastodon import Mastodon

from postscheduler import __version__

USER_AGENT = f"postscheduler/{__version__}"
#: The Mastodon API version we tell Mastodon.py to speak (every feature we use exists there).
API_VERSION = "4.0.0"


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection, and then for each read of the answer."""

    connect: float = 5.0
    read: float = 30.0


DEFAULT_TIMEOUTS = Timeouts()


def session(instance: str | None = None, user_agent: str = USER_AGENT) -> requests.Session:
    """A requests session with our User-Agent (one per client: sessions are not shared
    across threads).

    With ``instance``, the session talks to that server only: the environment's proxy
    (``HTTPS_PROXY``, ``NO_PROXY`` …) and CA bundle (``REQUESTS_CA_BUNDLE``) settings for it
    are read once, here, instead of on every request — requests re-reads the whole
    environment per request, ~0.5 ms of CPU each (bench/bench_daemon_throughput.py).
    """
    http = requests.Session()
    http.headers["User-Agent"] = user_agent
    if instance is not None:
        settings = http.merge_environment_settings(instance, {}, None, None, None)
        http.proxies.update(settings["proxies"])
        http.verify = settings["verify"]
        http.trust_env = False
    return http


def make_client(
    instance: str,
    token: str | None = None,
    *,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    client_id: str | None = None,
    client_secret: str | None = None,
    http: requests.Session | None = None,
) -> Mastodon:
    """A Mastodon.py client for ``instance`` (``https://…``), with ``token`` if given."""
    options: dict[str, Any] = {
        "api_base_url": instance,
        "access_token": token,
        "client_id": client_id,
        "client_secret": client_secret,
        "ratelimit_method": "throw",
        "version_check_mode": "none",
        "mastodon_version": API_VERSION,
        "session": http or session(),
        "user_agent": USER_AGENT,
        # requests accepts (connect, read); Mastodon.py passes it through unchanged.
        "request_timeout": (timeouts.connect, timeouts.read),
    }
    client = Mastodon(**options)
    # With version_check_mode "none", Mastodon.py does not parse mastodon_version and
    # believes the server is 0.0.0 — then it falls back to old endpoints (/api/v1/media,
    # which blocks until processing ends). Tell it the version we speak.
    major, minor, patch = (int(part) for part in API_VERSION.split("."))
    client.mastodon_major, client.mastodon_minor, client.mastodon_patch = major, minor, patch
    return client
