"""The pipeline with an in-memory index, a hashed encoder and a scripted LLM (no models)."""

from __future__ import annotations

import json

import pytest
from query_fakes import FakeIndex, HashEncoder, ScriptedLLM, chunk

from rag.config import AnswerConfig, PipelineConfig, PromptConfig, RerankConfig, RetrievalConfig
from rag.errors import ModelError
from rag.pipeline import Answer, Pipeline, SearchResult
from rag.prompt import NOT_IN_DOCUMENTS
from rag.rerank import apply_scores
from rag.retrieval import Filters

DOCS = [
    ("guide/leave.md", "Full-time employees get 27 days of paid annual leave per year.", None),
    ("guide/sick.md", "Report sick leave to your team lead before ten in the morning.", None),
    ("report.pdf", "Robot sales grew by twelve percent in the third quarter.", 3),
    ("report.pdf", "The board approved a new factory in the north.", 4),
]


class ReverseReranker:
    """Scores candidates by negative text length: easy to predict."""

    name = "reverse"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def rerank(self, query, hits, *, top_k):
        return self.rerank_many([query], [hits], top_k=top_k)[0]

    def rerank_many(self, queries, hits, *, top_k):
        self.calls.append(sum(len(h) for h in hits))
        return [apply_scores(hs, [-len(h.chunk.text) for h in hs], top_k=top_k) for hs in hits]


# The hashed encoder's cosines are far below the real model's: these tests open the evidence gate unless
# they test it (the calibrated thresholds are exercised with the real models in test_ask_local_llm.py).
OPEN_GATE = AnswerConfig(min_score=0.0, min_coverage=0.0, max_unsupported=1.0, max_missing_idf=99.0)


def _pipeline(*, reply="Employees get 27 days [1].", reranker=None, **config) -> Pipeline:
    index = FakeIndex([chunk(i, t, source=s, page=p) for i, (s, t, p) in enumerate(DOCS)])
    config.setdefault("answer", OPEN_GATE)
    cfg = PipelineConfig(
        retrieval=RetrievalConfig(depth=4),
        rerank=RerankConfig(model=None, depth=4),
        prompt=PromptConfig(top_k=2, answer_tokens=64, ordering="rank"),
        **config,
    )
    return Pipeline(cfg, index, llm=ScriptedLLM(reply=reply), reranker=reranker, encoder=HashEncoder())


def test_search_returns_a_typed_result_with_timings():
    result = _pipeline().search("annual leave days", k=2)
    assert isinstance(result, SearchResult)
    assert result.hits[0].chunk.source == "guide/leave.md"
    assert not result.reranked and not result.rerank.enabled
    assert {"bm25", "embed", "dense", "fusion", "total"} <= set(result.timings)
    json.dumps(result.to_dict())


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_every_mode_is_reachable(mode):
    result = _pipeline().search("robot sales", k=2, mode=mode)
    assert result.mode == mode and result.hits[0].chunk.source == "report.pdf"
    assert mode in result.hits[0].scores or mode == "hybrid"


def test_reranker_sees_depth_candidates_and_keeps_k():
    reranker = ReverseReranker()
    pipe = _pipeline(reranker=reranker)
    result = pipe.search("leave", k=2)
    assert result.reranked and reranker.calls == [4]
    assert len(result.hits) == 2 and all("rerank" in h.scores for h in result.hits)
    assert not pipe.search("leave", k=2, rerank=False).reranked


def test_asking_for_reranking_that_is_off_is_an_error():
    with pytest.raises(ModelError, match="reranking was requested but is unavailable"):
        _pipeline().search("leave", rerank=True)


def test_search_many_matches_search():
    pipe = _pipeline()
    queries = ["annual leave", "robot sales", "factory"]
    many = pipe.search_many(queries, k=2)
    assert [[h.chunk.id for h in hs] for hs in many] == [
        [h.chunk.id for h in pipe.search(q, k=2).hits] for q in queries
    ]


def test_filters_restrict_sources():
    hits = _pipeline().search("leave sales factory", k=4, filters=Filters.of("*.pdf")).hits
    assert hits and {h.chunk.source for h in hits} == {"report.pdf"}


def test_ask_returns_answer_citations_sources_and_timings():
    answer = _pipeline().ask("How many days of annual leave?")
    assert isinstance(answer, Answer)
    assert answer.answer == "Employees get 27 days [1]." and answer.citations.cited == [1]
    assert [s.source for s in answer.sources] == ["guide/leave.md"]
    assert not answer.not_in_documents
    assert {"prompt", "generate", "total"} <= set(answer.timings)
    data = answer.to_dict()
    assert data["passages"][0]["scores"].keys() >= {"bm25", "dense", "fusion"}
    assert data["sources"][0]["source"] == "guide/leave.md" and "messages" not in data["prompt"]
    json.dumps(data)


def test_ask_drops_citations_to_missing_sources():
    answer = _pipeline(reply="Twelve percent [2][7].").ask("robot sales growth")
    assert answer.citations.cited == [2] and answer.citations.invalid == [7]
    assert answer.answer == "Twelve percent [2]." and answer.raw_answer == "Twelve percent [2][7]."


def test_ask_streams_tokens_and_times_the_first():
    pieces: list[str] = []
    answer = _pipeline().ask("annual leave", on_token=pieces.append)
    assert "".join(pieces) == answer.raw_answer and len(pieces) > 1
    assert "first_token" in answer.timings


