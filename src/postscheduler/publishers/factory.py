"""Publishers for the daemon: one per account, with its token and its server's profile.

Mastodon.py, requests and httpx (with its TLS context) are imported, and the discovery
client made, when the first publisher is built: a daemon with nothing due for days does not
keep them in memory (about 10 MB of its resident size; see ``bench/bench_daemon_idle.py``).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from postscheduler.credentials import read_token
from postscheduler.errors import CredentialError
from postscheduler.ports import AccountRecord, CampaignRecord, Clock, Publisher, Store

if TYPE_CHECKING:
    import httpx

    from postscheduler.domain.campaign import TokenSource

#: How long a discovered profile is trusted before the server is asked again.
PROFILE_TTL = timedelta(hours=24)


def token_source(description: str) -> TokenSource:
    """The :class:`TokenSource` a stored ``env:NAME`` / ``file:PATH`` / ``credential:NAME``
    describes (the store keeps where a token is, never the token)."""
    from postscheduler.domain.campaign import TokenSource  # noqa: PLC0415 (pydantic: when used)

    kind, _, value = description.partition(":")
    if kind not in ("env", "file", "credential") or not value:
        raise CredentialError(f"cannot tell where the token is from {description!r}")
    return TokenSource(**{kind: value})


class LivePublishers:
    """``publisher_for(campaign, account)``: a Mastodon.py publisher per account, its token
    read (and redacted from logs) and its server discovered (cached in the store)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._http: httpx.Client | None = None
        self._publishers: dict[tuple[str, str], Publisher] = {}
        self._lock = threading.Lock()

    def __call__(self, campaign: CampaignRecord, account: AccountRecord) -> Publisher:
        key = (campaign.id, account.name)
        with self._lock:
            if key not in self._publishers:
                # Imported here, not at the top: see the module docstring.
                from postscheduler.publishers.discovery import (  # noqa: PLC0415
                    discovery_client,
                    profile_for,
                )
                from postscheduler.publishers.mastodon import MastodonPublisher  # noqa: PLC0415

                if self._http is None:
                    self._http = discovery_client()
                token = read_token(
                    token_source(account.token_source),
                    account=account.name,
                    base=Path(campaign.path).parent,
                )
                profile = profile_for(
                    account.instance,
                    store=self.store,
                    client=self._http,
                    now=self.clock.now(),
                    ttl=PROFILE_TTL,
                )
                self._publishers[key] = MastodonPublisher(profile, token.reveal())
            return self._publishers[key]

    def forget(self, campaign: str, account: str) -> None:
        """Drop a cached publisher (its token changed, or its account was resumed)."""
        with self._lock:
            self._publishers.pop((campaign, account), None)

    def close(self) -> None:
        """Close the discovery client (if one was made)."""
        http, self._http = self._http, None
        if http is not None:
            http.close()
