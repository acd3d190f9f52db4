"""The pure diff of a sync: what the file plans against what the store holds, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postscheduler.domain.campaign import Visibility
from postscheduler.domain.plan import PlannedPublication
from postscheduler.domain.states import State, check_transition
from postscheduler.domain.sync import REMOVED_FROM_FILE, Stored, SyncPlan, diff

S = State
AT = datetime(2017, 10, 5, 12, 0, tzinfo=UTC)
BY_HAND = "cancelled by hand"
PENDING = [S.SCHEDULED, S.RETRYING]
IN_FLIGHT = [S.CLAIMED, S.UNCERTAIN]


def planned(key: str, digest: str = "h1", at: datetime = AT) -> PlannedPublication:
    campaign, post, account, part = key.split("/")
    return PlannedPublication(
        key=key,
        campaign=campaign,
        post=post,
        occurrence=None,
        account=account,
        instance="https://alba.example",
        part=int(part),
        parts=1,
        scheduled_at=at,
        local_at=at.astimezone(ZoneInfo("America/Caracas")),
        text=f"text {digest}",
        spoiler_text="",
        visibility=Visibility.PUBLIC,
        language="fr",
        sensitive=False,
        hashtags=(),
        media=(),
        reply_to=None,
        characters=7,
        limit=500,
        counting="mastodon",
        content_hash=digest,
    )


def stored(
    key: str,
    state: State,
    *,
    digest: str = "h1",
    at: datetime = AT,
    cause: str | None = None,
    published_at: datetime | None = None,
) -> Stored:
    return Stored(key, state, digest, at, cause, published_at)


def groups(plan: SyncPlan) -> dict[str, list[str]]:
    """The keys of each group, so that a test can compare the whole answer at once."""
    return {
        "added": [p.key for p in plan.added],
        "changed": [p.key for p in plan.changed],
        "revived": [p.key for p in plan.revived],
        "cancelled": [s.key for s in plan.cancelled],
        "refused": [r.key for r in plan.refused],
        "unchanged": list(plan.unchanged),
    }


def only(group: str, *keys: str) -> dict[str, list[str]]:
    answer: dict[str, list[str]] = {
        name: [] for name in ("added", "changed", "revived", "cancelled", "refused", "unchanged")
    }
    answer[group] = list(keys)
    return answer


def reason(plan: SyncPlan) -> str:
    (refusal,) = plan.refused
    return refusal.reason


K = "demo/a/alba/1"
#: Ways a file can change a publication: (content hash, time) against the stored ("h1", AT).
CHANGES: dict[str, tuple[str, datetime]] = {
    "text": ("h2", AT),
    "time": ("h1", AT + timedelta(hours=1)),
    "both": ("h2", AT - timedelta(minutes=30)),
}


# -- added, unchanged ---------------------------------------------------------------------


def test_everything_is_added_to_an_empty_store_in_the_plans_order() -> None:
    keys = ["demo/b/alba/1", "demo/a/alba/1", "demo/a/peuples/1"]
    plan = diff([planned(k) for k in keys], {})
    assert groups(plan) == only("added", *keys)
    assert plan.counts() == {
        "added": 3,
        "changed": 0,
        "revived": 0,
        "cancelled": 0,
        "refused": 0,
        "unchanged": 0,
    }
    assert not plan.is_empty


def test_nothing_planned_and_nothing_stored_is_an_empty_plan() -> None:
    plan = diff([], {})
    assert plan.is_empty
    assert groups(plan) == only("added")


@pytest.mark.parametrize(
    ("state", "cause"),
    [
        (S.SCHEDULED, None),
        (S.RETRYING, None),
        (S.CLAIMED, None),
        (S.UNCERTAIN, None),
        (S.PUBLISHED, None),
        (S.FAILED, "422 too long"),
        (S.EXPIRED, "grace passed"),
        (S.CANCELLED, BY_HAND),
    ],
)
def test_the_same_content_at_the_same_time_is_unchanged_in_any_state(
    state: State, cause: str | None
) -> None:
    plan = diff([planned(K)], {K: stored(K, state, cause=cause)})
    assert groups(plan) == only("unchanged", K)
    assert plan.is_empty


# -- changed ------------------------------------------------------------------------------


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("state", PENDING)
def test_a_pending_publication_with_another_content_or_time_is_changed(
    state: State, change: str
) -> None:
    new = planned(K, *CHANGES[change])
    plan = diff([new], {K: stored(K, state)})
    assert groups(plan) == only("changed", K)
    assert plan.changed == (new,)  # the new content and time, as the file plans them


def test_the_same_instant_in_another_zone_is_not_a_change() -> None:
    caracas = AT.astimezone(ZoneInfo("America/Caracas"))
    plan = diff([planned(K, at=caracas)], {K: stored(K, S.SCHEDULED)})
    assert groups(plan) == only("unchanged", K)


# -- refused ------------------------------------------------------------------------------


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("state", IN_FLIGHT)
def test_a_change_to_a_publication_in_flight_is_refused(state: State, change: str) -> None:
    plan = diff([planned(K, *CHANGES[change])], {K: stored(K, state)})
    assert groups(plan) == only("refused", K)
    assert reason(plan) == "being sent right now: not changed"
    assert plan.is_empty  # a refusal writes nothing


@pytest.mark.parametrize("state", IN_FLIGHT)
def test_a_removal_of_a_publication_in_flight_is_refused(state: State) -> None:
    plan = diff([], {K: stored(K, state)})
    assert groups(plan) == only("refused", K)
    assert reason(plan) == "removed from the file while being sent: not cancelled"


@pytest.mark.parametrize(
    ("published_at", "shown"),
    [
        (datetime(2017, 10, 5, 12, 0, 7, tzinfo=UTC), "2017-10-05 12:00 UTC"),
        # Published at 23:30 in Caracas: the message gives the UTC date, the next day.
        (
            datetime(2017, 10, 5, 23, 30, tzinfo=ZoneInfo("America/Caracas")),
            "2017-10-06 03:30 UTC",
        ),
        (None, "an unknown time"),
    ],
)
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_to_a_published_publication_is_refused_with_its_date(
    change: str, published_at: datetime | None, shown: str
) -> None:
    current = stored(K, S.PUBLISHED, published_at=published_at)
    plan = diff([planned(K, *CHANGES[change])], {K: current})
    assert groups(plan) == only("refused", K)
    assert reason(plan) == f"already published on {shown}, not changed"


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("state", [S.FAILED, S.EXPIRED])
def test_a_change_to_a_failed_or_expired_publication_says_to_use_retry(
    state: State, change: str
) -> None:
    plan = diff([planned(K, *CHANGES[change])], {K: stored(K, state, cause="x")})
    assert groups(plan) == only("refused", K)
    assert reason(plan).startswith(f"{state.value}: not changed")
    assert "use retry" in reason(plan)


@pytest.mark.parametrize("state", [S.PUBLISHED, S.FAILED, S.EXPIRED])
def test_a_removed_final_publication_is_left_alone(state: State) -> None:
    plan = diff([], {K: stored(K, state, published_at=AT)})
    assert groups(plan) == only("cancelled")
    assert plan.is_empty


# -- cancelled, revived -------------------------------------------------------------------


def test_only_pending_publications_are_cancelled_sorted_by_key() -> None:
    current = {
        "demo/c/alba/1": stored("demo/c/alba/1", S.SCHEDULED),
        "demo/b/alba/1": stored("demo/b/alba/1", S.RETRYING),
        "demo/d/alba/1": stored("demo/d/alba/1", S.PUBLISHED, published_at=AT),
        "demo/e/alba/1": stored("demo/e/alba/1", S.FAILED),
        "demo/f/alba/1": stored("demo/f/alba/1", S.CANCELLED, cause=REMOVED_FROM_FILE),
        "demo/g/alba/1": stored("demo/g/alba/1", S.CANCELLED, cause=BY_HAND),
    }
    plan = diff([], current)
    assert groups(plan) == only("cancelled", "demo/b/alba/1", "demo/c/alba/1")
    # The stored rows themselves, with the state they leave (the history's "from").
    assert [s.state for s in plan.cancelled] == [S.RETRYING, S.SCHEDULED]


@pytest.mark.parametrize("change", [None, *CHANGES])
def test_a_post_removed_from_the_file_and_back_is_revived(change: str | None) -> None:
    new = planned(K, *CHANGES[change]) if change else planned(K)
    plan = diff([new], {K: stored(K, S.CANCELLED, cause=REMOVED_FROM_FILE)})
    assert groups(plan) == only("revived", K)
    assert plan.revived == (new,)


@pytest.mark.parametrize("cause", [BY_HAND, None, "removed from the campaign"])
def test_a_publication_cancelled_otherwise_is_not_revived(cause: str | None) -> None:
    current = {K: stored(K, S.CANCELLED, cause=cause)}
    same = diff([planned(K)], current)
    assert groups(same) == only("unchanged", K)
    changed = diff([planned(K, digest="h2")], current)
    assert groups(changed) == only("refused", K)
    assert reason(changed).startswith("cancelled: not changed")


def test_a_mixed_sync_sorts_every_key_into_its_group() -> None:
    def key(name: str) -> str:
        return f"demo/{name}/alba/1"

    current = {
        key(n): stored(key(n), state, cause=cause, published_at=AT)
        for n, state, cause in [
            ("same", S.SCHEDULED, None),
            ("edited", S.RETRYING, None),
            ("sent", S.PUBLISHED, None),
            ("sending", S.CLAIMED, None),
            ("back", S.CANCELLED, REMOVED_FROM_FILE),
            ("gone", S.SCHEDULED, None),
            ("gone-sending", S.UNCERTAIN, None),
            ("gone-failed", S.FAILED, None),
        ]
    }
    plan = diff(
        [
            planned(key("new")),
            planned(key("same")),
            planned(key("edited"), digest="h2"),
            planned(key("sent"), digest="h2"),
            planned(key("sending"), at=AT + timedelta(hours=2)),
            planned(key("back")),
        ],
        current,
    )
    assert groups(plan) == {
        "added": [key("new")],
        "changed": [key("edited")],
        "revived": [key("back")],
        "cancelled": [key("gone")],
        "refused": [key("sent"), key("sending"), key("gone-sending")],
        "unchanged": [key("same")],
    }
    assert not plan.is_empty


# -- every key in exactly one group -------------------------------------------------------

CAUSES = [None, REMOVED_FROM_FILE, BY_HAND]
KEYS = [f"demo/p{i}/{account}/1" for i in range(6) for account in ("alba", "peuples")]

stored_entries = st.dictionaries(
    st.sampled_from(KEYS),
    st.tuples(
        st.sampled_from(list(State)),
        st.sampled_from(CAUSES),
        st.sampled_from(["h1", "h2"]),
        st.sampled_from([AT, AT + timedelta(hours=1)]),
    ),
)
planned_entries = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.sampled_from(["h1", "h2"]),
        st.sampled_from([AT, AT + timedelta(hours=1)]),
    ),
    unique_by=lambda entry: entry[0],
)


@given(stored_entries, planned_entries)
def test_every_key_lands_in_exactly_one_group(
    in_store: dict[str, tuple[State, str | None, str, datetime]],
    in_file: list[tuple[str, str, datetime]],
) -> None:
    current = {
        k: stored(k, state, digest=digest, at=at, cause=cause, published_at=AT)
        for k, (state, cause, digest, at) in in_store.items()
    }
    plan = diff([planned(k, digest, at) for k, digest, at in in_file], current)
    found = groups(plan)
    everywhere = [k for keys in found.values() for k in keys]
    assert len(everywhere) == len(set(everywhere)), found  # never in two groups

    planned_keys = {k for k, _, _ in in_file}
    removed = set(current) - planned_keys
    where = {k: name for name, keys in found.items() for k in keys}
    for k in planned_keys:  # each planned key lands somewhere, never in "cancelled"
        assert where.get(k) in {"added", "changed", "revived", "unchanged", "refused"}
        assert (where[k] == "added") is (k not in current)
    for k in removed:  # a removed key is cancelled, refused, or left alone
        assert where.get(k) in {"cancelled", "refused", None}
        assert (where.get(k) == "cancelled") is (current[k].state in PENDING)
        assert (where.get(k) == "refused") is (current[k].state in IN_FLIGHT)
    assert set(where) == planned_keys | {k for k in removed if k in where}

    for k, record in current.items():
        if record.state is S.PUBLISHED:
            assert where.get(k) not in {"changed", "revived", "cancelled"}
        if where.get(k) == "changed":
            assert record.state in PENDING
        if where.get(k) == "revived":
            assert (record.state, record.cause) == (S.CANCELLED, REMOVED_FROM_FILE)
    # The store writes these moves without asking the state machine: each must be legal.
    for record in plan.cancelled:
        check_transition(record.key, record.state, S.CANCELLED)
    for publication in plan.revived:
        check_transition(publication.key, current[publication.key].state, S.SCHEDULED)
    assert plan.counts() == {name: len(keys) for name, keys in found.items()}
