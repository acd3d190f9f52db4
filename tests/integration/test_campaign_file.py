"""The campaign loader against real files: TOML on disk → models, statement and media facts.

Every campaign here is written into a fresh folder by the ``write_campaign`` fixture; line
numbers are computed from the text written, never copied from the loader's answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from postscheduler.campaign_file import LoadedCampaign, load_campaign
from postscheduler.check import check_file
from postscheduler.domain.problems import Problem
from postscheduler.errors import CampaignInvalid, ConfigError

WriteCampaign = Callable[..., Path]

ROOT = Path(__file__).resolve().parents[2]
PNG = (ROOT / "config" / "media" / "drapeau.png").read_bytes()

CAMPAIGN = """\
[campaign]
id = "essai"
name = "Campagne d'essai"
timezone = "Europe/Paris"
start = 2024-05-01T00:00:00
end = 2024-05-03T23:59:00
language = "fr"

[accounts.alba]
instance = "https://alba.example"
token = { env = "ALBA_TOKEN" }
software = "mastodon"

[[posts]]
id = "bonjour"
at = 2024-05-01T10:00:00
text = "Bonjour à toutes et à tous."
"""

STATEMENT = """\
Premier paragraphe de la déclaration. Il a deux phrases.

Le second paragraphe appelle à la solidarité entre les peuples.
"""

WITH_STATEMENT = CAMPAIGN.replace('language = "fr"\n', 'language = "fr"\nstatement = "s.txt"\n')


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based number of the ``occurrence``-th line of ``text`` containing ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(found) >= occurrence, f"{needle!r} not in the test's own campaign"
    return found[occurrence - 1]


def invalid(path: Path) -> CampaignInvalid:
    with pytest.raises(CampaignInvalid) as caught:
        load_campaign(path)
    return caught.value


def only_problem(path: Path) -> Problem:
    error = invalid(path)
    assert len(error.problems) == 1, error.lines()
    return error.problems[0]


def with_post(body: str, base: str = CAMPAIGN) -> str:
    """``base`` with one more ``[[posts]]`` entry (``body`` is its keys)."""
    return f"{base}\n[[posts]]\n{body}"


# -- a campaign that loads ------------------------------------------------------------------


def test_minimal_campaign_loads(write_campaign: WriteCampaign) -> None:
    path = write_campaign(CAMPAIGN)

    loaded = load_campaign(path)

    assert isinstance(loaded, LoadedCampaign)
    assert loaded.path == path
    assert loaded.source == CAMPAIGN
    settings = loaded.campaign.campaign
    assert (settings.id, settings.name, settings.timezone) == (
        "essai",
        "Campagne d'essai",
        "Europe/Paris",
    )
    assert settings.start == datetime(2024, 5, 1, 0, 0)
    assert settings.end == datetime(2024, 5, 3, 23, 59)
    assert settings.min_spacing == timedelta(minutes=30)
    assert list(loaded.campaign.accounts) == ["alba"]
    assert loaded.campaign.accounts["alba"].instance == "https://alba.example"
    assert loaded.campaign.accounts["alba"].token.env == "ALBA_TOKEN"
    assert [post.id for post in loaded.campaign.posts] == ["bonjour"]
    assert loaded.campaign.posts[0].at == datetime(2024, 5, 1, 10, 0)
    assert loaded.statement is None
    assert loaded.media == {}
    assert loaded.warnings == ()


def test_example_campaign_loads_with_its_statement_and_media(example_campaign: Path) -> None:
    loaded = load_campaign(example_campaign)

    assert loaded.campaign.campaign.id == "venezuela-2017"
    assert sorted(loaded.campaign.accounts) == ["alba", "peuples"]
    assert loaded.statement is not None
    assert len(loaded.statement.paragraphs) == 8
    drapeau = example_campaign.parent / "media" / "drapeau.png"
    media = loaded.media["media/drapeau.png"]
    assert media.mime == "image/png"
    assert media.size == drapeau.stat().st_size
    assert media.sha256 == hashlib.sha256(drapeau.read_bytes()).hexdigest()
    assert media.alt.startswith("Drapeau aux trois bandes")


def test_a_byte_order_mark_is_ignored(write_campaign: WriteCampaign) -> None:
    path = write_campaign(CAMPAIGN)
    path.write_bytes(b"\xef\xbb\xbf" + CAMPAIGN.encode("utf-8"))

    assert load_campaign(path).campaign.campaign.id == "essai"


# -- files that cannot be read or parsed ----------------------------------------------------


def test_toml_syntax_error_names_the_line_and_column(write_campaign: WriteCampaign) -> None:
    text = CAMPAIGN.replace('text = "Bonjour à toutes et à tous."', "text = Bonjour")
    path = write_campaign(text)

    with pytest.raises(ConfigError) as caught:
        load_campaign(path)

    error = caught.value
    assert not isinstance(error, CampaignInvalid)
    line = line_of(text, "text = Bonjour")
    assert error.problem.line == line
    assert "column 8" in error.problem.message
    assert str(error).startswith(f"{path}:{line}: TOML syntax error at column 8: ")
    assert "\n" not in str(error)


def test_a_table_defined_twice_is_a_syntax_error(write_campaign: WriteCampaign) -> None:
    text = CAMPAIGN + '\n[campaign]\nid = "autre"\n'
    path = write_campaign(text)

    with pytest.raises(ConfigError) as caught:
        load_campaign(path)

    assert caught.value.problem.line == line_of(text, "[campaign]", occurrence=2)
    assert "TOML syntax error" in caught.value.problem.message


@pytest.mark.parametrize(
    ("case", "message", "has_line"),
    [
        ("missing", "no such file", False),
        ("directory", "is a directory, not a campaign file", False),
        ("latin-1", "is not UTF-8 text: save it as UTF-8", True),
    ],
)
def test_an_unreadable_file_is_one_clear_error(
    write_campaign: WriteCampaign, tmp_path: Path, case: str, message: str, has_line: bool
) -> None:
    path = write_campaign(CAMPAIGN)
    if case == "missing":
        path = tmp_path / "absent.toml"
    elif case == "directory":
        path = tmp_path / "dossier.toml"
        path.mkdir()
    else:
        path.write_bytes(CAMPAIGN.encode("utf-8") + "# café\n".encode("latin-1"))

    with pytest.raises(ConfigError) as caught:
        load_campaign(path)

    error = caught.value
    assert type(error) is ConfigError
    assert error.path == str(path)
    assert error.problem.message == message
    expected_line = CAMPAIGN.count("\n") + 1 if has_line else None
    assert error.problem.line == expected_line
    location = f"{path}:{expected_line}" if has_line else str(path)
    assert str(error) == f"{location}: {message}"


# -- schema problems ------------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one(write_campaign: WriteCampaign) -> None:
    text = CAMPAIGN + 'hashtag = ["Essai"]\n'
    path = write_campaign(text)

    problem = only_problem(path)

    assert problem.where == "posts[0]"
    assert problem.message == "unknown key 'hashtag' (did you mean 'hashtags'?)"
    assert problem.severity == "error"
    assert problem.line == line_of(text, "hashtag =")


def test_unknown_key_far_from_any_known_one_lists_the_known_keys(
    write_campaign: WriteCampaign,
) -> None:
    text = CAMPAIGN.replace('software = "mastodon"', 'software = "mastodon"\ncolour = "red"')
    path = write_campaign(text)

    problem = only_problem(path)

    assert problem.where == "accounts.alba"
    assert problem.message == (
        "unknown key 'colour'; known keys: "
        "instance, token, software, max_characters, characters_per_url"
    )
    assert problem.line == line_of(text, "colour =")


@pytest.mark.parametrize(
    ("header", "typo", "message"),
    [
        ("[campaign]", "[campain]", "unknown key 'campain' (did you mean 'campaign'?)"),
        ("[[posts]]", "[[post]]", "unknown key 'post' (did you mean 'posts'?)"),
    ],
)
def test_an_unknown_table_at_the_top_is_located(
    write_campaign: WriteCampaign, header: str, typo: str, message: str
) -> None:
    text = CAMPAIGN.replace(header, typo)
    path = write_campaign(text)

    problems = {p.message: p for p in invalid(path).problems}

    assert problems[message].where == ""
    assert problems[message].line == line_of(text, typo)


@pytest.mark.parametrize(
    ("removed", "where", "key", "header"),
    [
        ('language = "fr"\n', "campaign", "language", "[campaign]"),
        ('token = { env = "ALBA_TOKEN" }\n', "accounts.alba", "token", "[accounts.alba]"),
        ('id = "bonjour"\n', "posts[0]", "id", "[[posts]]"),
    ],
)
def test_missing_required_key(
    write_campaign: WriteCampaign, removed: str, where: str, key: str, header: str
) -> None:
    text = CAMPAIGN.replace(removed, "")
    path = write_campaign(text)

    problem = only_problem(path)

    assert (problem.where, problem.message) == (where, f"missing required key {key!r}")
    assert problem.line == line_of(text, header)


def test_every_error_of_a_file_is_reported_at_once(write_campaign: WriteCampaign) -> None:
    text = (
        CAMPAIGN.replace('"Europe/Paris"', '"Europe/Pari"')
        .replace('token = { env = "ALBA_TOKEN" }', 'token = "jeton-en-clair"')
        .replace('id = "bonjour"', 'id = "Bonjour Tout"')
        .replace('text = "Bonjour à toutes et à tous."', 'text = "Salut"\nhashtag = ["Essai"]')
    )
    text = with_post('id = "deux"\ntext = "Deux"\nhashtags = ["2017"]\n', text)
    path = write_campaign(text)

    error = invalid(path)

    found = {(p.where, p.line) for p in error.problems}
    assert found == {
        ("campaign.timezone", line_of(text, "timezone =")),
        ("accounts.alba.token", line_of(text, "token =")),
        ("posts[0].id", line_of(text, '"Bonjour Tout"')),
        ("posts[0]", line_of(text, "hashtag =")),
        ("posts[1].hashtags[0]", line_of(text, '"2017"')),
    }
    assert all(p.severity == "error" for p in error.problems)
    lines = error.lines()
    assert len(lines) == 5
    # One line per problem, in the order of the file.
    numbers = [int(re.match(rf"{re.escape(str(path))}:(\d+): ", line)[1]) for line in lines]
    assert numbers == sorted(numbers)
    assert str(error) == error.problems[0].render(str(path))


def test_lines_follow_the_file_even_when_tables_are_out_of_schema_order(
    write_campaign: WriteCampaign,
) -> None:
    accounts = '[accounts.alba]\ninstance = "ftp://alba.example"\ntoken = { env = "T" }\n\n'
    text = accounts + CAMPAIGN.replace(
        '[accounts.alba]\ninstance = "https://alba.example"\ntoken = { env = "ALBA_TOKEN" }\n'
        'software = "mastodon"\n',
        "",
    ).replace('"Europe/Paris"', '"Nulle/Part"')
    path = write_campaign(text)

    lines = invalid(path).lines()

    assert [line.split(": ")[1] for line in lines] == [
        "accounts.alba.instance",
        "campaign.timezone",
    ]
    assert lines[0].startswith(f"{path}:{line_of(text, 'ftp://')}: ")
    assert lines[1].startswith(f"{path}:{line_of(text, 'timezone =')}: ")


def test_an_invalid_hashtag_is_located_in_its_post(write_campaign: WriteCampaign) -> None:
    text = with_post('id = "deux"\ntext = "Deux"\nhashtags = ["2017"]\n')
    path = write_campaign(text)

    problem = only_problem(path)

    assert problem.where == "posts[1].hashtags[0]"
    assert problem.message == "'2017' is not a hashtag on Mastodon: it needs at least one letter"
    assert problem.line == line_of(text, 'hashtags = ["2017"]')
    assert problem.line > line_of(text, "[[posts]]", occurrence=2)


SCHEMA_CASES = [
    pytest.param(
        ('token = { env = "ALBA_TOKEN" }', 'token = "s3cr3t-t0ken"'),
        "accounts.alba.token",
        'a token does not belong in the campaign file: write { env = "NAME" }, '
        '{ file = "path" } or { credential = "name" }',
        "token =",
        id="literal-token",
    ),
    pytest.param(
        ('token = { env = "ALBA_TOKEN" }', 'token = { env = "ALBA_TOKEN", file = "/etc/token" }'),
        "accounts.alba.token",
        "give exactly one of env, file or credential",
        "token =",
        id="two-token-sources",
    ),
    pytest.param(
        ('"https://alba.example"', '"http://alba.example"'),
        "accounts.alba.instance",
        "use https:// (plain http:// is only allowed on 127.0.0.1 / localhost)",
        "instance =",
        id="plain-http",
    ),
    pytest.param(
        ('"https://alba.example"', '"https://alba.example/@alba"'),
        "accounts.alba.instance",
        "write only the server's address, without a path",
        "instance =",
        id="instance-with-path",
    ),
    pytest.param(
        ('"Europe/Paris"', '"Europe/Lutece"'),
        "campaign.timezone",
        "'Europe/Lutece' is not an IANA time zone: write e.g. 'America/Caracas', 'Europe/Paris'",
        "timezone =",
        id="bad-time-zone",
    ),
    pytest.param(
        ("end = 2024-05-03T23:59:00", "end = 2024-04-30T23:59:00"),
        "campaign",
        "the window ends (2024-04-30T23:59:00) before it starts (2024-05-01T00:00:00)",
        "[campaign]",
        id="end-before-start",
    ),
    pytest.param(
        ("start = 2024-05-01T00:00:00", "start = 2024-05-01"),
        "campaign.start",
        "2024-05-01 is a date without a time: write e.g. 2024-05-01T09:00:00",
        "start =",
        id="date-without-time",
    ),
    pytest.param(
        ('language = "fr"', 'language = "fr"\nmin_spacing = "30 minutes"'),
        "campaign.min_spacing",
        "'30 minutes' is not a duration: write a number with a unit, e.g. '30m', '1h30m', '2d'",
        "min_spacing =",
        id="bad-duration",
    ),
    pytest.param(
        ('language = "fr"', 'language = "French"'),
        "campaign.language",
        "'French' is not a language code: use ISO 639 in lowercase, e.g. 'fr', 'es', 'en'",
        "language =",
        id="bad-language",
    ),
    pytest.param(
        (
            'at = 2024-05-01T10:00:00\ntext = "Bonjour à toutes et à tous."',
            'at = 2024-05-01T10:00:00\ntext = "Bonjour {nom}"',
        ),
        "posts[0].text",
        "unknown placeholder {nom}: the text may use {excerpt}",
        "text =",
        id="unknown-placeholder",
    ),
]


@pytest.mark.parametrize(("edit", "where", "message", "marker"), SCHEMA_CASES)
def test_schema_problem_is_explained_and_located(
    write_campaign: WriteCampaign,
    edit: tuple[str, str],
    where: str,
    message: str,
    marker: str,
) -> None:
    old, new = edit
    assert old in CAMPAIGN
    text = CAMPAIGN.replace(old, new, 1)
    path = write_campaign(text)

    problem = only_problem(path)

    assert (problem.where, problem.message) == (where, message)
    assert problem.line == line_of(text, marker)


def test_a_literal_token_is_never_repeated_in_the_message(write_campaign: WriteCampaign) -> None:
    path = write_campaign(CAMPAIGN.replace('{ env = "ALBA_TOKEN" }', '"s3cr3t-t0ken"'))

    error = invalid(path)

    assert all("s3cr3t" not in line for line in error.lines())
    assert "s3cr3t" not in str(error)


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:3000/", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://alba.example/", "https://alba.example"),
    ],
)
def test_loopback_http_and_https_instances_are_accepted(
    write_campaign: WriteCampaign, written: str, kept: str
) -> None:
    path = write_campaign(CAMPAIGN.replace("https://alba.example", written))

    assert load_campaign(path).campaign.accounts["alba"].instance == kept


# -- media ----------------------------------------------------------------------------------


def media_post(*entries: str) -> str:
    items = ",\n".join(f'  {{ path = "{path}", alt = "Un drapeau" }}' for path in entries)
    return with_post(f'id = "image"\ntext = "Regardez"\nmedia = [\n{items},\n]\n')


@pytest.mark.parametrize(
    ("name", "files", "message"),
    [
        ("absent.png", {}, "absent.png: no such file (paths are relative to the campaign file)"),
        ("dossier", {"dossier/a.png": PNG}, "dossier: is not a regular file"),
        (
            "notes.txt",
            {"notes.txt": "pas une image"},
            "notes.txt: is text/plain; servers accept images (jpg, png, gif, webp, heic, avif), "
            "video (mp4, mov, webm) and audio (mp3, ogg, opus, wav, flac, m4a)",
        ),
        (
            "faux.png",
            {"faux.png": b"GIF89a\x01\x00\x01\x00"},
            "faux.png: does not look like image/png (its content does not match its name)",
        ),
        (
            "faux.jpg",
            {"faux.jpg": PNG},
            "faux.jpg: does not look like image/jpeg (its content does not match its name)",
        ),
        (
            "faux.webp",
            {"faux.webp": b"RIFF\x00\x00\x00\x00WAVEfmt "},
            "faux.webp: does not look like image/webp (its content does not match its name)",
        ),
        ("vide.png", {"vide.png": b""}, "vide.png: is empty"),
    ],
)
def test_a_bad_media_file_is_reported_at_its_entry(
    write_campaign: WriteCampaign, name: str, files: dict[str, str | bytes], message: str
) -> None:
    text = media_post(name)
    path = write_campaign(text, files)

    problem = only_problem(path)

    assert problem.where == "posts[1].media[0].path"
    assert problem.message == message
    assert problem.line == line_of(text, "media = [")


def test_media_outside_the_campaign_folder_is_refused(
    write_campaign: WriteCampaign, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-dehors.png"
    outside.write_bytes(PNG)
    (tmp_path / "lien.png").symlink_to(outside)
    text = media_post(f"../{outside.name}", "lien.png")
    path = write_campaign(text)

    problems = invalid(path).problems

    assert [(p.where, p.message) for p in problems] == [
        (
            "posts[1].media[0].path",
            f"../{outside.name}: media must be inside the campaign's folder",
        ),
        ("posts[1].media[1].path", "lien.png: media must be inside the campaign's folder"),
    ]


def test_a_media_symlink_loop_is_a_problem_not_a_crash(
    write_campaign: WriteCampaign, tmp_path: Path
) -> None:
    (tmp_path / "boucle.png").symlink_to(tmp_path / "boucle.png")
    path = write_campaign(media_post("boucle.png"))

    problem = only_problem(path)

    assert problem.where == "posts[1].media[0].path"
    assert problem.message.startswith("boucle.png: cannot be read")


@pytest.mark.parametrize(
    ("alt_line", "where", "message"),
    [
        (
            'alt = "   "',
            "posts[1].media[0].alt",
            "alt text is required: describe the image for people who cannot see it",
        ),
        ("", "posts[1].media[0]", "missing required key 'alt'"),
        (
            f'alt = "{"x" * 1501}"',
            "posts[1].media[0].alt",
            "alt text is 1501 characters; servers accept 1500",
        ),
    ],
)
def test_alt_text_is_required(
    write_campaign: WriteCampaign, alt_line: str, where: str, message: str
) -> None:
    text = with_post(
        f'id = "image"\ntext = "Regardez"\n[[posts.media]]\npath = "a.png"\n{alt_line}\n'
    )
    path = write_campaign(text, {"a.png": PNG})

    problem = only_problem(path)

    assert (problem.where, problem.message) == (where, message)
    expected = line_of(text, "alt =") if alt_line else line_of(text, "[[posts.media]]")
    assert problem.line == expected


def test_more_than_four_media_is_refused(write_campaign: WriteCampaign) -> None:
    names = [f"{n}.png" for n in range(5)]
    text = media_post(*names)
    path = write_campaign(text, dict.fromkeys(names, PNG))

    problem = only_problem(path)

    assert problem.where == "posts[1].media"
    assert "at most 4 items" in problem.message
    assert "not 5" in problem.message
    assert problem.line == line_of(text, "media = [")


@pytest.mark.parametrize(
    ("name", "content", "mime"),
    [
        ("drapeau.png", PNG, "image/png"),
        ("photo.JPG", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        ("anim.gif", b"GIF87a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"),
        ("image.webp", b"RIFF\x1a\x00\x00\x00WEBPVP8 \x0e\x00", "image/webp"),
        ("son.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
    ],
)
def test_a_good_media_file_is_recorded(
    write_campaign: WriteCampaign, name: str, content: bytes, mime: str
) -> None:
    path = write_campaign(media_post(f"media/{name}"), {f"media/{name}": content})

    loaded = load_campaign(path)

    assert list(loaded.media) == [f"media/{name}"]
    media = loaded.media[f"media/{name}"]
    assert media.path == f"media/{name}"
    assert media.alt == "Un drapeau"
    assert media.mime == mime
    assert media.size == len(content)
    assert media.sha256 == hashlib.sha256(content).hexdigest()
    assert media.focus is None
    assert loaded.warnings == ()


def test_a_media_file_named_twice_is_read_once(write_campaign: WriteCampaign) -> None:
    text = (
        media_post("a.png")
        + '\n[[posts]]\nid = "encore"\nmedia = [{ path = "a.png", alt = "Encore" }]\n'
    )
    path = write_campaign(text, {"a.png": PNG})

    loaded = load_campaign(path)

    assert list(loaded.media) == ["a.png"]
    assert loaded.media["a.png"].alt == "Un drapeau"


def test_focus_is_kept_and_checked(write_campaign: WriteCampaign) -> None:
    good = with_post(
        'id = "image"\nmedia = [{ path = "a.png", alt = "Un drapeau", focus = [0.5, -1.0] }]\n'
    )
    assert load_campaign(write_campaign(good, {"a.png": PNG})).media["a.png"].focus == (0.5, -1.0)

    bad = good.replace("[0.5, -1.0]", "[0.5, 1.5]")
    problem = only_problem(write_campaign(bad, {"a.png": PNG}))
    assert (problem.where, problem.message) == (
        "posts[1].media[0].focus",
        "focus is two numbers from -1.0 to 1.0: [x, y]",
    )


# -- the statement and excerpts -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "s.txt: no such file (paths are relative to the campaign file)"),
        ("Déclaration\n".encode("latin-1"), "s.txt: is not UTF-8 text"),
        (" \n\n\u00a0\n", "s.txt: the statement is empty: it has no text to quote from"),
    ],
)
def test_an_unusable_statement_is_reported(
    write_campaign: WriteCampaign, content: str | bytes | None, message: str
) -> None:
    files = {} if content is None else {"s.txt": content}
    path = write_campaign(WITH_STATEMENT, files)

    problem = only_problem(path)

    assert (problem.where, problem.message) == ("campaign.statement", message)
    assert problem.line == line_of(WITH_STATEMENT, "statement =")


def test_the_statement_is_read_into_paragraphs(write_campaign: WriteCampaign) -> None:
    path = write_campaign(WITH_STATEMENT, {"s.txt": STATEMENT})

    loaded = load_campaign(path)

    assert loaded.statement is not None
    assert loaded.statement.paragraphs == (
        "Premier paragraphe de la déclaration. Il a deux phrases.",
        "Le second paragraphe appelle à la solidarité entre les peuples.",
    )


@pytest.mark.parametrize(
    ("excerpt", "message"),
    [
        (
            '{ quote = "appelle à la solidarité entre les nations" }',
            "quote not found in the statement; closest passage (paragraph 2): "
            '"appelle à la solidarité entre les peuples."',
        ),
        (
            "{ paragraph = 3 }",
            "paragraph 3 does not exist: the statement has 2 paragraphs",
        ),
        (
            '{ paragraph = 1, sentences = "3" }',
            "paragraph 1 has only 2 sentences; asked for 3",
        ),
    ],
)
def test_an_excerpt_not_in_the_statement_is_reported_at_the_excerpt(
    write_campaign: WriteCampaign, excerpt: str, message: str
) -> None:
    text = with_post(f'id = "citation"\nexcerpt = {excerpt}\n', WITH_STATEMENT)
    path = write_campaign(text, {"s.txt": STATEMENT})

    load_campaign(path)  # the file itself is valid: excerpts are checked by the planner
    report = check_file(path)

    assert not report.ok
    assert [(p.where, p.message) for p in report.errors] == [("posts[1].excerpt", message)]
    assert report.errors[0].line == line_of(text, "excerpt =")
    assert report.publications == ()


def test_an_excerpt_is_quoted_as_the_statement_writes_it(write_campaign: WriteCampaign) -> None:
    text = with_post(
        'id = "citation"\ntext = "« {excerpt} »"\n'
        'excerpt = { quote = "appelle  à la   solidarité" }\n',
        WITH_STATEMENT,
    )
    path = write_campaign(text, {"s.txt": STATEMENT})

    report = check_file(path)

    assert report.ok, [p.render(report.path) for p in report.problems]
    citation = [p for p in report.publications if p.post == "citation"]
    assert [p.text for p in citation] == ["« appelle à la solidarité »"]


def test_a_quote_differing_in_accents_is_not_found(write_campaign: WriteCampaign) -> None:
    text = with_post(
        'id = "citation"\nexcerpt = { quote = "appelle a la solidarite" }\n', WITH_STATEMENT
    )
    path = write_campaign(text, {"s.txt": STATEMENT})

    report = check_file(path)

    assert [p.where for p in report.errors] == ["posts[1].excerpt"]
    assert "closest passage (paragraph 2)" in report.errors[0].message


# -- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "rendered"),
    [
        (
            Problem("posts[0].hashtags[1]", "bad tag", line=12),
            "c.toml:12: posts[0].hashtags[1]: bad tag",
        ),
        (Problem("campaign", "no line"), "c.toml: campaign: no line"),
        (Problem("", "whole file", line=3), "c.toml:3: whole file"),
        (Problem("", "no such file"), "c.toml: no such file"),
        (
            Problem("posts[1]", "too close", "warning", 20),
            "c.toml:20: posts[1]: warning: too close",
        ),
    ],
)
def test_problem_renders_as_one_line(problem: Problem, rendered: str) -> None:
    assert problem.render("c.toml") == rendered


def test_campaign_invalid_puts_errors_before_warnings() -> None:
    warning = Problem("posts[0]", "doubtful", "warning", 2)
    error = Problem("posts[1].id", "wrong", line=9)

    invalid_campaign = CampaignInvalid("c.toml", [warning, error])

    assert invalid_campaign.lines() == [
        "c.toml:9: posts[1].id: wrong",
        "c.toml:2: posts[0]: warning: doubtful",
    ]
    assert str(invalid_campaign) == "c.toml:9: posts[1].id: wrong"
    with pytest.raises(ValueError, match="at least one error"):
        CampaignInvalid("c.toml", [warning])


def test_loader_errors_render_as_path_line_where_message(write_campaign: WriteCampaign) -> None:
    text = CAMPAIGN.replace('"Europe/Paris"', '"Europe/Lutece"') + 'hashtag = ["Essai"]\n'
    path = write_campaign(text)

    lines = invalid(path).lines()

    assert lines == [
        f"{path}:{line_of(text, 'timezone =')}: campaign.timezone: 'Europe/Lutece' is not an "
        "IANA time zone: write e.g. 'America/Caracas', 'Europe/Paris'",
        f"{path}:{line_of(text, 'hashtag =')}: posts[0]: "
        "unknown key 'hashtag' (did you mean 'hashtags'?)",
    ]
