"""Client-side CPU per publish: the Mastodon.py adapter posting to a sandbox over loopback.

    .venv/bin/python bench/bench_publish.py [--count 2000]
    .venv/bin/python bench/bench_publish.py --reconcile 50

The sandbox runs in its own process, so this process's CPU time is the client's alone
(building the request, HTTP over loopback, parsing the answer, mapping the outcome).
Target (issue #4): ≤ 2 ms of client CPU per publish.

``--reconcile N``: instead, the account holds 200 other statuses and the adapter looks N
times for one it does not hold — the worst case of a reconciliation: every page read, up
to the adapter's limit (200 statuses, 5 pages of 40). Reported: client CPU per look.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from postscheduler.domain.states import State
from postscheduler.ports import PublicationRecord, ServerProfile
from postscheduler.publishers.mastodon import MastodonPublisher

TARGET_MS = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--reconcile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "postscheduler.sandbox",
            "--accounts",
            "alba",
            "--statuses-per-window",
            str(args.count * 2),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        info = json.loads(sandbox.stdout.readline())
        now = datetime.now(UTC)
        profile = ServerProfile(
            instance=info["url"],
            software="mastodon",
            version="sandbox",
            max_characters=500,
            characters_per_url=23,
            max_media=4,
            idempotency_ttl=timedelta(hours=1),
            scheduled_at=False,
            fetched_at=now,
        )
        publisher = MastodonPublisher(profile, info["tokens"]["alba"])
        record = PublicationRecord(
            key="bench/p/alba/1",
            campaign="bench",
            post="p",
            occurrence=None,
            account="alba",
            part=1,
            parts=1,
            scheduled_at=now,
            text="Nous sommes tous le Venezuela #Bench",
            spoiler_text="",
            visibility="public",
            language="fr",
            sensitive=False,
            media=(),
            reply_to=None,
            content_hash="h",
            state=State.CLAIMED,
        )
        if args.reconcile:
            reconcile(publisher, record, args.reconcile)
            return
        for warm in range(20):
            publisher.post_status(
                record, idempotency_key=f"w{warm}", in_reply_to_id=None, media_ids=[]
            )
        cpu, wall = time.process_time(), time.perf_counter()
        for number in range(args.count):
            publisher.post_status(
                record, idempotency_key=f"k{number}", in_reply_to_id=None, media_ids=[]
            )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.communicate(timeout=10)
    per = cpu / args.count * 1000
    verdict = "meets" if per <= TARGET_MS else "MISSES"
    print(
        f"{args.count} publishes: client CPU {per:.2f} ms each [{verdict} target <= {TARGET_MS} ms]"
    )
    print(f"  wall {wall / args.count * 1000:.2f} ms each ({args.count / wall:.0f}/s, one client)")


def reconcile(publisher: MastodonPublisher, record: PublicationRecord, count: int) -> None:
    """Look ``count`` times for a status the account does not hold, behind 200 others."""
    for number in range(200):
        other = replace(record, text=f"Un autre texte, numéro {number} #Bench")
        publisher.post_status(
            other, idempotency_key=f"o{number}", in_reply_to_id=None, media_ids=[]
        )
    missing = replace(record, text="Jamais envoyé")
    since = record.scheduled_at - timedelta(hours=1)
    assert publisher.find_status(missing, since=since) is None  # warm: the account id
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        assert publisher.find_status(missing, since=since) is None
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{count} reconciliations (200 statuses, 5 pages each): client CPU "
        f"{cpu / count * 1000:.1f} ms each ({cpu / count / 5 * 1000:.1f} ms per page), "
        f"wall {wall / count * 1000:.1f} ms each"
    )


if __name__ == "__main__":
    main()
