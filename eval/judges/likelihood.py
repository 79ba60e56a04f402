"""Grounding likelihood: how expected the answer is, token by token, when the model reads it as its own
reply to "summarise / answer from this context". Nothing is generated and nothing is parsed: the local
model scores the given answer in one forward pass (:meth:`rag.llm.LlamaCppLLM.score_continuation`), and
text the context does not support (a name, number or claim it never gives, or one it contradicts) is text
the model finds surprising after reading the context.

The item's score is the mean surprisal in nats per answer token (the log-perplexity of the answer given
the context); ``score`` is its geometric-mean token probability ``exp(-surprisal)`` (1.0 = fully
expected) and ``hallucination_prob`` is ``1 - score``: monotone in the surprisal, not a calibrated
probability. The answer is called hallucinated when the surprisal reaches :data:`DEFAULT_THRESHOLD`.
The reason lists the least expected words, which is where to look. Citation brackets (``[1]``) are removed
before scoring; an answer that says the documents do not hold the answer claims nothing and is not scored.

The prompt and the threshold belong to the embedded Qwen2.5-Coder-1.5B: another model or prompt shifts
every surprisal and needs its own threshold (``rag eval judges --judge likelihood`` measures it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eval.judges.base import EvalSample, JudgeResult, Message, Usage, error_result
from rag.citations import is_not_in_documents, strip_citations
from rag.errors import ConfigError, RagError
from rag.llm import ContinuationScorer, TokenScores

SYSTEM = "You are a helpful assistant."
SUMMARY_INSTRUCTION = "Summarize the following passage."
ANSWER_INSTRUCTION = "Answer the question using the following passage."
# Mean surprisal (nats per answer token) at which an answer is called hallucinated: the balanced-accuracy
# best threshold (0.836) on the design set only, the first 100 items of FaithBench batches 1-8 in the
# stratified order (seed 0), with the embedded Qwen2.5-Coder-1.5B Q4_K_M and the prompts above.
DEFAULT_THRESHOLD = 0.84
HINT_WORDS = 5


@dataclass(frozen=True)
class Word:
    """A word of the answer (its tokens joined) and its log-probability (the sum over its tokens)."""

    text: str
    logprob: float


def build_messages(contexts: Sequence[str], question: str | None = None) -> list[Message]:
    """The prompt the answer is scored as a reply to: the passage(s) with a summary instruction, or
    with the question when there is one (the fixed system prompt and instruction lead, so the backend's
    prefix cache reuses them)."""
    passage = "\n\n".join(c.strip() for c in contexts) or "(no context)"
    if question and question.strip():
        user = f"{ANSWER_INSTRUCTION}\n\n{passage}\n\nQuestion: {question.strip()}"
    else:
        user = f"{SUMMARY_INSTRUCTION}\n\n{passage}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def mean_surprisal(logprobs: Sequence[float]) -> float:
    """Mean negative log-probability per token (nats); NaN for no tokens."""
    return -sum(logprobs) / len(logprobs) if logprobs else math.nan


def words(scores: TokenScores) -> list[Word]:
    """Tokens merged into words: a token that starts with white space, or follows punctuation, starts a
    new word; punctuation-only tokens stand alone and are dropped from the result."""
    merged: list[tuple[str, float]] = []
    for token, lp in zip(scores.tokens, scores.logprobs, strict=True):
        starts_word = not merged or token[:1].isspace() or not merged[-1][0][-1:].isalnum() or not token[:1].isalnum()
        if starts_word:
            merged.append((token, lp))
        else:
            merged[-1] = (merged[-1][0] + token, merged[-1][1] + lp)
    return [Word(text.strip(), lp) for text, lp in merged if any(ch.isalnum() for ch in text)]


def least_expected(scores: TokenScores, n: int = HINT_WORDS) -> list[Word]:
    """The ``n`` words with the lowest log-probability, in the order they occur in the answer."""
    ranked = sorted(enumerate(words(scores)), key=lambda iw: (iw[1].logprob, iw[0]))[:n]
    return [w for _, w in sorted(ranked, key=lambda iw: iw[0])]


class LikelihoodJudge:
    """``judge(answer, contexts)`` -> score = geometric-mean token probability of the answer given the
    contexts; ``details`` carry the surprisal, the threshold, the verdict and the least expected words."""

    name = "likelihood"

    def __init__(self, llm: Any, *, threshold: float = DEFAULT_THRESHOLD, hint_words: int = HINT_WORDS) -> None:
        if not isinstance(llm, ContinuationScorer):
            raise ConfigError(
                f"judge 'likelihood' needs a backend that scores given text (prompt log-probabilities): "
                f"{getattr(llm, 'name', type(llm).__name__)} cannot; use llm.backend: llama_cpp"
            )
        self.llm = llm
        self.threshold = threshold
        self.hint_words = hint_words

    def judge(
        self, answer: str, contexts: Sequence[str], *, question: str | None = None, item_id: str = ""
    ) -> JudgeResult:
        usage = Usage()
        text = strip_citations(answer).strip()
        if not text:
            return error_result(self.name, item_id, "empty answer: nothing to score", usage)
        if is_not_in_documents(text):
            return JudgeResult(
                judge=self.name,
                item_id=item_id,
                status="ok",
                score=1.0,
                reason="the answer says the documents do not contain the answer: it claims nothing to check",
                details={"refusal": True, "hallucinated": False, "hallucination_prob": 0.0},
                usage=usage,
            )
        start = time.perf_counter()
        try:
            scores = self.llm.score_continuation(build_messages(contexts, question), text)
        except RagError as e:
            usage.add(Usage(calls=1, seconds=time.perf_counter() - start))
            return error_result(self.name, item_id, f"LLM scoring failed: {e}", usage)
        usage.add(Usage(1, scores.prompt_tokens + len(scores.tokens), 0, time.perf_counter() - start))
        if not scores.logprobs:
            return error_result(self.name, item_id, "the answer has no tokens to score", usage)
        surprisal = mean_surprisal(scores.logprobs)
        hallucinated = surprisal >= self.threshold
        hints = least_expected(scores, self.hint_words)
        hint_text = ", ".join(f"{w.text!r} (p={math.exp(w.logprob):.1g})" for w in hints)
        reason = (
            f"mean surprisal {surprisal:.3f} nats/token {'>=' if hallucinated else '<'} threshold "
            f"{self.threshold:.3f}: {'likely unsupported' if hallucinated else 'expected given the context'}; "
            f"least expected: {hint_text}"
        )
        support = math.exp(-surprisal)
        return JudgeResult(
            judge=self.name,
            item_id=item_id,
            status="ok",
            score=support,
            reason=reason,
            details={
                "mean_surprisal": surprisal,
                "threshold": self.threshold,
                "tokens_scored": len(scores.logprobs),
                "least_expected": [{"word": w.text, "logprob": round(w.logprob, 4)} for w in hints],
                "hallucinated": hallucinated,
                "hallucination_prob": 1.0 - support,
            },
            usage=usage,
        )

    def run(self, sample: EvalSample) -> JudgeResult:
        return self.judge(sample.answer, sample.contexts, question=sample.question, item_id=sample.id)
