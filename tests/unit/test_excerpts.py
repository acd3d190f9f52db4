"""Unit tests for the statement excerpts: paragraphs, sentences, selectors and finding quotes."""

from __future__ import annotations

import random
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postscheduler.domain.excerpts import ExcerptError, Statement

# The example statement of config/statement.txt, copied verbatim (leading space, straight
# apostrophes and typos included).
EXAMPLE_STATEMENT = (
    " date 2017-09 Assemblée Internationale des Mouvements et des Organisations des "
    "Peuples\n"
    "\n"
    "« Souvenez-vous que la Révolution est ce qui est important et que chacun de nous, "
    "seul, ne vaut rien. Surtout soyez toujours capables de sentir au plus profond de "
    "vous toute injustice commise contre n'importe qui n'importe où dans le monde. C'est "
    "la plus belle qualité d'un révolutionnaire. »\n"
    "\n"
    "Il y a 50 ans à la Higuera, Bolivie, était assassiné notre Commandant Che aux mains "
    "de l'impérialisme et des élites collabos locales. Son exemple héroïque et déterminé "
    "arrive jusqu'à aujourd'hui pour nous faire continuer sa lutte, pour nous appeler à "
    "être des révolutionnaires et à lutter contre les injustices n'importe où dans le "
    "monde.\n"
    "\n"
    "En ces moments difficiles, c'est là que les peuples montrent leurs plus grands "
    "gestes libérateurs et nous n'avons aucun doute sur le fait que les Vénézuéliens le "
    "font. Il nous revient, à nous, les peuples frères, de nous mobiliser pour manifester"
    " notre fraternité, pour lutter contre les injustices de l'impérialisme envers un "
    "peuple qui a résolu d'être libre. Parce que le Venezuela est la bataille de ce "
    "moment historique : là, résiste le projet d'intégration révolutionnaire pour obtenir"
    " la seconde et définitive indépendance.\n"
    "\n"
    "Nous, ALBA Mouvements et l'Assemblée Internationale des Mouvements et des "
    "Organisations des Peuples, levons les drapeaux révolutionnaires et le nôtraméricains"
    " du Commandant Chávez et duChe Guevara, 50 ans après da mort.\n"
    "\n"
    "C'est pour cela que nous mettons en place et que nous travaillerons la campagne « "
    "Nous sommes tous le Venezuela » dans le cadre de notre solidarité permanente envers "
    "le peuple et le Gouvernement légitime du Venezuela.\n"
    "\n"
    "Nous invitons tous les mouvements et toutes les organisations à se joindre à la "
    "campagne « Nous sommes tous le Venezuela » et à s'exprimer pour a paix, la "
    "souveraineté et la démocratie bolivarienne avec des mobilisations dans nos pays du "
    "du 5 au 8 octobre 2017.\n"
    "\n"
    "Nous appelons aussi à livrer bataille sur les réseaux sociaux, scène de combat et de"
    " création de schémas d'opinion au profit de al stratégie impérialiste.\n"
    "\n"
)


@pytest.fixture(scope="module")
def example() -> Statement:
    return Statement.parse(EXAMPLE_STATEMENT)


# --- An independent normalizer, the oracle of the matching tests ---------------------------

DOUBLE_QUOTES = '«»“”„‟"″'
SINGLE_QUOTES = "’‘‚′'"
DASHES = "–—‒―-‐‑"
WHITESPACE = [" ", "\u00a0", "\u202f", "\u2009", "\n", "\t", "  ", " \n "]


def normalized(text: str) -> str:
    """Text as matching sees it: no whitespace, one mark per class, "…" as "..."."""
    out = []
    for char in unicodedata.normalize("NFD", text):
        if char.isspace():
            continue
        if char in DOUBLE_QUOTES:
            out.append('"')
        elif char in SINGLE_QUOTES:
            out.append("'")
        elif char in DASHES:
            out.append("-")
        elif char == "…":
            out.append("...")
        else:
            out.append(char)
    return "".join(out)


# --- Parsing ------------------------------------------------------------------------------


