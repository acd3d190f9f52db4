"""Crash-safety torture: the real daemon killed at random, again and again, then checked.

A campaign of 1,040 publications over twenty accounts is due in a short window around now
(from three minutes ago to 30 s ahead; misfire ``until_end``). Ten accounts are on a
Mastodon-personality sandbox (500 characters: three long posts become 2- and 3-part
threads there), ten on a GoToSocial-personality one, which ignores the Idempotency-Key:
there, only the dispatcher's reconciliation stands between a crash and a duplicate.

``postscheduler run --lease 2 --workers 4`` processes are SIGKILLed at random moments (0.05
to 0.5 s after they are up; one in ten while still starting; one in ten only after a lease
has had time to expire, so that it takes over what the dead left) or killed by the
dispatcher's own crash points (:mod:`postscheduler.crashpoints`: after a claim, after a
send, just before and just after a published outcome is recorded), and started again; then
one clean ``postscheduler run`` finishes the work and stops on SIGTERM. The checks:

- every publication is published (none lost, none stuck claimed or uncertain);
- the servers hold each publication exactly once (by account and text), and nothing else,
  and the store points at that status;
- each thread part replies to the part before, and was created after it;
- nothing was published before its time, nor after the window's end.

With PostgreSQL, three replicas (each process its own ``--owner``) share the database,
killed and restarted independently. First, while the three work undisturbed (with 5 s
leases), one is SIGSTOPped as it holds claims, for longer than its lease (5.5 s), so that
the others take them over, then SIGCONTed: its late outcomes must be refused (LeaseLost),
and nothing may be published twice — on GoToSocial, only the dispatcher's lease rules
prevent it (see ``Torture.stall``).

**How the daemons are started.** Each ``run`` is a process forked by a *zygote* that has
imported the package once (not the dispatcher, the daemon or the crash points, which each
child imports after its environment is set); the child runs the console script's own
``main(["run", ...])``. A restart then costs what ``run`` does (about 0.2 s: open the store,
sync, discover) instead of a second of imports, which is what lets CI afford its kills. The
final run is a plain ``python -m postscheduler run``.

**Size.** A death costs its restart (~0.1 s) and the reconciliation of the claims it left
(each reaped claim is looked for on the server: ~5 ms of client CPU for five pages of
statuses since the adapter reads them through its own session, where Mastodon.py took
~0.27 s). The pace of deaths is set by the daemons' lives (0.05–0.5 s, one in ten a lease
longer), and the more the torture publishes, the less the final run has left: so CI kills
``CI_*_KILLS`` = 100 times per database, as the full run does — about 30 s per database on
two cores, the file ~65 s — with ``CI_*_SECONDS`` only as a bound for a slow machine
(then at least ``CI_MIN_DEATHS``). ``bench/bench_torture.py`` runs the same scenarios with
more deaths (by default 120) and prints the same figures; ``-s`` shows them here.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from postscheduler.domain.states import State
from postscheduler.ports import RECONCILE, PublicationRecord
from postscheduler.store.opening import open_store
from postscheduler.store.schema import PUBLICATIONS, TRANSITIONS
from postscheduler.store.sql import SqlStore
from postscheduler.syncing import sync_file

ROOT = Path(__file__).resolve().parents[2]
EXE = [sys.executable, "-m", "postscheduler"]

#: The crash points armed during the torture (probability per pass).
CRASHPOINTS = "after_claim:0.01,after_send:0.02,during_record:0.02,after_record:0.01"
LEASE_SECONDS = 2.0
#: The share of daemons killed only after a lease has had time to expire (so that they
#: reap, reconcile and publish what the dead left behind before they die in turn).
LONG_LIVES = 0.1
#: The stall's replicas hold longer leases: the take-over must happen between the end of
#: the stopped replica's lease and 1.5 leases (see ``Torture.stall``), a window of a quarter
#: lease less the margins — with 2 s leases, 0.8 s, too little for a loaded machine's
#: scheduling (a take-over came late once in a dozen loaded runs).
STALL_LEASE_SECONDS = 5.0
#: The stopped replica stays stopped at least this long: longer than its lease, shorter
#: than 1.5 leases (see ``Torture.stall``).
STOP_SECONDS = STALL_LEASE_SECONDS + 0.5
FINAL = {State.PUBLISHED, State.FAILED, State.EXPIRED, State.CANCELLED}
FINAL_NAMES = sorted(state.value for state in FINAL)

#: CI sizes: 100 deaths per database, the file in about 65 s on two cores (see the
#: docstring); the seconds only bound a slow machine.
CI_SQLITE_KILLS, CI_SQLITE_SECONDS = 100, 45.0
CI_POSTGRES_KILLS, CI_POSTGRES_SECONDS = 100, 40.0
#: Fewer deaths than this and the run proved too little (a very slow machine): fail.
CI_MIN_DEATHS = 50


# -- the servers --------------------------------------------------------------------------


@dataclass
class Sandbox:
    """One sandbox process: its personality, URL and the tokens of its accounts."""

    personality: str
    process: subprocess.Popen[str]
    url: str
    tokens: dict[str, str]

    def statuses(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = httpx.get(f"{self.url}/_sandbox/statuses", timeout=30).json()
        return answer

    def slow_posts(self, *, seconds: float, times: int) -> None:
        """Answer the next ``times`` posts only after ``seconds`` (the sandbox's delay fault)."""
        fault = {"pattern": "POST /api/v1/statuses", "kind": "delay", "seconds": seconds}
        httpx.post(
            f"{self.url}/_sandbox/faults", json=[{**fault, "times": times}], timeout=30
        ).raise_for_status()

    def answer_promptly(self) -> None:
        """Drop the faults still pending."""
        httpx.delete(f"{self.url}/_sandbox/faults", timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate(timeout=10)


def start_sandbox(personality: str, accounts: list[str]) -> Sandbox:
    """A sandbox process with ``accounts`` and no rate limit to speak of."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "postscheduler.sandbox",
            "--personality",
            personality,
            "--accounts",
            ",".join(accounts),
            "--statuses-per-window",
            "1000000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # it tells of every connection a killed daemon reset
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.communicate(timeout=10)
        raise RuntimeError(f"the {personality} sandbox did not start")
    info = json.loads(line)
    return Sandbox(personality, process, info["url"], info["tokens"])


@contextlib.contextmanager
def two_sandboxes(accounts: int = 20) -> Iterator[tuple[Sandbox, Sandbox]]:
    """Half the accounts on a Mastodon sandbox, half on a GoToSocial one (key ignored)."""
    names = [f"a{n:02d}" for n in range(accounts)]
    mastodon = start_sandbox("mastodon", names[: accounts // 2])
    try:
        gotosocial = start_sandbox("gotosocial", names[accounts // 2 :])
    except BaseException:
        mastodon.stop()
        raise
    try:
        yield mastodon, gotosocial
    finally:
        mastodon.stop()
        gotosocial.stop()


# -- the campaign -------------------------------------------------------------------------

_WORDS = [
    *("solidarity", "peace", "bread", "water", "school", "clinic", "harvest", "river"),
    *("mountain", "village", "street", "market", "library", "garden", "bridge", "letter"),
    *("song", "dance", "festival", "assembly", "cooperative", "union", "teacher", "nurse"),
    *("farmer", "miner", "weaver", "baker", "sailor", "printer"),
]


def _sentence(rng: random.Random, serial: str) -> str:
    return f"{serial} {' '.join(rng.sample(_WORDS, 9)).capitalize()}."


@dataclass
class Campaign:
    """A torture campaign written to ``path``, with the environment its tokens need."""

    path: Path
    env: dict[str, str]
    window_end: datetime
    sandboxes: list[Sandbox]
    threads: int


def write_campaign(
    folder: Path,
    *,
    mastodon: Sandbox,
    gotosocial: Sandbox,
    short_posts: int = 50,
    thread_accounts: int = 5,
    seed: int = 1,
) -> Campaign:
    """``short_posts`` posts on every account, due from 3 minutes ago to 30 s from now, and
    three long posts (2, 3 and 3 parts on a 500-character server) on the first
    ``thread_accounts`` Mastodon accounts; tokens in the environment or 0600 files."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    first, last = now - timedelta(minutes=3), now + timedelta(seconds=30)
    window_end = now + timedelta(minutes=40)

    def local(moment: datetime) -> str:
        return moment.replace(tzinfo=None).isoformat()

    lines = [
        "[campaign]",
        'id = "torture"',
        'name = "Torture"',
        'timezone = "UTC"',
        f"start = {local(now - timedelta(hours=1))}",
        f"end = {local(window_end)}",
        'language = "en"',
        'misfire = { policy = "until_end" }',
        'min_spacing = "0m"',
        "",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTSCHEDULER_CRASH")}
    for sandbox in (mastodon, gotosocial):
        for index, (name, token) in enumerate(sorted(sandbox.tokens.items())):
            if index % 2:
                token_file = folder / f"{name}.token"
                token_file.write_text(token + "\n", encoding="utf-8")
                token_file.chmod(0o600)
                source = f'{{ file = "{name}.token" }}'
            else:
                env[f"TORTURE_{name.upper()}"] = token
                source = f'{{ env = "TORTURE_{name.upper()}" }}'
            lines += [
                f"[accounts.{name}]",
                f'instance = "{sandbox.url}"',
                f"token = {source}",
                f'software = "{sandbox.personality}"',
                "",
            ]
    span = (last - first).total_seconds()
    for index in range(short_posts):
        at = first + timedelta(seconds=round(span * index / max(short_posts - 1, 1)))
        text = _sentence(rng, f"Post {index:03d}:")
        lines += ["[[posts]]", f'id = "p{index:03d}"', f"at = {local(at)}", f'text = "{text}"', ""]
    threaded = sorted(mastodon.tokens)[:thread_accounts]
    parts_wanted = (2, 3, 3)
    for index, parts in enumerate(parts_wanted):
        at = first + timedelta(seconds=round(span * (index + 0.5) / len(parts_wanted)))
        sentences = [_sentence(rng, f"Long {index} sentence {n:02d}:") for n in range(60)]
        # About 440 characters per part leaves room for the " n/N" marks.
        text = " ".join(sentences)[: 440 * parts - 60].rsplit(" ", 1)[0] + "."
        lines += [
            "[[posts]]",
            f'id = "long{index}"',
            f"at = {local(at)}",
            f"accounts = {json.dumps(threaded)}",
            f'text = "{text}"',
            "",
        ]
    path = folder / "campaign.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return Campaign(path, env, window_end, [mastodon, gotosocial], len(parts_wanted))


def sync(campaign: Campaign, db: str) -> list[PublicationRecord]:
    """Create the schema and store the campaign (as ``postscheduler sync``); its plan."""
    store = open_store(db, upgrade=True)
    try:
        sync_file(store, campaign.path, datetime.now(UTC))
        return store.publications()
    finally:
        store.engine.dispose()


def publications(db: str) -> list[PublicationRecord]:
    store = open_store(db, upgrade=False)
    try:
        return store.publications()
    finally:
        store.engine.dispose()


def pending(db: str, store: SqlStore | None = None) -> int:
    """How many publications are not final yet (one COUNT, cheap enough to poll)."""
    own = store or open_store(db, upgrade=False)
    try:
        with own.engine.connect() as connection:
            query = select(func.count()).where(PUBLICATIONS.c.state.not_in(FINAL_NAMES))
            return int(connection.execute(query).scalar_one())
    finally:
        if store is None:
            own.engine.dispose()


def history(db: str) -> Counter[str]:
    """What the history says happened: claims, reaps, reconciliations, put-backs."""
    store = open_store(db, upgrade=False)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    TRANSITIONS.c.to_state,
                    TRANSITIONS.c.actor,
                    TRANSITIONS.c.cause,
                    TRANSITIONS.c.detail,
                )
            ).all()
    finally:
        store.engine.dispose()
    counts: Counter[str] = Counter()
    died_holding: set[str] = set()
    for to_state, actor, cause, detail in rows:
        if to_state == State.CLAIMED.value:
            counts["claims"] += 1
            counts["reconciliations"] += cause == RECONCILE
        elif actor == "reaper":
            counts["reaped"] += 1
            died_holding.add(detail or "")
        elif cause == "found on the server":
            counts["found on the server"] += 1
        elif cause.startswith("not on the server yet"):
            counts["looked for again later"] += 1
        elif cause.startswith("its lease ran short"):
            counts["put back unsent"] += 1
    counts["processes that died holding claims"] = len(died_holding)
    return counts


# -- the torture --------------------------------------------------------------------------


@dataclass
class Figures:
    """What the torture did."""

    kills: int = 0
    crash_exits: int = 0
    other_exits: int = 0
    restarts: int = 0
    stops: int = 0
    lease_lost: int = 0
    tracebacks: list[str] = field(default_factory=list)
    start_seconds: list[float] = field(default_factory=list)
    torture_seconds: float = 0.0
    finish_seconds: float = 0.0

    @property
    def deaths(self) -> int:
        return self.kills + self.crash_exits

    def line(self) -> str:
        return (
            f"kills={self.kills} crash-point exits={self.crash_exits} "
            f"other exits={self.other_exits} restarts={self.restarts} stops={self.stops} "
            f"lease-lost={self.lease_lost} "
            f"start={statistics.mean(self.start_seconds or [0]):.2f}s "
            f"torture={self.torture_seconds:.1f}s finish={self.finish_seconds:.1f}s"
        )


#: The zygote: a process that imports the package once (all but the dispatcher, the daemon
#: and the crash points, which each child imports after its environment is set), then forks
#: one child per request; each child runs the console script's own ``main(["run", ...])``
#: with its stderr in a file. A restart then costs what ``run`` does, not Python's imports,
#: so a CI run can afford a hundred of them. It reports ``{"pid"}`` per request and
#: ``{"exit", "status"}`` per child that ended (status as ``Popen.returncode`` has it).
_ZYGOTE = r"""
import json, os, select, signal, sys, traceback
import apscheduler.schedulers.background, apscheduler.triggers.date
import apscheduler.triggers.interval, apscheduler.executors.pool, apscheduler.jobstores.memory
import h11, httpcore, psycopg, sqlalchemy.dialects.postgresql.psycopg
import postscheduler.cli, postscheduler.cli_daemon, postscheduler.clock
import postscheduler.domain.timing, postscheduler.publishers.factory
import postscheduler.store.opening, postscheduler.syncing
assert "postscheduler.crashpoints" not in sys.modules

wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
children = set()

def report(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

def child(request):
    try:  # Linux: die with the zygote, so that nothing outlives an interrupted test
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.close(wake_r)
    os.close(wake_w)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)
    os.environ.update(request["env"])
    code = 1
    try:
        code = postscheduler.cli.main(request["argv"])
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)

pending = b""
while True:
    ready, _, _ = select.select([0, wake_r], [], [])
    if wake_r in ready:
        os.read(wake_r, 4096)
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        children.discard(pid)
        report({"exit": pid, "status": os.waitstatus_to_exitcode(status)})
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            break
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            pid = os.fork()
            if pid == 0:
                child(json.loads(line))
            children.add(pid)
            report({"pid": pid})
"""


class Child:
    """A ``postscheduler run`` forked by the zygote."""

    def __init__(self, pid: int, log: Path) -> None:
        self.pid = pid
        self.log = log
        self.ended = threading.Event()
        self.returncode: int | None = None

    def output(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def count(self, text: str) -> int:
        return self.output().count(text)

    def wait(self, timeout: float) -> bool:
        """True once it ended (within ``timeout`` seconds)."""
        return self.ended.wait(timeout)

    def wait_started(self, timeout: float) -> float | None:
        """Until it logs that it started (then: after how long), or it ends (polling its
        log, with a deadline)."""
        begun = time.monotonic()
        while not self.ended.wait(0.01) and time.monotonic() < begun + timeout:
            if "daemon started" in self.output():
                return time.monotonic() - begun
        return None

    def signal(self, number: int) -> None:
        if not self.ended.is_set():
            # It may have ended (a crash point) since ``ended`` was looked at.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, number)


class Zygote:
    """The zygote process (see ``_ZYGOTE``) and a thread reading what it reports."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.children: dict[int, Child] = {}
        self._born: queue.Queue[Child] = queue.Queue()
        self._next_log = Path()
        self._spawning = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """File each child as its pid is reported (always before its exit is)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "pid" in message:
                child = Child(message["pid"], self._next_log)
                self.children[child.pid] = child
                self._born.put(child)
            else:
                ended = self.children[message["exit"]]
                ended.returncode = message["status"]
                ended.ended.set()

    def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> Child:
        """Fork a child running ``postscheduler`` with ``argv``, ``env`` added."""
        with self._spawning:
            assert self.process.stdin is not None
            self._next_log = log
            request = {"argv": argv, "env": env, "log": str(log)}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            return self._born.get(timeout=60)

    def close(self) -> None:
        for child in list(self.children.values()):
            if not child.ended.is_set():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _claims_of(store: SqlStore, owner: str) -> set[str]:
    """The keys claimed by the process started with ``--owner owner`` (which adds a suffix)."""
    return {
        p.key
        for p in store.publications(state=State.CLAIMED)
        if (p.lease_owner or "").startswith(f"{owner}#")
    }


class Replica:
    """A supervisor thread: start a daemon, kill it (or let a crash point), start another."""

    def __init__(self, torture: Torture, name: str, *, seed: int) -> None:
        self.torture = torture
        self.name = name
        #: Each process has its own ``--owner`` (as the default, host:pid, would be).
        self.owner = name
        self.rng = random.Random(seed)
        self.thread = threading.Thread(target=self._supervise, name=name, daemon=True)

    def _spawn(self, run: int) -> Child:
        self.owner = f"{self.name}.{run}"
        seed = f"{self.owner}-{self.rng.random()}"
        return self.torture.spawn(self.owner, crash_seed=seed)

    def _supervise(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # reported by the main thread
            self.torture.errors.append(f"{self.owner}: {error!r}")
            self.torture.done.set()

    def _loop(self) -> None:
        run = 0
        while not self.torture.done.is_set():
            run += 1
            daemon = self._spawn(run)
            delay = self._life(daemon)
            killed = not daemon.wait(delay)
            if killed:
                daemon.signal(signal.SIGKILL)
            assert daemon.wait(30), f"{self.owner}: pid {daemon.pid} did not end"
            self._count(daemon, killed=killed)

    def _life(self, daemon: Child) -> float:
        """How long to let it live: 0.05–0.5 s from its start (one in ten), else from when
        it is up, plus a lease for some (long enough to take over expired claims)."""
        life = self.rng.random()
        delay = self.rng.uniform(0.05, 0.5)
        if life < 0.1:
            return delay
        took = daemon.wait_started(timeout=30)
        if took is not None:
            with self.torture.lock:
                self.torture.figures.start_seconds.append(took)
        return delay + (LEASE_SECONDS + 0.5 if life > 1 - LONG_LIVES else 0.0)

    def _count(self, daemon: Child, *, killed: bool) -> None:
        figures, output = self.torture.figures, daemon.output()
        with self.torture.lock:
            if killed:
                figures.kills += 1
            elif daemon.returncode == 137:
                figures.crash_exits += 1
            else:
                figures.other_exits += 1
                figures.tracebacks.append(f"exit {daemon.returncode}: {output[-3000:]}")
            figures.lease_lost += output.count("lease lost")
            if "Traceback" in output:
                figures.tracebacks.append(output[-4000:])
            if figures.deaths >= self.torture.kills_wanted:
                self.torture.done.set()
            else:
                figures.restarts += 1

    def start(self) -> None:
        self.thread.start()


class Torture:
    """Replicas killed and restarted independently, until enough deaths or a deadline."""

    def __init__(self, campaign: Campaign, db: str, logs: Path, *, kills: int) -> None:
        self.campaign = campaign
        self.db = db
        self.logs = logs
        self.kills_wanted = kills
        self.figures = Figures()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.errors: list[str] = []
        self.taken_over: set[str] = set()
        self.refused_after_stop = 0
        self.stopped_seconds = 0.0
        self.zygote = Zygote(campaign.env)
        #: For the stop: which claims a replica holds.
        self.probe = open_store(db, upgrade=False)

    def spawn(self, owner: str, *, crash_seed: str | None, lease: float = LEASE_SECONDS) -> Child:
        """A ``postscheduler run --owner OWNER --lease 2 --workers 4`` process; with crash
        points armed if ``crash_seed`` is given."""
        env = {}
        if crash_seed is not None:
            env = {"POSTSCHEDULER_CRASHPOINTS": CRASHPOINTS, "POSTSCHEDULER_CRASH_SEED": crash_seed}
        argv = ["run", str(self.campaign.path), "--db", self.db, "--owner", owner]
        argv += ["--lease", str(lease), "--workers", "4"]
        return self.zygote.spawn(argv, env, self.logs / f"{owner}.log")

    def stall(self) -> None:
        """Three replicas (no crash points) work; one is SIGSTOPped while it holds claims,
        longer than its lease, so that the others take them over; it is SIGCONTed, and its
        outcomes for what they took must be refused (LeaseLost). Then all three are killed
        (and the checks at the end show that what was taken over was published once).

        The stop is kept under 1.5 leases: the dispatcher starts a send only with half its
        lease left and sends a reaped claim again only two leases after it was claimed, so
        a worker stalled for less than that between its check and its request cannot
        publish twice (a longer stall at exactly that point could, on a server that ignores
        the Idempotency-Key: the limit of leases without fencing). Without those two rules,
        this publishes the stopped replica's queued claims twice on the GoToSocial accounts.
        """
        # The servers answer the next posts slowly, so that claims are held long enough for
        # the victim to be caught holding some (without it, the burst of due publications
        # could be over before it was, and the rest are held a few milliseconds each).
        for sandbox in self.campaign.sandboxes:
            sandbox.slow_posts(seconds=0.3, times=60)
        owners = [f"stall-{n}" for n in range(3)]
        daemons = [
            self.spawn(owner, crash_seed=None, lease=STALL_LEASE_SECONDS) for owner in owners
        ]
        try:
            for daemon in daemons:
                daemon.wait_started(timeout=30)
            # Whichever replica is caught holding claims is stopped: a replica that finds
            # every account in flight with the others sleeps until a lease could expire.
            victim, owner, held = self._catch_holding(dict(zip(owners, daemons, strict=True)))
            stopped = time.monotonic()
            refused_before = victim.count("lease lost")
            victim.wait(STOP_SECONDS)  # the deliberate stall
            taken = held - _claims_of(self.probe, owner)
            while not taken and time.monotonic() < stopped + 1.5 * STALL_LEASE_SECONDS - 0.2:
                victim.wait(0.05)  # polling for a take-over, with a deadline
                taken = held - _claims_of(self.probe, owner)
            victim.signal(signal.SIGCONT)
            self.stopped_seconds = time.monotonic() - stopped
            self.taken_over = taken
            self.figures.stops += 1
            # Its outcomes for what was taken over must now be refused: wait for it to say so.
            deadline = time.monotonic() + 10
            while victim.count("lease lost") - refused_before < len(taken):
                if victim.wait(0.05) or time.monotonic() > deadline:
                    break
            self.refused_after_stop = victim.count("lease lost") - refused_before
        finally:
            for sandbox in self.campaign.sandboxes:
                sandbox.answer_promptly()
            for daemon in daemons:
                daemon.signal(signal.SIGCONT)
                daemon.signal(signal.SIGKILL)
                assert daemon.wait(30), f"pid {daemon.pid} did not end"
                output = daemon.output()
                if daemon.returncode == -signal.SIGKILL:
                    self.figures.kills += 1
                else:
                    self.figures.other_exits += 1
                    self.figures.tracebacks.append(f"exit {daemon.returncode}: {output[-3000:]}")
                self.figures.lease_lost += output.count("lease lost")
                if "Traceback" in output:
                    self.figures.tracebacks.append(output[-4000:])

    def _catch_holding(self, daemons: dict[str, Child]) -> tuple[Child, str, set[str]]:
        """SIGSTOP the replicas in turn until one is stopped holding claims; returns it
        (still stopped), its owner name and the keys it holds."""
        for _ in range(300):  # bounded: tries to catch one holding claims
            for owner, daemon in daemons.items():
                daemon.signal(signal.SIGSTOP)
                held = _claims_of(self.probe, owner)
                if held:
                    return daemon, owner, held
                daemon.signal(signal.SIGCONT)
            time.sleep(0.01)  # let them run a moment before trying again
        raise AssertionError("no replica was ever seen holding claims")

    def run(self, replicas: int, *, seconds: float, seed: int, stall: bool) -> Figures:
        started = time.monotonic()
        supervisors = [Replica(self, f"replica-{n}", seed=seed * 100 + n) for n in range(replicas)]
        try:
            if stall:
                self.stall()
            for supervisor in supervisors:
                supervisor.start()
            self.done.wait(timeout=seconds)
        finally:
            self.done.set()
            for supervisor in supervisors:
                supervisor.thread.join(timeout=60)
            self.zygote.close()
            self.probe.engine.dispose()
        assert not self.errors, self.errors
        self.figures.torture_seconds = time.monotonic() - started
        return self.figures


def finish(campaign: Campaign, db: str, figures: Figures, logs: Path, *, seconds: float) -> None:
    """One clean ``postscheduler run`` (no crash points) until every publication is final,
    then SIGTERM: it must stop cleanly."""
    started = time.monotonic()
    log = logs / "finisher.log"
    with log.open("w", encoding="utf-8") as stderr:
        daemon = subprocess.Popen(
            [*EXE, "run", str(campaign.path), "--db", db, "--owner", "finisher"],
            cwd=ROOT,
            env=campaign.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        store = open_store(db, upgrade=False)
        try:
            deadline = time.monotonic() + seconds
            # Up first (its SIGTERM handler set), even when the torture left nothing to do.
            while "daemon started" not in log.read_text(encoding="utf-8"):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)  # polling for the condition, with a deadline
            while pending(db, store) and time.monotonic() < deadline:
                time.sleep(0.2)  # polling for the condition, with a deadline
        finally:
            store.engine.dispose()
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=30)
                figures.tracebacks.append("the final run did not stop within 60 s of SIGTERM")
    output = log.read_text(encoding="utf-8")
    figures.finish_seconds = time.monotonic() - started
    figures.lease_lost += output.count("lease lost")
    if "Traceback" in output:
        figures.tracebacks.append(output[-4000:])
    assert daemon.returncode == 0, output[-3000:]


# -- the checks ---------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the servers and the store say after the torture (each list: what is wrong)."""

    publications: int = 0
    statuses: int = 0
    not_published: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    strangers: list[str] = field(default_factory=list)
    wrong_status: list[str] = field(default_factory=list)
    thread_errors: list[str] = field(default_factory=list)
    early: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        return {
            name: values[:10]
            for name, values in vars(self).items()
            if isinstance(values, list) and values
        }


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def verify(campaign: Campaign, db: str) -> Verdict:
    """Compare the store with what the sandboxes hold (see the module docstring)."""
    records = publications(db)
    statuses = [s for sandbox in campaign.sandboxes for s in sandbox.statuses()]
    verdict = Verdict(publications=len(records), statuses=len(statuses))
    on_server: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for status in statuses:
        on_server.setdefault((status["account"], status["text"]), []).append(status)
    wanted = {(r.account, r.text) for r in records}
    for (account, text), found in on_server.items():
        if len(found) > 1:
            verdict.duplicates.append(f"{account}: {len(found)}× {text[:60]!r}")
        if (account, text) not in wanted:
            verdict.strangers.append(f"{account}: {text[:60]!r}")
    by_key = {r.key: r for r in records}
    for record in records:
        if record.state is not State.PUBLISHED:
            verdict.not_published.append(f"{record.key} {record.state.value}: {record.cause}")
        found = on_server.get((record.account, record.text))
        if not found:
            verdict.lost.append(record.key)
            continue
        _check_status(verdict, campaign, record, found[0])
        if record.reply_to is not None:
            previous = by_key[record.reply_to]
            before = on_server.get((previous.account, previous.text))
            _check_thread(verdict, record, found[0], before[0] if before else None)
    return verdict


def _check_status(
    verdict: Verdict, campaign: Campaign, record: PublicationRecord, status: dict[str, Any]
) -> None:
    if record.remote_id != status["id"]:
        verdict.wrong_status.append(f"{record.key}: stored {record.remote_id}, is {status['id']}")
    created = _moment(status["created_at"])
    if created < record.scheduled_at:
        verdict.early.append(f"{record.key}: {created} < {record.scheduled_at}")
    if created > campaign.window_end:
        verdict.late.append(f"{record.key}: {created} > {campaign.window_end}")


def _check_thread(
    verdict: Verdict,
    record: PublicationRecord,
    status: dict[str, Any],
    before: dict[str, Any] | None,
) -> None:
    if before is None:
        verdict.thread_errors.append(f"{record.key}: the part before is not on the server")
    elif status["in_reply_to_id"] != before["id"]:
        verdict.thread_errors.append(
            f"{record.key} replies to {status['in_reply_to_id']}, not to {before['id']}"
        )
    elif _moment(status["created_at"]) < _moment(before["created_at"]):
        verdict.thread_errors.append(f"{record.key} was created before the part before")


# -- the scenario -------------------------------------------------------------------------


@dataclass
class Outcome:
    """A whole scenario's figures and verdict."""

    label: str
    figures: Figures
    verdict: Verdict
    torture: Torture
    history: Counter[str]
    left_after_torture: int
    wall_seconds: float

    def report(self) -> str:
        v, t = self.verdict, self.torture
        stop = (
            f" stopped {t.stopped_seconds:.1f}s: {len(t.taken_over)} claims taken over, "
            f"{t.refused_after_stop} late outcomes refused;"
            if self.figures.stops
            else ""
        )
        return (
            f"[torture {self.label}] {v.publications} publications, {v.statuses} statuses; "
            f"{self.figures.line()};{stop} left after the torture={self.left_after_torture}; "
            f"history {dict(sorted(self.history.items()))}; "
            f"duplicates={len(v.duplicates)} lost={len(v.lost)} "
            f"not published={len(v.not_published)}; wall={self.wall_seconds:.1f}s"
        )

    def assert_sound(self) -> None:
        assert self.verdict.problems() == {}
        assert self.verdict.statuses == self.verdict.publications
        assert self.figures.tracebacks == [], self.figures.tracebacks[0]
        assert self.figures.other_exits == 0


def torture_and_verify(
    campaign: Campaign,
    db: str,
    *,
    replicas: int,
    kills: int,
    seconds: float,
    seed: int,
    stall: bool,
    label: str,
) -> Outcome:
    """Sync, torture, finish cleanly, verify; print the figures."""
    started = time.monotonic()
    planned = sync(campaign, db)
    assert len({p.post for p in planned if p.parts > 1}) == campaign.threads
    logs = campaign.path.parent / "logs"
    logs.mkdir(exist_ok=True)
    torture = Torture(campaign, db, logs, kills=kills)
    figures = torture.run(replicas, seconds=seconds, seed=seed, stall=stall)
    left = pending(db)
    finish(campaign, db, figures, logs, seconds=120)
    outcome = Outcome(
        label,
        figures,
        verify(campaign, db),
        torture,
        history(db),
        left,
        time.monotonic() - started,
    )
    print("\n" + outcome.report())
    return outcome


# -- the tests ----------------------------------------------------------------------------


@pytest.fixture
def sandboxes() -> Iterator[tuple[Sandbox, Sandbox]]:
    with two_sandboxes() as pair:
        yield pair


@pytest.mark.slow
def test_sqlite_daemon_killed_again_and_again_publishes_everything_exactly_once(
    sandboxes: tuple[Sandbox, Sandbox], tmp_path: Path
) -> None:
    mastodon, gotosocial = sandboxes
    campaign = write_campaign(tmp_path, mastodon=mastodon, gotosocial=gotosocial, seed=1)
    outcome = torture_and_verify(
        campaign,
        f"sqlite:///{tmp_path / 'torture.sqlite3'}",
        replicas=1,
        kills=CI_SQLITE_KILLS,
        seconds=CI_SQLITE_SECONDS,
        seed=1,
        stall=False,
        label="sqlite",
    )
    outcome.assert_sound()
    assert outcome.verdict.publications >= 1_000
    assert outcome.figures.deaths >= CI_MIN_DEATHS
    assert outcome.figures.kills > 0
    assert outcome.figures.crash_exits > 0
    assert outcome.history["reaped"] > 0
    assert outcome.history["found on the server"] > 0


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_replicas_killed_and_stopped_publish_everything_exactly_once(
    sandboxes: tuple[Sandbox, Sandbox], tmp_path: Path, postgres_schema_url: str
) -> None:
    mastodon, gotosocial = sandboxes
    campaign = write_campaign(tmp_path, mastodon=mastodon, gotosocial=gotosocial, seed=2)
    outcome = torture_and_verify(
        campaign,
        postgres_schema_url,
        replicas=3,
        kills=CI_POSTGRES_KILLS,
        seconds=CI_POSTGRES_SECONDS,
        seed=2,
        stall=True,
        label="postgresql",
    )
    outcome.assert_sound()
    assert outcome.verdict.publications >= 1_000
    assert outcome.figures.deaths >= CI_MIN_DEATHS
    assert outcome.figures.stops == 1
    assert outcome.torture.taken_over
    assert outcome.torture.refused_after_stop >= len(outcome.torture.taken_over)
