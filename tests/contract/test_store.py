"""The store contract (ports.Store), run against every implementation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from postscheduler.cron import expand_cron
from postscheduler.domain.campaign import CampaignFile
from postscheduler.domain.plan import PlannedPublication, plan_campaign
from postscheduler.domain.states import State
from postscheduler.domain.sync import REMOVED_FROM_FILE
from postscheduler.errors import TransitionRefused, UnknownPublication
from postscheduler.ports import FileVersion, Store
from postscheduler.store.common import campaign_records

NOW = datetime(2017, 10, 1, 12, 0, tzinfo=UTC)


def campaign_file(posts: list[dict[str, Any]]) -> CampaignFile:
    return CampaignFile.model_validate(
        {
            "campaign": {
                "id": "demo",
                "name": "Demo",
                "timezone": "America/Caracas",
                "start": datetime(2017, 10, 5, 0, 0),
                "end": datetime(2017, 10, 8, 23, 59),
                "language": "fr",
            },
            "accounts": {
                "alba": {"instance": "https://a.example", "token": {"env": "A"}},
                "peuples": {
                    "instance": "https://b.example",
                    "token": {"file": "/run/b.token"},
                    "software": "gotosocial",
                },
            },
            "posts": posts,
        }
    )


def post(ident: str, text: str, hour: int, accounts: tuple[str, ...] = ("alba",)) -> dict[str, Any]:
    return {
        "id": ident,
        "accounts": list(accounts),
        "text": text,
        "at": datetime(2017, 10, 5, hour, 0),
    }


def sync(
    store: Store, posts: list[dict[str, Any]], *, at: datetime = NOW, dry_run: bool = False
) -> Any:
    file = campaign_file(posts)
    plan = plan_campaign(file, None, {}, expand_cron)
    assert plan.ok, plan.problems
    assert plan.window_start is not None
    assert plan.window_end is not None
    campaign, accounts = campaign_records(
        file, "campaign.toml", (plan.window_start, plan.window_end)
    )
    version = FileVersion("campaign.toml", "ab" * 32, at, campaign="demo")
    return store.sync(campaign, accounts, plan.publications, version, dry_run=dry_run)


BASE = [
    post("a", "Premier", 9),
    post("b", "Deuxième", 10, ("alba", "peuples")),
    post("c", "Troisième", 11),
]


def test_a_first_sync_inserts_every_publication_scheduled(store: Store) -> None:
    result = sync(store, BASE)
    assert result.counts()["added"] == 4
    record = store.get("demo/b/peuples/1")
    assert record.state is State.SCHEDULED
    assert record.text == "Deuxième"
    assert record.scheduled_at == datetime(2017, 10, 5, 14, 0, tzinfo=UTC)
    assert record.scheduled_at.tzinfo is not None
    assert record.attempt == 0
    (line,) = store.history("demo/b/peuples/1")
    assert (line.from_state, line.to_state, line.actor) == (None, State.SCHEDULED, "sync")
    assert [c.id for c in store.campaigns()] == ["demo"]
    assert [(a.name, a.token_source) for a in store.accounts("demo")] == [
        ("alba", "env:A"),
        ("peuples", "file:/run/b.token"),
    ]


def test_syncing_the_same_file_again_changes_nothing(store: Store) -> None:
    sync(store, BASE)
    again = sync(store, BASE, at=NOW + timedelta(minutes=1))
    assert again.is_empty
    assert again.counts()["unchanged"] == 4
    assert len(store.history("demo/a/alba/1")) == 1


def test_a_changed_text_updates_the_pending_publication_and_its_hash(store: Store) -> None:
    sync(store, BASE)
    before = store.get("demo/a/alba/1")
    result = sync(store, [post("a", "Premier, corrigé", 9), *BASE[1:]])
    assert [p.key for p in result.changed] == ["demo/a/alba/1"]
    after = store.get("demo/a/alba/1")
    assert after.text == "Premier, corrigé"
    assert after.content_hash != before.content_hash
    assert after.state is State.SCHEDULED
    history = store.history("demo/a/alba/1")
    assert [h.cause for h in history][-1] == "changed in the campaign file"


def test_a_new_time_moves_the_publication(store: Store) -> None:
    sync(store, BASE)
    sync(store, [post("a", "Premier", 15), *BASE[1:]])
    moved = store.get("demo/a/alba/1")
    assert moved.scheduled_at == datetime(2017, 10, 5, 19, 0, tzinfo=UTC)
    assert store.publications(state=State.SCHEDULED, limit=1)[0].key != "demo/a/alba/1"


def test_a_removed_post_is_cancelled_and_comes_back_when_restored(store: Store) -> None:
    sync(store, BASE)
    result = sync(store, [BASE[0], BASE[2]])
    assert sorted(s.key for s in result.cancelled) == ["demo/b/alba/1", "demo/b/peuples/1"]
    gone = store.get("demo/b/alba/1")
    assert gone.state is State.CANCELLED
    assert gone.cause == REMOVED_FROM_FILE
    back = sync(store, BASE)
    assert sorted(p.key for p in back.revived) == ["demo/b/alba/1", "demo/b/peuples/1"]
    assert store.get("demo/b/alba/1").state is State.SCHEDULED
    assert [h.to_state for h in store.history("demo/b/alba/1")] == [
        State.SCHEDULED,
        State.CANCELLED,
        State.SCHEDULED,
    ]


def test_a_post_cancelled_by_hand_stays_cancelled(store: Store) -> None:
    sync(store, BASE)
    store.transition(
        "demo/a/alba/1", State.CANCELLED, now=NOW, cause="cancelled by hand", actor="cli"
    )
    result = sync(store, [post("a", "Autre texte", 9), *BASE[1:]])
    assert [r.key for r in result.refused] == ["demo/a/alba/1"]
    assert store.get("demo/a/alba/1").state is State.CANCELLED


def test_published_and_in_flight_publications_are_never_rewritten(store: Store) -> None:
    sync(store, BASE)
    store.transition("demo/a/alba/1", State.CLAIMED, now=NOW, cause="due", actor="worker-1")
    store.transition("demo/a/alba/1", State.PUBLISHED, now=NOW, cause="ok", actor="worker-1")
    store.transition("demo/c/alba/1", State.CLAIMED, now=NOW, cause="due", actor="worker-1")
    published_text = store.get("demo/a/alba/1").text
    result = sync(store, [post("a", "Réécrit", 9), BASE[1]])
    refused = {r.key: r.reason for r in result.refused}
    assert "already published" in refused["demo/a/alba/1"]
    assert "being sent" in refused["demo/c/alba/1"]
    assert store.get("demo/a/alba/1").text == published_text
    assert store.get("demo/a/alba/1").state is State.PUBLISHED
    assert store.get("demo/c/alba/1").state is State.CLAIMED


def test_a_dry_run_writes_nothing(store: Store) -> None:
    preview = sync(store, BASE, dry_run=True)
    assert preview.counts()["added"] == 4
    assert store.publications() == []
    assert store.file_versions() == []
    sync(store, BASE)
    preview = sync(store, [BASE[0]], dry_run=True)
    assert preview.counts()["cancelled"] == 3
    assert {p.state for p in store.publications()} == {State.SCHEDULED}


def test_an_illegal_transition_is_refused_and_changes_nothing(store: Store) -> None:
    sync(store, BASE)
    store.transition("demo/a/alba/1", State.CLAIMED, now=NOW, cause="due", actor="w")
    store.transition("demo/a/alba/1", State.PUBLISHED, now=NOW, cause="ok", actor="w")
    with pytest.raises(TransitionRefused, match="published; it cannot become cancelled"):
        store.transition("demo/a/alba/1", State.CANCELLED, now=NOW, cause="x", actor="cli")
    assert store.get("demo/a/alba/1").state is State.PUBLISHED
    assert len(store.history("demo/a/alba/1")) == 3


def test_retry_by_hand_brings_a_failed_publication_back(store: Store) -> None:
    sync(store, BASE)
    key = "demo/a/alba/1"
    store.transition(key, State.CLAIMED, now=NOW, cause="due", actor="w")
    store.transition(key, State.FAILED, now=NOW, cause="422 too long", actor="w")
    retried = store.transition(key, State.SCHEDULED, now=NOW, cause="retry by hand", actor="cli")
    assert retried.state is State.SCHEDULED
    assert retried.due_at == retried.scheduled_at
    last = store.history(key)[-1]
    assert (last.from_state, last.to_state, last.actor) == (State.FAILED, State.SCHEDULED, "cli")


def test_retry_by_hand_after_its_time_is_due_at_once(store: Store) -> None:
    sync(store, BASE)
    key = "demo/a/alba/1"
    store.transition(key, State.CLAIMED, now=NOW, cause="due", actor="w")
    store.transition(key, State.FAILED, now=NOW, cause="422 too long", actor="w")
    later = store.get(key).scheduled_at + timedelta(hours=3)
    retried = store.transition(key, State.SCHEDULED, now=later, cause="retry by hand", actor="c")
    assert (retried.next_attempt_at, retried.due_at) == (later, later)
    assert store.get(key).due_at == later


def test_unknown_keys_are_reported(store: Store) -> None:
    with pytest.raises(UnknownPublication):
        store.get("demo/nope/alba/1")
    with pytest.raises(UnknownPublication):
        store.history("demo/nope/alba/1")
    with pytest.raises(UnknownPublication):
        store.transition("demo/nope/alba/1", State.CANCELLED, now=NOW, cause="x", actor="cli")
    with pytest.raises(UnknownPublication):
        store.set_paused("nope", None, True, now=NOW)
    sync(store, BASE)
    with pytest.raises(UnknownPublication):
        store.set_paused("demo", "nobody", True, now=NOW)


def test_publications_are_listed_in_due_order_with_filters(store: Store) -> None:
    sync(store, BASE)
    keys = [p.key for p in store.publications()]
    assert keys == ["demo/a/alba/1", "demo/b/alba/1", "demo/b/peuples/1", "demo/c/alba/1"]
    assert [p.key for p in store.publications(account="peuples")] == ["demo/b/peuples/1"]
    assert [p.key for p in store.publications(post="c")] == ["demo/c/alba/1"]
    assert len(store.publications(limit=2)) == 2
    store.transition("demo/a/alba/1", State.CANCELLED, now=NOW, cause="x", actor="cli")
    assert [p.key for p in store.publications(state=State.CANCELLED)] == ["demo/a/alba/1"]
    assert store.publications(campaign="other") == []


def test_status_counts_states_per_account_and_shows_pauses(store: Store) -> None:
    sync(store, BASE)
    store.transition("demo/a/alba/1", State.CANCELLED, now=NOW, cause="x", actor="cli")
    store.set_paused("demo", "peuples", True, now=NOW)
    rows = {row.account: row for row in store.status()}
    assert rows["alba"].counts == {State.SCHEDULED: 2, State.CANCELLED: 1}
    assert rows["alba"].next_due == datetime(2017, 10, 5, 14, 0, tzinfo=UTC)
    assert rows["peuples"].paused
    assert not rows["alba"].paused
    store.set_paused("demo", None, True, now=NOW)
    assert all(row.paused for row in store.status("demo"))
    store.set_paused("demo", None, False, now=NOW)
    store.set_paused("demo", "peuples", False, now=NOW)
    assert not any(row.paused for row in store.status())


def test_pauses_survive_a_sync(store: Store) -> None:
    sync(store, BASE)
    store.set_paused("demo", "alba", True, now=NOW)
    sync(store, [post("a", "Nouveau", 9), *BASE[1:]])
    assert next(a for a in store.accounts() if a.name == "alba").paused


def test_file_versions_are_kept_newest_first_accepted_or_refused(store: Store) -> None:
    sync(store, BASE)
    store.record_file_version(
        FileVersion(
            "campaign.toml",
            "cd" * 32,
            NOW + timedelta(hours=1),
            campaign="demo",
            accepted=False,
            error="campaign.toml:3: posts[0]: unknown key",
        )
    )
    versions = store.file_versions("demo")
    assert [v.accepted for v in versions] == [False, True]
    assert versions[0].error == "campaign.toml:3: posts[0]: unknown key"
    assert versions[0].at == NOW + timedelta(hours=1)


def test_threads_keep_their_reply_keys(store: Store) -> None:
    long_text = "Une phrase complète et assez longue pour un fil. " * 20
    sync(store, [post("long", long_text, 9)])
    parts = store.publications(post="long")
    assert len(parts) >= 2
    assert parts[0].reply_to is None
    assert [p.reply_to for p in parts[1:]] == [p.key for p in parts[:-1]]


def _keys(planned: tuple[PlannedPublication, ...]) -> list[str]:
    return [p.key for p in planned]