def test_example_statement_has_eight_paragraphs(example: Statement) -> None:
    assert len(example.paragraphs) == 8
    assert example.paragraphs[0] == (
        "date 2017-09 Assemblée Internationale des Mouvements et des Organisations des Peuples"
    )
    assert example.paragraphs[-1].endswith("au profit de al stratégie impérialiste.")


@pytest.mark.parametrize(
    ("text", "paragraphs"),
    [
        ("One.", ("One.",)),
        ("One.\n\nTwo.", ("One.", "Two.")),
        ("One.\n\n\n\nTwo.", ("One.", "Two.")),
        ("One.\n   \n\t\nTwo.", ("One.", "Two.")),
        ("One.\n\u00a0\u202f\nTwo.", ("One.", "Two.")),
        ("\ufeffOne.\r\n\r\nTwo.\r\n", ("One.", "Two.")),
        ("One.\r\rTwo.", ("One.", "Two.")),
        ("  line one\n  line two  \n\nTwo.", ("line one\n  line two", "Two.")),
        ("\n\n  Indented.  \n\n\n", ("Indented.",)),
    ],
)
def test_parse_splits_paragraphs_on_blank_lines(text: str, paragraphs: tuple[str, ...]) -> None:
    assert Statement.parse(text).paragraphs == paragraphs


@pytest.mark.parametrize("text", ["", "   ", "\n\n\u00a0\n", "\ufeff\r\n"])
def test_parse_refuses_an_empty_statement(text: str) -> None:
    with pytest.raises(ExcerptError, match="the statement is empty"):
        Statement.parse(text)


def test_statements_compare_by_paragraphs_only() -> None:
    assert Statement.parse("A.\n\nB.") == Statement.parse("A.\r\n\r\n\r\nB.\n")
    assert Statement.parse("A.\n\nB.") != Statement.parse("A.\nB.")
    assert repr(Statement.parse("A.")) == "Statement(paragraphs=('A.',))"


# --- Sentences ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paragraph", "starts"),
    [
        (1, ["date 2017-09"]),
        (2, ["« Souvenez-vous", "Surtout soyez", "C'est la plus"]),
        (3, ["Il y a 50 ans", "Son exemple"]),
        (4, ["En ces moments", "Il nous revient", "Parce que"]),
        (5, ["Nous, ALBA"]),
        (6, ["C'est pour cela"]),
        (7, ["Nous invitons"]),
        (8, ["Nous appelons"]),
    ],
)
def test_example_sentences(example: Statement, paragraph: int, starts: list[str]) -> None:
    sentences = example.sentences(paragraph)
    assert len(sentences) == len(starts)
    for sentence, start in zip(sentences, starts, strict=True):
        assert sentence.startswith(start)
        assert sentence in example.paragraphs[paragraph - 1]


def test_quotation_paragraph_keeps_its_guillemets_in_first_and_last_sentences(
    example: Statement,
) -> None:
    assert example.sentences(2) == (
        "« Souvenez-vous que la Révolution est ce qui est important et que chacun de nous, "
        "seul, ne vaut rien.",
        "Surtout soyez toujours capables de sentir au plus profond de vous toute injustice "
        "commise contre n'importe qui n'importe où dans le monde.",
        "C'est la plus belle qualité d'un révolutionnaire. »",
    )


