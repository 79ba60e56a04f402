"""Sentence splitting, evidence selection and the answer/decline decision (no models)."""

from __future__ import annotations

import numpy as np
import pytest
from query_fakes import HashEncoder, count_words, hit

from rag.answering import add_missing_citations, check, gate, new_terms
from rag.config import AnswerConfig
from rag.errors import ConfigError
from rag.evidence import IndexIdf, coverage, missing_idf, select_evidence, split_sentences, unsupported_terms


def test_split_sentences_keeps_abbreviations_decimals_and_initials_together() -> None:
    text = (
        "Smith et al. reported an R0 of 2.5 in Wuhan. The incubation period was 5.2 days (Fig. 2). "
        "J. Doe disagreed! Was it lower? e.g. in children it was 4 days.\n\nA new paragraph starts here"
    )
    assert split_sentences(text) == [
        "Smith et al. reported an R0 of 2.5 in Wuhan.",
        "The incubation period was 5.2 days (Fig. 2).",
        "J. Doe disagreed!",
        "Was it lower? e.g. in children it was 4 days.",
        "A new paragraph starts here",
    ]


def test_split_sentences_breaks_before_list_items_and_ignores_blank_text() -> None:
    assert split_sentences("Steps:\n- wash hands\n- wear a mask") == ["Steps:", "- wash hands", "- wear a mask"]
    assert split_sentences("   \n ") == []


def _idf(term: str) -> float:
    return {"neptune": 5.0, "moon": 3.0}.get(term, 1.0)


def test_coverage_is_idf_weighted() -> None:
    question = "How many moons does Neptune have?"
    # key terms: many, moon, neptune -> weights 1 + 3 + 5
    assert coverage(question, "Neptune is a planet.", _idf) == pytest.approx(5 / 9)
    assert coverage(question, "Moons orbit planets; many do.", _idf) == pytest.approx(4 / 9)
    assert coverage(question, "nothing relevant", _idf) == 0.0
    assert coverage("what is it?", "anything", _idf) == 1.0  # no key terms: nothing to miss


def test_missing_idf_is_the_idf_of_the_rarest_unused_question_term() -> None:
    def idf(term: str) -> float:
        return {"neptune": 8.0, "moon": 2.0}.get(term, 1.0)

    question = "How many moons does Neptune have?"
    assert missing_idf(question, "Moons of many planets.", idf) == pytest.approx(8.0)  # Neptune missing
    assert missing_idf(question, "Neptune has many.", idf) == pytest.approx(2.0)  # only "moons"
    assert missing_idf(question, "Neptune has many moons.", idf) == 0.0


def test_index_idf_reads_document_frequencies_from_the_bm25_matrix() -> None:
    from types import SimpleNamespace

    bm25 = SimpleNamespace(n_docs=10, indptr=[0, 1, 6], vocab={"rare": 0, "common": 1})
    idf = IndexIdf(SimpleNamespace(bm25=bm25, bm25_tokenizer=lambda t: [] if t == "the" else [t]))
    assert idf("rare") == pytest.approx(np.log(1 + 9.5 / 1.5)) == pytest.approx(idf.unseen)
    assert idf("common") == pytest.approx(np.log(1 + 5.5 / 5.5))
    assert idf("never") == idf.unseen and idf("the") == 0.0
    assert IndexIdf(object())("anything") == 1.0


def test_unsupported_terms_ignore_question_words_and_citations() -> None:
    q = "What is the capital of Canada?"
    assert unsupported_terms("The capital of Canada is Ottawa [1].", q, "Canada has ten provinces.") == ["Ottawa"]
    assert unsupported_terms("It is Ottawa [1].", q, "Ottawa is the capital.") == []


def test_select_evidence_keeps_the_best_sentences_grouped_by_passage_within_budget() -> None:
    hits = [
        hit(1, "The cafeteria opens at 07:30. Blue lentil soup is served on Thursday. Parking is free.", rank=1),
        hit(2, "Visitors pay with a guest card. The soup costs 4 euros on Thursday.", rank=2),
    ]
    ev = select_evidence(
        "Which soup is served on Thursday?",
        hits,
        encode=HashEncoder().encode,
        count_tokens=count_words,
        idf=lambda t: 1.0,
        max_sentences=2,
        max_tokens=60,
    )
    texts = [e.text for e in ev.excerpts]
    assert any("Blue lentil soup is served on Thursday." in t for t in texts)
    assert sum(len(e.sentences) for e in ev.excerpts) <= 3  # 2 best + the best one's antecedent
    assert all(e.hit.chunk.id in {"c1", "c2"} for e in ev.excerpts)
    assert ev.excerpts == sorted(ev.excerpts, key=lambda e: -e.score)
    assert 0.0 < ev.features["coverage"] <= 1.0 and ev.features["sentences"] >= 2
    tight = select_evidence(
        "Which soup is served on Thursday?",
        hits,
        encode=HashEncoder().encode,
        count_tokens=count_words,
        idf=lambda t: 1.0,
        max_sentences=6,
        max_tokens=10,
    )
    assert sum(count_words(s.text) + 1 for e in tight.excerpts for s in e.sentences) <= 10


