"""Benchmark the sandbox: sustained statuses per second with concurrent clients.

    .venv/bin/python bench/bench_sandbox.py [--clients 8] [--seconds 15] [--personality mastodon]
                                           [--record] [--in-process]

The sandbox runs as its own process (``python -m postscheduler.sandbox``, as tests and
``rehearse`` start it) on 127.0.0.1 so that the clients' threads do not share its GIL;
``--in-process`` runs it in this process instead. Each client is a thread with its own
``httpx.Client`` (keep-alive) and its own account, posting statuses with an
Idempotency-Key until the time is up. Prints statuses per second, latency percentiles, and
checks that the sandbox stored exactly what was acknowledged.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from postscheduler.sandbox import SandboxServer

TLS = ssl.create_default_context()


def start_process(
    args: argparse.Namespace, accounts: list[str], record: Path | None
) -> tuple[subprocess.Popen[str], str, dict[str, str]]:
    command = [
        sys.executable,
        "-m",
        "postscheduler.sandbox",
        "--personality",
        args.personality,
        "--accounts",
        ",".join(accounts),
        "--statuses-per-window",
        "1000000000",
    ]
    if record is not None:
        command += ["--record", str(record)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = json.loads(process.stdout.readline())
    return process, line["url"], line["tokens"]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by ``pid`` (Linux ``/proc``), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass
class Run:
    """What the client threads share: where to post, until when, and what went wrong."""

    url: str
    deadline: float
    errors: list[str] = field(default_factory=list)


def client_loop(run: Run, name: str, token: str, latencies: list[float]) -> None:
    """Post statuses as ``name`` until the deadline, recording each one's latency."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=run.url, headers=headers, verify=TLS, timeout=10) as client:
        number = 0
        while time.monotonic() < run.deadline:
            number += 1
            began = time.perf_counter()
            answer = client.post(
                "/api/v1/statuses",
                data={"status": f"Statut {number} de {name} #bench", "visibility": "public"},
                headers={"Idempotency-Key": f"bench/{name}/{number}"},
            )
            latencies.append(time.perf_counter() - began)
            if answer.status_code != 200:
                run.errors.append(f"{answer.status_code} {answer.text[:80]}")
                return


def report(
    args: argparse.Namespace,
    *,
    elapsed: float,
    latencies: list[float],
    run: Run,
    stored: int,
    record: Path | None,
) -> bool:
    """Print the figures; False when the sandbox did not store what it acknowledged."""
    acknowledged = len(latencies) - len(run.errors)
    where = "in-process" if args.in_process else "separate process"
    print(
        f"sandbox ({args.personality}, {where}{', recording' if record else ''}): "
        f"{args.clients} clients, {elapsed:.1f} s"
    )
    print(f"  {acknowledged} statuses acknowledged, {stored} stored")
    print(f"  {acknowledged / elapsed:.0f} statuses/s sustained")
    if latencies:
        ordered = sorted(latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000
        print(f"  latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    if record is not None:
        print(f"  record: {record.read_text(encoding='utf-8').count(chr(10))} lines")
    if run.errors:
        print(f"  errors: {run.errors[:3]}")
    return stored == acknowledged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--personality", default="mastodon")
    parser.add_argument("--record", action="store_true", help="also write the JSONL record")
    parser.add_argument("--in-process", action="store_true", help="run the sandbox in-process")
    args = parser.parse_args()
    accounts = [f"bench{i}" for i in range(args.clients)]
    record = (
        Path(tempfile.mkdtemp(prefix="bench-sandbox-")) / "record.jsonl" if args.record else None
    )
    process = server = None
    if args.in_process:
        server = SandboxServer(
            args.personality, record_path=record, statuses_per_window=1_000_000_000
        ).start()
        url = server.url
        tokens = {name: server.add_account(name) for name in accounts}
    else:
        process, url, tokens = start_process(args, accounts, record)

    run = Run(url, time.monotonic() + args.seconds)
    per_client: list[list[float]] = [[] for _ in accounts]
    threads = [
        threading.Thread(target=client_loop, args=(run, name, tokens[name], per_client[i]))
        for i, name in enumerate(accounts)
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + 30)
    elapsed = time.monotonic() - began

    with httpx.Client(base_url=url, verify=TLS) as admin:
        stored = len(admin.get("/_sandbox/statuses").json())
    if process is not None:
        cpu = process_cpu_seconds(process.pid)
        if cpu is not None:
            print(f"server process CPU: {cpu:.1f} s ({cpu / elapsed:.0%} of one core)")
    if server is not None:
        server.stop()
    if process is not None:
        process.terminate()
        process.wait(timeout=10)
    latencies = [latency for lats in per_client for latency in lats]
    if not report(
        args, elapsed=elapsed, latencies=latencies, run=run, stored=stored, record=record
    ):
        print("  MISMATCH: stored and acknowledged differ")
        sys.exit(1)


if __name__ == "__main__":
    main()