@pytest.mark.parametrize(
    ("paragraph", "sentences"),
    [
        ("Il vient. Elle part.", ["Il vient.", "Elle part."]),
        ("Vraiment ?! Oui !", ["Vraiment ?!", "Oui !"]),
        ("Quoi? Rien.", ["Quoi?", "Rien."]),
        ("Attendez… Voilà.", ["Attendez…", "Voilà."]),
        ("Attendez... Voilà.", ["Attendez...", "Voilà."]),
        ("Fin.\nDébut sur une autre ligne.", ["Fin.", "Début sur une autre ligne."]),
        ("En 2017. 50 ans plus tard.", ["En 2017.", "50 ans plus tard."]),
        ("Il dit. « Non. » Puis rien.", ["Il dit.", "« Non. »", "Puis rien."]),
        ("Il dit « non. » et part.", ["Il dit « non. » et part."]),
        ("Il a dit “non.” Elle aussi.", ["Il a dit “non.”", "Elle aussi."]),
        ('Il a dit "non." Elle aussi.', ['Il a dit "non."', "Elle aussi."]),
        ('Fin. "Bon", dit-il.', ["Fin.", '"Bon", dit-il.']),
        ("Fin (vraiment.) Début.", ["Fin (vraiment.)", "Début."]),
        ("Fin. — Oui, dit-elle.", ["Fin.", "— Oui, dit-elle."]),
        ("Fin. – Oui.", ["Fin.", "– Oui."]),
        ("¿Qué? ¡Nada!", ["¿Qué?", "¡Nada!"]),
        ("Il rit. et repart.", ["Il rit. et repart."]),
        ("La version 2.5 sort. Enfin.", ["La version 2.5 sort.", "Enfin."]),
        ("Pas de point final", ["Pas de point final"]),
        # abbreviations and initials do not end sentences
        ("M. Dupont et Mme. Durand arrivent.", ["M. Dupont et Mme. Durand arrivent."]),
        ("Le Dr. Martin soigne.", ["Le Dr. Martin soigne."]),
        ("Des pommes, etc. Nous aussi.", ["Des pommes, etc. Nous aussi."]),
        ("Des fruits, p. ex. Pommes.", ["Des fruits, p. ex. Pommes."]),
        ("Voir (cf. Annexe 2) ici.", ["Voir (cf. Annexe 2) ici."]),
        ("Le No. 5 gagne.", ["Le No. 5 gagne."]),
        ("À St. Louis. Ensuite.", ["À St. Louis.", "Ensuite."]),
        ("Selon J. Martí la patrie. Oui.", ["Selon J. Martí la patrie.", "Oui."]),
        ("En 52 av. J.-C. Rome gagne.", ["En 52 av. J.-C. Rome gagne."]),
        ("Ils disent […] Nous aussi.", ["Ils disent […] Nous aussi."]),
        ("Ils disent (...) Nous aussi.", ["Ils disent (...) Nous aussi."]),
    ],
)
def test_sentence_segmentation(paragraph: str, sentences: list[str]) -> None:
    assert Statement.parse(paragraph).sentences(1) == tuple(sentences)


@pytest.mark.parametrize("paragraph", [0, 9, -1])
def test_sentences_of_missing_paragraph(example: Statement, paragraph: int) -> None:
    with pytest.raises(ExcerptError, match=f"paragraph {paragraph} does not exist"):
        example.sentences(paragraph)


# --- Selectors ----------------------------------------------------------------------------

P2_S1 = (
    "« Souvenez-vous que la Révolution est ce qui est important et que chacun de nous, "
    "seul, ne vaut rien."
)
P2_S2 = (
    "Surtout soyez toujours capables de sentir au plus profond de vous toute injustice "
    "commise contre n'importe qui n'importe où dans le monde."
)
P2_S3 = "C'est la plus belle qualité d'un révolutionnaire. »"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, f"{P2_S1} {P2_S2} {P2_S3}"),
        ("1", P2_S1),
        ("2", P2_S2),
        ("3", P2_S3),
        (" 3 ", P2_S3),
        ("1-2", f"{P2_S1} {P2_S2}"),
        ("2-3", f"{P2_S2} {P2_S3}"),
        ("2-2", P2_S2),
        ("1-3", f"{P2_S1} {P2_S2} {P2_S3}"),
        ("2-", f"{P2_S2} {P2_S3}"),
        ("-2", f"{P2_S1} {P2_S2}"),
        ("1 - 2", f"{P2_S1} {P2_S2}"),
        ("1–2", f"{P2_S1} {P2_S2}"),
    ],
)
def test_select(example: Statement, selector: str | None, expected: str) -> None:
    assert example.select(2, selector) == expected


def test_select_keeps_the_paragraph_text_between_sentences() -> None:
    statement = Statement.parse("Un.\n  Deux.   Trois.")
    assert statement.select(1, "1-2") == "Un.\n  Deux."
    assert statement.select(1) == "Un.\n  Deux.   Trois."


