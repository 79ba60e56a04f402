"""Judges for MT-Bench pairs that read their verdict from token probabilities, not from a sampled token.

- ``pairwise``: the paper's pairwise prompt (FastChat ``pair-v2``, one and two turns) asking for one
  letter, A, B or C (tie), judged in both orders. The probabilities of the three letters are kept for
  each order, so a verdict rule can be chosen and re-scored later without the LLM.
- ``reference``: the same with the GPT-4 reference answer in the prompt (FastChat ``pair-math-v1``) for
  math, reasoning and coding; other categories have no reference and get the plain prompt.
- ``pointwise``: each answer graded alone, 1-9 (single-answer grading, FastChat ``single-v1``; one digit
  so that the grade is one token), the expected grade taken over the digit probabilities; two grades
  become a pairwise verdict. One grade per (question, turn, model) serves every pair it is in.

Long answers are cut to the same token budget on both sides (truncation never favours one answer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eval.judges import MTBenchJudgeName
from eval.judges.base import ChatLLM, Message, Usage
from eval.mtbench import MTBenchPair, Position
from rag.errors import JudgeError, RagError

REFERENCE_CATEGORIES = ("math", "reasoning", "coding")
DEFAULT_MAX_ANSWER_TOKENS = 320
TOP_LOGPROBS = 20
LETTERS: dict[str, Position] = {"A": "first", "B": "second", "C": "tie"}
GRADES = tuple(str(g) for g in range(1, 10))

PAIR_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. You should choose the assistant that follows the user's instructions "
    "and answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of their responses. Avoid any position biases "
    "and ensure that the order in which the responses were presented does not influence your decision. Do not "
    "allow the length of the responses to influence your evaluation. Do not favor certain names of the "
    'assistants. Be as objective as possible. Reply with one letter only: "A" if assistant A is better, '
    '"B" if assistant B is better, and "C" for a tie.'
)
PAIR_SYSTEM_MULTI = PAIR_SYSTEM.replace(
    "to the user question displayed below.",
    "to the user questions. You should focus on who provides a better answer to the second user question.",
)
REFERENCE_NOTE = (
    " Your evaluation should consider correctness and helpfulness. You will be given a reference answer, "
    "assistant A's answer, and assistant B's answer. Your job is to evaluate which assistant's answer is "
    "better. Compare both assistants' answers with the reference answer. Identify and correct any mistakes."
)
SINGLE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to "
    "the user question displayed below. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of the response. Be as objective as possible. "
    "Rate the response on a scale of 1 to 9 and reply with the digit only."
)
SINGLE_SYSTEM_MULTI = SINGLE_SYSTEM.replace(
    "the user question displayed below.",
    "the user questions. You evaluation should focus on the assistant's answer to the second user question.",
)


def truncate(text: str, max_tokens: int, count_tokens: Any = None) -> str:
    """``text`` cut to about ``max_tokens`` tokens (the tokenizer's count when given, else 4 characters a
    token), at a word boundary, marked so the judge knows."""
    text = text.strip()
    n = count_tokens(text) if count_tokens else math.ceil(len(text) / 4)
    if n <= max_tokens:
        return text
    cut = text[: int(len(text) * max_tokens / n)]
    cut = cut[: cut.rfind(" ")] if " " in cut[len(cut) // 2 :] else cut
    return cut.rstrip() + " [... truncated]"


def _cap(pair_answers: Sequence[str], max_tokens: int, count_tokens: Any) -> list[str]:
    return [truncate(a, max_tokens, count_tokens) for a in pair_answers]


def pair_messages(
    pair: MTBenchPair,
    first: Sequence[str],
    second: Sequence[str],
    *,
    reference: Sequence[str] | None = None,
) -> list[Message]:
    """Messages for one order: ``first``/``second`` are the two assistants' answers (already truncated)."""
    system = PAIR_SYSTEM if pair.turn == 1 else PAIR_SYSTEM_MULTI
    ref = ""
    if reference:
        system += REFERENCE_NOTE
        if pair.turn == 1:
            ref = f"[The Start of Reference Answer]\n{reference[-1]}\n[The End of Reference Answer]\n\n"
        else:
            ref = (
                "<|The Start of Reference Answer|>\n\n"
                + "".join(
                    f"### User:\n{q}\n\n### Reference answer:\n{r}\n\n"
                    for q, r in zip(pair.questions, reference, strict=True)
                )
                + "<|The End of Reference Answer|>\n\n"
            )
    if pair.turn == 1:
        user = (
            f"[User Question]\n{pair.questions[0]}\n\n{ref}"
            f"[The Start of Assistant A's Answer]\n{first[0]}\n[The End of Assistant A's Answer]\n\n"
            f"[The Start of Assistant B's Answer]\n{second[0]}\n[The End of Assistant B's Answer]"
        )
    else:
        user = ref + "\n\n".join(
            _conversation(name, pair.questions, answers) for name, answers in (("A", first), ("B", second))
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": user + "\n\nVerdict (A, B or C):"}]


def single_messages(pair: MTBenchPair, answers: Sequence[str]) -> list[Message]:
    if pair.turn == 1:
        user = (
            f"[Question]\n{pair.questions[0]}\n\n[The Start of Assistant's Answer]\n{answers[0]}\n"
            "[The End of Assistant's Answer]"
        )
        system = SINGLE_SYSTEM
    else:
        user = _conversation("", pair.questions, answers)
        system = SINGLE_SYSTEM_MULTI
    return [{"role": "system", "content": system}, {"role": "user", "content": user + "\n\nRating (1-9):"}]


def _conversation(name: str, questions: Sequence[str], answers: Sequence[str]) -> str:
    who = f"Assistant {name}" if name else "Assistant"
    body = "".join(f"### User:\n{q}\n\n### {who}:\n{a}\n\n" for q, a in zip(questions, answers, strict=True))
    return f"<|The Start of {who}'s Conversation with User|>\n\n{body}<|The End of {who}'s Conversation with User|>"


def token_distribution(step: Mapping[str, float], labels: Sequence[str]) -> dict[str, float]:
    """Probabilities of ``labels`` at one generated position, renormalised over them. A label's token may
    appear with surrounding spaces; its variants are summed. Raises JudgeError when none appears."""
    mass = {label: 0.0 for label in labels}
    for token, logprob in step.items():
        label = token.strip()
        if label in mass:
            mass[label] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        shown = ", ".join(repr(t) for t in list(step)[:8])
        raise JudgeError(f"none of {', '.join(labels)} among the top-{len(step)} first tokens ({shown})")
    return {label: p / total for label, p in mass.items()}


@dataclass(frozen=True)
class Reading:
    probs: dict[str, float]
    text: str


def read_first_token(llm: ChatLLM, messages: Sequence[Message], labels: Sequence[str], usage: Usage) -> Reading:
    """One call, one generated token: the distribution over ``labels`` from its top log-probabilities,
    or, for a backend without log-probabilities, the sampled label with probability 1."""
    start = time.perf_counter()
    try:
        completion = llm.complete(messages, max_tokens=1, temperature=0.0, seed=0, top_logprobs=TOP_LOGPROBS)
    except RagError as e:
        usage.add(Usage(calls=1, seconds=time.perf_counter() - start))
        raise JudgeError(f"LLM call failed: {e}") from e
    usage.add(Usage(1, completion.prompt_tokens, completion.completion_tokens, time.perf_counter() - start))
    if completion.logprobs:
        return Reading(token_distribution(completion.logprobs[0], labels), completion.text)
    label = completion.text.strip()[:1]
    if label not in labels:
        raise JudgeError(f"the reply {completion.text[:40]!r} is none of {', '.join(labels)}")
    return Reading({lab: float(lab == label) for lab in labels}, completion.text)


def argmax_position(probs: Mapping[str, float]) -> Position:
    letter = max(LETTERS, key=lambda k: (probs[k], -"ABC".index(k)))
    return LETTERS[letter]


def log_odds(probs: Mapping[str, float], *, eps: float = 1e-6) -> float:
    """log P(first) - log P(second) in one order."""
    return math.log(probs["A"] + eps) - math.log(probs["B"] + eps)


class PairJudge:
    """``pairwise`` and ``reference``: both orders; the row keeps each order's letter probabilities."""

    def __init__(
        self, llm: ChatLLM, *, reference: bool = False, max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS
    ) -> None:
        self.llm = llm
        self.use_reference = reference
        self.name: MTBenchJudgeName = "reference" if reference else "pairwise"
        self.max_answer_tokens = max_answer_tokens

    def judge(self, pair: MTBenchPair) -> dict[str, Any]:
        usage = Usage()
        count = getattr(self.llm, "count_tokens", None)
        a = _cap(pair.answers_a, self.max_answer_tokens, count)
        b = _cap(pair.answers_b, self.max_answer_tokens, count)
        ref = None
        if self.use_reference and pair.category in REFERENCE_CATEGORIES and pair.reference:
            ref = _cap(pair.reference, self.max_answer_tokens, count)
        try:
            ab = read_first_token(self.llm, pair_messages(pair, a, b, reference=ref), tuple(LETTERS), usage)
            ba = read_first_token(self.llm, pair_messages(pair, b, a, reference=ref), tuple(LETTERS), usage)
        except JudgeError as e:
            return {"status": "error", "reason": str(e), "usage": usage.to_dict()}
        return {
            "status": "ok",
            "reason": "",
            "order_ab": {"probs": _round(ab.probs), "verdict": argmax_position(ab.probs)},
            "order_ba": {"probs": _round(ba.probs), "verdict": argmax_position(ba.probs)},
            "with_reference": ref is not None,
            "usage": usage.to_dict(),
        }


class PointwiseGrader:
    """``pointwise``: expected 1-9 grade of each answer alone; grades are cached per (question, turn, model)."""

    name: MTBenchJudgeName = "pointwise"

    def __init__(self, llm: ChatLLM, *, max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS) -> None:
        self.llm = llm
        self.max_answer_tokens = max_answer_tokens
        self.cache: dict[tuple[int, int, str], dict[str, float]] = {}

    def remember(self, row: Mapping[str, Any]) -> None:
        """Seed the cache from a stored row (a resumed run grades no answer twice)."""
        if row.get("status") == "ok" and "grades" in row:
            for side in ("a", "b"):
                model = row[f"model_{side}"]
                self.cache[(int(row["question_id"]), int(row["turn"]), model)] = row["grades"][side]

    def _grade(self, pair: MTBenchPair, model: str, answers: Sequence[str], usage: Usage) -> dict[str, float]:
        key = (pair.question_id, pair.turn, model)
        if key not in self.cache:
            capped = _cap(answers, self.max_answer_tokens, getattr(self.llm, "count_tokens", None))
            self.cache[key] = _round(read_first_token(self.llm, single_messages(pair, capped), GRADES, usage).probs)
        return self.cache[key]

    def judge(self, pair: MTBenchPair) -> dict[str, Any]:
        usage = Usage()
        try:
            ga = self._grade(pair, pair.model_a, pair.answers_a, usage)
            gb = self._grade(pair, pair.model_b, pair.answers_b, usage)
        except JudgeError as e:
            return {"status": "error", "reason": str(e), "usage": usage.to_dict()}
        return {
            "status": "ok",
            "reason": "",
            "grades": {"a": ga, "b": gb},
            "expected_grade_a": expected_grade(ga),
            "expected_grade_b": expected_grade(gb),
            "usage": usage.to_dict(),
        }


def expected_grade(probs: Mapping[str, float]) -> float:
    return sum(int(g) * p for g, p in probs.items())


def _round(probs: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in probs.items()}
