"""The likelihood judge: unit tests on a scripted scorer, and the real local model scoring given text."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from eval.judges import build_judge
from eval.judges.base import EvalSample
from eval.judges.likelihood import (
    ANSWER_INSTRUCTION,
    SUMMARY_INSTRUCTION,
    LikelihoodJudge,
    build_messages,
    least_expected,
    mean_surprisal,
    words,
)
from rag.errors import ConfigError, GenerationError
from rag.llm import LLM, Message, TokenScores

CONTEXT = "The Riverside Library opened in 1998. It holds about 40,000 books and is closed on Mondays."


class ScriptedScorer:
    """Returns fixed token scores and records the prompts it was asked to score under."""

    name = "scripted"

    def __init__(self, tokens: list[str], logprobs: list[float], *, fail: bool = False) -> None:
        self.scores = TokenScores(tokens, logprobs, prompt_tokens=40)
        self.fail = fail
        self.prompts: list[list[Message]] = []

    def score_continuation(self, messages: Sequence[Message], continuation: str) -> TokenScores:
        self.prompts.append(list(messages))
        if self.fail:
            raise GenerationError("scripted: backend down")
        assert "".join(self.scores.tokens).strip() == continuation
        return self.scores


def test_words_join_sub_word_tokens_and_sum_their_logprobs() -> None:
    s = TokenScores([" Emma", " Thom", "pson", " won", " 20", "17", "."], [-1.0, -2.0, -3.0, -0.5, -1.0, -1.0, -0.1], 0)
    assert [(w.text, w.logprob) for w in words(s)] == [
        ("Emma", -1.0),
        ("Thompson", -5.0),
        ("won", -0.5),
        ("2017", -2.0),
    ]
    assert [w.text for w in least_expected(s, 2)] == ["Thompson", "2017"]  # answer order, not rank order


def test_mean_surprisal_is_the_mean_negative_logprob() -> None:
    assert mean_surprisal([-1.0, -3.0]) == 2.0
    assert math.isnan(mean_surprisal([]))


def test_verdict_follows_the_threshold_and_names_the_least_expected_words() -> None:
    surprising = ScriptedScorer([" It", " opened", " in", " 1875", "."], [-0.1, -0.2, -0.1, -9.0, -0.1])
    r = LikelihoodJudge(surprising, threshold=1.0).judge("It opened in 1875.", [CONTEXT], item_id="x")
    assert r.ok and r.details["hallucinated"] is True
    assert r.details["mean_surprisal"] == pytest.approx(1.9)
    assert r.score == pytest.approx(math.exp(-1.9)) and r.details["hallucination_prob"] == pytest.approx(1 - r.score)
    assert [w["word"] for w in r.details["least_expected"]] == ["It", "opened", "in", "1875"]
    assert "'1875'" in r.reason and r.usage.prompt_tokens == 45 and r.usage.completion_tokens == 0

    expected = ScriptedScorer([" It", " opened", " in", " 1998", "."], [-0.1, -0.2, -0.1, -0.3, -0.1])
    r2 = LikelihoodJudge(expected, threshold=1.0).judge("It opened in 1998.", [CONTEXT])
    assert r2.details["hallucinated"] is False and r2.score is not None and r2.score > r.score


def test_prompt_is_a_summary_without_question_and_an_answer_with_one() -> None:
    assert SUMMARY_INSTRUCTION in build_messages([CONTEXT])[-1]["content"]
    with_q = build_messages([CONTEXT, "Second passage."], "When did it open?")[-1]["content"]
    assert with_q.startswith(ANSWER_INSTRUCTION) and "Second passage." in with_q
    assert with_q.endswith("When did it open?")
    scorer = ScriptedScorer([" In", " 1998", "."], [-0.5, -0.2, -0.1])
    judge = build_judge("likelihood", scorer)  # type: ignore[arg-type]
    result = judge.run(EvalSample(question="When did it open?", answer="In 1998.", contexts=(CONTEXT,), id="q1"))
    assert result.ok and result.item_id == "q1" and "Question: When did it open?" in scorer.prompts[0][-1]["content"]


def test_threshold_is_a_setting() -> None:
    from eval.judges import JudgeSettings

    scorer = ScriptedScorer([" In", " 1998", "."], [-0.5, -0.2, -0.1])
    strict = build_judge("likelihood", scorer, settings=JudgeSettings(likelihood_threshold=0.1))  # type: ignore[arg-type]
    assert strict.run(EvalSample(question="", answer="In 1998.", contexts=(CONTEXT,))).details["hallucinated"] is True
    default = build_judge("likelihood", scorer)  # type: ignore[arg-type]
    assert default.run(EvalSample(question="", answer="In 1998.", contexts=(CONTEXT,))).details["hallucinated"] is False


def test_citations_are_not_scored_and_a_refusal_claims_nothing() -> None:
    scorer = ScriptedScorer([" It", " opened", " in", " 1998", "."], [-0.1, -0.2, -0.1, -0.3, -0.1])
    judge = LikelihoodJudge(scorer)
    assert judge.judge("It opened in 1998 [1][2].", [CONTEXT]).ok  # the scorer asserts it got the bare prose
    refusal = judge.judge("The answer is not in the documents.", [CONTEXT], item_id="r")
    assert refusal.ok and refusal.score == 1.0 and refusal.details["hallucinated"] is False
    assert refusal.details["refusal"] is True and len(scorer.prompts) == 1


def test_failures_are_rows_not_crashes() -> None:
    down = LikelihoodJudge(ScriptedScorer([" a"], [-1.0], fail=True)).judge("a", [CONTEXT], item_id="d")
    assert down.status == "error" and down.score is None and "backend down" in down.reason
    empty = LikelihoodJudge(ScriptedScorer([], [])).judge("   ", [CONTEXT])
    assert empty.status == "error" and "empty answer" in empty.reason


def test_a_backend_that_cannot_score_given_text_is_refused() -> None:
    class ChatOnly:
        name = "openai:gpt"

        def complete(self, *args: object, **kwargs: object) -> None: ...

    with pytest.raises(ConfigError, match="openai:gpt cannot"):
        LikelihoodJudge(ChatOnly())


@pytest.mark.llm
@pytest.mark.slow
def test_local_model_scores_given_text_like_its_own_generation(local_llm: LLM) -> None:
    messages = [
        {"role": "system", "content": "Answer with one word."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    generated = local_llm.complete(messages, max_tokens=4, top_logprobs=3)
    assert generated.tokens and generated.logprobs
    scored = local_llm.score_continuation(messages, generated.text)  # type: ignore[attr-defined]
    assert "".join(scored.tokens) == generated.text
    # the greedy tokens' log-probabilities, read while generating, match the forward pass over the text
    during = [step[token] for token, step in zip(generated.tokens, generated.logprobs, strict=True)]
    assert scored.logprobs == pytest.approx(during[: len(scored.logprobs)], abs=0.1)
    # the prompt prefix is reused from the cache and gives the same scores; generation still works after
    again = local_llm.score_continuation(messages, generated.text)  # type: ignore[attr-defined]
    assert again.logprobs == pytest.approx(scored.logprobs, abs=1e-3)
    assert local_llm.complete(messages, max_tokens=4).text == generated.text


@pytest.mark.llm
@pytest.mark.slow
def test_local_likelihood_judge_finds_a_contradicted_detail_more_surprising(local_llm: LLM) -> None:
    judge = LikelihoodJudge(local_llm)
    faithful = judge.judge("The Riverside Library opened in 1998 and holds about 40,000 books.", [CONTEXT])
    invented = judge.judge("The Riverside Library opened in 1875 and holds about 90,000 books.", [CONTEXT])
    assert faithful.ok and invented.ok
    assert invented.details["mean_surprisal"] > faithful.details["mean_surprisal"] + 0.2
    assert {"1875", "90"} & {w["word"].split(",")[0] for w in invented.details["least_expected"]}
