"""The planner: times, slots, threads, keys and warnings, on campaigns built in memory."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postscheduler.cron import expand_cron
from postscheduler.domain.campaign import CampaignFile
from postscheduler.domain.excerpts import Statement
from postscheduler.domain.plan import MediaFile, Plan, plan_campaign

STATEMENT = Statement.parse(
    "Première phrase du texte. Deuxième phrase du texte.\n\nUn second paragraphe, plus court.\n"
)


def campaign(**overrides: Any) -> CampaignFile:
    base: dict[str, Any] = {
        "campaign": {
            "id": "demo",
            "name": "Demo",
            "timezone": "Europe/Paris",
            "start": datetime(2017, 10, 5, 0, 0),
            "end": datetime(2017, 10, 8, 23, 59),
            "language": "fr",
            "hashtags": ["Demo"],
            "statement": "statement.txt",
        },
        "accounts": {
            "alba": {"instance": "https://a.example", "token": {"env": "A"}},
            "peuples": {
                "instance": "https://b.example",
                "token": {"env": "B"},
                "software": "gotosocial",
            },
        },
        "posts": [{"id": "one", "accounts": ["alba"], "text": "Bonjour"}],
    }
    for key, value in overrides.items():
        if key in ("campaign",):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return CampaignFile.model_validate(base)


def plan(file: CampaignFile, media: dict[str, MediaFile] | None = None) -> Plan:
    return plan_campaign(file, STATEMENT, media or {}, expand_cron)


def errors(result: Plan) -> list[tuple[str, str]]:
    return [(p.where, p.message) for p in result.problems if p.severity == "error"]


def warnings(result: Plan) -> list[tuple[str, str]]:
    return [(p.where, p.message) for p in result.problems if p.severity == "warning"]


def test_explicit_time_is_resolved_in_the_campaign_zone() -> None:
    result = plan(
        campaign(
            posts=[
                {"id": "one", "accounts": ["alba"], "text": "x", "at": datetime(2017, 10, 5, 9, 0)}
            ]
        )
    )
    assert result.ok
    (only,) = result.publications
    assert only.scheduled_at == datetime(2017, 10, 5, 7, 0, tzinfo=UTC)  # CEST is UTC+2
    assert only.local_at.utcoffset() == timedelta(hours=2)
    assert only.key == "demo/one/alba/1"


def test_an_offset_datetime_is_taken_as_written() -> None:
    moment = datetime(2017, 10, 5, 9, 0, tzinfo=ZoneInfo("America/Caracas"))
    result = plan(campaign(posts=[{"id": "one", "accounts": ["alba"], "text": "x", "at": moment}]))
    assert result.publications[0].scheduled_at == datetime(2017, 10, 5, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (datetime(2017, 10, 4, 23, 59), "outside the campaign window"),
        (datetime(2017, 10, 9, 0, 0), "outside the campaign window"),
    ],
)
def test_times_outside_the_window_are_errors(at: datetime, message: str) -> None:
    result = plan(campaign(posts=[{"id": "one", "accounts": ["alba"], "text": "x", "at": at}]))
    assert not result.ok
    assert errors(result)[0][0] == "posts[0].at"
    assert message in errors(result)[0][1]
    assert result.publications == ()


def test_the_window_edges_are_inside() -> None:
    posts = [
        {"id": "first", "accounts": ["alba"], "text": "x", "at": datetime(2017, 10, 5, 0, 0)},
        {"id": "last", "accounts": ["peuples"], "text": "y", "at": datetime(2017, 10, 8, 23, 59)},
    ]
    assert plan(campaign(posts=posts)).ok


def test_a_time_in_a_dst_gap_is_an_error() -> None:
    file = campaign(
        campaign={"start": datetime(2017, 3, 25, 0, 0), "end": datetime(2017, 3, 27, 0, 0)},
        posts=[
            {"id": "one", "accounts": ["alba"], "text": "x", "at": datetime(2017, 3, 26, 2, 30)}
        ],
    )
    result = plan(file)
    assert not result.ok
    where, message = errors(result)[0]
    assert where == "posts[0].at"
    assert "does not exist in Europe/Paris" in message


def test_a_time_in_a_dst_fold_is_a_warning_naming_both_instants() -> None:
    file = campaign(
        campaign={"start": datetime(2017, 10, 28, 0, 0), "end": datetime(2017, 10, 30, 0, 0)},
        posts=[
            {"id": "one", "accounts": ["alba"], "text": "x", "at": datetime(2017, 10, 29, 2, 30)}
        ],
    )
    result = plan(file)
    assert result.ok
    ((where, message),) = warnings(result)
    assert where == "posts[0].at"
    assert "00:30 UTC" in message
    assert "01:30 UTC" in message
    assert result.publications[0].scheduled_at == datetime(2017, 10, 29, 0, 30, tzinfo=UTC)


def test_a_window_edge_in_a_dst_gap_is_an_error() -> None:
    file = campaign(
        campaign={"start": datetime(2017, 3, 26, 2, 15), "end": datetime(2017, 3, 27, 0, 0)}
    )
    result = plan(file)
    assert "campaign.start" in [w for w, _ in errors(result)]


def test_posts_without_time_are_spread_in_file_order_inside_posting_hours() -> None:
    posts = [{"id": f"p{i}", "accounts": ["alba"], "text": f"texte {i}"} for i in range(8)]
    result = plan(campaign(posts=posts))
    assert result.ok
    times = [p.scheduled_at for p in sorted(result.publications, key=lambda p: int(p.post[1:]))]
    assert times == sorted(times)
    zone = ZoneInfo("Europe/Paris")
    for moment in times:
        local = moment.astimezone(zone)
        assert (8, 0) <= (local.hour, local.minute) <= (22, 0)
        assert moment.second == 0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= timedelta(minutes=30)
    # Spread: the posts do not all land on the first day.
    assert len({m.astimezone(zone).date() for m in times}) == 4


def test_slots_keep_min_spacing_from_fixed_posts_of_the_same_account() -> None:
    fixed = datetime(2017, 10, 5, 8, 0)
    posts = [
        {"id": "fixed", "accounts": ["alba"], "text": "a", "at": fixed},
        {"id": "free", "accounts": ["alba"], "text": "b"},
    ]
    file = campaign(
        campaign={"start": datetime(2017, 10, 5, 8, 0), "end": datetime(2017, 10, 5, 8, 40)},
        posts=posts,
    )
    result = plan(file)
    assert result.ok, result.problems
    free = next(p for p in result.publications if p.post == "free")
    assert free.local_at.replace(tzinfo=None) == datetime(2017, 10, 5, 8, 30)


def test_no_slot_left_is_an_error_naming_the_post() -> None:
    posts = [{"id": f"p{i}", "accounts": ["alba"], "text": f"t{i}"} for i in range(5)]
    file = campaign(
        campaign={"start": datetime(2017, 10, 5, 9, 0), "end": datetime(2017, 10, 5, 10, 0)},
        posts=posts,
    )
    result = plan(file)
    assert not result.ok
    assert any("no free slot" in m for _, m in errors(result))


def test_posting_hours_outside_the_window_is_an_error() -> None:
    file = campaign(
        campaign={
            "start": datetime(2017, 10, 5, 1, 0),
            "end": datetime(2017, 10, 5, 5, 0),
            "posting_hours": ["08:00", "22:00"],
        }
    )
    result = plan(file)
    assert errors(result)[0][0] == "campaign.posting_hours"


def test_overnight_posting_hours() -> None:
    posts = [{"id": f"p{i}", "accounts": ["alba"], "text": f"t{i}"} for i in range(4)]
    file = campaign(campaign={"posting_hours": ["22:00", "02:00"]}, posts=posts)
    result = plan(file)
    assert result.ok
    for publication in result.publications:
        hour = publication.local_at.hour
        assert hour >= 22 or hour < 2 or publication.local_at.strftime("%H:%M") == "02:00"


def test_a_long_post_becomes_a_numbered_thread_on_mastodon_only() -> None:
    sentence = "Une phrase assez longue pour remplir un message, avec des mots ordinaires. "
    posts = [{"id": "long", "accounts": ["alba", "peuples"], "text": sentence * 12}]
    result = plan(campaign(posts=posts))
    assert result.ok
    alba = [p for p in result.publications if p.account == "alba"]
    peuples = [p for p in result.publications if p.account == "peuples"]
    assert len(peuples) == 1
    assert len(alba) >= 2
    assert [p.part for p in alba] == list(range(1, len(alba) + 1))
    for p in alba:
        assert p.characters <= p.limit == 500
        assert p.text.split("\n\n")[0].endswith(f" {p.part}/{len(alba)}")
    assert alba[0].reply_to is None
    assert [p.reply_to for p in alba[1:]] == [p.key for p in alba[:-1]]
    assert alba[0].visibility == "public"
    assert {p.visibility for p in alba[1:]} == {"unlisted"}
    assert "#Demo" in alba[0].text
    assert all("#Demo" not in p.text for p in alba[1:])
    # Nothing lost, nothing reordered.
    words = " ".join(p.text.split("\n\n#")[0].rsplit(" ", 1)[0] for p in alba).split()
    assert words == (sentence * 12).split()


def test_on_too_long_error_reports_count_and_limit() -> None:
    posts = [{"id": "long", "accounts": ["alba"], "text": "mot " * 200, "on_too_long": "error"}]
    result = plan(campaign(posts=posts))
    ((where, message),) = errors(result)
    assert where == "posts[0]"
    assert "alba" in message
    assert "500" in message


def test_a_thread_may_not_be_more_visible_than_its_post() -> None:
    posts = [
        {
            "id": "p",
            "accounts": ["alba"],
            "text": "x",
            "visibility": "private",
            "thread_visibility": "public",
        }
    ]
    assert errors(plan(campaign(posts=posts)))[0][0] == "posts[0].thread_visibility"


def test_excerpts_and_hashtags_compose_the_text() -> None:
    posts = [
        {
            "id": "q",
            "accounts": ["alba"],
            "text": "« {excerpt} »",
            "excerpt": {"quote": "Deuxième phrase du texte."},
            "hashtags": ["#demo", "Autre"],
        }
    ]
    result = plan(campaign(posts=posts))
    assert result.ok
    (publication,) = result.publications
    assert publication.text == "« Deuxième phrase du texte. »\n\n#Demo #Autre"
    assert publication.hashtags == ("Demo", "Autre")


def test_a_hashtag_already_in_the_text_is_not_appended() -> None:
    posts = [{"id": "q", "accounts": ["alba"], "text": "Avec #demo dedans"}]
    (publication,) = plan(campaign(posts=posts)).publications
    assert publication.text == "Avec #demo dedans"


@pytest.mark.parametrize(
    ("excerpt", "fragment"),
    [
        ({"paragraph": 7}, "paragraph 7 does not exist"),
        ({"paragraph": 1, "sentences": "3"}, "asked for 3"),
        ({"quote": "une phrase absente"}, "closest passage"),
    ],
)
def test_bad_excerpts_are_located(excerpt: dict[str, Any], fragment: str) -> None:
    posts = [{"id": "q", "accounts": ["alba"], "excerpt": excerpt}]
    ((where, message),) = errors(plan(campaign(posts=posts)))
    assert where == "posts[0].excerpt"
    assert fragment in message


def test_unknown_accounts_and_duplicate_ids() -> None:
    posts = [
        {"id": "a", "accounts": ["alba", "nobody"], "text": "x"},
        {"id": "a", "accounts": ["alba"], "text": "y"},
    ]
    found = errors(plan(campaign(posts=posts)))
    assert (
        "posts[0].accounts[1]",
        "unknown account 'nobody': the file defines alba, peuples",
    ) in found
    assert ("posts[1].id", "id 'a' is already used by posts[0]") in found


def test_posts_without_accounts_go_to_every_account() -> None:
    result = plan(campaign(posts=[{"id": "all", "text": "x"}]))
    assert sorted(p.account for p in result.publications) == ["alba", "peuples"]


def test_series_are_expanded_in_local_time_with_occurrence_keys() -> None:
    series = [{"id": "daily", "accounts": ["alba"], "cron": "0 9 * * *", "text": "Rappel"}]
    result = plan(campaign(posts=[], series=series))
    assert result.ok
    assert [p.key for p in result.publications] == [
        f"demo/daily@201710{day:02d}T0900/alba/1" for day in (5, 6, 7, 8)
    ]
    assert {p.local_at.hour for p in result.publications} == {9}


def test_series_across_a_dst_change_keep_local_time() -> None:
    series = [{"id": "daily", "accounts": ["alba"], "cron": "0 9 * * *", "text": "Rappel"}]
    file = campaign(
        campaign={"start": datetime(2017, 10, 28, 0, 0), "end": datetime(2017, 10, 30, 23, 0)},
        posts=[],
        series=series,
    )
    utc_hours = [p.scheduled_at.hour for p in plan(file).publications]
    assert utc_hours == [7, 8, 8]


def test_a_bad_cron_is_located() -> None:
    series = [{"id": "s", "accounts": ["alba"], "cron": "0 99 * * *", "text": "x"}]
    ((where, message),) = errors(plan(campaign(posts=[], series=series)))
    assert where == "series[0].cron"
    assert "not a cron expression" in message


def test_close_explicit_posts_of_one_account_are_a_warning() -> None:
    posts = [
        {"id": "a", "accounts": ["alba"], "text": "x", "at": datetime(2017, 10, 5, 9, 0)},
        {"id": "b", "accounts": ["alba"], "text": "y", "at": datetime(2017, 10, 5, 9, 10)},
    ]
    ((where, message),) = warnings(plan(campaign(posts=posts)))
    assert where == "posts[1]"
    assert "10m apart" in message
    assert "30m" in message


def test_same_text_to_several_accounts_on_one_instance_is_a_warning() -> None:
    accounts = {
        "a1": {"instance": "https://same.example", "token": {"env": "A"}},
        "a2": {"instance": "https://same.example", "token": {"env": "B"}},
    }
    result = plan(campaign(accounts=accounts, posts=[{"id": "p", "text": "Même texte"}]))
    ((where, message),) = warnings(result)
    assert where == "posts[0]"
    assert "same.example" in message


def test_long_lowercase_hashtag_gets_a_readability_warning() -> None:
    file = campaign(campaign={"hashtags": ["noussommestouslevenezuela"]})
    ((where, _message),) = warnings(plan(file))
    assert where == "campaign.hashtags[0]"


def test_media_go_on_the_first_part_and_into_the_content_hash() -> None:
    media = {
        "m.png": MediaFile("m.png", "Une image", "image/png", 10, "ab" * 32),
    }
    posts = [
        {
            "id": "p",
            "accounts": ["alba"],
            "text": "x",
            "media": [{"path": "m.png", "alt": "Une image"}],
        }
    ]
    first = plan(campaign(posts=posts), media).publications[0]
    assert first.media == (media["m.png"],)
    other = {"m.png": MediaFile("m.png", "Une image", "image/png", 10, "cd" * 32)}
    assert plan(campaign(posts=posts), other).publications[0].content_hash != first.content_hash


def test_too_many_media_for_the_software() -> None:
    media = {f"{i}.png": MediaFile(f"{i}.png", "alt", "image/png", 1, "00") for i in range(4)}
    accounts = {"t": {"instance": "https://t.example", "token": {"env": "T"}, "software": "takahe"}}
    posts = [
        {"id": "p", "text": "x", "media": [{"path": f"{i}.png", "alt": "alt"} for i in range(4)]}
    ]
    assert plan(campaign(accounts=accounts, posts=posts), media).ok


def test_keys_and_hashes_are_stable_and_the_hash_follows_the_text() -> None:
    first = plan(campaign())
    again = plan(campaign())
    assert first == again
    changed = plan(campaign(posts=[{"id": "one", "accounts": ["alba"], "text": "Bonsoir"}]))
    assert changed.publications[0].key == first.publications[0].key
    assert changed.publications[0].content_hash != first.publications[0].content_hash


_post = st.fixed_dictionaries(
    {
        "accounts": st.sampled_from([["alba"], ["peuples"], ["alba", "peuples"]]),
        "text": st.text(alphabet="abc de.", min_size=1, max_size=30).filter(str.strip),
        "at": st.one_of(
            st.none(),
            st.datetimes(min_value=datetime(2017, 10, 4), max_value=datetime(2017, 10, 10)),
        ),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_post, min_size=1, max_size=12))
def test_planning_is_deterministic_and_never_outside_the_window(
    posts: Sequence[dict[str, Any]],
) -> None:
    entries = [
        {"id": f"p{i}", **{k: v for k, v in post.items() if v is not None}}
        for i, post in enumerate(posts)
    ]
    file = campaign(posts=entries)
    result = plan(file)
    assert result == plan(file)
    assert result.window_start is not None
    assert result.window_end is not None
    for publication in result.publications:
        assert result.window_start <= publication.scheduled_at <= result.window_end
        assert publication.characters <= publication.limit
    keys = [p.key for p in result.publications]
    assert len(keys) == len(set(keys))
    # A post with a time outside the window is an error, never silently moved.
    outside = [
        i
        for i, post in enumerate(posts)
        if post["at"] is not None
        and not datetime(2017, 10, 5) <= post["at"] <= datetime(2017, 10, 8, 23, 59)
    ]
    located = {where for where, _ in errors(result)}
    assert {f"posts[{i}].at" for i in outside} <= located
