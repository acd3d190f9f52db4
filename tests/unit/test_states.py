"""The publication state machine (DESIGN §3), checked pair by pair against a table written
here from the design, not read back from ``ALLOWED``."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postscheduler.domain.states import IllegalTransition, State, check_transition

S = State

#: Every arrow drawn in DESIGN §3.
DRAWN = {
    (S.SCHEDULED, S.CLAIMED): "claim",
    (S.CLAIMED, S.PUBLISHED): "ok",
    (S.CLAIMED, S.RETRYING): "retryable (429, 5xx, network)",
    (S.RETRYING, S.CLAIMED): "retrying(next_at) ──▶ claimed",
    (S.CLAIMED, S.UNCERTAIN): "outcome unknown (timeout after send); lease expired",
    (S.UNCERTAIN, S.PUBLISHED): "reconcile: found on the server",
    (S.UNCERTAIN, S.RETRYING): "reconcile: not on the server",
    (S.CLAIMED, S.FAILED): "permanent (422, 404 reply target, 400)",
    (S.CLAIMED, S.SCHEDULED): "401/403: account held; its publications wait ──resume──▶ scheduled",
    (S.SCHEDULED, S.EXPIRED): "window closed / grace passed",
    (S.SCHEDULED, S.CANCELLED): "removed from the file / cancel",
    (S.FAILED, S.SCHEDULED): "final except an explicit retry",
    (S.EXPIRED, S.SCHEDULED): "final except an explicit retry",
    (S.CANCELLED, S.SCHEDULED): "final except an explicit retry; a removed post back in the file",
}

#: Arrows DESIGN §3 does not draw but its invariants need; states.py's own diagram has them.
IMPLIED = {
    (S.RETRYING, S.CANCELLED): "invariant 5: removing a post cancels what is not yet published",
    (S.RETRYING, S.EXPIRED): "invariant 3: never outside the window, a retry included",
    (S.CLAIMED, S.EXPIRED): "invariant 3: a claim found past its grace is expired, not sent",
    (S.RETRYING, S.SCHEDULED): "a held or paused account's waiting publications are released",
    (S.UNCERTAIN, S.CLAIMED): "invariant 6: reconciling is done under a lease, like a send",
}
# Deliberately absent: uncertain → expired. An uncertain publication may be on the server;
# it ends only through a reconciliation (claimed → published, or → expired when not found),
# so no later retry by hand can send it twice (invariant 1). Invariant 2 still holds: the
# claim path reaches a final state.

EXPECTED = set(DRAWN) | set(IMPLIED)
PAIRS = list(itertools.product(State, State))


def allowed(current: State, wanted: State) -> bool:
    try:
        check_transition("demo/a/alba/1", current, wanted)
    except IllegalTransition:
        return False
    return True


def test_the_table_covers_all_64_pairs_and_eight_states() -> None:
    assert len(State) == 8
    assert len(PAIRS) == 64
    assert not set(DRAWN) & set(IMPLIED)


@pytest.mark.parametrize(
    ("current", "wanted"), PAIRS, ids=[f"{a.value}->{b.value}" for a, b in PAIRS]
)
def test_a_transition_is_allowed_exactly_when_the_design_lists_it(
    current: State, wanted: State
) -> None:
    assert allowed(current, wanted) is ((current, wanted) in EXPECTED)


@pytest.mark.parametrize("wanted", list(State))
def test_published_has_no_way_out(wanted: State) -> None:
    with pytest.raises(IllegalTransition):
        check_transition("demo/a/alba/1", S.PUBLISHED, wanted)


@pytest.mark.parametrize("state", list(State))
def test_no_state_becomes_itself(state: State) -> None:
    # A "transition" to the same state would write a history line for nothing.
    assert not allowed(state, state)


REFUSED = [pair for pair in PAIRS if pair not in EXPECTED]


@pytest.mark.parametrize(
    ("current", "wanted"), REFUSED, ids=[f"{a.value}->{b.value}" for a, b in REFUSED]
)
def test_the_refusal_names_the_key_and_both_states(current: State, wanted: State) -> None:
    key = "venezuela-2017/bataille-historique/alba/2"
    with pytest.raises(IllegalTransition) as refused:
        check_transition(key, current, wanted)
    error = refused.value
    assert isinstance(error, ValueError)
    assert (error.key, error.current, error.wanted) == (key, current, wanted)
    message = str(error)
    assert message.startswith(f"{key} is {current.value}; it cannot become {wanted.value}")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("current", "wanted", "hint"),
    [
        (S.PUBLISHED, S.CANCELLED, "delete it there"),
        (S.PUBLISHED, S.SCHEDULED, "published history is never rewritten"),
        (S.CLAIMED, S.CANCELLED, "being sent right now"),
        (S.UNCERTAIN, S.CANCELLED, "may already be on the server"),
    ],
)
def test_the_common_refusals_say_why(current: State, wanted: State, hint: str) -> None:
    with pytest.raises(IllegalTransition, match=hint):
        check_transition("demo/a/alba/1", current, wanted)


def reachable(start: State) -> set[State]:
    seen, todo = {start}, [start]
    while todo:
        state = todo.pop()
        for target in State:
            if target not in seen and allowed(state, target):
                seen.add(target)
                todo.append(target)
    return seen


def test_every_state_can_be_reached_from_scheduled() -> None:
    assert reachable(S.SCHEDULED) == set(State)


@pytest.mark.parametrize("state", list(State))
def test_no_publication_is_stuck_where_it_cannot_end(state: State) -> None:
    # Invariant 2 (never lost): from anywhere, some final state can still be reached.
    assert reachable(state) & {S.PUBLISHED, S.FAILED, S.EXPIRED, S.CANCELLED}


@given(start=st.sampled_from(list(State)), data=st.data())
def test_a_random_walk_never_leaves_published(start: State, data: st.DataObject) -> None:
    """Follow allowed transitions at random; once published, every way on is refused."""
    state = start
    published_seen = False
    for _ in range(40):
        published_seen = published_seen or state is S.PUBLISHED
        if published_seen:
            assert state is S.PUBLISHED
        onward = [target for target in State if allowed(state, target)]
        assert set(onward) == {b for a, b in EXPECTED if a is state}
        if not onward:
            break
        state = data.draw(st.sampled_from(onward))
    if published_seen or state is S.PUBLISHED:
        assert state is S.PUBLISHED
        assert not any(allowed(state, target) for target in State)