@pytest.mark.parametrize(
    ("paragraph", "selector", "message"),
    [
        (9, None, "paragraph 9 does not exist: the statement has 8 paragraphs"),
        (0, "1", "paragraph 0 does not exist: paragraphs are numbered from 1 to 8"),
        (2, "4", "paragraph 2 has only 3 sentences; asked for 4"),
        (2, "2-4", "paragraph 2 has only 3 sentences; asked for 4"),
        (2, "5-", "paragraph 2 has only 3 sentences; asked for 5"),
        (1, "2", "paragraph 1 has only 1 sentence; asked for 2"),
        (2, "0", "sentence 0 does not exist: sentences are numbered from 1"),
        (2, "0-2", "sentence 0 does not exist: sentences are numbered from 1"),
        (2, "3-1", 'the sentence range "3-1" is reversed: write the smaller number first'),
        (2, "1,3", 'cannot read the sentence selection "1,3"'),
        (2, "1-2-3", 'cannot read the sentence selection "1-2-3"'),
        (2, "-", 'cannot read the sentence selection "-"'),
        (2, "deux", 'cannot read the sentence selection "deux"'),
        (2, "1.5", 'cannot read the sentence selection "1.5"'),
        (2, "", "the sentence selection is empty"),
        (2, "  ", "the sentence selection is empty"),
    ],
)
def test_select_errors(
    example: Statement, paragraph: int, selector: str | None, message: str
) -> None:
    with pytest.raises(ExcerptError) as raised:
        example.select(paragraph, selector)
    assert str(raised.value).startswith(message)


def test_a_single_paragraph_statement_says_paragraph_in_the_singular() -> None:
    with pytest.raises(ExcerptError, match=r"the statement has 1 paragraph$"):
        Statement.parse("Seul.").select(2)


# --- Finding quotes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "expected"),
    [
        # exact text
        ("Il nous revient, à nous", "Il nous revient, à nous"),
        # straight quotes or English quotes for the statement's guillemets
        ('"Nous sommes tous le Venezuela"', "« Nous sommes tous le Venezuela »"),
        ("“Nous sommes tous le Venezuela”", "« Nous sommes tous le Venezuela »"),
        ("«Nous sommes tous le Venezuela»", "« Nous sommes tous le Venezuela »"),
        ('"Souvenez-vous que la Révolution', "« Souvenez-vous que la Révolution"),
        ('révolutionnaire."', "révolutionnaire. »"),
        # typographic apostrophes for the statement's straight ones
        ("n’importe qui n’importe où", "n'importe qui n'importe où"),
        ("d‘être libre", "d'être libre"),
        # whitespace of any kind, or none, anywhere
        ("n'importe\u00a0qui\u202fn'importe\u2009où", "n'importe qui n'importe où"),
        ("Il nous\nrevient,\n  à nous", "Il nous revient, à nous"),
        ("Ilnousrevient", "Il nous revient"),
        ("  historique : là  ", "historique : là"),
        ("historique\u00a0: là", "historique : là"),
        # dashes of any kind
        ("Souvenez–vous", "Souvenez-vous"),
        ("Souvenez—vous", "Souvenez-vous"),
        ("date 2017‑09", "date 2017-09"),
        # across a paragraph break
        ("définitive indépendance. Nous, ALBA", "définitive indépendance.\n\nNous, ALBA"),
        ("révolutionnaire. » Il y a 50 ans", "révolutionnaire. »\n\nIl y a 50 ans"),
        # typos are matched as written
        ("le nôtraméricains du Commandant Chávez et duChe", None),
        ("au profit de al stratégie", None),
        # decomposed accents
        (unicodedata.normalize("NFD", "Vénézuéliens"), "Vénézuéliens"),
    ],
)
def test_find(example: Statement, quote: str, expected: str | None) -> None:
    assert example.find(quote) == (quote if expected is None else expected)


def test_find_quotation_without_its_guillemets(example: Statement) -> None:
    assert example.find(P2_S2) == P2_S2
    assert example.find(f"{P2_S1} {P2_S2} {P2_S3}") == example.paragraphs[1]


def test_find_drops_quotation_marks_the_statement_does_not_have(example: Statement) -> None:
    assert example.find('"Il nous revient, à nous"') == "Il nous revient, à nous"
    assert example.find("« Il nous revient »") == "Il nous revient"
    assert example.find("‘Il nous revient’") == "Il nous revient"
    assert example.find("'à nous'") == "à nous"
    with pytest.raises(ExcerptError, match="quote not found"):
        example.find('""')


