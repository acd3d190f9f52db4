"""The work-queue half of the store contract: claims, leases, outcomes — on every store."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from test_store import post, sync  # the contract folder's shared campaign builders

from postscheduler.domain.states import State
from postscheduler.errors import LeaseLost
from postscheduler.ports import RECONCILE, Store
from postscheduler.store.database import create
from postscheduler.store.memory import MemoryStore
from postscheduler.store.migrate import upgrade
from postscheduler.store.sql import SqlStore

AT9 = datetime(2017, 10, 5, 13, 0, tzinfo=UTC)  # 09:00 in Caracas
LEASE = timedelta(minutes=5)
LONG = "Une phrase complète et assez longue pour un fil de discussion. " * 20


def posts() -> list[dict[str, Any]]:
    return [
        post("a", "Premier", 9),
        post("b", "Deuxième", 10, ("alba", "peuples")),
        post("c", "Troisième", 9, ("peuples",)),
        post("long", LONG, 11),
    ]


def claim(store: Store, now: datetime, owner: str = "w1", limit: int = 10) -> list[str]:
    return [r.key for r in store.claim_due(owner=owner, now=now, lease=LEASE, limit=limit)]


def test_due_publications_are_claimed_one_per_account_earliest_first(store: Store) -> None:
    sync(store, posts())
    assert claim(store, AT9 - timedelta(seconds=1)) == []
    assert claim(store, AT9) == ["demo/a/alba/1", "demo/c/peuples/1"]
    record = store.get("demo/a/alba/1")
    assert record.state is State.CLAIMED
    assert (record.lease_owner, record.lease_expires_at, record.attempt) == ("w1", AT9 + LEASE, 1)
    assert store.history("demo/a/alba/1")[-1].actor == "w1"
    # One in flight per account: nothing more until an outcome is recorded.
    assert claim(store, AT9 + timedelta(hours=5)) == []


def test_limit_caps_a_claim(store: Store) -> None:
    sync(store, posts())
    assert claim(store, AT9, limit=1) == ["demo/a/alba/1"]


def test_an_outcome_frees_the_account_and_threads_go_in_order(store: Store) -> None:
    sync(store, [post("long", LONG, 9)])
    (first,) = claim(store, AT9)
    assert first == "demo/long/alba/1"
    store.record(first, owner="w1", to=State.PUBLISHED, now=AT9, cause="ok", remote_id="1")
    (second,) = claim(store, AT9)
    assert second == "demo/long/alba/2"
    store.record(
        second,
        owner="w1",
        to=State.RETRYING,
        now=AT9,
        cause="503",
        next_attempt_at=AT9 + timedelta(minutes=2),
        last_error="server error 503",
    )
    assert claim(store, AT9 + timedelta(minutes=1)) == []
    assert claim(store, AT9 + timedelta(minutes=2)) == [second]
    assert store.get(second).attempt == 2


def test_a_part_is_not_claimed_before_the_one_it_replies_to_is_published(store: Store) -> None:
    sync(store, [post("long", LONG, 9)])
    (first,) = claim(store, AT9)
    store.record(
        first,
        owner="w1",
        to=State.RETRYING,
        now=AT9,
        cause="503",
        next_attempt_at=AT9 + timedelta(minutes=1),
    )
    # Part 2 is due too, but its part 1 is not published: nothing else of alba moves.
    assert claim(store, AT9 + timedelta(seconds=30)) == []


def test_a_failed_part_takes_its_later_parts_with_it(store: Store) -> None:
    sync(store, [post("long", LONG, 9)])
    (first,) = claim(store, AT9)
    store.record(first, owner="w1", to=State.FAILED, now=AT9, cause="422", last_error="too long")
    later = [p for p in store.publications(post="long") if p.key != first]
    assert later
    assert {p.state for p in later} == {State.FAILED}
    assert all("replies to is failed" in (p.cause or "") for p in later)


def test_retrying_a_failed_part_by_hand_brings_its_later_parts_back(store: Store) -> None:
    sync(store, [post("long", LONG, 9)])
    (first,) = claim(store, AT9)
    store.record(first, owner="w1", to=State.FAILED, now=AT9, cause="422", last_error="too long")
    store.transition(first, State.SCHEDULED, now=AT9, cause="retry by hand", actor="cli")
    parts = store.publications(post="long")
    assert {p.state for p in parts} == {State.SCHEDULED}
    assert all(p.next_attempt_at is None for p in parts)


def test_cancelling_a_part_by_hand_ends_its_later_parts(store: Store) -> None:
    sync(store, [post("long", LONG, 9)])
    store.transition("demo/long/alba/1", State.CANCELLED, now=AT9, cause="no", actor="cli")
    assert {p.state for p in store.publications(post="long")} == {State.CANCELLED}
    assert claim(store, AT9) == []


def end_first_part(store: Store, how: State) -> str:
    """Part 1 of post "long" ends unpublished, ``how``: failed or expired by its worker,
    cancelled by hand."""
    first = "demo/long/alba/1"
    if how is State.CANCELLED:
        store.transition(first, how, now=AT9, cause="not this one", actor="cli")
    else:
        assert claim(store, AT9) == [first]
        store.record(first, owner="w1", to=how, now=AT9, cause="the server said no")
    return first


@pytest.mark.parametrize("how", [State.FAILED, State.EXPIRED, State.CANCELLED])
def test_parts_a_sync_adds_behind_an_ended_part_end_with_it(store: Store, how: State) -> None:
    # A part is claimed only once the part it replies to is published: added behind one
    # that ended, it would wait forever. It ends with it, as record() ends later parts.
    sync(store, [post("long", "Court.", 9)])
    first = end_first_part(store, how)
    result = sync(store, [post("long", LONG, 9)], at=AT9)
    later = sorted(p.key for p in result.added)
    assert len(later) >= 2  # part 3 replies to part 2, which this sync adds and ends too
    cause = f"the part it replies to is {how.value}"
    assert [(e.key, e.state, e.cause) for e in result.ended] == [(k, how, cause) for k in later]
    for key in later:
        record = store.get(key)
        assert (record.state, record.cause) == (how, cause)
        assert [(h.from_state, h.to_state, h.cause, h.actor) for h in store.history(key)] == [
            (None, State.SCHEDULED, "added from the campaign file", "sync"),
            (State.SCHEDULED, how, cause, "sync"),
        ]
    assert store.next_due() is None
    assert claim(store, AT9 + timedelta(hours=1)) == []
    # A retry of the ended part by hand brings them back, as it does its ended later parts.
    store.transition(first, State.SCHEDULED, now=AT9, cause="retry by hand", actor="cli")
    assert {p.state for p in store.publications(post="long")} == {State.SCHEDULED}
    # Syncing the same file again leaves them alone.
    assert sync(store, [post("long", LONG, 9)], at=AT9).ended == ()


def test_parts_a_sync_revives_behind_a_failed_part_end_with_it(store: Store) -> None:
    other = post("c", "Troisième", 9, ("peuples",))
    sync(store, [post("long", LONG, 9), other])
    sync(store, [other])  # the post leaves the file: its parts are cancelled
    first = "demo/long/alba/1"
    store.transition(first, State.SCHEDULED, now=AT9, cause="retry by hand", actor="cli")
    assert sorted(claim(store, AT9)) == ["demo/c/peuples/1", first]
    store.record(first, owner="w1", to=State.FAILED, now=AT9, cause="422")
    result = sync(store, [post("long", LONG, 9), other], at=AT9)  # back in the file
    later = sorted(p.key for p in result.revived)
    assert later
    assert first not in later
    assert [e.key for e in result.ended] == later
    for key in later:
        record = store.get(key)
        assert (record.state, record.cause) == (State.FAILED, "the part it replies to is failed")
        assert [(h.from_state, h.to_state) for h in store.history(key)][-2:] == [
            (State.CANCELLED, State.SCHEDULED),
            (State.SCHEDULED, State.FAILED),
        ]
    store.transition(first, State.SCHEDULED, now=AT9, cause="retry by hand", actor="cli")
    assert {p.state for p in store.publications(post="long")} == {State.SCHEDULED}


def test_a_dry_run_names_the_parts_it_would_end_and_writes_nothing(store: Store) -> None:
    sync(store, [post("long", "Court.", 9)])
    end_first_part(store, State.FAILED)
    preview = sync(store, [post("long", LONG, 9)], at=AT9, dry_run=True)
    assert preview.ended
    assert [p.key for p in store.publications(post="long")] == ["demo/long/alba/1"]


def test_parts_added_behind_a_waiting_part_wait_for_it(store: Store) -> None:
    sync(store, [post("long", "Court.", 9)])
    result = sync(store, [post("long", LONG, 9)], at=AT9)
    assert result.ended == ()
    assert {p.state for p in store.publications(post="long")} == {State.SCHEDULED}


def test_paused_and_held_accounts_are_left_alone(store: Store) -> None:
    sync(store, posts())
    store.set_paused("demo", "alba", True, now=AT9)
    assert claim(store, AT9) == ["demo/c/peuples/1"]
    store.hold_account("demo", "peuples", "token refused (401)", now=AT9)
    store.set_paused("demo", "alba", False, now=AT9)
    store.record("demo/c/peuples/1", owner="w1", to=State.SCHEDULED, now=AT9, cause="account held")
    assert claim(store, AT9) == ["demo/a/alba/1"]
    rows = {row.account: row for row in store.status()}
    assert rows["peuples"].held_reason == "token refused (401)"
    store.set_paused("demo", "peuples", False, now=AT9)  # resume releases a held account
    assert claim(store, AT9) == ["demo/c/peuples/1"]


def test_a_paused_campaign_is_left_alone(store: Store) -> None:
    sync(store, posts())
    store.set_paused("demo", None, True, now=AT9)
    assert claim(store, AT9 + timedelta(days=1)) == []
    assert store.next_due() is None


def test_only_the_lease_holder_records_and_an_expired_lease_becomes_uncertain(store: Store) -> None:
    sync(store, posts())
    claim(store, AT9)
    with pytest.raises(LeaseLost):
        store.record("demo/a/alba/1", owner="w2", to=State.PUBLISHED, now=AT9, cause="ok")
    assert store.reap(now=AT9 + LEASE - timedelta(microseconds=1)) == []
    reaped = store.reap(now=AT9 + LEASE)
    assert sorted(reaped) == ["demo/a/alba/1", "demo/c/peuples/1"]
    assert store.get("demo/a/alba/1").state is State.UNCERTAIN
    with pytest.raises(LeaseLost):
        store.record("demo/a/alba/1", owner="w1", to=State.PUBLISHED, now=AT9, cause="late")
    again = store.claim_due(owner="w2", now=AT9 + LEASE * 2, lease=LEASE, limit=10)
    reconcile = next(r for r in again if r.key == "demo/a/alba/1")
    assert reconcile.cause == RECONCILE
    assert reconcile.attempt == 2
    done = store.record(
        reconcile.key,
        owner="w2",
        to=State.PUBLISHED,
        now=AT9 + LEASE * 2,
        cause="found",
        remote_id="110",
        remote_url="https://a.example/@alba/110",
    )
    assert (done.remote_id, done.remote_url, done.published_at) == (
        "110",
        "https://a.example/@alba/110",
        AT9 + LEASE * 2,
    )
    assert done.lease_owner is None


def test_next_due_is_the_earliest_waiting_time_or_lease_end(store: Store) -> None:
    assert store.next_due() is None
    sync(store, posts())
    assert store.next_due() == AT9
    claim(store, AT9)
    # alba's next is 10:00 local (14:00 UTC); the claims' leases end sooner.
    assert store.next_due() == AT9 + LEASE


def test_a_lease_is_reaped_at_the_instant_next_due_names(store: Store) -> None:
    # The daemon wakes at next_due: at a lease's end, the reaper must take it then, not an
    # instant later (else a stepped clock wakes, reaps nothing and loops once more).
    sync(store, posts())
    claim(store, AT9)
    due = store.next_due()
    assert due == AT9 + LEASE
    assert sorted(store.reap(now=due)) == ["demo/a/alba/1", "demo/c/peuples/1"]
    assert store.get("demo/a/alba/1").state is State.UNCERTAIN
    # What was reaped is due again at once; the uncertain claims are taken to reconcile.
    assert store.next_due() == AT9
    assert claim(store, due) == ["demo/a/alba/1", "demo/c/peuples/1"]


def test_remote_ids_are_those_published_on_an_instance_since_a_moment(store: Store) -> None:
    sync(store, posts())
    assert store.remote_ids("https://a.example", published_since=AT9) == set()
    store.claim_due(owner="w1", now=AT9, lease=LEASE, limit=10)
    for key, remote_id, at in (
        ("demo/a/alba/1", "110", AT9),
        ("demo/c/peuples/1", "9", AT9 + timedelta(minutes=1)),
    ):
        store.record(key, owner="w1", to=State.PUBLISHED, now=at, cause="ok", remote_id=remote_id)
    later = AT9 + timedelta(hours=1)
    (second,) = claim(store, later, limit=1)
    assert second == "demo/b/alba/1"
    store.record(second, owner="w1", to=State.PUBLISHED, now=later, cause="ok", remote_id="111")
    assert store.remote_ids("https://a.example", published_since=AT9) == {"110", "111"}
    assert store.remote_ids("https://a.example", published_since=AT9 + LEASE) == {"111"}
    assert store.remote_ids("https://b.example", published_since=AT9) == {"9"}
    assert store.remote_ids("https://c.example", published_since=AT9) == set()


def test_uploaded_media_ids_are_kept_on_the_claim(store: Store) -> None:
    sync(store, posts())
    claim(store, AT9)
    media = [{"path": "m.png", "alt": "x", "mime": "image/png", "remote_id": "77"}]
    store.keep_media("demo/a/alba/1", owner="w1", media=media)
    assert store.get("demo/a/alba/1").media == tuple(media)
    with pytest.raises(LeaseLost):
        store.keep_media("demo/a/alba/1", owner="w2", media=media)


def test_concurrent_claimers_never_share_a_publication_or_an_account(store: Store) -> None:
    many = [post(f"p{i}", f"Texte {i}", 9, ("alba", "peuples")) for i in range(6)]
    sync(store, many)
    if isinstance(store, SqlStore):
        url = store.engine.url.render_as_string(hide_password=False)
        stores: list[Store] = [SqlStore(create(url)) for _ in range(4)]
    else:
        assert isinstance(store, MemoryStore)
        stores = [store] * 4
    taken: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        mine = stores[worker].claim_due(owner=f"w{worker}", now=AT9, lease=LEASE, limit=10)
        with lock:
            taken.extend((worker_key.key, worker_key.account) for worker_key in mine)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in stores:
        if isinstance(other, SqlStore) and other is not store:
            other.engine.dispose()
    keys = [k for k, _ in taken]
    assert len(keys) == len(set(keys))
    accounts = [a for _, a in taken]
    assert sorted(accounts) == ["alba", "peuples"]  # one in flight per account, across workers


def test_a_part_ended_while_a_sync_adds_behind_it_is_seen_on_postgresql(
    postgres_schema_url: str,
) -> None:
    # Replicas: a worker records part 1 failed while a sync adds part 2 behind it. The
    # worker's own transaction cannot see the new part; the sync must wait for the worker
    # (it locks the part replied to) and then end what it adds.
    upgrade(postgres_schema_url)
    store, racer = SqlStore(create(postgres_schema_url)), create(postgres_schema_url)
    try:
        sync(store, [post("long", "Court.", 9)])
        (first,) = claim(store, AT9)
        with racer.connect() as worker:
            transaction = worker.begin()
            worker.execute(
                text("SELECT id FROM publications WHERE key = :k FOR UPDATE"), {"k": first}
            )
            syncing = threading.Thread(target=sync, args=(store, [post("long", LONG, 9)]))
            syncing.start()
            deadline = time.monotonic() + 20
            while not worker.execute(
                text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            ).scalar():
                assert time.monotonic() < deadline, "the sync did not wait for the worker"
                time.sleep(0.01)
            worker.execute(
                text("UPDATE publications SET state = 'failed' WHERE key = :k"), {"k": first}
            )
            transaction.commit()
            syncing.join()
        later = [p for p in store.publications(post="long") if p.key != first]
        assert later
        assert {p.state for p in later} == {State.FAILED}
    finally:
        store.engine.dispose()
        racer.dispose()


def test_outcomes_recorded_at_once_by_several_threads_each_land_alone(store: Store) -> None:
    sync(store, posts())
    alba, peuples = claim(store, AT9)
    start = threading.Barrier(3)
    results: dict[str, Any] = {}

    def record(name: str, key: str, owner: str, to: State) -> None:
        start.wait()
        try:
            results[name] = store.record(
                key, owner=owner, to=to, now=AT9, cause=name, remote_id=f"id-{name}"
            )
        except LeaseLost as error:
            results[name] = error

    threads = [
        threading.Thread(target=record, args=("a", alba, "w1", State.PUBLISHED)),
        threading.Thread(target=record, args=("intruder", peuples, "w2", State.PUBLISHED)),
        threading.Thread(target=record, args=("p", peuples, "w1", State.PUBLISHED)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert isinstance(results["intruder"], LeaseLost)
    assert (results["a"].key, results["a"].remote_id) == (alba, "id-a")
    assert (results["p"].key, results["p"].remote_id) == (peuples, "id-p")
    assert store.get(alba).state is State.PUBLISHED
    assert store.get(peuples).remote_id == "id-p"
    assert [h.cause for h in store.history(peuples)][-1] == "p"


def test_eight_replicas_claiming_together_never_hold_two_claims_of_one_account(
    postgres_schema_url: str,
) -> None:
    """PostgreSQL, READ COMMITTED: a replica's view of the claims in flight is taken when its
    statement begins, and it may lock an account another replica has claimed for and
    released since; it must see that claim before choosing a publication. Many rounds of
    eight replicas claiming at once (without that check, half the runs of 25 rounds failed)."""
    upgrade(postgres_schema_url)
    store = SqlStore(create(postgres_schema_url))
    sync(store, [post(f"p{i:02}", f"Texte {i}", 9, ("alba", "peuples")) for i in range(30)])
    replicas = [SqlStore(create(postgres_schema_url)) for _ in range(8)]
    try:
        for _ in range(60):
            taken = claim_together(replicas)
            accounts = sorted(account for _key, account, _n in taken)
            assert accounts == sorted(set(accounts)), f"two claims of one account: {taken}"
            for key, _account, n in taken:
                replicas[n].record(
                    key, owner=f"w{n}", to=State.PUBLISHED, now=AT9, cause="ok", remote_id=key
                )
    finally:
        for replica in replicas:
            replica.engine.dispose()
        store.engine.dispose()


def claim_together(replicas: list[SqlStore]) -> list[tuple[str, str, int]]:
    """Every replica claims at the same moment: (key, account, replica) of each claim."""
    start = threading.Barrier(len(replicas))
    taken: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        start.wait()
        mine = replicas[n].claim_due(owner=f"w{n}", now=AT9, lease=LEASE, limit=10)
        with lock:
            taken.extend((r.key, r.account, n) for r in mine)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return taken
