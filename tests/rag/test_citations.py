from __future__ import annotations

import pytest

from rag.citations import (
    check_citations,
    cited_sentences,
    is_not_in_documents,
    key_terms,
    parse_citations,
    strip_citations,
)
from rag.prompt import NOT_IN_DOCUMENTS


@pytest.mark.parametrize(
    ("text", "cited"),
    [
        ("Paris [1].", [1]),
        ("A [1, 3] and B [2].", [1, 3, 2]),
        ("A [1][2] then [2].", [1, 2]),
        ("Range [2-4].", [2, 3, 4]),
        ("Semicolons [3; 1].", [3, 1]),
        ("Wordy [Source 2] and [sources 1, 3].", [2, 1, 3]),
        ("No citations here.", []),
        ("Not a citation [a] or [] or [1.5].", []),
    ],
)
def test_parse_citations(text, cited):
    assert parse_citations(text, n_sources=5).cited == cited


def test_citations_to_missing_sources_are_dropped_and_removed_from_text():
    c = parse_citations("Fact one [1, 7]. Fact two [9]. Fact three [0][2].", n_sources=3)
    assert c.cited == [1, 2]
    assert c.invalid == [7, 9, 0]
    assert c.text == "Fact one [1]. Fact two. Fact three [2]."


def test_valid_citations_keep_their_original_form():
    text = "X [1, 2] and Y [Source 3]."
    assert parse_citations(text, n_sources=3).text == text


def test_no_sources_means_every_citation_is_invalid():
    c = parse_citations("Claim [1].", n_sources=0)
    assert c.cited == [] and c.invalid == [1]


def test_huge_range_is_not_expanded():
    assert parse_citations("[1-100000]", n_sources=3).cited == [1]


@pytest.mark.parametrize(
    "text",
    [
        NOT_IN_DOCUMENTS,
        "I'm sorry, but the answer is not in the provided documents.",
        "The information is not found in the sources.",
        "That information is not contained in the documents.",
    ],
)
def test_detects_not_in_documents(text):
    assert is_not_in_documents(text)


@pytest.mark.parametrize("text", ["The sky is blue [1].", "The documents say it is not in stock [2]."])
def test_ordinary_answers_are_not_refusals(text):
    assert not is_not_in_documents(text)


HOTEL = {
    1: "TRAVEL AND EXPENSES POLICY. Hotels: up to 190 EUR per night in London, Paris and Zurich.",
    2: "The Eindhoven lab builds the gripper modules.",
    3: "All Fernhill offices run on renewable electricity.",
}


def test_a_citation_to_a_passage_without_the_sentences_terms_is_flagged_with_the_better_one():
    checks = check_citations("The nightly hotel limit in Paris is 190 EUR. [3]", HOTEL)
    assert [(c.number, c.weak, c.better) for c in checks] == [(3, True, 1)]
    assert checks[0].sentence == "The nightly hotel limit in Paris is 190 EUR."
    assert checks[0].overlap == 0.0 and checks[0].better_overlap > 0.5


def test_supported_citations_are_not_flagged():
    text = "Hotels cost up to 190 EUR per night in Paris [1]. Offices run on renewable electricity [3]."
    checks = check_citations(text, HOTEL)
    assert [(c.number, c.weak) for c in checks] == [(1, False), (3, False)]
    assert checks[1].overlap == 1.0


def test_a_sentence_citing_the_right_passage_among_others_is_not_flagged():
    checks = check_citations("Paris hotels cost at most 190 EUR [2][1].", HOTEL)
    assert [c.weak for c in checks] == [False, False]


@pytest.mark.parametrize("text", ["Yes [3].", "No citations in this sentence about Paris hotels.", ""])
def test_sentences_too_short_or_uncited_are_not_checked(text):
    assert check_citations(text, HOTEL) == []


def test_cited_sentences_attach_a_trailing_bracket_and_key_terms_ignore_stop_words():
    assert cited_sentences("One fact. [2] Two facts [1, 3].\nThird. [4]") == [
        ("One fact.", [2]),
        ("Two facts.", [1, 3]),
        ("Third.", [4]),
    ]
    assert key_terms("The hotels in Paris cost 190.5 EUR") == {"hotel", "paris", "cost", "190.5", "eur"}


@pytest.mark.parametrize(
    ("text", "bare"),
    [
        ("The limit is 190 EUR in London, Paris [1][3].", "The limit is 190 EUR in London, Paris."),
        ("It drives at 2.4 m/s [1]. It runs 11 hours [Source 2, 3].", "It drives at 2.4 m/s. It runs 11 hours."),
        ("Ranges [2-4] count too.", "Ranges count too."),
        ("No citations, [not a number] either.", "No citations, [not a number] either."),
    ],
)
def test_strip_citations_keeps_the_prose(text: str, bare: str) -> None:
    assert strip_citations(text) == bare