@pytest.mark.parametrize(
    ("text", "quote", "expected"),
    [
        ("Il attend… puis part.", "attend... puis", "attend… puis"),
        ("Il attend... puis part.", "attend… puis", "attend... puis"),
        ("Le 1er mai.\n\nLe 1er  mai encore.", "Le 1er mai", "Le 1er mai"),
        ("Un  deux.\n\nUn deux.", "Un deux", "Un  deux"),
        ("Début.\n \nSuite.", "Début. Suite", "Début.\n\nSuite"),
        ("Café noir.", "Cafe\u0301 noir", "Café noir"),
    ],
)
def test_find_synthetic(text: str, quote: str, expected: str) -> None:
    assert Statement.parse(text).find(quote) == expected


@pytest.mark.parametrize(
    "quote",
    [
        "il nous revient",  # case matters
        "Il nous revient à nous",  # a comma is missing
        "Venezueliens",  # accents matter
        "fraternite",  # ...even on the last letter
        "Vénézuéliens le font..",  # a full stop is not an ellipsis
    ],
)
def test_find_is_exact_otherwise(example: Statement, quote: str) -> None:
    with pytest.raises(ExcerptError, match="quote not found in the statement"):
        example.find(quote)


def test_not_found_shows_the_closest_passage(example: Statement) -> None:
    with pytest.raises(ExcerptError) as raised:
        example.find("Il nous revient à nous les peuples frère de nous mobiliser")
    assert str(raised.value) == (
        "quote not found in the statement; closest passage (paragraph 4): "
        '"Il nous revient, à nous, les peuples frères, de nous mobiliser"'
    )


@pytest.mark.parametrize(
    ("quote", "paragraph", "start"),
    [
        ("Nous sommes tous la Venezuela", 6, "Nous sommes tous le Venezuela"),
        ("Souvenez vous que la revolution", 2, "« Souvenez-vous que la Révolution"),
        ("nous appelons aussi a livrer bataille", 8, "Nous appelons aussi à livrer"),
    ],
)
def test_not_found_names_the_paragraph(
    example: Statement, quote: str, paragraph: int, start: str
) -> None:
    with pytest.raises(ExcerptError) as raised:
        example.find(quote)
    message = str(raised.value)
    assert message.startswith(
        f'quote not found in the statement; closest passage (paragraph {paragraph}): "{start}'
    )


def test_closest_passage_of_a_long_quote_is_shortened(example: Statement) -> None:
    quote = example.paragraphs[3].replace("Vénézuéliens", "Venezueliens")
    with pytest.raises(ExcerptError) as raised:
        example.find(quote)
    message = str(raised.value)
    passage = message.split(": ", 1)[1]
    assert message.startswith("quote not found in the statement; closest passage (paragraph 4)")
    assert passage.startswith('"En ces moments difficiles')
    assert passage.endswith('…"')
    assert len(passage) <= 122
    assert "\n" not in message


@pytest.mark.parametrize("quote", ["", "   ", "\u00a0\n\t", "\u200b"])
def test_blank_quote(example: Statement, quote: str) -> None:
    with pytest.raises(ExcerptError, match="the quote is empty"):
        example.find(quote)


# --- Listing ------------------------------------------------------------------------------


def test_describe_lists_paragraphs_and_numbered_sentences(example: Statement) -> None:
    listing = example.describe().splitlines()
    assert listing[0] == "Paragraph 1 (1 sentence):"
    assert listing[1].startswith("  1. date 2017-09 Assemblée")
    assert "Paragraph 2 (3 sentences):" in listing
    assert "  3. C'est la plus belle qualité d'un révolutionnaire. »" in listing
    assert sum(line.startswith("Paragraph ") for line in listing) == 8
    assert len(listing) == 8 + 13
    assert all(len(line) <= 90 for line in listing)


# --- Properties ---------------------------------------------------------------------------

