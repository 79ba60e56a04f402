"""G-Eval (Liu et al. 2023): the judge first writes evaluation steps for the criterion (auto chain of
thought, generated once per criterion and reused), then fills the form with a 1-5 score. Where the
backend returns token log-probabilities the score is the probability-weighted mean over the score
tokens 1..5 at the score position; otherwise it is the integer the judge wrote."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from eval.judges.base import (
    CallOptions,
    ChatLLM,
    EvalSample,
    JudgeResult,
    Message,
    Usage,
    call_json,
    error_result,
    format_contexts,
)
from rag.errors import JudgeError

Criterion = Literal["consistency", "relevance", "coherence"]
CRITERIA: dict[Criterion, str] = {
    "consistency": "Consistency (1-5): the factual alignment between the answer and the source documents. A "
    "consistent answer contains only statements entailed by the documents; penalise invented facts.",
    "relevance": "Relevance (1-5): how well the answer addresses the question, with the important information "
    "and without off-topic content.",
    "coherence": "Coherence (1-5): the answer is well structured and well organised, each sentence following "
    "from the previous; not a heap of related facts.",
}
SCORES = ("1", "2", "3", "4", "5")

STEPS_SYSTEM = """You design evaluation procedures. Given an evaluation criterion, write 3 to 5 short, \
concrete evaluation steps a grader should follow to score an answer on it. Reply with JSON only."""
STEPS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "steps": {"type": "array", "minItems": 3, "maxItems": 5, "items": {"type": "string", "maxLength": 200}}
    },
    "required": ["steps"],
}
FORM_SYSTEM = """You will be given a question, source documents and one answer. Your task is to rate the \
answer on one criterion.

Evaluation criterion:
{criterion}

Evaluation steps:
{steps}

Reply with JSON only: {{"score": <1-5>}}."""
FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
    "required": ["score"],
}


@dataclass(frozen=True)
class FormScore:
    score: float
    written: int
    weighted: bool
    distribution: dict[str, float] | None = None


def parse_steps(data: dict[str, Any]) -> tuple[str, ...]:
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise JudgeError(f"'steps' must be a non-empty list of strings, got {steps!r:.80}")
    return tuple(s.strip() for s in steps)


def parse_form(data: dict[str, Any]) -> int:
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise JudgeError(f"'score' must be an integer 1-5, got {score!r}")
    return score


def weighted_score(logprobs: Sequence[Mapping[str, float]] | None, written: int) -> FormScore:
    """Probability-weighted mean over the score tokens at the first position whose chosen token is a
    score digit; the written integer when there are no log-probabilities (or no such position)."""
    for step in logprobs or ():
        digits = {tok.strip(): lp for tok, lp in step.items() if tok.strip() in SCORES}
        if str(written) not in digits:
            continue
        probs = {d: math.exp(lp) for d, lp in digits.items()}
        total = sum(probs.values())
        dist = {d: p / total for d, p in sorted(probs.items())}
        return FormScore(sum(int(d) * p for d, p in dist.items()), written, True, dist)
    return FormScore(float(written), written, False)


class GEvalJudge:
    """``score`` on 1-5 (fractional when log-probabilities weight it)."""

    def __init__(
        self,
        llm: ChatLLM,
        *,
        criterion: Criterion = "consistency",
        top_logprobs: int = 5,
        options: CallOptions | None = None,
    ) -> None:
        self.llm = llm
        self.criterion = criterion
        self.name = f"geval_{criterion}"
        self.top_logprobs = top_logprobs
        self.options = options or CallOptions(max_tokens=20)
        self._steps: tuple[str, ...] | None = None
        self.steps_usage = Usage()

    def steps(self) -> tuple[str, ...]:
        """The auto-CoT evaluation steps for the criterion, generated on first use (then reused)."""
        if self._steps is None:
            messages: list[Message] = [
                {"role": "system", "content": STEPS_SYSTEM},
                {"role": "user", "content": CRITERIA[self.criterion]},
            ]
            opts = CallOptions(max_tokens=400, retries=self.options.retries, seed=self.options.seed)
            steps, _ = call_json(
                self.llm, messages, schema=STEPS_SCHEMA, parse=parse_steps, options=opts, usage=self.steps_usage
            )
            self._steps = steps
        return self._steps

    def build_messages(self, sample: EvalSample) -> list[Message]:
        steps = "\n".join(f"{i}. {s}" for i, s in enumerate(self.steps(), 1))
        user = (
            f"QUESTION:\n{sample.question.strip()}\n\nSOURCE DOCUMENTS:\n{format_contexts(sample.contexts)}\n\n"
            f"ANSWER:\n{sample.answer.strip()}"
        )
        return [
            {"role": "system", "content": FORM_SYSTEM.format(criterion=CRITERIA[self.criterion], steps=steps)},
            {"role": "user", "content": user},
        ]

    def run(self, sample: EvalSample) -> JudgeResult:
        usage = Usage()
        try:
            messages = self.build_messages(sample)
            written, completion = call_json(
                self.llm,
                messages,
                schema=FORM_SCHEMA,
                parse=parse_form,
                options=self.options,
                usage=usage,
                top_logprobs=self.top_logprobs,
            )
        except JudgeError as e:
            return error_result(self.name, sample.id, str(e), usage)
        form = weighted_score(completion.logprobs, written)
        how = "probability-weighted over 1-5" if form.weighted else "as written (no log-probabilities)"
        details = {
            "written": written,
            "weighted": form.weighted,
            "distribution": form.distribution,
            "steps": list(self.steps()),
            "criterion": self.criterion,
        }
        return JudgeResult(
            self.name, sample.id, "ok", form.score, f"{self.criterion} {form.score:.2f} ({how})", details, usage
        )