def test_ask_uses_deterministic_generation_settings():
    pipe = _pipeline()
    calls = []
    original = pipe.llm.complete

    def spy(messages, **options):
        calls.append(options)
        return original(messages, **options)

    pipe.llm.complete = spy  # type: ignore[method-assign]
    pipe.ask("annual leave")
    assert calls == [{"max_tokens": AnswerConfig().answer_tokens, "temperature": 0.0, "seed": 0}]
    passages = _pipeline(answer=AnswerConfig(context="passages"))
    calls.clear()
    original = passages.llm.complete
    passages.llm.complete = spy  # type: ignore[method-assign]
    passages.ask("annual leave")
    assert calls == [{"max_tokens": 64, "temperature": 0.0, "seed": 0}]


def test_ask_with_no_matching_passages_answers_not_in_documents_without_the_llm():
    pipe = _pipeline()
    answer = pipe.ask("anything", filters=Filters.of("*.docx"))
    assert answer.answer == NOT_IN_DOCUMENTS and answer.not_in_documents
    assert pipe.llm.seen == []


def test_the_prompt_holds_top_k_numbered_sources():
    pipe = _pipeline(answer=AnswerConfig(context="passages"))
    pipe.ask("annual leave", top_k=3)
    user = pipe.llm.seen[-1][1]["content"]
    assert user.count("<source id=") == 3 and '<source id="3"' in user


def test_a_citation_to_the_wrong_passage_is_reported_not_rewritten():
    pipe = _pipeline(reply="Employees get 27 days of paid annual leave [2].")
    answer = pipe.ask("annual leave days")
    assert [p.hit.chunk.source for p in answer.passages][:1] == ["guide/leave.md"]
    assert answer.answer == "Employees get 27 days of paid annual leave [2]."
    assert [(c.number, c.better) for c in answer.weak_citations] == [(2, 1)]
    assert answer.to_dict()["citation_checks"][0]["better"] == 1
    fine = _pipeline(reply="Employees get 27 days of paid annual leave [1].").ask("annual leave days")
    assert fine.weak_citations == [] and [c.number for c in fine.citation_checks] == [1]


# ---- sentence context and the evidence decision ---------------------------------------------------


def test_ask_gives_the_llm_selected_sentences_as_numbered_excerpts():
    pipe = _pipeline()
    answer = pipe.ask("How many days of paid annual leave do employees get?")
    user = pipe.llm.seen[-1][1]["content"]
    assert user.startswith("Excerpts:\n[1] Full-time employees get 27 days") and user.endswith(
        "Question: How many days of paid annual leave do employees get?"
    )
    assert "<source" not in user and answer.decision is not None and answer.decision.stage == "answer"
    assert {"evidence", "prompt", "generate"} <= set(answer.timings)
    assert answer.to_dict()["decision"]["features"]["coverage"] > 0.5


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_an_empty_question_is_a_value_error(question):
    with pytest.raises(ValueError, match="empty"):
        _pipeline().ask(question)


def test_a_question_longer_than_its_budget_is_trimmed_with_a_note():
    pipe = _pipeline(
        answer=AnswerConfig(
            min_score=0.0, min_coverage=0.0, max_unsupported=1.0, max_question_tokens=8, max_missing_idf=99.0
        )
    )
    answer = pipe.ask("How many days of paid annual leave " + "please tell me now " * 20)
    assert answer.question == "How many days of paid annual leave please"
    assert answer.notes and "only its first 8 were used" in answer.notes[0]


def test_the_gate_declines_without_calling_the_llm_and_streams_the_decline():
    pipe = _pipeline(answer=AnswerConfig(min_score=0.0, min_coverage=0.9, max_missing_idf=99.0))
    streamed: list[str] = []
    answer = pipe.ask("How many moons does Neptune have?", on_token=streamed.append)
    assert pipe.llm.seen == [] and streamed == [NOT_IN_DOCUMENTS]
    assert answer.refused and not answer.generated and not answer.withdrawn
    assert answer.decision.stage == "gate" and "min_coverage" in answer.decision.reason
    assert answer.answer == NOT_IN_DOCUMENTS and answer.sources == []


def test_an_answer_from_outside_the_excerpts_is_withdrawn():
    pipe = _pipeline(
        reply="Neptune has 14 moons [1].",
        answer=AnswerConfig(min_score=0.0, min_coverage=0.0, max_unsupported=0.5, max_missing_idf=99.0),
    )
    answer = pipe.ask("How many days of annual leave?")
    assert answer.refused and answer.withdrawn and answer.raw_answer == "Neptune has 14 moons [1]."
    assert answer.answer == NOT_IN_DOCUMENTS and answer.sources == []
    assert set(answer.decision.unsupported) == {"Neptune", "14", "moons"}
    data = answer.to_dict()
    assert data["withdrawn"] and data["refused"] and data["decision"]["stage"] == "check"


def test_the_models_own_decline_is_recorded_as_such():
    answer = _pipeline(reply=NOT_IN_DOCUMENTS).ask("How many days of annual leave?")
    assert answer.refused and answer.decision.stage == "model" and not answer.withdrawn


def test_an_uncited_answer_gets_the_excerpt_holding_its_terms():
    answer = _pipeline(reply="Full-time employees get 27 days of paid annual leave.").ask("annual leave days")
    assert answer.answer == "Full-time employees get 27 days of paid annual leave [1]."
    assert answer.added_citations == [1] and [s.source for s in answer.sources] == ["guide/leave.md"]
    no_cite = AnswerConfig(
        min_score=0.0, min_coverage=0.0, max_unsupported=1.0, cite_missing=False, max_missing_idf=99.0
    )
    off = _pipeline(reply="Employees get 27 days.", answer=no_cite).ask("annual leave")
    assert off.answer == "Employees get 27 days." and off.added_citations == []