WORD_CHARACTERS = "abcdeéèàçôAÉZxyz0123456789.,;:!?…" + DOUBLE_QUOTES + SINGLE_QUOTES + DASHES
words = st.text(alphabet=WORD_CHARACTERS, min_size=1, max_size=8)
separators = st.sampled_from([*WHITESPACE, "\u3000"])


@st.composite
def paragraphs(draw: st.DrawFn, tokens: st.SearchStrategy[str] = words) -> str:
    parts = draw(st.lists(st.tuples(tokens, separators), min_size=1, max_size=12))
    return "".join(word + separator for word, separator in parts)


@st.composite
def statements(draw: st.DrawFn, tokens: st.SearchStrategy[str] = words) -> str:
    blocks = draw(st.lists(paragraphs(tokens), min_size=1, max_size=4))
    breaks = draw(st.lists(st.sampled_from(["\n\n", "\n \n", "\r\n\r\n\r\n"]), min_size=3))
    return "".join(block + line for block, line in zip(blocks, breaks, strict=False))


def disguised(quote: str, rng: random.Random) -> str:
    """``quote`` as an organiser might type it: other whitespace, other typography."""
    out = []
    for char in quote:
        if char.isspace():
            out.append(rng.choice([*WHITESPACE, ""]))
            continue
        if char in DOUBLE_QUOTES:
            char = rng.choice(DOUBLE_QUOTES)  # noqa: PLW2901
        elif char in SINGLE_QUOTES:
            char = rng.choice(SINGLE_QUOTES)  # noqa: PLW2901
        elif char in DASHES:
            char = rng.choice(DASHES)  # noqa: PLW2901
        elif char == "…":
            char = rng.choice(["…", "..."])  # noqa: PLW2901
        out.append(char)
        if rng.random() < 0.2:
            out.append(rng.choice(WHITESPACE))
    return "".join(out)


@settings(max_examples=300)
@given(text=statements(), data=st.data())
def test_find_returns_the_passage_of_any_disguised_substring(
    text: str, data: st.DataObject
) -> None:
    statement = Statement.parse(text)
    full = "\n\n".join(statement.paragraphs)
    solid = [index for index, char in enumerate(full) if not char.isspace()]
    start = data.draw(st.sampled_from(solid), label="start")
    end = data.draw(st.sampled_from([i for i in solid if i >= start]), label="end")
    passage = full[start : end + 1]
    quote = disguised(passage, data.draw(st.randoms(use_true_random=False)))

    found = statement.find(quote)

    assert normalized(found) == normalized(passage)
    assert found in full
    assert found == found.strip()


sentence_tokens = st.one_of(
    words,
    st.sampled_from(
        [
            "Il", "dit", "oui.", "Non!", "quoi?", "Vraiment?!", "…", "...", "2017.", "—", "–",
            "«", "»", "“Bon.”", '"Oui."', "(voir", "ceci.)", "[…]", "M.", "Mme.", "Dr.", "J.",
            "etc.", "p.", "ex.", "cf.", "No.", "St.", "l’État.", "Élan", "¿Qué?", "¡Ya!",
        ]
    ),
)  # fmt: skip


@settings(max_examples=300)
@given(text=statements(sentence_tokens))
def test_sentences_cover_each_paragraph_in_order(text: str) -> None:
    statement = Statement.parse(text)
    for number, paragraph in enumerate(statement.paragraphs, start=1):
        sentences = statement.sentences(number)
        assert " ".join(sentences).split() == paragraph.split()
        offset = 0
        for sentence in sentences:
            assert sentence
            assert sentence == sentence.strip()
            found = paragraph.index(sentence, offset)
            assert not paragraph[offset:found].strip()
            offset = found + len(sentence)
        assert statement.select(number, f"1-{len(sentences)}") == paragraph
        assert statement.select(number, str(len(sentences))) == sentences[-1]


@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=200))
def test_any_text_parses_into_stripped_paragraphs_and_sentences(text: str) -> None:
    try:
        statement = Statement.parse(text)
    except ExcerptError:
        assert not text.replace("\ufeff", "").strip()
        return
    for number, paragraph in enumerate(statement.paragraphs, start=1):
        assert paragraph
        assert paragraph == paragraph.strip()
        assert " ".join(statement.sentences(number)).split() == paragraph.split()
