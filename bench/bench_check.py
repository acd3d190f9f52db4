"""Benchmark ``postscheduler check`` on a generated campaign, and ``postscheduler --help``.

    .venv/bin/python bench/bench_check.py [--posts 10000] [--runs 3]

Prints wall-clock figures (best of N runs) for: `check --json` of a generated campaign as a
subprocess (what an organiser waits for), the same in-process split into load and plan,
and `postscheduler --help` as a subprocess. Targets (issue #2): check of 10,000 posts ≤ 2 s,
--help ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from postscheduler.campaign_file import load_campaign
from postscheduler.cron import expand_cron
from postscheduler.domain.plan import plan_campaign

FIRST_AT = datetime(2017, 10, 5, 6, 0)
ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "solidarité",
    "peuples",
    "mobilisation",
    "paix",
    "souveraineté",
    "démocratie",
    "fraternité",
    "lutte",
    "injustice",
    "révolution",
    "histoire",
    "liberté",
    "indépendance",
    "campagne",
    "réseaux",
]


def generate(folder: Path, posts: int) -> Path:
    """A campaign of ``posts`` posts over 4 accounts, a quarter with explicit times, a tenth
    long enough to become threads on Mastodon, with excerpts and hashtags."""
    shutil.copy(ROOT / "config" / "statement.txt", folder / "statement.txt")
    lines = [
        "[campaign]",
        'id = "bench"',
        'name = "Bench"',
        'timezone = "America/Caracas"',
        "start = 2017-10-05T00:00:00",
        "end = 2017-12-31T23:59:00",
        'statement = "statement.txt"',
        'language = "fr"',
        'hashtags = ["NousSommesTousLeVenezuela"]',
        'posting_hours = ["06:00", "23:00"]',
        'min_spacing = "1m"',
        "",
    ]
    softwares = ["mastodon", "gotosocial", "pleroma", "takahe"]
    for index, software in enumerate(softwares):
        lines += [
            f"[accounts.a{index}]",
            f'instance = "https://s{index}.example"',
            f'token = {{ env = "TOKEN_{index}" }}',
            f'software = "{software}"',
            "",
        ]
    for number in range(posts):
        words = " ".join(WORDS[(number + k) % len(WORDS)] for k in range(12))
        body = f"Message {number} : {words}."
        if number % 10 == 0:
            body = " ".join([body] * 12)
        lines += ["[[posts]]", f'id = "p{number}"', f'accounts = ["a{number % 4}"]']
        if number % 4 == 0:
            at = FIRST_AT + timedelta(minutes=7 * number)
            lines.append(f"at = {at:%Y-%m-%dT%H:%M:%S}")
        if number % 3 == 0:
            lines.append('text = "{excerpt} ' + body + '"')
            lines.append('excerpt = { paragraph = 2, sentences = "2" }')
        else:
            lines.append(f'text = "{body}"')
        lines += [f'hashtags = ["Tag{number % 50}"]', ""]
    path = folder / "campaign.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def best(runs: int, action: object) -> float:
    assert callable(action)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    exe = [sys.executable, "-m", "postscheduler"]
    with tempfile.TemporaryDirectory() as tmp:
        path = generate(Path(tmp), args.posts)
        result = subprocess.run(
            [*exe, "check", "--json", str(path)], capture_output=True, check=False
        )
        if result.returncode != 0:
            sys.exit(
                f"check failed:\n{result.stdout.decode()[:2000]}{result.stderr.decode()[:2000]}"
            )

        def run_check() -> None:
            subprocess.run([*exe, "check", str(path)], capture_output=True, check=True)

        def run_check_json() -> None:
            subprocess.run([*exe, "check", "--json", str(path)], capture_output=True, check=True)

        def run_load() -> None:
            load_campaign(path)

        loaded = load_campaign(path)

        def run_plan() -> None:
            plan_campaign(loaded.campaign, loaded.statement, loaded.media, expand_cron)

        publications = len(
            plan_campaign(loaded.campaign, loaded.statement, loaded.media, expand_cron).publications
        )
        check_s = best(args.runs, run_check)
        check_json_s = best(args.runs, run_check_json)
        load_s = best(args.runs, run_load)
        plan_s = best(args.runs, run_plan)

    def run_help() -> None:
        subprocess.run([*exe, "--help"], capture_output=True, check=True)

    help_runs = max(args.runs, 5)
    help_s = best(help_runs, run_help)
    print(f"posts: {args.posts}  publications: {publications}")
    print(f"check (subprocess, best of {args.runs}): {check_s:.3f} s   target <= 2 s")
    print(f"check --json (subprocess, best of {args.runs}): {check_json_s:.3f} s")
    print(f"  in-process load (TOML + validation + statement): {load_s:.3f} s")
    print(f"  in-process plan (compose, count, split, slots): {plan_s:.3f} s")
    print(f"--help (subprocess, best of {help_runs}): {help_s * 1000:.0f} ms   target <= 150 ms")


if __name__ == "__main__":
    main()
