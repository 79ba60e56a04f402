"""Judges' parsing and scoring on canned LLM outputs (no model needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.judges import JUDGE_NAMES, build_judge
from eval.judges.answer_relevance import AnswerRelevanceJudge, parse_questions, relevance_score
from eval.judges.base import CallOptions, EvalSample, parse_json_object
from eval.judges.context_relevance import ContextRelevanceJudge, context_precision, parse_passages
from eval.judges.faithfulness import SCHEMA, FaithfulnessJudge, build_messages, parse_verdict
from eval.judges.geval import GEvalJudge, parse_form, weighted_score
from eval.judges.pointwise import PointwiseJudge, parse_grade, schema_for
from eval.judges.pointwise import build_messages as pointwise_messages
from rag.errors import JudgeError
from tests.eval.judge_fakes import FakeCompletion, FakeEmbedder, FakeLLM

CLAIMS = {
    "claims": [
        {"claim": "Paris is in France.", "evidence": "Paris, France", "verdict": "supported"},
        {"claim": "It has 9 million people.", "evidence": "none", "verdict": "unsupported"},
    ]
}


def test_parse_json_object_tolerates_fences_and_surrounding_text() -> None:
    assert parse_json_object('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object('Sure! {"a": [1, 2]} hope this helps') == {"a": [1, 2]}
    with pytest.raises(JudgeError, match="no JSON object"):
        parse_json_object("the answer is supported")
    with pytest.raises(JudgeError, match="not an object"):
        parse_json_object("[1, 2]")


def test_faithfulness_parse_scores_and_lists_unsupported() -> None:
    v = parse_verdict(CLAIMS)
    assert v.score == 0.5
    assert v.unsupported == ["It has 9 million people."]
    with pytest.raises(JudgeError, match="verdict"):
        parse_verdict({"claims": [{"claim": "x", "verdict": "maybe"}]})
    with pytest.raises(JudgeError, match="non-empty"):
        parse_verdict({"claims": []})


def test_faithfulness_prompt_puts_the_fixed_prefix_first_and_uses_the_schema() -> None:
    a = build_messages("answer one", ["ctx one"])
    b = build_messages("answer two", ["ctx two"])
    assert a[:3] == b[:3] and a[3] != b[3]
    llm = FakeLLM([CLAIMS])
    FaithfulnessJudge(llm).judge("Paris is in France with 9 million people.", ["Paris, France."])
    assert llm.calls[0]["json_schema"] is SCHEMA and llm.calls[0]["temperature"] == 0.0


def test_faithfulness_judge_retries_then_succeeds() -> None:
    llm = FakeLLM(["not json at all", CLAIMS])
    r = FaithfulnessJudge(llm, options=CallOptions(retries=2)).judge("a", ["c"], item_id="q1")
    assert r.status == "ok" and r.score == 0.5 and r.usage.calls == 2
    assert r.details["hallucinated"] is True and "9 million" in r.reason
    assert llm.calls[1]["seed"] != llm.calls[0]["seed"]


def test_failed_judgement_is_an_error_row_not_a_crash() -> None:
    llm = FakeLLM(['{"claims": "oops"}'])
    r = FaithfulnessJudge(llm, options=CallOptions(retries=1)).judge("a", ["c"], item_id="q2")
    assert r.status == "error" and r.score is None and r.usage.calls == 2
    assert "2 attempt(s) failed" in r.reason and "claims" in r.reason
    assert FaithfulnessJudge(FakeLLM([CLAIMS])).judge("  ", ["c"]).status == "error"


def test_truncated_output_is_retried() -> None:
    cut = FakeCompletion('{"claims": [{"claim": "x"', finish_reason="length")
    llm = FakeLLM([cut, FakeCompletion('{"claims": [{"claim": "x", "evidence": "x", "verdict": "supported"}]}')])
    r = FaithfulnessJudge(llm).judge("x", ["x"])
    assert r.status == "ok" and r.score == 1.0 and r.usage.calls == 2


def test_answer_relevance_score_and_noncommittal() -> None:
    q = np.array([1.0, 0.0])
    assert relevance_score(q, np.array([[2.0, 0.0], [0.0, 1.0]]), noncommittal=False) == pytest.approx(0.5)
    assert relevance_score(q, np.array([[1.0, 0.0]]), noncommittal=True) == 0.0
    with pytest.raises(JudgeError):
        parse_questions({"questions": ["a?"], "noncommittal": "no"})
    reply = {"questions": ["When does the office open?"] * 3, "noncommittal": False}
    r = AnswerRelevanceJudge(FakeLLM([reply]), FakeEmbedder()).judge("When does the office open?", "At 8.")
    assert r.status == "ok" and r.score == pytest.approx(1.0)


def test_context_precision_math_and_parse() -> None:
    assert context_precision([True, False, True]) == pytest.approx((1 + 2 / 3) / 2)
    assert context_precision([False, True]) == pytest.approx(0.5)
    assert context_precision([False, False]) == 0.0
    with pytest.raises(JudgeError, match="expected 2"):
        parse_passages({"passages": [{"passage": 1, "reason": "", "useful": True}]}, 2)
    reply = {
        "passages": [{"passage": 1, "reason": "r1", "useful": False}, {"passage": 2, "reason": "r2", "useful": True}]
    }
    r = ContextRelevanceJudge(FakeLLM([reply])).judge("q", "a", ["c1", "c2"], reference="ref")
    assert r.score == pytest.approx(0.5) and r.details["share_relevant"] == 0.5 and r.details["against"] == "reference"


def test_pointwise_grade_rubrics_and_reference() -> None:
    assert parse_grade({"explanation": "good", "rating": 8}).rating == 8
    for bad in (0, 11, "x", True, 7.5):
        with pytest.raises(JudgeError):
            parse_grade({"explanation": "e", "rating": bad})
    assert next(iter(schema_for("math")["properties"])) == "solution"
    s = EvalSample(question="2+2?", answer="4", reference="4", domain="math")
    msgs = pointwise_messages(s)
    assert "REFERENCE:\n4" in msgs[-1]["content"] and "solve the problem yourself" in msgs[0]["content"]
    code = pointwise_messages(EvalSample(question="q", answer="a", domain="coding"))
    assert "code" in code[0]["content"] and "REFERENCE" not in code[-1]["content"]
    r = PointwiseJudge(FakeLLM([{"solution": "4", "explanation": "right", "rating": 9}])).run(s)
    assert r.score == 9.0 and r.details["reference_guided"] and r.details["solution"] == "4"


def test_geval_weighted_score_and_cached_steps() -> None:
    lp = [{"{": 0.0}, {"3": math.log(0.5), "4": math.log(0.3), "2": math.log(0.2), "x": -1.0}, {"}": 0.0}]
    f = weighted_score(lp, 3)
    assert f.weighted and f.score == pytest.approx(3 * 0.5 + 4 * 0.3 + 2 * 0.2)
    assert weighted_score(None, 4).score == 4.0 and not weighted_score(None, 4).weighted
    with pytest.raises(JudgeError):
        parse_form({"score": 6})
    llm = FakeLLM(respond=lambda m: {"steps": ["a", "b", "c"]} if "procedures" in m[0]["content"] else {"score": 4})
    judge = GEvalJudge(llm)
    s = EvalSample(question="q", answer="a", contexts=("c",))
    assert judge.run(s).score == 4.0 and judge.run(s).status == "ok"
    assert sum("procedures" in c["messages"][0]["content"] for c in llm.calls) == 1
    assert llm.calls[-1]["top_logprobs"] == 5


def test_registry_builds_every_judge() -> None:
    for name in JUDGE_NAMES:
        if name == "likelihood":  # scores given text: a chat-only backend is refused (tested with that judge)
            continue
        judge = build_judge(name, FakeLLM(["{}"]), embedder=FakeEmbedder())
        assert hasattr(judge, "run")
    with pytest.raises(ValueError, match="unknown judge"):
        build_judge("nope", FakeLLM())  # type: ignore[arg-type]


def test_sentence_granularity_splits_here_and_parses_one_verdict_per_sentence() -> None:
    from eval.judges.faithfulness import parse_sentence_verdicts, sentence_schema, split_sentences

    text = 'Mr. Smith opened the library in 1998. It holds 40,000 books! Dr. J. Doe runs it.\nFunded by "the city".'
    sentences = split_sentences(text)
    assert sentences == [
        "Mr. Smith opened the library in 1998.",
        "It holds 40,000 books!",
        "Dr. J. Doe runs it.",
        'Funded by "the city".',
    ]
    assert len(split_sentences(" ".join(f"S{i}." for i in range(30)), limit=5)) == 5
    schema = sentence_schema(2)["properties"]["sentences"]
    assert schema["minItems"] == schema["maxItems"] == 2
    reply = {"sentences": [{"verdict": "supported", "note": ""}, {"verdict": "unsupported", "note": "no funding"}]}
    v = parse_sentence_verdicts(reply, ["a.", "b."])
    assert v.score == 0.5 and v.unsupported == ["b."]
    with pytest.raises(JudgeError, match="expected 3"):
        parse_sentence_verdicts(reply, ["a.", "b.", "c."])
    llm = FakeLLM([reply])
    r = FaithfulnessJudge(llm, granularity="sentences").judge("The library opened. The city funded it.", ["ctx"])
    assert r.status == "ok" and r.details["unsupported"] == ["The city funded it."] and "no funding" in r.reason
    prompt = llm.calls[0]["messages"][-1]["content"]
    assert "1. The library opened.\n   (words not in the CONTEXT: library, opened)\n2. The city funded it." in prompt
    assert "(words not in the CONTEXT: city, funded)" in prompt


def test_sentence_hints_list_the_words_the_context_never_uses() -> None:
    from eval.judges.faithfulness import build_sentence_messages
    from rag.citations import absent_share, absent_terms

    context = "The Leeds office opened in 2011. It employs 40 people and closes on Mondays."
    assert absent_terms("The office, which opens at 07:00, employs forty staff in Leeds.", context) == [
        "07", "00", "forty", "staff"
    ]
    assert absent_terms("It closed on Monday; 40 people work there.", context) == ["work"]
    assert absent_share("It closed on Monday; 40 people work there.", context) == pytest.approx(1 / 5)
    assert absent_share("Funded by the city.", context) == 1.0 and absent_share("It is.", context) == 0.0
    with_hints = build_sentence_messages(["Funded by the city."], [context])
    plain = build_sentence_messages(["Funded by the city."], [context], hints=False)
    assert "(words not in the CONTEXT: Funded, city)" in with_hints[-1]["content"]
    assert "words not in the CONTEXT" not in plain[-1]["content"] + plain[1]["content"] + plain[0]["content"]
    assert with_hints[:3] == build_sentence_messages(["Other."], ["other context"])[:3]  # shared cacheable prefix


def _tokenised(reply: str, decisions: list[dict[str, float]]) -> tuple[list[str], list[dict[str, float]]]:
    """Split ``reply`` into tokens the way Qwen does around a verdict (``' "'`` then the word) and
    give each verdict word the next distribution from ``decisions``; other tokens are certain."""
    import re

    tokens = [t for t in re.split(r'(supported|unsupported|"verdict"|: "|", |\{|\}|\[|\])', reply) if t]
    steps: list[dict[str, float]] = []
    pending = iter(decisions)
    for t in tokens:
        steps.append(next(pending) if t in ("supported", "unsupported") else {t: 0.0})
    return tokens, steps


def test_verdict_probabilities_read_the_mass_on_each_verdict_at_its_decision_token() -> None:
    from eval.judges.faithfulness import verdict_probabilities

    reply = '{"sentences": [{"verdict": "supported", "note": ""}, {"verdict": "unsupported", "note": "x"}]}'
    decisions = [
        {"supported": math.log(0.6), "unsupported": math.log(0.2), "un": math.log(0.1), "maybe": math.log(0.1)},
        {"unsupported": math.log(0.9), "sup": math.log(0.05)},
    ]
    tokens, steps = _tokenised(reply, decisions)
    assert "".join(tokens) == reply
    probs = verdict_probabilities(tokens, steps)
    assert probs == pytest.approx([0.3 / 0.9, 0.9 / 0.95])  # "maybe" spells neither verdict: left out
    # the opening quote and the word in one token (' "un') are read the same way
    merged = ['{"verdict":', ' "un', 'supported"}']
    assert verdict_probabilities(merged, [{}, {' "un': math.log(0.25), ' "supported': math.log(0.75)}, {}]) == [0.25]
    assert verdict_probabilities(None, None) == [] and verdict_probabilities(["a"], []) == []


def test_faithfulness_judge_reports_hallucination_probability_from_logprobs() -> None:
    reply = '{"sentences": [{"verdict": "supported", "note": ""}, {"verdict": "supported", "note": ""}]}'
    tokens, steps = _tokenised(
        reply,
        [{"supported": math.log(0.9), "unsupported": math.log(0.1)}, {"supported": math.log(0.6), "un": math.log(0.4)}],
    )
    llm = FakeLLM([FakeCompletion(reply, logprobs=steps, tokens=tokens)])
    judge = FaithfulnessJudge(llm, granularity="sentences", top_logprobs=20)
    r = judge.judge("The library opened. The city funded it.", ["ctx"])
    assert llm.calls[0]["top_logprobs"] == 20
    assert r.score == 1.0 and r.details["hallucinated"] is False
    assert r.details["hallucination_prob"] == pytest.approx(0.4)
    assert [c["p_unsupported"] for c in r.details["claims"]] == pytest.approx([0.1, 0.4])
    # without log-probabilities (or with the wrong number of decisions) there is no probability, not a guess
    plain = FaithfulnessJudge(FakeLLM([reply]), granularity="sentences", top_logprobs=20).judge("One. Two.", ["c"])
    assert plain.status == "ok" and plain.details["hallucination_prob"] is None
    assert "p_unsupported" not in plain.details["claims"][0]