def test_select_evidence_with_no_sentences_has_zero_features() -> None:
    ev = select_evidence(
        "anything",
        [hit(1, "ok")],
        encode=HashEncoder().encode,
        count_tokens=count_words,
        idf=lambda t: 1.0,
        max_sentences=3,
        max_tokens=100,
    )
    assert ev.excerpts == [] and ev.features["sentences"] == 0.0
    assert gate(ev.features, AnswerConfig()) is not None


def test_max_encode_embeds_only_the_sentences_sharing_most_question_terms() -> None:
    seen: list[int] = []
    enc = HashEncoder()

    def encode(texts: list[str]) -> np.ndarray:
        seen.append(len(texts))
        return enc.encode(texts)

    text = " ".join(f"Filler sentence number {i} about nothing." for i in range(10)) + " Thursday soup is lentil."
    ev = select_evidence(
        "Which soup on Thursday?",
        [hit(1, text)],
        encode=encode,
        count_tokens=count_words,
        idf=lambda t: 1.0,
        max_sentences=1,
        max_tokens=100,
        max_encode=3,
    )
    assert seen == [4]  # the question + 3 sentences
    assert "Thursday soup is lentil." in ev.text


def test_gate_declines_on_low_score_or_coverage_and_says_why() -> None:
    config = AnswerConfig(min_score=0.5, min_coverage=0.4)
    assert gate({"best_score": 0.9, "coverage": 0.8, "sentences": 3}, config) is None
    low = gate({"best_score": 0.3, "coverage": 0.8, "sentences": 3}, config)
    assert low is not None and not low.answered and low.stage == "gate" and "min_score" in low.reason
    thin = gate({"best_score": 0.9, "coverage": 0.2, "sentences": 3}, config)
    assert thin is not None and "min_coverage" in thin.reason
    assert gate({"best_score": 0.0, "coverage": 0.0, "sentences": 3}, AnswerConfig(gate=False)) is None
    rare = gate(
        {"best_score": 0.9, "coverage": 0.8, "missing_idf": 7.5, "sentences": 3},
        AnswerConfig(min_score=0.5, max_missing_idf=6.0),
    )
    assert rare is not None and "max_missing_idf" in rare.reason


def test_check_withdraws_answers_built_on_terms_no_excerpt_uses() -> None:
    config = AnswerConfig(max_unsupported=0.5)
    q = "What is the capital of Canada?"
    made_up = check("The capital of Canada is Ottawa [1].", q, "Canada is large.", {"coverage": 1.0}, config)
    assert not made_up.answered and made_up.stage == "check" and made_up.unsupported == ["Ottawa"]
    assert made_up.features["unsupported_share"] == 1.0 and "'Ottawa'" in made_up.reason
    fine = check("The capital of Canada is Ottawa [1].", q, "Ottawa is the capital.", {}, config)
    assert fine.answered and fine.stage == "answer" and fine.features["unsupported_share"] == 0.0
    assert new_terms("The capital of Canada is Ottawa.", q) == {"ottawa"}
    assert check("Ottawa.", q, "nothing", {}, AnswerConfig(max_unsupported=0.5, gate=False)).answered


def test_add_missing_citations_cites_the_excerpt_holding_the_sentence() -> None:
    passages = {1: "The cafeteria opens at 07:30.", 2: "Blue lentil soup is served every Thursday."}
    text, added = add_missing_citations("Lentil soup is served on Thursday.", passages)
    assert text == "Lentil soup is served on Thursday [2]." and added == [2]
    cited, none = add_missing_citations("It opens at 07:30 [1].", passages)
    assert cited == "It opens at 07:30 [1]." and none == []
    unrelated, nothing = add_missing_citations("Penguins live in Antarctica.", passages)
    assert unrelated == "Penguins live in Antarctica." and nothing == []


@pytest.mark.parametrize(
    "bad", [{"candidates": 0}, {"min_coverage": 1.5}, {"max_unsupported": -0.1}, {"lexical_weight": -1.0}]
)
def test_answer_config_rejects_out_of_range_values(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=r"answer\."):
        AnswerConfig(**bad)  # type: ignore[arg-type]
